"""Split-level estimates and their cell (cluster) bootstrap: gap closed, KL closed and the baseline.

A split's cells are a sample of the scenarios one could have asked about, and a sampled role's
rate in a cell is a sample of its answers. The bootstrap resamples both: cells with replacement,
then, within each drawn cell, the samples of every role that was sampled (exact scores stay as
they are). Every statistic is one function of arrays shaped (replicates, cells), so the estimate
(the data as observed, one row) and its replicates go through the same code.

Gaps are squared and bias-corrected: a sampled rate r of n answers has E[(r - x)^2] =
(true rate - x)^2 + Var(r), and S^2 / n (S^2 with n - 1) estimates Var(r) without bias, so
(r_a - r_b)^2 - S_a^2/n_a - S_b^2/n_b estimates a squared gap without bias; an absolute gap has no
unbiased estimator from binomial samples (|p - x| is not a polynomial in p). Definitions, and why
the replicates carry the correction twice, are in docs/eval-schema.md and docs/statistics.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .stats import Observations

__all__ = ["MIN_TRUSTED_SAMPLES", "SplitEstimates", "split_estimates"]

#: Fewest samples per cell behind a sampled rate from which the 95% interval covered the population
#: value at least 90% of the time in every population `python -m tomdistill.evaluate.simulate` was
#: run on (docs/statistics.md: 10 for its default, 20 with 12 cells, 30 for a teacher as flat as the
#: embedded one). Below it an interval is marked untrusted and no result is called significant.
MIN_TRUSTED_SAMPLES = 30
#: Probability floor of an exact distribution used as a prediction (log 0 would be infinite).
FLOOR = 1e-9
#: Share of replicates that may be undefined (no base-teacher gap left in them) before an
#: interval is withheld: past it, one end of the interval would be unbounded.
MAX_UNDEFINED = 0.025


@dataclass
class Draws:
    """One role's cells as observed (one row) or resampled (a row per replicate); K = support size."""

    rate: np.ndarray  #: (R, C) unit rates (0-1)
    correction: np.ndarray  #: (R, C) variance terms to subtract from a squared gap
    dist: np.ndarray  #: (R, C, K) distribution over the cell's answers, zero-padded to K
    log_pred: np.ndarray  #: (R, C, K) log of the distribution used as a prediction (smoothed or floored)
    entropy: np.ndarray  #: (R, C) entropy in nats (Miller-Madow corrected when sampled)


def _prediction(dist: np.ndarray, n: int) -> np.ndarray:
    """log q: add-1/2 (Krichevsky-Trofimov) smoothing of sampled counts, a floor on exact scores."""
    if n:
        q = (dist * n + 0.5) / (n + 0.5 * dist.shape[-1])
    else:
        q = np.clip(dist, FLOOR, None)
        q = q / q.sum(axis=-1, keepdims=True)
    return np.log(q)


def _entropy(dist: np.ndarray, n: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(dist > 0, dist * np.log(dist), 0.0).sum(axis=-1)
    if n:  # Miller-Madow: the plug-in entropy of n samples is low by about (categories seen - 1) / 2n
        h = h + ((dist > 0).sum(axis=-1) - 1) / (2 * n)
    return h


def _empty(rows: int, cells: int, width: int) -> Draws:
    return Draws(np.full((rows, cells), np.nan), np.zeros((rows, cells)), np.zeros((rows, cells, width)),
                 np.zeros((rows, cells, width)), np.zeros((rows, cells)))


def _fill(draws: Draws, where, rate, correction, dist: np.ndarray, n: int) -> None:
    k = dist.shape[-1]
    draws.rate[where], draws.correction[where] = rate, correction
    draws.dist[where, :k], draws.log_pred[where, :k], draws.entropy[where] = dist, _prediction(dist, n), _entropy(dist, n)


def _samples(obs: Observations) -> int:
    return 0 if obs.scored else len(obs.values)


def observed(cells: Sequence[Observations], width: int) -> Draws:
    """One role's cells as they were observed: one row."""
    draws = _empty(1, len(cells), width)
    for c, obs in enumerate(cells):
        where = np.arange(len(cells))[None, :] == c
        _fill(draws, where, obs.unit_rate(), obs.correction(), obs.probabilities(), _samples(obs))
    return draws


def resampled(cells: Sequence[Observations], picks: np.ndarray, rng: np.random.Generator, width: int, *,
              within: bool = True) -> Draws:
    """One role's cells in each replicate: `picks[r, j]` is the cell drawn at place j of replicate r,
    and each drawn cell's samples are drawn again (independently for every place it is drawn at).
    `within=False` keeps each drawn cell's answers as observed (the variant docs/statistics.md compares)."""
    if not within:
        seen = observed(cells, width)
        return Draws(*(getattr(seen, f)[0][picks] for f in ("rate", "correction", "dist", "log_pred", "entropy")))
    draws = _empty(*picks.shape, width)
    for c, obs in enumerate(cells):
        where = picks == c
        if not where.any():
            continue
        rate, correction, dist = obs.replicates(int(where.sum()), rng)
        # A replicate's squared gap, corrected for its own noise, still estimates the squared gap of
        # the observed rates it was drawn from, which exceeds the estimate by the observed
        # correction; subtracting that too centres the replicates on the estimate.
        _fill(draws, where, rate, correction + obs.correction(), dist, _samples(obs))
    return draws


def squared_gaps(role: Draws, teacher: Draws) -> np.ndarray:
    """Bias-corrected squared gap per cell: (role - teacher)^2 - both roles' variance terms."""
    return (role.rate - teacher.rate) ** 2 - role.correction - teacher.correction


def cross_entropy(role: Draws, teacher: Draws) -> np.ndarray:
    """Teacher-weighted cross-entropy of the role's distribution per cell (nats)."""
    return -(teacher.dist * role.log_pred).sum(axis=-1)


def share_closed(student: np.ndarray, base: np.ndarray) -> np.ndarray:
    """100 x (1 - sum(student) / sum(base)) over the cells of each row; NaN where the base sum is not > 0."""
    total = base.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 100.0 * (1 - student.sum(axis=-1) / total), np.nan)


