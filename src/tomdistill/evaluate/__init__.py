"""Alignment evaluation: how far the fine-tuned student moved from its base toward the teacher.

Per cell (context x game): the three rates with intervals, the paper's improvement, tests and
divergences; per split: the bias-corrected gap closed and KL closed with cell-bootstrap intervals,
the constant baseline, the game-profile correlations and the paper's mean improvement
(definitions in docs/eval-schema.md, their checks by simulation in docs/statistics.md).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import TomdistillError
from ..models.base import SCORING_VERSION
from ..scenarios import Library
from ..store import Run, Store
from .compute import evaluate
from .observations import observations_from_records, observations_from_run
from .schema import ROLES, EvalReport, Source

__all__ = ["EvalReport", "evaluate", "evaluate_records", "evaluate_runs", "load_report", "save_report"]


def evaluate_runs(store: Store, runs: dict[str, str], library: Library, *, bootstrap: int = 2000, seed: int = 0) -> EvalReport:
    """Evaluate three stored runs, given as {"teacher": name, "base": name, "student": name}."""
    data, sources = {}, []
    for role in ROLES:
        run = store.require_run(runs[role])
        data[role] = observations_from_run(store, run, library)
        sources.append(Source(role=role, run=run.name, model=run.model, adapter=run.adapter, mode=run.mode,
                              temperature=run_temperature(run)))
    report = evaluate(data, sources, bootstrap=bootstrap, seed=seed)
    report.temperature = common_temperature(sources)
    return report


def run_temperature(run: Run) -> float:
    """The temperature a run's numbers are at: its sampling temperature, or the one it was scored at.

    Score runs made before scoring version 2 stored no temperature and were computed at 1 whatever
    was asked, without the reply prefix and from logits in the model's dtype: refused here."""
    if run.mode == "score" and run.settings.get("scoring") != SCORING_VERSION:
        raise TomdistillError(
            f"run '{run.name}' was scored by an older tomdistill (scoring version {run.settings.get('scoring', 1)}, "
            f"this one is {SCORING_VERSION}); score it again under a new run name"
        )
    return float(run.settings["temperature"])


def common_temperature(sources: list[Source]) -> float:
    """The one temperature all roles were measured at; runs at different temperatures are refused,
    since their rates would describe different distributions."""
    temps = {s.temperature for s in sources}
    if len(temps) != 1:
        shown = ", ".join(f"{s.role} {s.temperature:g} ({s.run})" for s in sources)
        raise TomdistillError(f"the runs were measured at different temperatures ({shown}); "
                              "elicit or score them at one temperature (--temperature)")
    return float(temps.pop())  # type: ignore[arg-type]


def evaluate_records(path: Path, library: Library, *, bootstrap: int = 2000, seed: int = 0) -> EvalReport:
    """Evaluate a CSV / JSONL file of per-sample records (role, split, context, game, answer|text)."""
    data = observations_from_records(path, library)
    sources = [Source(role=role, records=str(path)) for role in ROLES]
    return evaluate(data, sources, bootstrap=bootstrap, seed=seed)


def save_report(report: EvalReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.model_dump_json(indent=2))
    return path


def load_report(path: Path) -> EvalReport:
    from pydantic import ValidationError

    from ..errors import TomdistillError, describe_validation_error

    if not path.is_file():
        raise TomdistillError(f"{path}: file not found")
    try:
        return EvalReport.model_validate_json(path.read_text())
    except ValidationError as exc:
        field, message = describe_validation_error(exc)
        raise TomdistillError(f"{path}: not a valid eval.json (field '{field}': {message})") from None
