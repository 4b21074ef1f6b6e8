"""What a stored sample means: the store columns a parsed decision fills, which samples answer a
scenario's current wording, and the rate one sample stands for.

Elicitation writes samples through these rules, and the dataset builder, the evaluation and the
distillation targets read them back through the same ones, so a sample means one thing
everywhere.
"""

from __future__ import annotations

from typing import Any

from .errors import TomdistillError
from .scenarios import Library, Scenario, prompt_hash, render
from .scenarios.parse import PARSER_VERSION, Decision
from .scenarios.render import num
from .store import Run, Sample, Store


def decision_fields(decision: Decision, numeric: bool) -> dict[str, Any]:
    """The store columns a Decision fills (amounts are kept both as text and as a number)."""
    amount = numeric and decision.valid
    return {
        "action": num(decision.action) if amount else decision.action,
        "value": float(decision.action) if amount else None,
        "motivation": decision.motivation,
        "invalid_reason": decision.invalid_reason,
        "parser_version": PARSER_VERSION,
    }


def current_hash(run: Run, scenario: Scenario) -> str:
    """The prompt hash of `scenario`'s current wording in `run`'s protocol."""
    return prompt_hash(render(scenario, run.protocol))  # type: ignore[arg-type]


def current_samples(store: Store, run: Run, scenario: Scenario) -> list[Sample]:
    """A run's samples of `scenario` asked with its current wording; answers to an edited older
    prompt (another prompt hash) are left out, so they never mix with the new ones."""
    digest = current_hash(run, scenario)
    return [s for s in store.samples(run.id, scenario.id) if s.prompt_hash == digest]


def sample_rate(scenario: Scenario, sample: Sample) -> float:
    """What one valid sample says about the rate: the amount (or expected amount) in numeric games;
    otherwise P(cooperate) in score mode, or 1.0 / 0.0 for a sampled cooperate / defect."""
    if scenario.numeric:  # both modes store the amount (or its expectation) in `value`
        return float(sample.value)  # type: ignore[arg-type]
    cooperate = scenario.game.cooperative_action
    if sample.probs is not None:
        return sample.probs.get(cooperate, 0.0)
    return float(sample.action == cooperate)


def run_scenarios(store: Store, run: Run, library: Library) -> list[Scenario]:
    """The scenarios a run has samples of, in library order; an error names any the library lacks."""
    ids = {row[0] for row in store.conn.execute("SELECT DISTINCT scenario FROM samples WHERE run_id = ?", (run.id,))}
    known = {s.id: s for s in library.scenarios()}
    missing = sorted(ids - set(known))
    if missing:
        raise TomdistillError(
            f"run '{run.name}' has samples of scenarios the library lacks ({', '.join(missing[:3])}); "
            "pass the --library file they came from"
        )
    return [s for s in library.scenarios() if s.id in ids]
