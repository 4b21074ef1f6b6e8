"""The evaluation report's PNG plots, drawn from an EvalReport.

Per split, a context x game heatmap of teacher / base / student rates side by side and per-cell
bars with 95% intervals; across splits, the gap closed (with its bootstrap interval) and the
paper's mean improvement, in-sample beside held-out. Every input `evaluate` can write must draw:
one cell, no defined metric, dollars only, or no split at all (then there is nothing to plot).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .schema import Cell, EvalReport, Rate, SplitResult

ROLE_COLOURS = {"teacher": "#1b9e77", "base": "#7570b3", "student": "#d95f02"}
ROLES = ("teacher", "base", "student")
UNIT_LABELS = {"percent": "% cooperate (C)", "dollars": "mean $ given"}
#: Matplotlib refuses images over 2^16 pixels a side; at 90 dpi a figure stays well under that.
MAX_INCHES = 300.0


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers or CI
    # Labels are user text (context names, agent labels): a "$" must stay a dollar sign, not start
    # TeX math that fails to parse when the figure is saved.
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def _inches(per_item: float, items: int, extra: float, least: float = 0.0) -> float:
    return min(MAX_INCHES, max(least, per_item * items + extra))


def _axis_labels(cells: list[Cell]) -> tuple[list[str], list[str]]:
    contexts = list(dict.fromkeys(c.context for c in cells))
    games = list(dict.fromkeys(c.game for c in cells))
    return contexts, games


def _value(rate: Rate) -> float:
    return np.nan if rate.value is None else rate.value


def heatmap(split: str, result: SplitResult, path: Path) -> Path | None:
    """Rates of teacher, base and student side by side as context x game grids (shares only)."""
    cells = [c for c in result.cells if c.unit == "percent"]
    if len(cells) < 2:
        return None
    plt = pyplot()
    contexts, games = _axis_labels(cells)
    fig, axes = plt.subplots(1, 3, figsize=(_inches(3.2 * 3, 1, 1), _inches(0.45, len(contexts), 1.8)), sharey=True)
    for ax, role in zip(axes, ROLES):
        grid = np.full((len(contexts), len(games)), np.nan)
        for c in cells:
            grid[contexts.index(c.context), games.index(c.game)] = _value(getattr(c, role))
        image = ax.imshow(grid, vmin=0, vmax=100, cmap="RdYlGn", aspect="auto")
        for i, j in zip(*np.nonzero(~np.isnan(grid))):
            ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=8)
        ax.set_title(role, color=ROLE_COLOURS[role])
        ax.set_xticks(range(len(games)), [g.replace("_", " ") for g in games], fontsize=7, rotation=35, ha="right")
        ax.set_yticks(range(len(contexts)), contexts, fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.8, label=UNIT_LABELS["percent"])
    fig.suptitle(f"{split}: share of C per context x game", fontsize=10)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def _error_bars(rates: list[Rate]) -> np.ndarray:
    """Distances from each value to its interval ends (0 where there is no interval)."""
    def ends(r: Rate) -> tuple[float, float]:
        if r.value is None or r.low is None or r.high is None:
            return 0.0, 0.0
        return max(0.0, r.value - r.low), max(0.0, r.high - r.value)

    return np.array([ends(r) for r in rates], dtype=float).reshape(-1, 2).T


def _bars(ax, cells: list[Cell], unit: str) -> None:
    x = np.arange(len(cells))
    for k, role in enumerate(ROLES):
        rates = [getattr(c, role) for c in cells]
        ax.bar(x + (k - 1) * 0.27, [_value(r) for r in rates], 0.27, yerr=_error_bars(rates), capsize=1.5,
               label=role, color=ROLE_COLOURS[role], error_kw={"lw": 0.7})
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
    fig, axes = plt.subplots(1, len(groups), figsize=(_inches(0.42, sum(sizes), 1.5 * len(sizes), 4.0), 3.2),
                             width_ratios=[max(n, 2) for n in sizes], squeeze=False)
    for ax, (unit, cells) in zip(axes[0], groups.items()):
        _bars(ax, cells, unit)
    fig.suptitle(f"{split}: rate per cell (95% intervals)", fontsize=10)
    axes[0][0].legend(fontsize=7, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.45))
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def _gap_panel(ax, report: EvalReport, splits: list[str], colours: list[str]) -> None:
    x = np.arange(len(splits))
    values = [report.splits[s].gap_closed for s in splits]
    ax.bar(x, [np.nan if v is None else v for v in values], color=colours)
    # The interval is drawn from its own ends: a percentile bootstrap of a sum of absolute gaps is
    # biased, so the point estimate can sit outside it (error bars around the point would break).
    intervals = [(xi, ci) for xi, s in zip(x, splits) if (ci := report.splits[s].gap_closed_ci)]
    for xi, ci in intervals:
        ax.vlines(xi, ci[0], ci[1], color="black", lw=1.2)
        ax.hlines(ci, xi - 0.08, xi + 0.08, color="black", lw=1.2)
    # A one-cell split can have an interval hundreds of points wide; keep the others readable.
    lows = [v for v in values if v is not None] + [ci[0] for _, ci in intervals]
    floor = max(-100.0, min(lows, default=0.0) - 10)
    ax.set_ylim(floor, 110)
    clipped = any(ci[0] < floor for _, ci in intervals)
    note = ", clipped" if clipped else "" if lows else "; undefined: base = teacher"
    ax.set_title(f"gap closed (95% bootstrap interval{note})", fontsize=9)


def _paper_panel(ax, report: EvalReport, splits: list[str], colours: list[str]) -> None:
    paper = [report.splits[s].paper_improvement_mean for s in splits]
    ax.bar(np.arange(len(splits)), [np.nan if p is None else p for p in paper], color=colours)
    defined = [p for p in paper if p is not None]  # empty when base == teacher in every cell
    ax.set_ylim(min([-30.0] + [p - 10 for p in defined]), max([110.0] + [p + 10 for p in defined]))
    ax.set_title("paper's mean improvement" + ("" if defined else " (undefined: base = teacher)"), fontsize=9)


def improvement(report: EvalReport, path: Path) -> Path | None:
    """Gap closed with its interval and the paper's mean improvement, for every split (None: no split)."""
    splits = list(report.splits)
    if not splits:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(_inches(0.6, len(splits), 6.0, 8.5), 3.0))
    colours = ["#1f78b4" if s == "train" else "#a6cee3" for s in splits]
    _gap_panel(axes[0], report, splits, colours)
    _paper_panel(axes[1], report, splits, colours)
    for ax in axes:
        ax.axhline(0, color="black", lw=0.6)
        ax.axhline(100, color="grey", lw=0.6, ls=":")
        ax.set_xticks(np.arange(len(splits)), [s.replace("_", "\n") for s in splits], fontsize=7)
        ax.set_ylabel("% of the base-teacher gap", fontsize=8)
    fig.suptitle("in-sample (dark) vs held-out (light)", fontsize=10, y=1.05)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path
