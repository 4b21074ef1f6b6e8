"""The evaluation report's PNG plots, drawn from an EvalReport.

Per split, a context x game heatmap of teacher / base / student rates side by side (each role
titled with its n, or "exact" for scores) and per-cell bars with 95% intervals where a rate was
sampled; across splits, gap closed beside the constant baseline, KL closed (both with their cell
bootstrap intervals) and the paper's metric, in-sample beside held-out. Colours are Okabe-Ito and
viridis (colour-blind safe), figures 150 dpi (figures.py). Every input `evaluate` can write must
draw: one cell, no defined metric, dollars only, or no split at all (then there is nothing to plot).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .figures import DPI, grid_panel, inches, pyplot
from .schema import Cell, EvalReport, Rate, SplitResult

#: Okabe-Ito colours, told apart with every common colour-vision deficiency.
ROLE_COLOURS = {"teacher": "#0072B2", "base": "#E69F00", "student": "#009E73"}
SPLIT_COLOURS = {"in-sample": "#0072B2", "held-out": "#56B4E9"}
BASELINE_COLOUR = "#D55E00"
ROLES = ("teacher", "base", "student")
UNIT_LABELS = {"percent": "% cooperate (C)", "dollars": "mean $ given"}


def _axis_labels(cells: list[Cell]) -> tuple[list[str], list[str]]:
    contexts = list(dict.fromkeys(c.context for c in cells))
    games = list(dict.fromkeys(c.game for c in cells))
    return contexts, games


def _value(rate: Rate) -> float:
    return np.nan if rate.value is None else rate.value


def sample_label(rates: list[Rate]) -> str:
    """How a role's rates were measured: "exact" (scored), "n=4", "n=3-4", or "exact / n=4" when mixed."""
    counts = sorted({r.n for r in rates if r.source == "samples"})
    sampled = "" if not counts else f"n={counts[0]}" if len(counts) == 1 else f"n={counts[0]}-{counts[-1]}"
    exact = "exact" if any(r.source == "score" for r in rates) else ""
    return " / ".join(part for part in (exact, sampled) if part) or "no data"


