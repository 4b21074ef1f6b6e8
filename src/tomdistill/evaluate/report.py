"""eval.json -> report.md, a self-contained report.html and PNG plots.

Plots: per split, a context x game heatmap of teacher / base / student rates side by side and
per-cell bars with 95% intervals; across splits, the gap closed (with its bootstrap interval)
and the paper's mean improvement, in-sample beside held-out. A reader sees in one screen whether
the student moved toward the teacher, and where it did not.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import jinja2
import numpy as np

from .schema import Cell, EvalReport, SplitResult

ROLE_COLOURS = {"teacher": "#1b9e77", "base": "#7570b3", "student": "#d95f02"}
ROLES = ("teacher", "base", "student")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers or CI
    import matplotlib.pyplot as plt

    return plt


def format_value(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "–" if value is None else f"{value:.{digits}f}{suffix}"


def _axis_labels(cells: list[Cell]) -> tuple[list[str], list[str]]:
    contexts = list(dict.fromkeys(c.context for c in cells))
    games = list(dict.fromkeys(c.game for c in cells))
    return contexts, games


def heatmap(split: str, result: SplitResult, path: Path) -> Path | None:
    """Rates of teacher, base and student side by side as context x game grids."""
    cells = [c for c in result.cells if c.unit == "percent"]
    if len(cells) < 2:
        return None
    plt = pyplot()
    contexts, games = _axis_labels(cells)
    fig, axes = plt.subplots(1, 3, figsize=(3.2 * 3 + 1, 0.45 * len(contexts) + 1.8), sharey=True)
    for ax, role in zip(axes, ROLES):
        grid = np.full((len(contexts), len(games)), np.nan)
        for c in cells:
            grid[contexts.index(c.context), games.index(c.game)] = getattr(c, role).value
        image = ax.imshow(grid, vmin=0, vmax=100, cmap="RdYlGn", aspect="auto")
        for i in range(len(contexts)):
            for j in range(len(games)):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=8)
        ax.set_title(role, color=ROLE_COLOURS[role])
        ax.set_xticks(range(len(games)), [g.replace("_", " ") for g in games], fontsize=7, rotation=35, ha="right")
        ax.set_yticks(range(len(contexts)), contexts, fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.8, label="% cooperate (C)")
    fig.suptitle(f"{split}: share of C per context x game", fontsize=10)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def cell_bars(split: str, result: SplitResult, path: Path) -> Path:
    """Per-cell rates with 95% intervals: does the student's bar move toward the teacher's?"""
    plt = pyplot()
    cells = result.cells
    unit = "mean $ given" if cells[0].unit == "dollars" else "% cooperate (C)"
    fig, ax = plt.subplots(figsize=(max(4.0, 0.42 * len(cells) + 1.5), 3.2))
    x = np.arange(len(cells))
    for k, role in enumerate(ROLES):
        rates = [getattr(c, role) for c in cells]
        values = np.array([r.value for r in rates], dtype=float)
        low = np.array([r.value - r.low if r.low is not None else 0 for r in rates], dtype=float)
        high = np.array([r.high - r.value if r.high is not None else 0 for r in rates], dtype=float)
        ax.bar(x + (k - 1) * 0.27, values, 0.27, yerr=[low, high], capsize=1.5, label=role,
               color=ROLE_COLOURS[role], error_kw={"lw": 0.7})
    ax.set_xticks(x, [c.scenario.replace("/", "\n") for c in cells], fontsize=6, rotation=90)
    ax.set_ylabel(unit, fontsize=8)
    ax.set_title(f"{split}: rate per cell (95% intervals)", fontsize=10)
    ax.legend(fontsize=7, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.45))
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def improvement(report: EvalReport, path: Path) -> Path:
    """Gap closed with its interval and the paper's mean improvement, for every split."""
    plt = pyplot()
    splits = list(report.splits)
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.0))
    x = np.arange(len(splits))
    colours = ["#1f78b4" if s == "train" else "#a6cee3" for s in splits]
    gap = [report.splits[s].gap_closed for s in splits]
    values = np.array([g if g is not None else np.nan for g in gap])
    axes[0].bar(x, values, color=colours)
    # The interval is drawn from its own ends: a percentile bootstrap of a sum of absolute gaps is
    # biased, so the point estimate can sit outside it (error bars around the point would break).
    for xi, s in zip(x, splits):
        if ci := report.splits[s].gap_closed_ci:
            axes[0].vlines(xi, ci[0], ci[1], color="black", lw=1.2)
            axes[0].hlines(ci, xi - 0.08, xi + 0.08, color="black", lw=1.2)
    # A one-cell split can have an interval hundreds of points wide; keep the others readable.
    lows = [v for v in values if not np.isnan(v)] + [report.splits[s].gap_closed_ci[0] for s in splits
                                                      if report.splits[s].gap_closed_ci]
    floor = max(-100.0, min(lows, default=0.0) - 10)
    axes[0].set_ylim(floor, 110)
    clipped = any(ci[0] < floor for s in splits if (ci := report.splits[s].gap_closed_ci))
    axes[0].set_title("gap closed (95% bootstrap interval" + (", clipped" if clipped else "") + ")", fontsize=9)
    paper = [report.splits[s].paper_improvement_mean for s in splits]
    axes[1].bar(x, [p if p is not None else np.nan for p in paper], color=colours)
    axes[1].set_ylim(min(-30.0, *(p - 10 for p in paper if p is not None)), max(110.0, *(p + 10 for p in paper if p is not None)))
    axes[1].set_title("paper's mean improvement", fontsize=9)
    for ax in axes:
        ax.axhline(0, color="black", lw=0.6)
        ax.axhline(100, color="grey", lw=0.6, ls=":")
        ax.set_xticks(x, [s.replace("_", "\n") for s in splits], fontsize=7)
        ax.set_ylabel("% of the base-teacher gap", fontsize=8)
    fig.suptitle("in-sample (dark) vs held-out (light)", fontsize=10, y=1.05)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


