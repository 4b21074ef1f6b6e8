"""What several commands print: a run's per-scenario summary and an evaluation, as terminal
tables and as the plain data their `--json` prints.

`elicit` and `runs show` print the first; `evaluate`, `report` and `run` the second; `runs list`
and `runs delete` describe runs as `runs show` does. Kept out of the command modules so that none
of them imports another, and so that a table and its JSON are defined side by side.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from .shared import console

if TYPE_CHECKING:  # annotations only: the evaluate package loads numpy and scipy
    from ..elicit import ElicitSummary, ScenarioSummary
    from ..evaluate import EvalReport
    from ..scenarios import Scenario
    from ..store import Run

#: Keys of a run in every `--json` that describes runs (runs list/show/delete, elicit).
RUN_KEYS = "name, model, adapter, protocol, mode, settings, seed, model_info, created"
#: The per-split numbers of the evaluation table, under their eval.json names (docs/eval-schema.md).
EVAL_SPLIT_KEYS = ("gap_closed", "gap_closed_ci", "gap_closed_baseline", "beats_baseline", "kl_closed", "kl_closed_ci",
                   "game_profile_correlation_student", "game_profile_correlation_base", "paper_improvement_mean",
                   "samples_min", "interval_trusted")
#: The keys of `eval_summary`, for the help texts of the commands that print it.
EVAL_KEYS = ("schema_version, temperature, bootstrap, seed, min_trusted_samples, sources (role, run, model, "
                  "adapter, mode, records, temperature), skipped, splits: {SPLIT: {cells (count), "
                  + ", ".join(EVAL_SPLIT_KEYS) + "}}, as eval.json names them (docs/eval-schema.md).")


def run_record(run: Run) -> dict[str, Any]:
    """A stored run as plain data (RUN_KEYS); without `id`, the store's row number, not the run's."""
    return {k: v for k, v in asdict(run).items() if k != "id"}


def run_json(run: Run, scenarios: list[Scenario], rows: list[ScenarioSummary]) -> dict[str, Any]:
    """A run and its per-scenario summary rows, as `runs show --json` and `elicit --json` print them."""
    ids = {s.id: s for s in scenarios}
    return {"run": run_record(run),
            "scenarios": [asdict(r) | {"context": ids[r.scenario].context.id, "game": ids[r.scenario].game.id,
                                       "valid_share": r.valid_share} for r in rows]}


def eval_summary(report: EvalReport) -> dict[str, Any]:
    """What the evaluation table shows, unrounded, as `--json` prints it (EVAL_KEYS)."""
    return {
        "schema_version": report.schema_version, "temperature": report.temperature, "bootstrap": report.bootstrap,
        "seed": report.seed, "min_trusted_samples": report.min_trusted_samples,
        "sources": [s.model_dump(mode="json") for s in report.sources], "skipped": list(report.skipped),
        "splits": {name: {"cells": len(s.cells)} | s.model_dump(mode="json", include=set(EVAL_SPLIT_KEYS))
                   for name, s in report.splits.items()},
    }


def print_summary(summary: ElicitSummary) -> None:
    """One row per scenario of a run: count, valid share (or mass on answers) and rate."""
    table = Table(title=f"run {summary.run.name}: {summary.run.model} ({summary.run.protocol}, {summary.run.mode})",
                  title_justify="left")
    score = summary.run.mode == "score"
    for col, just in (("scenario", "left"), ("split", "left"), ("n", "right"),
                      ("mass on answers" if score else "valid", "right"), ("rate", "right")):
        table.add_column(col, justify=just)
    for s in summary.scenarios:
        rate = "-" if s.rate is None else (f"${s.rate:.2f}" if s.numeric else f"{s.rate:.3f}")
        valid = f"{s.valid_mass:.3f}" if score and s.valid_mass is not None else f"{100 * s.valid_share:.0f}%"
        table.add_row(s.scenario, s.split, str(s.n), valid, rate)
    console.print(table)
    console.print(
        f"{summary.new} new of {summary.requested} requested in {summary.elapsed_s:.1f} s; "
        f"rate = share of C (P(C) in score mode), or mean amount for the donation game"
        + (f"; {summary.retries} retries ({', '.join(f'{k}: {v}' for k, v in summary.retry_reasons.items())})"
           if summary.retries else "")
    )


def print_eval(report: EvalReport) -> None:
    """Compact terminal summary of an evaluation: one row per split ("–" where a value is null)."""
    from rich import box
    from rich.markup import escape

    from ..evaluate.formatting import format_value, format_verdict

    def ci(interval):  # whole percent: fits 80 columns; report.md has the decimals and KL closed's interval
        return "–" if not interval else f"[{interval[0]:.0f}, {interval[1]:.0f}]"

    def samples(s):
        if report.schema_version < 2:
            return "–"
        return "exact" if s.samples_min is None else f"{s.samples_min}" + (
            f"<{report.min_trusted_samples}" if s.interval_trusted is False else "")

    table = Table(title="alignment: how far the student moved from its base toward the teacher", title_justify="left",
                  box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)
    for col in ("split", "cells", "gap", "95% CI", "baseline", "beats", "KL", "r game", "paper", "n"):
        table.add_column(col, justify="left" if col == "split" else "right", no_wrap=True)
    for name, s in report.splits.items():  # split names come from records files: shown as text, not markup
        table.add_row(escape(name), str(len(s.cells)), format_value(s.gap_closed, 0), ci(s.gap_closed_ci),
                      format_value(s.gap_closed_baseline, 0), format_verdict(s.beats_baseline),
                      format_value(s.kl_closed, 0),
                      f"{format_value(s.game_profile_correlation_student, 2)}/{format_value(s.game_profile_correlation_base, 2)}",
                      format_value(s.paper_improvement_mean, 0), samples(s))
    # Piped into a log, rich assumes 80 columns and would cut cells to "…": logs have no width limit.
    (console if console.is_terminal else Console(width=max(console.width, 120))).print(table)
    _print_eval_notes(report)


def _print_eval_notes(report: EvalReport) -> None:
    """The lines under the evaluation table: the temperature, the legend, and what is missing."""
    from ..evaluate.cluster import MIN_TRUSTED_SAMPLES
    from ..evaluate.formatting import temperature_line

    console.print(temperature_line(report), markup=False, highlight=False)
    console.print("gap (closed, %) = 1 - sum (S-T)^2 / sum (B-T)^2 over a split's cells, less sampling noise (95% "
                  "cell bootstrap CI); baseline = the same for a constant student at T's mean train rate; beats = S above "
                  "the baseline (95%); KL (closed, %) = share of KL(T||B) removed; r game = correlation of S's / B's "
                  "within-context game differences with T's; paper = the paper metric (%), mean of (B-S)/(B-T) over "
                  "this run's cells; n = "
                  f"fewest samples per cell (exact = scored; 4<{MIN_TRUSTED_SAMPLES}: too few for a trusted interval, "
                  "nothing called significant). S student, B base, T teacher", markup=False, highlight=False)
    if report.schema_version < 2:
        console.print("schema version 1 eval.json (older tomdistill): older definitions, newer measures missing; "
                      "run evaluate again", markup=False, highlight=False)
    if report.skipped:
        console.print(f"left out (a role had no data): {', '.join(report.skipped)}", markup=False, highlight=False)
