"""eval.json -> report.md, a self-contained report.html and PNG plots (drawn in plots.py).

A reader sees in one screen whether the student moved toward the teacher, and where it did not.
The report folder is tomdistill's own (outdirs.py): a new or empty folder, or an earlier report.
"""

from __future__ import annotations

import re
from pathlib import Path

from markupsafe import Markup

from ..errors import TomdistillError
from ..jsonfiles import load_json_file
from ..outdirs import HINT, claim_dir, holds_only
from .formatting import format_estimate, format_rate, format_value, format_verdict, temperature_line
from .pages import markdown_env, md_text, trusted, write_pages
from .plots import cell_bars, heatmap, improvement
from .schema import SCHEMA_VERSION, EvalReport, SplitResult

__all__ = ["check_eval_out", "write_report"]

REPORT_KIND = "report"  # the kind in the folder's .tomdistill marker (outdirs.py)

_TEMPLATE = """# tomdistill evaluation

{{ sources }}

{{ temperature }}
{% if report.schema_version < 2 %}

> This eval.json has schema version {{ report.schema_version }} (an older tomdistill): its gap closed sums absolute
> gaps and its interval resampled within cells only, and KL closed, the game-profile r and the baseline are
> missing. Run `tomdistill evaluate` again for the current measures.
{% endif %}

## Headline

{% if not report.splits %}
No cell has answers from all three roles (teacher, base, student), so there is nothing to compare.
{% else %}
| split | cells | gap closed [95% CI] | baseline | beats baseline | KL closed [95% CI] | game-profile r student / base | paper metric (this run) | samples per cell |
|---|---|---|---|---|---|---|---|---|
{% for name, s in report.splits.items() -%}
| {{ name }} | {{ s.cells|length }} | {{ est(s.gap_closed, s.gap_closed_ci) }} | {{ fmt(s.gap_closed_baseline, 1, '%') }} | {{ verdict(s.beats_baseline) }} | {{ est(s.kl_closed, s.kl_closed_ci) }} | {{ fmt(s.game_profile_correlation_student, 2) }} / {{ fmt(s.game_profile_correlation_base, 2) }} | {{ fmt(s.paper_improvement_mean, 1, '%') }} | {{ samples(s, report.schema_version) }} |
{% endfor %}
{% endif %}

{% for name, s in report.splits.items() %}
{% if s.interval_trusted == false %}
> **{{ name }}**: a sampled rate here rests on {{ s.samples_min }} answers, fewer than the {{ report.min_trusted_samples }} per cell from which the intervals held in simulation (docs/statistics.md): its intervals are not trustworthy and nothing is called significant. Sample more, or score the roles exactly.

{% endif %}
{% if s.gap_closed_ci and s.gap_closed is not none and not (s.gap_closed_ci[0] <= s.gap_closed <= s.gap_closed_ci[1]) %}
> **{{ name }}**: the interval does not contain the estimate (bias {{ fmt(s.gap_closed_bias, 1) }} points): there are too few samples per cell for a stable interval; sample the teacher (and students) more.

{% endif %}
{% endfor %}
*Gap closed* = 1 - sum g(student)^2 / sum g(base)^2 over a split's cells, where g is the gap to the teacher's
rate (0-1 scale) and each sampled rate's noise (S^2/n) is taken off its squared gap, so few samples do not
inflate it. 100% = the student matches the teacher, 0% = no closer than the base, negative = further away.
The *baseline* is the gap closed by a constant student answering the teacher's mean train rate in every cell:
a student that only learned the teacher's overall level gets that much. *Beats baseline* says whether the
student's gap closed is above the baseline's (95% paired cell bootstrap; "–" when undecided or not decidable).
*KL closed* is the share of the base's KL divergence from the teacher's answer distribution that the student
removed. The *game-profile r* correlates each cell's deviation from its context's mean with the teacher's: did
the student learn the teacher's differences between games, not just its level? Intervals are 95% cell
bootstrap intervals (cells resampled, and samples within a cell where a role was sampled). The *paper metric*
is the paper's (base - student) / (base - teacher) per cell, averaged over this run's cells; it is unstable
where base and teacher are close.
{% if images.improvement %}

![improvement]({{ images.improvement }})
{% endif %}
{% for name, s in report.splits.items() %}

## {{ name }}

Level profile r (student / base, across all cells): {{ fmt(s.profile_correlation_student, 2) }} / {{ fmt(s.profile_correlation_base, 2) }}.
Cross-entropy with the teacher's answers (student / base): {{ fmt(s.cross_entropy_student, 3, ' nats') }} / {{ fmt(s.cross_entropy_base, 3, ' nats') }}.
Cells where the student moved significantly from its base (Holm p < 0.05): {{ '–' if s.significant_moves is none else s.significant_moves }}.
{% if images['heatmap_' ~ name] %}

![heatmap {{ name }}]({{ images['heatmap_' ~ name] }})
{% endif %}
{% if images['cells_' ~ name] %}

![cells {{ name }}]({{ images['cells_' ~ name] }})
{% endif %}

| cell | teacher | base | student | paper metric (this run) | JSD base / student (bits) | student vs base p (Holm) |
|---|---|---|---|---|---|---|
{% for c in s.cells -%}
| {{ c.scenario }} | {{ rate(c.teacher) }} | {{ rate(c.base) }} | {{ rate(c.student) }} | {{ fmt(c.paper_improvement, 1, '%') }} | {{ fmt(c.jsd_base_teacher, 3) }} / {{ fmt(c.jsd_student_teacher, 3) }} | {{ fmt(c.student_vs_base.p_holm, 3) }} |
{% endfor %}
{% endfor %}
{% if report.skipped %}

Left out (a role had no data): {{ report.skipped|join(', ') }}
{% endif %}
"""