_TEMPLATE = """# tomdistill evaluation

{{ sources }}

## Headline

| split | cells | gap closed | 95% CI | paper improvement (mean) | defined cells | r(student, teacher) | r(base, teacher) | significant moves |
|---|---|---|---|---|---|---|---|---|
{% for name, s in report.splits.items() -%}
| {{ name }} | {{ s.cells|length }} | {{ fmt(s.gap_closed, 1, '%') }} | {{ ci(s.gap_closed_ci) }} | {{ fmt(s.paper_improvement_mean, 1, '%') }} | {{ s.paper_improvement_cells }} | {{ fmt(s.profile_correlation_student, 2) }} | {{ fmt(s.profile_correlation_base, 2) }} | {{ '–' if s.significant_moves is none else s.significant_moves }} |
{% endfor %}

{% for name, s in report.splits.items() %}
{% if s.gap_closed_ci and s.gap_closed is not none and not (s.gap_closed_ci[0] <= s.gap_closed <= s.gap_closed_ci[1]) %}
> **{{ name }}**: the bootstrap interval does not contain the estimate (bias {{ fmt(s.gap_closed_bias, 1) }} points): there are too few samples per cell for a stable interval; sample the teacher (and students) more.

{% endif %}
{% endfor %}
*Gap closed* = 1 - sum|student - teacher| / sum|base - teacher| over the cells of a split (100% = the
student matches the teacher, 0% = no closer than the base, negative = further away). The *paper
improvement* is (base - student) / (base - teacher) per cell, averaged; it is unstable where base and
teacher are close. *r* is the correlation of rate profiles across cells: does the student follow the
teacher's game and context differences, not just its average?

![improvement]({{ images.improvement }})
{% for name, s in report.splits.items() %}

## {{ name }}
{% if images['heatmap_' ~ name] %}

![heatmap {{ name }}]({{ images['heatmap_' ~ name] }})
{% endif %}

![cells {{ name }}]({{ images['cells_' ~ name] }})

| cell | teacher | base | student | paper improvement | JSD base / student (bits) | student vs base p (Holm) |
|---|---|---|---|---|---|---|
{% for c in s.cells -%}
| {{ c.scenario }} | {{ rate(c.teacher) }} | {{ rate(c.base) }} | {{ rate(c.student) }} | {{ fmt(c.paper_improvement, 1, '%') }} | {{ fmt(c.jsd_base_teacher, 3) }} / {{ fmt(c.jsd_student_teacher, 3) }} | {{ fmt(c.student_vs_base.p_holm, 3) }} |
{% endfor %}
{% endfor %}
{% if report.skipped %}

Left out (a role had no data): {{ report.skipped|join(', ') }}
{% endif %}
"""

_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%}code{background:#f3f3f3}</style></head>
<body>{{ body }}</body></html>
"""


def format_rate(rate) -> str:
    if rate.value is None:
        return "–"
    text = f"{rate.value:.1f}"
    if rate.low is not None and rate.high is not None:
        text += f" [{rate.low:.1f}, {rate.high:.1f}]"
    return text + f" (n={rate.n})"


def _ci(ci: list[float] | None) -> str:
    return "–" if not ci else f"[{ci[0]:.1f}, {ci[1]:.1f}]"


def _sources(report: EvalReport) -> str:
    parts = []
    for s in report.sources:
        what = s.records or f"run `{s.run}`: {s.model}" + (f" + adapter {s.adapter}" if s.adapter else "") + f" ({s.mode})"
        parts.append(f"- **{s.role}**: {what}")
    return "\n".join(parts)


def _markdown(report: EvalReport, images: dict[str, str]) -> str:
    env = jinja2.Environment(undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(_TEMPLATE).render(
        report=report, images=images, fmt=format_value, ci=_ci, rate=format_rate, sources=_sources(report)
    )


def write_report(report: EvalReport, out: Path) -> dict[str, Path]:
    """Write report.md, report.html (images inlined) and the PNGs into `out`; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    pngs: dict[str, Path] = {"improvement": improvement(report, out / "improvement.png")}
    for name, result in report.splits.items():
        if result.cells:
            pngs[f"cells_{name}"] = cell_bars(name, result, out / f"cells_{name}.png")
            if (hm := heatmap(name, result, out / f"heatmap_{name}.png")) is not None:
                pngs[f"heatmap_{name}"] = hm
    write_pages(out, lambda images: _markdown(report, images), pngs, title="tomdistill evaluation")
    return {"markdown": out / "report.md", "html": out / "report.html", **pngs}


def write_pages(out: Path, page: Callable[[dict[str, str]], str], pngs: dict[str, Path], *, title: str) -> None:
    """report.md (images by file name) and a self-contained report.html (images inlined) in `out`.

    `page(images)` renders the Markdown, given where each PNG is to be found by its key."""
    (out / "report.md").write_text(page({k: p.name for k, p in pngs.items()}))
    inlined = {k: "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode() for k, p in pngs.items()}
    import markdown

    body = markdown.markdown(page(inlined), extensions=["tables"])
    (out / "report.html").write_text(jinja2.Template(_HTML).render(body=body, title=title))
