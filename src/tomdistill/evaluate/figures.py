"""Matplotlib as every tomdistill PNG uses it: drawing to files only, labels as plain text, a
fixed resolution, figure sizes that stay drawable, and the context x game grid panel.

Shared by the evaluation report's plots (plots.py), `runs show --plot` (run_plots.py) and the
population report (agents/play_report.py), so the heatmaps read alike and none of them imports
another one's report code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Perceptually uniform and colour-blind safe; low values are dark, so their labels are white.
HEATMAP_CMAP = "viridis"
DPI = 150
#: Matplotlib refuses images over 2^16 pixels a side; at 150 dpi a figure stays under that.
MAX_INCHES = 300.0


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, with TeX parsing of labels off."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers or CI
    # Labels are user text (context names, agent labels): a "$" must stay a dollar sign, not start
    # TeX math that fails to parse when the figure is saved.
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def inches(per_item: float, items: int, extra: float, least: float = 0.0) -> float:
    """A figure side for `items` things of `per_item` inches plus `extra`, at least `least`, at most MAX_INCHES."""
    return min(MAX_INCHES, max(least, per_item * items + extra))


def grid_panel(ax: Any, grid: np.ndarray, contexts: list[str], games: list[str], *, vmax: float, digits: int) -> Any:
    """Draw a context x game grid on `ax` (colour scale 0..vmax, each value written in its cell; NaN
    cells stay blank) and return the image for a colour bar. Also used by `runs show --plot`."""
    image = ax.imshow(grid, vmin=0, vmax=vmax, cmap=HEATMAP_CMAP, aspect="auto")
    for i, j in zip(*np.nonzero(~np.isnan(grid))):
        ax.text(j, i, f"{grid[i, j]:.{digits}f}", ha="center", va="center", fontsize=8,
                color="white" if grid[i, j] < 0.6 * vmax else "black")
    ax.set_xticks(range(len(games)), [g.replace("_", " ") for g in games], fontsize=7, rotation=35, ha="right")
    ax.set_yticks(range(len(contexts)), contexts, fontsize=8)
    return image
