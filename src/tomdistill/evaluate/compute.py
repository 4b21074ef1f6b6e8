"""Turn the three roles' observations into an EvalReport: per cell, then per split."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import numpy as np

from ..versions import __version__
from .cluster import MIN_TRUSTED_SAMPLES, split_estimates
from .observations import CellKey, RoleData
from .schema import Cell, EvalReport, Rate, Source, SplitResult, Test
from .stats import Observations, compare, correlation, game_profile_correlation, holm, jsd, paper_improvement

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


def _cell(key: CellKey, t: Observations, b: Observations, s: Observations) -> Cell:
    rates = {role: rate_of(o) for role, o in (("teacher", t), ("base", b), ("student", s))}
    improvement = paper_improvement(rates["base"].value, rates["student"].value, rates["teacher"].value)
    support = t.support()
    return Cell(
        scenario=key.scenario, context=key.context, game=key.game, unit="dollars" if t.numeric else "percent",
        **rates,
        paper_improvement=improvement,
        paper_improvement_note=None if improvement is not None else "undefined: base rate equals teacher rate",
        jsd_base_teacher=jsd(b, t, support), jsd_student_teacher=jsd(s, t, support),
        student_vs_base=Test(p_value=compare(s, b)), student_vs_teacher=Test(p_value=compare(s, t)),
    )


Triple = tuple[Observations, Observations, Observations]


def _holm(cells: list[tuple[Cell, Triple]]) -> None:
    """Holm-adjust each cell test over the split's cells."""
    for attr in ("student_vs_base", "student_vs_teacher"):
        adjusted = holm([getattr(c, attr).p_value for c, _ in cells])
        for (cell, _), p in zip(cells, adjusted):
            test = getattr(cell, attr)
            test.p_holm = p
            test.significant = None if p is None else p < 0.05


def samples_min(cells: list[Triple]) -> int | None:
    """Fewest valid samples behind a sampled rate of the split (any role); None when all are exact."""
    counts = [len(o.values) for cell in cells for o in cell if not o.scored]
    return min(counts) if counts else None


def _baseline(cells: list[Triple], train_means: dict[bool, float]) -> list[float] | None:
    """The constant baseline student's unit rate per cell: the teacher's mean train rate (shares)
    or mean train amount (amounts); None when the split has a kind of cell train has no mean for."""
    kinds = [cell[0].numeric for cell in cells]
    if any(kind not in train_means for kind in kinds):
        return None
    return [train_means[kind] for kind in kinds]


def train_means(cells: list[Triple]) -> dict[bool, float]:
    """The teacher's mean unit rate over the train split's share cells (key False) and amount cells (True)."""
    means = {}
    for numeric in (False, True):
        rates = [cell[0].unit_rate() for cell in cells if cell[0].numeric == numeric]
        if rates:
            means[numeric] = float(np.mean(rates))
    return means


def trust(fewest: int | None, interval: list[float] | None) -> bool | None:
    """False below MIN_TRUSTED_SAMPLES samples per cell (interval or not: the sampled rates are too
    noisy for one); else True with an interval and None without."""
    if fewest is not None and fewest < MIN_TRUSTED_SAMPLES:
        return False
    return None if interval is None else True


def _beats(cells: list[Triple], trusted: bool | None, difference_ci: list[float] | None) -> bool | None:
    """True / False when the student's gap closed minus the baseline's is surely above / below 0."""
    if len(cells) < 2 or any(cell[0].numeric for cell in cells) or trusted is not True or difference_ci is None:
        return None
    return True if difference_ci[0] > 0 else False if difference_ci[1] < 0 else None


def _split(cells: list[tuple[Cell, Triple]], baseline_means: dict[bool, float], bootstrap: int,
           rng: np.random.Generator) -> SplitResult:
    _holm(cells)
    data = [obs for _, obs in cells]
    contexts = [c.context for c, _ in cells]
    teacher, base, student = ([o.unit_rate() for o in col] for col in zip(*data)) if data else ([], [], [])
    improvements = [c.paper_improvement for c, _ in cells if c.paper_improvement is not None]
    est = split_estimates(data, _baseline(data, baseline_means), bootstrap, rng)
    fewest = samples_min(data)
    trusted = trust(fewest, est.gap_closed_ci)
    return SplitResult(
        cells=[c for c, _ in cells],
        paper_improvement_mean=float(np.mean(improvements)) if improvements else None,
        paper_improvement_cells=len(improvements),
        gap_closed=est.gap_closed, gap_closed_ci=est.gap_closed_ci, gap_closed_bias=est.gap_closed_bias,
        samples_min=fewest, interval_trusted=trusted,
        mean_abs_gap_base=100 * float(np.mean(np.abs(np.subtract(base, teacher)))) if data else None,
        mean_abs_gap_student=100 * float(np.mean(np.abs(np.subtract(student, teacher)))) if data else None,
        profile_correlation_base=correlation(base, teacher),
        profile_correlation_student=correlation(student, teacher),
        game_profile_correlation_base=game_profile_correlation(contexts, base, teacher),
        game_profile_correlation_student=game_profile_correlation(contexts, student, teacher),
        cross_entropy_base=est.cross_entropy_base, cross_entropy_student=est.cross_entropy_student,
        kl_closed=est.kl_closed, kl_closed_ci=est.kl_closed_ci,
        gap_closed_baseline=est.gap_closed_baseline,
        beats_baseline=_beats(data, trusted, est.beyond_baseline_ci),
        significant_moves=None if all(c.student_vs_base.p_value is None for c, _ in cells)
        else sum(bool(c.student_vs_base.significant) for c, _ in cells),
    )


def evaluate(data: RoleData, sources: list[Source], *, bootstrap: int = 2000, seed: int = 0) -> EvalReport:
    """Compare teacher, base and student in every cell that all three have data for."""
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
    means = train_means([obs for _, obs in by_split.get("train", [])])
    order = sorted(by_split, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER), s))
    return EvalReport(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        tomdistill_version=__version__,
        sources=sources,
        bootstrap=bootstrap,
        seed=seed,
        splits={split: _split(by_split[split], means, bootstrap, rng) for split in order},
        min_trusted_samples=MIN_TRUSTED_SAMPLES,
        skipped=sorted(set(skipped)),
    )
