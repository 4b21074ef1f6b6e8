"""Decision targets for the soft-label loss: per training scenario, the teacher's distribution
over the actions, and the temperature it holds at.

Exact where the teacher was scored (a score-mode run: one forward pass per scenario, or the
planted teacher's known rule); otherwise smoothed from its sampled answers, adding half an
answer to every action (Jeffreys' prior), so four samples that all say C give P(C) = 0.9, not
a certainty the student would be pushed to. Only choice scenarios get targets: amounts (the
donation game) span many tokens and keep the token loss alone.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import TomdistillError
from .samples import current_samples
from .scenarios import Scenario
from .scenarios.parse import ChoiceAnswer, answer_spec
from .store import Run, Store

#: Pseudo-answers added to every action when smoothing sampled answers (Jeffreys' prior).
SMOOTHING = 0.5


@dataclass(frozen=True)
class DecisionTargets:
    """Per scenario id, P(action) in the scenario's action order; how they were made; at which T."""

    probs: dict[str, dict[str, float]]
    source: str
    temperature: float

    def encoded(self, scenario_id: str) -> str:
        """The scenario's target as a JSON object ('' without one), the form a dataset row holds."""
        target = self.probs.get(scenario_id)
        return json.dumps(target) if target else ""


def exact_targets(store: Store, run: Run, scenarios: Sequence[Scenario]) -> DecisionTargets:
    """The score run's probabilities for the choice scenarios it has a valid record of (the mean
    over a scenario's records: a reason-first score run has one per sampled motivation)."""
    if run.mode != "score":
        raise TomdistillError(f"run '{run.name}' is a {run.mode}-mode run; exact targets need a score-mode run")
    probs: dict[str, dict[str, float]] = {}
    for scenario in _choice_scenarios(scenarios):
        records = [s for s in current_samples(store, run, scenario) if s.probs and (s.valid_mass or 0) > 0]
        if records:
            probs[scenario.id] = {a: statistics.fmean(float(r.probs.get(a, 0.0)) for r in records)  # type: ignore[union-attr]
                                  for a in _actions(scenario)}
    return DecisionTargets(probs, f"exact: score run '{run.name}'", float(run.settings.get("temperature", 1.0)))


def smoothed_targets(store: Store, run: Run, scenarios: Sequence[Scenario]) -> DecisionTargets:
    """Each choice scenario's share of every action among the run's valid answers, smoothed."""
    probs: dict[str, dict[str, float]] = {}
    for scenario in _choice_scenarios(scenarios):
        answers = [s.action for s in current_samples(store, run, scenario) if s.valid and s.action is not None]
        if answers:
            actions = _actions(scenario)
            total = len(answers) + SMOOTHING * len(actions)
            probs[scenario.id] = {a: (answers.count(a) + SMOOTHING) / total for a in actions}
    source = f"smoothed: {SMOOTHING:g} added to each action's count in run '{run.name}'"
    return DecisionTargets(probs, source, float(run.settings.get("temperature", 1.0)))


def teacher_targets(store: Store, run: Run, scenarios: Sequence[Scenario], score_run: Run | None = None) -> DecisionTargets:
    """Exact targets from `score_run` where it has them, smoothed from the sampled `run` elsewhere
    (every scenario when there is no score run)."""
    smoothed = smoothed_targets(store, run, scenarios)
    if score_run is None:
        return smoothed
    exact = exact_targets(store, score_run, scenarios)
    rest = {k: v for k, v in smoothed.probs.items() if k not in exact.probs}
    source = exact.source + (f"; {smoothed.source} for {len(rest)} scenarios it lacks" if rest else "")
    return DecisionTargets(exact.probs | rest, source, exact.temperature)


def _choice_scenarios(scenarios: Sequence[Scenario]) -> list[Scenario]:
    return [s for s in scenarios if not s.numeric]


def _actions(scenario: Scenario) -> tuple[str, ...]:
    spec = answer_spec(scenario)
    assert isinstance(spec, ChoiceAnswer)  # numeric scenarios were left out
    return spec.actions
