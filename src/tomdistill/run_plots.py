"""`tomdistill runs show --plot`: one stored run's rates as context x game heatmaps, a panel per split.

Only choice scenarios are drawn: their rate is a share of C (exact P(C) in score mode) on a fixed
0..1 scale. A numeric scenario such as the donation game has a mean amount in dollars, which has no
place on that scale, so it is left out and the command says so. The grid drawing, colours and
sizes are the evaluation report's (evaluate/figures.py), so both kinds of heatmap read alike.

The PNG is a single output file: it is refused when something is already there unless `--force`,
and written through a temporary file (outdirs.check_new_file / replacing_file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .elicit import ScenarioSummary
from .errors import TomdistillError, quoted
from .evaluate.figures import DPI, grid_panel, inches, pyplot
from .outdirs import check_new_file, replacing_file
from .scenarios import Scenario
from .store import Run


@dataclass(frozen=True)
class RateGrid:
    """One split's rates: values[i, j] is the rate of contexts[i] x games[j], NaN where there is none
    (the run has no sample of that pair, or no valid answer to it)."""

    split: str
    contexts: list[str]
    games: list[str]
    values: np.ndarray


def check_plot_file(path: Path, *, force: bool = False) -> None:
    """Raise unless a PNG may be written at `path` (checked before any work, as other writers do)."""
    if path.suffix.lower() != ".png":
        raise TomdistillError(f"{path}: --plot writes a PNG image; name the file *.png")
    check_new_file(path, force=force, out_flag="--plot")


def rate_grids(scenarios: Sequence[Scenario], rows: Sequence[ScenarioSummary]) -> list[RateGrid]:
    """Per split (in the order the rows first name it), the context x game grid of the choice
    scenarios' rates; numeric scenarios are left out (see `numeric_rows`)."""
    by_id = {s.id: s for s in scenarios}
    per_split: dict[str, list[tuple[Scenario, float | None]]] = {}
    for row in rows:
        if not row.numeric:
            per_split.setdefault(row.split, []).append((by_id[row.scenario], row.rate))
    return [_grid(split, cells) for split, cells in per_split.items()]


def _grid(split: str, cells: list[tuple[Scenario, float | None]]) -> RateGrid:
    contexts = list(dict.fromkeys(s.context.id for s, _ in cells))
    games = list(dict.fromkeys(s.game.id for s, _ in cells))
    values = np.full((len(contexts), len(games)), np.nan)
    for scenario, rate in cells:
        if rate is not None:
            values[contexts.index(scenario.context.id), games.index(scenario.game.id)] = rate
    return RateGrid(split, contexts, games, values)


def numeric_rows(rows: Sequence[ScenarioSummary]) -> list[ScenarioSummary]:
    """The rows the heatmap leaves out: numeric answers (a mean amount, not a share of C)."""
    return [r for r in rows if r.numeric]


def measure_label(run: Run, rows: Sequence[ScenarioSummary]) -> str:
    """What a cell holds: "exact P(C)" for a score run, "share of C over N samples" for a sample run."""
    if run.mode == "score":
        return "exact P(C)"
    counts = sorted({r.n for r in rows if not r.numeric})
    n = "0" if not counts else str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"share of C over {n} samples"


def plot_run_rates(run: Run, scenarios: Sequence[Scenario], rows: Sequence[ScenarioSummary], path: Path) -> Path:
    """Draw the run's choice rates, one panel per split stacked top to bottom, and write them to `path` (PNG)."""
    grids = rate_grids(scenarios, rows)
    if not grids:
        raise TomdistillError(f"run {quoted(run.name)} has no choice scenario to plot (only numeric answers, or no "
                              f"samples); {path} not written")
    plt = pyplot()
    widest = max(len(g.games) for g in grids)
    height = inches(0.45, sum(len(g.contexts) for g in grids), 1.5 * len(grids) + 0.6)
    fig, axes = plt.subplots(len(grids), 1, squeeze=False, figsize=(inches(1.0, widest, 3.0, 5.0), height),
                             height_ratios=[len(g.contexts) for g in grids], layout="constrained")
    try:
        for ax, grid in zip(axes[:, 0], grids):
            image = grid_panel(ax, grid.values, grid.contexts, grid.games, vmax=1.0, digits=2)
            ax.set_title(grid.split, fontsize=9)
        fig.colorbar(image, ax=axes[:, 0], shrink=0.8, label="P(C)" if run.mode == "score" else "share of C")
        adapter = f" + {run.adapter}" if run.adapter else ""
        fig.suptitle(f"run {run.name}: {run.model}{adapter}\n{measure_label(run, rows)}", fontsize=10)
        with replacing_file(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")  # the name ends .tmp: say the format
    finally:
        plt.close(fig)
    return path