def _statistics(t: Draws, b: Draws, s: Draws, constant: np.ndarray | None) -> dict[str, np.ndarray]:
    """Every split statistic, one value per row."""
    gap_base = squared_gaps(b, t)
    out = {
        "gap_closed": share_closed(squared_gaps(s, t), gap_base),
        "kl_closed": share_closed(cross_entropy(s, t) - t.entropy, cross_entropy(b, t) - t.entropy),
    }
    if constant is not None:  # a student answering the constant in every cell: exact, no variance term
        out["gap_closed_baseline"] = share_closed((constant - t.rate) ** 2 - t.correction, gap_base)
        out["beyond_baseline"] = out["gap_closed"] - out["gap_closed_baseline"]
    return out


def percentile_interval(replicates: np.ndarray) -> list[float] | None:
    """[2.5, 97.5] percentiles of the replicates; None when too many are undefined (NaN)."""
    finite = replicates[np.isfinite(replicates)]
    if not len(finite) or len(finite) < (1 - MAX_UNDEFINED) * len(replicates):
        return None
    return [float(v) for v in np.percentile(finite, [2.5, 97.5])]


@dataclass
class SplitEstimates:
    """A split's estimates (percent, nats) with their 95% cell-bootstrap intervals."""

    gap_closed: float | None
    gap_closed_ci: list[float] | None
    gap_closed_bias: float | None
    kl_closed: float | None
    kl_closed_ci: list[float] | None
    cross_entropy_base: float | None
    cross_entropy_student: float | None
    gap_closed_baseline: float | None
    beyond_baseline_ci: list[float] | None


def _value(x: np.ndarray) -> float | None:
    return float(x[0]) if np.isfinite(x[0]) else None


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if np.all(np.isfinite(x)) else None


def split_estimates(cells: Sequence[tuple[Observations, Observations, Observations]], baseline: Sequence[float] | None,
                    times: int, rng: np.random.Generator, *, within: bool = True) -> SplitEstimates:
    """Estimates of one split from its (teacher, base, student) cells; `baseline` is the constant
    unit rate of the baseline student in each cell (None: no baseline); `times` bootstrap replicates
    (`within`: see `resampled`)."""
    width = max(len(obs.support()) for cell in cells for obs in cell)
    roles = [[cell[k] for cell in cells] for k in range(3)]
    constant = None if baseline is None else np.asarray(baseline, dtype=float)
    t, b, s = (observed(r, width) for r in roles)
    point = {k: _value(v) for k, v in _statistics(t, b, s, None if constant is None else constant[None, :]).items()}
    ci: dict[str, list[float] | None] = {}
    bias = None
    # One cell: resampling cells can only ever pick it, so a "cell bootstrap" interval would claim a
    # certainty about the choice of cells that one cell cannot give. No interval then.
    if times > 0 and len(cells) >= 2 and any(v is not None for v in point.values()):
        picks = rng.integers(0, len(cells), size=(times, len(cells)))
        reps = _statistics(*(resampled(r, picks, rng, width, within=within) for r in roles),
                           None if constant is None else constant[picks])
        ci = {k: percentile_interval(v) if point[k] is not None else None for k, v in reps.items()}
        if point["gap_closed"] is not None and ci["gap_closed"] is not None:
            bias = float(np.nanmean(reps["gap_closed"]) - point["gap_closed"])
    return SplitEstimates(
        gap_closed=point["gap_closed"], gap_closed_ci=ci.get("gap_closed"), gap_closed_bias=bias,
        kl_closed=point["kl_closed"], kl_closed_ci=ci.get("kl_closed"),
        cross_entropy_base=_mean(cross_entropy(b, t)), cross_entropy_student=_mean(cross_entropy(s, t)),
        gap_closed_baseline=point.get("gap_closed_baseline"), beyond_baseline_ci=ci.get("beyond_baseline"),
    )
