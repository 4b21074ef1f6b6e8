"""Turn the three roles' observations into an EvalReport: per cell, then per split."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import numpy as np

from .observations import CellKey, RoleData
from .schema import Cell, EvalReport, Rate, Source, SplitResult, Test
from .stats import (
    Observations,
    bootstrap_gap_closed,
    compare,
    correlation,
    gap_closed,
    holm,
    jsd,
    paper_improvement,
)

#: Split order in reports: built-in splits first.
SPLIT_ORDER = ("train", "heldout_context", "heldout_game", "heldout_pgg")


def _shown(obs: Observations, value: float | None) -> float | None:
    """Shares in percent, amounts as they are."""
    if value is None:
        return None
    return value if obs.numeric else 100.0 * value


def rate_of(obs: Observations) -> Rate:
    low, high = obs.interval()
    return Rate(
        value=_shown(obs, obs.rate()), n=obs.n, low=_shown(obs, low), high=_shown(obs, high),
        source="score" if obs.scored else "samples", invalid=obs.invalid,
    )


def _support(obs: Observations) -> list[str]:
    if obs.numeric:
        return [str(i) for i in range(int(obs.scale) + 1)]
    return ["1", "0"]


def _score_support(obs: Observations, support: list[str]) -> Observations:
    """Score-mode distributions are keyed by action labels; map them onto the 1/0 support of shares."""
    if obs.scored and not obs.numeric and obs.distribution is not None:
        return Observations(numeric=False, distribution={"1": obs.score, "0": 1 - obs.score}, score=obs.score)
    return obs


def _cell(key: CellKey, t: Observations, b: Observations, s: Observations) -> Cell:
    rates = {role: rate_of(o) for role, o in (("teacher", t), ("base", b), ("student", s))}
    improvement = paper_improvement(rates["base"].value, rates["student"].value, rates["teacher"].value)
    support = _support(t)
    tt, bb, ss = (_score_support(o, support) for o in (t, b, s))
    return Cell(
        scenario=key.scenario, context=key.context, game=key.game, unit="dollars" if t.numeric else "percent",
        **rates,
        paper_improvement=improvement,
        paper_improvement_note=None if improvement is not None else "undefined: base rate equals teacher rate",
        jsd_base_teacher=jsd(bb, tt, support), jsd_student_teacher=jsd(ss, tt, support),
        student_vs_base=Test(p_value=compare(s, b)), student_vs_teacher=Test(p_value=compare(s, t)),
    )


def _split(cells: list[tuple[Cell, tuple[Observations, Observations, Observations]]], bootstrap: int,
           rng: np.random.Generator) -> SplitResult:
    for attr in ("student_vs_base", "student_vs_teacher"):
        adjusted = holm([getattr(c, attr).p_value for c, _ in cells])
        for (cell, _), p in zip(cells, adjusted):
            test = getattr(cell, attr)
            test.p_holm = p
            test.significant = None if p is None else p < 0.05
    units = [tuple(o.unit_rate() for o in obs) for _, obs in cells]
    complete = [u for u in units if None not in u]
    improvements = [c.paper_improvement for c, _ in cells if c.paper_improvement is not None]
    teacher, base, student = (list(col) for col in zip(*complete)) if complete else ([], [], [])
    interval = bootstrap_gap_closed([obs for (_, obs), u in zip(cells, units) if None not in u], bootstrap, rng)
    return SplitResult(
        cells=[c for c, _ in cells],
        paper_improvement_mean=float(np.mean(improvements)) if improvements else None,
        paper_improvement_cells=len(improvements),
        gap_closed=gap_closed(complete),
        gap_closed_ci=[interval.low, interval.high] if interval else None,
        gap_closed_bias=interval.bias if interval else None,
        mean_abs_gap_base=100 * float(np.mean(np.abs(np.subtract(base, teacher)))) if complete else None,
        mean_abs_gap_student=100 * float(np.mean(np.abs(np.subtract(student, teacher)))) if complete else None,
        profile_correlation_base=correlation(base, teacher),
        profile_correlation_student=correlation(student, teacher),
        significant_moves=None if all(c.student_vs_base.p_value is None for c, _ in cells)
        else sum(bool(c.student_vs_base.significant) for c, _ in cells),
    )


def evaluate(data: RoleData, sources: list[Source], *, bootstrap: int = 2000, seed: int = 0) -> EvalReport:
    """Compare teacher, base and student in every cell that all three have data for."""
    from .. import __version__

    # Cells keep the teacher's order: library order for runs, file order for records.
    keys = [k for k in data["teacher"] if k in data["base"] and k in data["student"]]
    every = set(data["teacher"]) | set(data["base"]) | set(data["student"])
    skipped = sorted(k.scenario for k in every - set(keys))
    by_split: dict[str, list] = defaultdict(list)
    for key in keys:
        obs = (data["teacher"][key], data["base"][key], data["student"][key])
        if any(o.rate() is None for o in obs):
            skipped.append(key.scenario)
            continue
        by_split[key.split].append((_cell(key, *obs), obs))
    rng = np.random.default_rng(seed)
    order = sorted(by_split, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER), s))
    return EvalReport(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        tomdistill_version=__version__,
        sources=sources,
        bootstrap=bootstrap,
        seed=seed,
        splits={split: _split(by_split[split], bootstrap, rng) for split in order},
        skipped=sorted(set(skipped)),
    )
