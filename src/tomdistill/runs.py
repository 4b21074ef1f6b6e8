"""Work on stored runs without calling a model: re-parse raw replies, export samples.

Parsing happens on write and again here on demand, so a better parser (a new PARSER_VERSION)
updates old runs from their raw text alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import TomdistillError
from .outdirs import check_dir, check_new_file, replace_owned_dir, replacing_file
from .scenarios import Library, Scenario, prompt_hash, render
from .scenarios.parse import PARSER_VERSION, parse_decision
from .scenarios.render import num
from .store import Run, Sample, Store

EXPORT_KIND = "export"  # the kind in the marker of an exported datasets folder


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


def decision_fields(decision, numeric: bool) -> dict[str, Any]:
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


def run_rows(store: Store, run: Run) -> list[dict[str, Any]]:
    """Every sample of a run as a flat dict, with the run's settings alongside."""
    rows = []
    for sample in store.samples(run.id):
        row = asdict(sample)
        row.pop("run_id")
        row["probs"] = dict(sample.probs) if sample.probs else None
        row |= {"run": run.name, "model": run.model, "adapter": run.adapter, "protocol": run.protocol, "mode": run.mode}
        rows.append(row)
    return rows


#: Suffixes of file formats export does not write: `--out x.json` is a file the user expects, and
#: making a datasets folder named x.json instead would surprise them.
OTHER_FILE_SUFFIXES = frozenset((".json", ".ndjson", ".csv", ".tsv", ".txt", ".xlsx", ".xls", ".ods", ".arrow",
                                 ".feather", ".pkl", ".pickle", ".h5", ".hdf5", ".npy", ".npz", ".db", ".sqlite",
                                 ".sqlite3", ".gz", ".zip", ".tar", ".bz2", ".xz", ".zst", ".yaml", ".yml",
                                 ".toml", ".xml", ".html", ".md"))


def export_run(store: Store, run: Run, out: Path, *, force: bool = False) -> Path:
    """Write a run's samples as JSONL (`.jsonl`), Parquet (`.parquet`), or a `datasets` folder (other).

    An existing file is replaced only with `force`: a single file carries no mark saying tomdistill
    wrote it. A folder is replaced only when it is an earlier export (its `.tomdistill` marker);
    folders exported before markers existed are refused like any folder of the user's.
    """
    suffix = out.suffix.lower()  # x.JSONL is a JSONL file, not a folder of that name
    if suffix in OTHER_FILE_SUFFIXES:
        raise TomdistillError(f"{out}: tomdistill does not write {out.suffix} files; use .jsonl or .parquet, or a "
                              "folder name without a suffix for a datasets folder")
    folder = suffix not in (".jsonl", ".parquet")
    if folder:
        check_dir(out, EXPORT_KIND)
    else:
        check_new_file(out, force=force)
    rows = run_rows(store, run)
    if suffix == ".jsonl":
        with replacing_file(out) as tmp, tmp.open("w") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        return out
    try:
        import datasets
    except ModuleNotFoundError:
        raise TomdistillError("exporting to Parquet or a datasets folder needs: pip install 'tomdistill[data]'") from None
    # probs is a dict with varying keys per game; keep it as JSON text so all rows share one schema.
    table = datasets.Dataset.from_list([r | {"probs": json.dumps(r["probs"]) if r["probs"] else None} for r in rows])
    if folder:
        table.save_to_disk(str(replace_owned_dir(out, EXPORT_KIND, key=run.name)))
    else:
        with replacing_file(out) as tmp:
            table.to_parquet(str(tmp))
    return out
