"""`tomdistill evaluate` and `tomdistill report`: measure the transfer and write it up.

The evaluate package loads numpy and scipy; it is imported inside the commands only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config import EvaluateConfig
from ..errors import TomdistillError
from ..models.base import SEED_MAX, SEED_MIN
from .shared import (
    ConfigOption,
    LibraryOption,
    StoreOption,
    console,
    json_option,
    print_json,
    scenario_library,
)
from .tables import EVAL_KEYS, eval_summary, print_eval


def evaluate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write eval.json (new, or an earlier eval.json to replace).")] = Path("eval.json"),
    teacher: Annotated[str | None, typer.Option(help="Teacher run name.")] = None,
    base: Annotated[str | None, typer.Option(help="Base (not fine-tuned) student run name.")] = None,
    student: Annotated[str | None, typer.Option(help="Fine-tuned student run name.")] = None,
    records: Annotated[Path | None, typer.Option(help="CSV/JSONL with one row per sample: role, split, context, game, answer or text. Instead of runs.")] = None,
    # The same default as a config's evaluate.bootstrap, so `evaluate` and `run` agree.
    bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap resamples for the gap-closed interval.")] = EvaluateConfig().bootstrap,
    seed: Annotated[int, typer.Option(min=SEED_MIN, max=SEED_MAX, help="Bootstrap seed.")] = 0,
    store: StoreOption = None,
    library: LibraryOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, json_option("eval_json (the file written), " + EVAL_KEYS,
                                         shape="The table, unrounded.")] = False,
) -> None:
    """Compare teacher, base and fine-tuned student per cell and split; write eval.json."""
    from ..evaluate import evaluate_records, evaluate_runs, save_report
    from ..evaluate.report import check_eval_out
    from ..outdirs import replacing_file
    from ..store import Store

    check_eval_out(out)  # before any work: never overwrite a file that is not an eval.json
    lib = scenario_library(library, config)
    runs = {"teacher": teacher, "base": base, "student": student}
    if records is not None:
        if any(runs.values()):
            raise TomdistillError("give either --records or the three runs (--teacher, --base, --student), not both")
        report = evaluate_records(records, lib, bootstrap=bootstrap, seed=seed)
    else:
        missing = [f"--{k}" for k, v in runs.items() if not v]
        if missing:
            raise TomdistillError(f"missing {', '.join(missing)} (or give --records FILE)")
        with Store(store, readonly=True) as db:
            report = evaluate_runs(db, runs, lib, bootstrap=bootstrap, seed=seed)  # type: ignore[arg-type]
    with replacing_file(out) as tmp:
        save_report(report, tmp)
    if as_json:
        print_json({"eval_json": str(out)} | eval_summary(report))
        return
    print_eval(report)
    console.print(f"wrote {out}", markup=False, highlight=False)


def report(
    eval_json: Annotated[Path, typer.Argument(metavar="EVAL_JSON", help="eval.json from `tomdistill evaluate`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.md, report.html and the PNG plots: new, empty, or an earlier report.")] = Path("report"),
    as_json: Annotated[bool, json_option("files (the paths written, by kind: markdown, html, one per plot), "
                                         + EVAL_KEYS, shape="The table, unrounded.")] = False,
) -> None:
    """Write report.md, a self-contained report.html and PNG plots from an eval.json."""
    from ..evaluate import load_report
    from ..evaluate.report import write_report

    loaded = load_report(eval_json)
    paths = write_report(loaded, out)
    if as_json:
        print_json({"files": {kind: str(path) for kind, path in paths.items()}} | eval_summary(loaded))
        return
    print_eval(loaded)
    console.print(f"wrote {paths['markdown']}, {paths['html']} and {len(paths) - 2} plots", markup=False, highlight=False)
