"""Terminal tables that several commands print: a run's per-scenario summary and an evaluation.

`elicit` and `runs show` print the first; `evaluate`, `report` and `run` the second. Kept out of
the command modules so that none of them imports another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from .shared import console

if TYPE_CHECKING:  # annotations only: the evaluate package loads numpy and scipy
    from ..elicit import ElicitSummary
    from ..evaluate import EvalReport


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