def format_samples(split: SplitResult, schema_version: int = SCHEMA_VERSION) -> str:
    """Fewest samples behind a sampled rate of the split, "exact" when every rate was scored."""
    if schema_version < 2:  # not recorded then
        return "–"
    if split.samples_min is None:
        return "exact"
    return f"{split.samples_min}" + (" (too few)" if split.interval_trusted is False else "")


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
        report=report, images=images, fmt=trusted(format_value), rate=trusted(format_rate),
        est=trusted(format_estimate), verdict=trusted(format_verdict), samples=trusted(format_samples),
        sources=_sources(report), temperature=Markup(temperature_line(report)),
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


#: What write_report writes: an unmarked folder holding anything else is not taken as a report.
REPORT_FILES = ("report.md", "report.html", "improvement.png", "cells_*.png", "heatmap_*.png")


def is_report_folder(folder: Path) -> bool:
    """A report folder written before markers existed (here and as a run's report/): its report.md
    starts with tomdistill's title, and it holds nothing but REPORT_FILES."""
    md = folder / "report.md"
    try:
        ours = md.is_file() and not md.is_symlink() and md.read_text().startswith("# tomdistill ")
    except (OSError, UnicodeDecodeError):
        return False
    return ours and holds_only(folder, REPORT_FILES)


def write_report(report: EvalReport, out: Path) -> dict[str, Path]:
    """Write report.md, report.html (images inlined) and the PNGs into `out`; returns the paths.

    `out` must be absent, empty, or a tomdistill report folder; anything else is refused unchanged."""
    _check_ancestor(out)
    stems = _file_stems(list(report.splits))
    pngs: dict[str, Path] = {}
    try:
        claim_dir(out, REPORT_KIND, legacy=is_report_folder)
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
        data = load_json_file(path, "eval.json")
    except TomdistillError:
        return False
    return isinstance(data, dict) and {"schema_version", "tomdistill_version", "splits"} <= data.keys()


def check_eval_out(path: Path) -> None:
    """Raise unless `tomdistill evaluate` may write eval.json at `path`: new, or an eval.json it wrote."""
    if path.is_dir():
        raise TomdistillError(f"{path}: is a folder; --out names the eval.json file to write, e.g. {path / 'eval.json'}")
    if path.exists() and not _is_eval_json(path):
        raise TomdistillError(f"{path}: exists and is not an eval.json; tomdistill does not overwrite it ({HINT})")
    _check_ancestor(path)
