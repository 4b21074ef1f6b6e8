"""The population-fidelity report as a picture: per quantity, each candidate population's
difference from the teacher population with its 95% match-bootstrap interval (a forest plot).

Payoffs (points) and shares (cooperation per round, outcome frequencies) have different scales,
so they get a panel each; the dashed line at 0 is "plays like the teacher". Colours are the
Okabe-Ito ones the other reports use, one per candidate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..evaluate.figures import DPI, inches, pyplot

#: Okabe-Ito, in the order candidates are listed.
CANDIDATE_COLOURS = ("#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#D55E00", "#0072B2")


def plot_fidelity(report: dict[str, Any], path: Path) -> Path:
    """Write the forest plot of `population_fidelity`'s report to `path` (PNG)."""
    plt = pyplot()
    names = list(report["candidates"])
    quantities = list(report["candidates"][names[0]]["quantities"]) if names else []
    panels = [("payoff (points)", [q for q in quantities if q.startswith("payoff")]),
              ("share", [q for q in quantities if not q.startswith("payoff")])]
    panels = [(title, qs) for title, qs in panels if qs]
    rows = max((len(qs) for _, qs in panels), default=1)
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(inches(5.0, len(panels), 1.5, 6.0), inches(0.35, rows, 1.8, 3.0)),
                             squeeze=False)
    for ax, (title, qs) in zip(axes[0], panels):
        _panel(ax, report, names, qs, title)
    axes[0][0].legend(loc="best", fontsize=8, title="in the teacher's place", title_fontsize=8)
    fig.suptitle(f"Population fidelity: {report['scenario']}, {report['rounds']} rounds, "
                 f"{report['pairs']} matches per pair (candidate - teacher, 95% CI)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _panel(ax: Any, report: dict[str, Any], names: list[str], quantities: list[str], title: str) -> None:
    y = np.arange(len(quantities))[::-1].astype(float)  # first quantity on top
    step = 0.7 / max(1, len(names))
    for k, name in enumerate(names):
        found = report["candidates"][name]["quantities"]
        diff = np.array([found[q]["difference"] for q in quantities], dtype=float)
        low = np.array([found[q]["ci"][0] for q in quantities], dtype=float)
        high = np.array([found[q]["ci"][1] for q in quantities], dtype=float)
        offset = (k - (len(names) - 1) / 2) * step
        ax.errorbar(diff, y - offset, xerr=[diff - low, high - diff], fmt="o", ms=4, capsize=2,
                    color=CANDIDATE_COLOURS[k % len(CANDIDATE_COLOURS)], label=name)
    ax.axvline(0.0, color="#555555", linestyle="--", linewidth=0.8)
    # The focal type's own label in the report is the self-play opponent.
    ax.set_yticks(y, [q.replace("vs focal", "vs itself") for q in quantities], fontsize=8)
    ax.set_xlabel(f"difference from the teacher, {title}", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