def heatmap(split: str, result: SplitResult, path: Path) -> Path | None:
    """Rates of teacher, base and student side by side as context x game grids (shares only)."""
    cells = [c for c in result.cells if c.unit == "percent"]
    if len(cells) < 2:
        return None
    plt = pyplot()
    contexts, games = _axis_labels(cells)
    fig, axes = plt.subplots(1, 3, figsize=(inches(3.4 * 3, 1, 1.2), inches(0.45, len(contexts), 2.2)), sharey=True,
                             layout="constrained")
    for ax, role in zip(axes, ROLES):
        grid = np.full((len(contexts), len(games)), np.nan)
        for c in cells:
            grid[contexts.index(c.context), games.index(c.game)] = _value(getattr(c, role))
        image = grid_panel(ax, grid, contexts, games, vmax=100, digits=0)
        ax.set_title(f"{role} ({sample_label([getattr(c, role) for c in cells])})", color=ROLE_COLOURS[role], fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.8, label=UNIT_LABELS["percent"])
    fig.suptitle(f"{split}: share of C per context x game", fontsize=10)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _error_bars(rates: list[Rate], x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions, values and distances to the interval ends of the rates that have an interval
    (exact scores have none, and get no bar of length zero)."""
    keep = [i for i, r in enumerate(rates) if r.value is not None and r.low is not None and r.high is not None]
    values = np.array([rates[i].value for i in keep], dtype=float)
    ends = np.array([[max(0.0, rates[i].value - rates[i].low), max(0.0, rates[i].high - rates[i].value)]  # type: ignore[operator]
                     for i in keep], dtype=float).reshape(-1, 2).T
    return x[keep], values, ends


def _bars(ax, cells: list[Cell], unit: str) -> None:
    x = np.arange(len(cells))
    for k, role in enumerate(ROLES):
        rates = [getattr(c, role) for c in cells]
        at = x + (k - 1) * 0.27
        ax.bar(at, [_value(r) for r in rates], 0.27, label=f"{role} ({sample_label(rates)})", color=ROLE_COLOURS[role])
        where, values, ends = _error_bars(rates, at)
        if len(where):
            ax.errorbar(where, values, yerr=ends, fmt="none", ecolor="black", elinewidth=0.7, capsize=1.5)
    ax.set_xticks(x, [c.scenario.replace("/", "\n") for c in cells], fontsize=6, rotation=90)
    ax.set_ylabel(UNIT_LABELS[unit], fontsize=8)


def cell_bars(split: str, result: SplitResult, path: Path) -> Path | None:
    """Per-cell rates with 95% intervals: does the student's bar move toward the teacher's?

    Shares and dollar amounts get an axis each: on one axis a reader would compare % with $."""
    groups = {unit: [c for c in result.cells if c.unit == unit] for unit in UNIT_LABELS}
    groups = {unit: cells for unit, cells in groups.items() if cells}
    if not groups:
        return None
    plt = pyplot()
    sizes = [len(cells) for cells in groups.values()]
    fig, axes = plt.subplots(1, len(groups), figsize=(inches(0.42, sum(sizes), 1.5 * len(sizes), 4.5), 3.4),
                             width_ratios=[max(n, 2) for n in sizes], squeeze=False, layout="constrained")
    for ax, (unit, cells) in zip(axes[0], groups.items()):
        _bars(ax, cells, unit)
    fig.suptitle(f"{split}: rate per cell (95% intervals where sampled)", fontsize=10)
    fig.legend(*axes[0][0].get_legend_handles_labels(), fontsize=7, ncols=3, loc="outside lower center")
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _interval_panel(ax, report: EvalReport, splits: list[str], colours: list[str], key: str, title: str) -> None:
    """One split statistic as bars with its 95% interval drawn from the interval's own ends."""
    x = np.arange(len(splits))
    values = [getattr(report.splits[s], key) for s in splits]
    ax.bar(x, [np.nan if v is None else v for v in values], color=colours)
    intervals = [(xi, ci) for xi, s in zip(x, splits) if (ci := getattr(report.splits[s], f"{key}_ci"))]
    for xi, ci in intervals:
        if ci[1] - ci[0] < 1e-9:  # nothing varied (exact rates in one cell): no bar of length zero
            continue
        ax.vlines(xi, ci[0], ci[1], color="black", lw=1.2)
        ax.hlines(ci, xi - 0.08, xi + 0.08, color="black", lw=1.2)
    # A one-cell split can have an interval hundreds of points wide; keep the others readable.
    lows = [v for v in values if v is not None] + [ci[0] for _, ci in intervals]
    floor = max(-100.0, min([0.0] + [v - 10 for v in lows]))  # bars start at 0: keep 0 in view
    ax.set_ylim(floor, 110)
    clipped = any(ci[0] < floor for _, ci in intervals)
    note = " (clipped)" if clipped else "" if lows else " (undefined)"
    ax.set_title(f"{title}{note}", fontsize=9)


def _baseline_marks(ax, report: EvalReport, splits: list[str]) -> None:
    marks = [(i, v) for i, s in enumerate(splits) if (v := report.splits[s].gap_closed_baseline) is not None]
    if marks:
        xs, ys = zip(*marks)
        ax.plot(xs, ys, ls="none", marker="D", ms=5, color=BASELINE_COLOUR, label="constant baseline")
        ax.figure.legend(fontsize=7, loc="outside lower left")  # below the panels: never over a bar or marker


def _paper_panel(ax, report: EvalReport, splits: list[str], colours: list[str]) -> None:
    paper = [report.splits[s].paper_improvement_mean for s in splits]
    ax.bar(np.arange(len(splits)), [np.nan if p is None else p for p in paper], color=colours)
    defined = [p for p in paper if p is not None]  # empty when base == teacher in every cell
    ax.set_ylim(min([-30.0] + [p - 10 for p in defined]), max([110.0] + [p + 10 for p in defined]))
    ax.set_title("paper metric (this run)" + ("" if defined else " (undefined)"), fontsize=9)


def improvement(report: EvalReport, path: Path) -> Path | None:
    """Gap closed (with the baseline) and KL closed with their intervals, and the paper's metric, per split."""
    splits = list(report.splits)
    if not splits:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(inches(0.9, len(splits), 8.0, 11.0), 3.4), layout="constrained")
    colours = [SPLIT_COLOURS["in-sample" if s == "train" else "held-out"] for s in splits]
    _interval_panel(axes[0], report, splits, colours, "gap_closed", "gap closed, 95% interval")
    _baseline_marks(axes[0], report, splits)
    _interval_panel(axes[1], report, splits, colours, "kl_closed", "KL closed, 95% interval")
    _paper_panel(axes[2], report, splits, colours)
    for ax in axes:
        ax.axhline(0, color="black", lw=0.6)
        ax.axhline(100, color="grey", lw=0.6, ls=":")
        ax.set_xticks(np.arange(len(splits)), [s.replace("_", "\n") for s in splits], fontsize=7)
    axes[0].set_ylabel("% of the base-teacher gap", fontsize=8)
    fig.suptitle("in-sample (dark) vs held-out (light)", fontsize=10)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path
