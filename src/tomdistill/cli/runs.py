"""`tomdistill runs list/show/export/delete` and `tomdistill reparse`: look at stored runs.

None of these calls a model; the store and the run modules load only inside each command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from .shared import ConfigOption, LibraryOption, StoreOption, console, json_option, print_json, scenario_library
from .tables import RUN_KEYS, print_summary, run_json, run_record

if TYPE_CHECKING:  # annotations only: the store loads inside the commands
    from ..store import Run


def runs_list(
    store: StoreOption = None,
    as_json: Annotated[bool, json_option(f"{RUN_KEYS}, samples (count).", shape="A list, one object per run.")] = False,
) -> None:
    """List the runs in the store with their model, protocol, mode and sample count."""
    from ..store import Store

    with Store(store, readonly=True) as db:
        runs = [(r, db.count(r.id)) for r in db.runs()]
        path = db.path
    if as_json:
        print_json([run_record(r) | {"samples": n} for r, n in runs])
        return
    table = Table(title=f"runs in {path}", title_justify="left")
    for col in ("name", "model", "adapter", "protocol", "mode", "samples", "created"):
        table.add_column(col)
    for r, n in runs:
        table.add_row(r.name, r.model, r.adapter or "", r.protocol, r.mode, str(n), r.created)
    console.print(table)


def runs_show(
    name: Annotated[str, typer.Argument(help="Run name.")],
    store: StoreOption = None,
    library: LibraryOption = None,
    config: ConfigOption = None,
    plot: Annotated[Path | None, typer.Option("--plot", metavar="FILE.png", help="Also draw the rates as context x game heatmaps, one panel per split (numeric scenarios left out).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --plot file.")] = False,
    as_json: Annotated[bool, json_option(f"run ({RUN_KEYS}), scenarios (one object per scenario: scenario, split, "
                                         "context, game, n, valid, valid_share, rate, numeric, valid_mass).")] = False,
) -> None:
    """Per-scenario counts, valid share and rates of one run, plus its settings."""
    from ..elicit import ElicitSummary, summarize
    from ..samples import run_scenarios
    from ..store import Store

    if plot is not None:  # the plotting modules load scipy and matplotlib: only when asked to draw
        from ..run_plots import check_plot_file

        check_plot_file(plot, force=force)  # before any work: never overwrite a file tomdistill did not write
    lib = scenario_library(library, config)
    with Store(store, readonly=True) as db:
        run = db.require_run(name)
        scenarios = run_scenarios(db, run, lib)
        rows = summarize(db, run, scenarios)
    if plot is not None:
        from ..run_plots import plot_run_rates

        plot_run_rates(run, scenarios, rows, plot)  # first: a run with nothing to draw fails before any output
    if as_json:
        print_json(run_json(run, scenarios, rows))
    else:
        console.print(f"model {run.model}  adapter {run.adapter or '-'}  settings {json.dumps(run.settings)}  seed {run.seed}")
        if served := run.model_info.get("served_models"):  # names a server sent: shown as plain text
            console.print(f"served by {', '.join(map(str, served))}", markup=False, highlight=False)
        print_summary(ElicitSummary(run, sum(r.n for r in rows), 0, 0.0, rows))
    if plot is not None:
        from ..run_plots import numeric_rows

        note = Console(stderr=True, soft_wrap=True) if as_json else console  # stdout holds only the JSON
        note.print(f"wrote {plot}", markup=False, highlight=False)
        if left := numeric_rows(rows):
            note.print(f"left out of the plot (a mean amount, not a share of C): {', '.join(r.scenario for r in left)}",
                       markup=False, highlight=False)


def runs_export(
    name: Annotated[str, typer.Argument(help="Run name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="FILE.jsonl, FILE.parquet, or a folder for a datasets.Dataset.")],
    store: StoreOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing FILE.jsonl / FILE.parquet (never a folder).")] = False,
) -> None:
    """Export every sample of a run (raw text, parse, seed, timing) to JSONL, Parquet or a datasets folder."""
    from ..run_export import export_run
    from ..store import Store

    with Store(store, readonly=True) as db:
        path = export_run(db, db.require_run(name), out, force=force)
    console.print(f"wrote {path}")


def runs_delete(
    names: Annotated[list[str], typer.Argument(metavar="NAME", help="Runs to delete (see `tomdistill runs list`).")],
    store: StoreOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    as_json: Annotated[bool, json_option(f"store, deleted (one object per run: {RUN_KEYS}, samples (count "
                                         "removed)).")] = False,
) -> None:
    """Delete runs and their samples from the store, asking first (each run's model and sample count) unless --yes.

    Other runs are untouched, and the name is free for a new run with other settings. Files that
    name a run keep the name as a record (a dataset's manifest.json, eval.json); `tomdistill run`
    elicits a deleted stage's run again, and redoes the stages after it (deleting the teacher run
    means training again).
    """
    from ..store import Store

    # Every name is looked up before anything is deleted: an unknown one deletes nothing. No
    # write connection is held while the question waits for an answer.
    with Store(store, readonly=True) as db:
        found = [(run, db.count(run.id)) for run in map(db.require_run, dict.fromkeys(names))]
        path = db.path
    if not yes and not _confirm_delete(found, path):
        Console(stderr=True, soft_wrap=True).print("nothing deleted", highlight=False)
        raise typer.Exit(1)
    with Store(path) as db:
        deleted = [run_record(run) | {"samples": db.delete_run(run.name)} for run, _ in found]
    if as_json:
        print_json({"store": str(path), "deleted": deleted})
        return
    for d in deleted:
        console.print(f"deleted run '{d['name']}' ({d['model']}, {d['samples']} samples) from {path}",
                      markup=False, highlight=False)


def _confirm_delete(found: list[tuple[Run, int]], path: Path) -> bool:
    """Ask on stderr (stdout may be a --json pipe); no answer (end of input, Ctrl-C) is a no."""
    listed = ", ".join(f"'{run.name}' (model {run.model}, {n} samples)" for run, n in found)
    try:
        return typer.confirm(f"delete from {path}: {listed}?", default=False, err=True)
    except typer.Abort:
        return False


def reparse(
    name: Annotated[str, typer.Argument(metavar="RUN", help="Run name.")],
    store: StoreOption = None,
    library: LibraryOption = None,
    config: ConfigOption = None,
) -> None:
    """Parse a run's stored raw replies again with the current parser; no model is called."""
    from ..run_reparse import reparse_run
    from ..store import Store

    lib = scenario_library(library, config)
    with Store(store) as db:
        result = reparse_run(db, db.require_run(name), lib)
    console.print(
        f"run {result.run}: {result.samples} samples re-parsed with parser v{result.parser_version}; "
        f"{result.changed} changed; valid {result.valid_before} -> {result.valid_after}"
    )
    if result.stale:
        console.print(f"{result.stale} samples answer an older wording of {result.stale_scenarios} scenarios; "
                      "left as they are")
