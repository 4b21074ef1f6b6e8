"""`tomdistill reparse`: parse a stored run's raw replies again, without calling a model.

Parsing happens on write and again here on demand, so a better parser (a new PARSER_VERSION)
updates old runs from their raw text alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import TomdistillError
from .samples import current_hash, decision_fields, run_scenarios
from .scenarios import Library
from .scenarios.parse import PARSER_VERSION, parse_decision
from .store import Run, Store


@dataclass
class ReparseSummary:
    run: str
    samples: int
    changed: int
    valid_before: int
    valid_after: int
    parser_version: str = PARSER_VERSION
    #: Samples answering an older wording of a scenario (another prompt hash): not re-parsed.
    stale: int = 0
    stale_scenarios: int = 0


def reparse_run(store: Store, run: Run, library: Library) -> ReparseSummary:
    """Parse every stored reply of `run` again with the current parser and store the result.

    Only replies to the current wording of a scenario are parsed: a reply to an edited older prompt
    would be read with the new game's rules (other actions, other bounds), so it is left as it is
    and counted in `stale`."""
    if run.mode == "score":
        raise TomdistillError(f"run '{run.name}' is a score-mode run: it holds probabilities, no text to parse")
    updates, changed, before, after = [], 0, 0, 0
    scenarios = {s.id: s for s in run_scenarios(store, run, library)}
    wording = {s.id: current_hash(run, s) for s in scenarios.values()}
    samples, stale = [], []
    for sample in store.samples(run.id):
        (samples if sample.prompt_hash == wording[sample.scenario] else stale).append(sample)
    for sample in samples:
        scenario = scenarios[sample.scenario]
        fields = decision_fields(parse_decision(sample.raw_text, scenario), scenario.numeric)
        old = {k: getattr(sample, k) for k in fields}
        before += sample.valid
        after += fields["invalid_reason"] is None
        if old != fields:
            changed += 1
            updates.append((run.id, sample.scenario, sample.prompt_hash, sample.sample_index, fields))
    store.update_parses(updates)
    return ReparseSummary(run.name, len(samples), changed, before, after,
                          stale=len(stale), stale_scenarios=len({s.scenario for s in stale}))
