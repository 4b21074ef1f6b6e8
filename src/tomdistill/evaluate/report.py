"""eval.json -> report.md, a self-contained report.html and PNG plots (drawn in plots.py).

A reader sees in one screen whether the student moved toward the teacher, and where it did not.
The report folder is tomdistill's own (outdirs.py): a new or empty folder, or an earlier report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from markupsafe import Markup

from ..errors import TomdistillError
from ..outdirs import HINT, claim_dir
from .pages import format_value, markdown_env, md_text, trusted, write_pages
from .plots import cell_bars, heatmap, improvement
from .schema import EvalReport

__all__ = ["check_eval_out", "format_rate", "format_value", "write_report"]

REPORT_KIND = "report"  # the kind in the folder's .tomdistill marker (outdirs.py)

_TEMPLATE = """# tomdistill evaluation

{{ sources }}

## Headline

{% if not report.splits %}
No cell has answers from all three roles (teacher, base, student), so there is nothing to compare.
{% else %}
| split | cells | gap closed | 95% CI | paper improvement (mean) | defined cells | r(student, teacher) | r(base, teacher) | significant moves |
|---|---|---|---|---|---|---|---|---|
{% for name, s in report.splits.items() -%}
| {{ name }} | {{ s.cells|length }} | {{ fmt(s.gap_closed, 1, '%') }} | {{ ci(s.gap_closed_ci) }} | {{ fmt(s.paper_improvement_mean, 1, '%') }} | {{ s.paper_improvement_cells }} | {{ fmt(s.profile_correlation_student, 2) }} | {{ fmt(s.profile_correlation_base, 2) }} | {{ '–' if s.significant_moves is none else s.significant_moves }} |
{% endfor %}
{% endif %}

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
{% if images.improvement %}

![improvement]({{ images.improvement }})
{% endif %}
{% for name, s in report.splits.items() %}

## {{ name }}
{% if images['heatmap_' ~ name] %}

![heatmap {{ name }}]({{ images['heatmap_' ~ name] }})
{% endif %}
{% if images['cells_' ~ name] %}

![cells {{ name }}]({{ images['cells_' ~ name] }})
{% endif %}

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


def format_rate(rate) -> str:
    if rate.value is None:
        return "–"
    text = f"{rate.value:.1f}"
    if rate.low is not None and rate.high is not None:
        text += f" [{rate.low:.1f}, {rate.high:.1f}]"
    return text + f" (n={rate.n})"


def _ci(ci: list[float] | None) -> str:
    return "–" if not ci else f"[{ci[0]:.1f}, {ci[1]:.1f}]"


def _sources(report: EvalReport) -> Markup:
    """One list item per role; every part that came from the user is escaped."""
    parts = []
    for s in report.sources:
        if s.records:
            what = md_text(s.records)
        else:
            what = f"run {md_text(s.run)}: {md_text(s.model)}" + (f" + adapter {md_text(s.adapter)}" if s.adapter else "")
            what += f" ({md_text(s.mode)})"
        parts.append(f"- **{md_text(s.role)}**: {what}")
    return Markup("\n".join(parts))


def _markdown(report: EvalReport, images: dict[str, Markup]) -> str:
    return markdown_env().from_string(_TEMPLATE).render(
        report=report, images=images, fmt=trusted(format_value), ci=trusted(_ci), rate=trusted(format_rate),
        sources=_sources(report),
    )


def _file_stems(names: list[str]) -> dict[str, str]:
    """A file-name stem per split: the name itself when it is plain, else a cleaned name with its index.

    Split names come from records files, and a name such as "../x" must not pick where a PNG goes."""
    stems: dict[str, str] = {}
    taken: set[str] = set()  # lower case: some file systems do not tell "Train" from "train"
    for i, name in enumerate(names):
        clean = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "split"
        stem = name if clean == name else f"{clean}-{i}"
        while stem.lower() in taken:
            stem += f"-{i}"
        taken.add(stem.lower())
        stems[name] = stem
    return stems


def _is_legacy_report(folder: Path) -> bool:
    """A report folder written before markers existed: its report.md starts with tomdistill's title."""
    md = folder / "report.md"
    try:
        return md.is_file() and not md.is_symlink() and md.read_text().startswith("# tomdistill ")
    except (OSError, UnicodeDecodeError):
        return False


def write_report(report: EvalReport, out: Path) -> dict[str, Path]:
    """Write report.md, report.html (images inlined) and the PNGs into `out`; returns the paths.

    `out` must be absent, empty, or a tomdistill report folder; anything else is refused unchanged."""
    _check_ancestor(out)
    stems = _file_stems(list(report.splits))
    pngs: dict[str, Path] = {}
    try:
        claim_dir(out, REPORT_KIND, legacy=_is_legacy_report)
        if (plot := improvement(report, out / "improvement.png")) is not None:
            pngs["improvement"] = plot
        for name, result in report.splits.items():
            if (plot := cell_bars(name, result, out / f"cells_{stems[name]}.png")) is not None:
                pngs[f"cells_{name}"] = plot
            if (plot := heatmap(name, result, out / f"heatmap_{stems[name]}.png")) is not None:
                pngs[f"heatmap_{name}"] = plot
        write_pages(out, lambda images: _markdown(report, images), pngs, title="tomdistill evaluation")
    except OSError as exc:  # a full disk, a read-only folder: one line, not a traceback
        raise TomdistillError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    return {"markdown": out / "report.md", "html": out / "report.html", **pngs}


def _check_ancestor(path: Path) -> None:
    """Refuse a path below a file (mkdir would fail there with a traceback)."""
    ancestor = next((p for p in path.parents if p.exists()), None)
    if ancestor is not None and not ancestor.is_dir():
        raise TomdistillError(f"{ancestor}: is a file, so {path} cannot be written below it ({HINT})")


def _is_eval_json(path: Path) -> bool:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"schema_version", "tomdistill_version", "splits"} <= data.keys()


def check_eval_out(path: Path) -> None:
    """Raise unless `tomdistill evaluate` may write eval.json at `path`: new, or an eval.json it wrote."""
    if path.is_dir():
        raise TomdistillError(f"{path}: is a folder; --out names the eval.json file to write, e.g. {path / 'eval.json'}")
    if path.exists() and not _is_eval_json(path):
        raise TomdistillError(f"{path}: exists and is not an eval.json; tomdistill does not overwrite it ({HINT})")
    _check_ancestor(path)
