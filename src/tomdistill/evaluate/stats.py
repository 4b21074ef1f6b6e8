"""Statistics of one cell and of a split: rates with intervals, tests, divergences, bootstrap.

Everything works on `Observations`: one role's answers in one cell, either sampled values
(1/0 for cooperate/defect, or amounts) or an exact score-mode distribution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon


@dataclass
class Observations:
    """One role's answers in one cell.

    `scale` is 1 for shares and the largest amount for numeric games, so gaps of different games
    can be added on one 0-1 scale.
    """

    numeric: bool
    scale: float = 1.0
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    invalid: int = 0
    #: Score mode: the distribution over answers (actions, or amounts as text) and the rate it implies.
    distribution: dict[str, float] | None = None
    score: float | None = None

    @property
    def scored(self) -> bool:
        return self.score is not None

    @property
    def n(self) -> int:
        return 1 if self.scored else len(self.values)

    def rate(self) -> float | None:
        """Share of cooperation (0-1) or mean amount; None without data."""
        if self.scored:
            return self.score
        return float(self.values.mean()) if len(self.values) else None

    def unit_rate(self) -> float | None:
        """The rate on a 0-1 scale (amounts divided by the largest amount)."""
        r = self.rate()
        return None if r is None else r / self.scale

    def interval(self) -> tuple[float | None, float | None]:
        """95% interval of the rate: Wilson for shares, t for means; none for score mode."""
        if self.scored or not len(self.values):
            return None, None
        n = len(self.values)
        if not self.numeric:
            ci = stats.binomtest(int(self.values.sum()), n).proportion_ci(0.95, method="wilson")
            return float(ci.low), float(ci.high)
        if n < 2:
            return None, None
        mean, sem = float(self.values.mean()), float(stats.sem(self.values))
        if sem == 0:
            return mean, mean
        low, high = stats.t.interval(0.95, n - 1, loc=mean, scale=sem)
        return max(0.0, float(low)), min(self.scale, float(high))  # an amount cannot leave [0, endowment]

    def histogram(self, support: Sequence[str]) -> np.ndarray | None:
        """Probabilities over `support` (e.g. ["1", "0"] for C/D, or "0".."10" for amounts)."""
        if self.scored:
            return np.array([self.distribution.get(k, 0.0) for k in support]) if self.distribution else None
        if not len(self.values):
            return None
        labels = [str(int(round(v))) for v in self.values]
        counts = np.array([labels.count(k) for k in support], dtype=float)
        return counts / counts.sum() if counts.sum() else None

    def resample(self, rng: np.random.Generator, times: int) -> np.ndarray:
        """`times` bootstrap replicates of unit_rate (constant in score mode)."""
        if self.scored or not len(self.values):
            return np.full(times, np.nan if self.unit_rate() is None else self.unit_rate())
        n = len(self.values)
        if not self.numeric:  # resampling 0/1 answers with replacement is a binomial draw
            return rng.binomial(n, self.values.mean(), size=times) / n
        idx = rng.integers(0, n, size=(times, n))
        return self.values[idx].mean(axis=1) / self.scale


def paper_improvement(base: float | None, student: float | None, teacher: float | None) -> float | None:
    """(base - student) / (base - teacher) x 100, the paper's per-cell metric; None when undefined."""
    if None in (base, student, teacher) or math.isclose(base, teacher, abs_tol=1e-12):  # type: ignore[arg-type]
        return None
    return 100.0 * (base - student) / (base - teacher)  # type: ignore[operator]


def gap_closed(triples: Sequence[tuple[float, float, float]]) -> float | None:
    """1 - sum|student - teacher| / sum|base - teacher|, in percent; triples are (teacher, base, student)."""
    denominator = sum(abs(b - t) for t, b, _ in triples)
    if not triples or denominator == 0:
        return None
    return 100.0 * (1 - sum(abs(s - t) for t, _, s in triples) / denominator)


@dataclass
class BootstrapInterval:
    low: float
    high: float
    #: Mean replicate minus the estimate: how much sampling noise pulls the statistic.
    bias: float


def bootstrap_gap_closed(
    cells: Sequence[tuple[Observations, Observations, Observations]], times: int, rng: np.random.Generator
) -> BootstrapInterval | None:
    """95% percentile bootstrap interval of gap_closed, resampling each role's samples within each cell.

    Noise only adds to |student - teacher| and |base - teacher|, so with few samples per cell the
    replicates sit below the estimate and the interval may not contain it; `bias` says by how much.
    (A basic / reverse-percentile interval overcorrects then; tried on the default run, it
    excluded the estimate from the other side.)
    """
    if not cells or times <= 0:
        return None
    estimate = gap_closed([tuple(o.unit_rate() for o in c) for c in cells])  # type: ignore[misc]
    if estimate is None:
        return None
    t, b, s = (np.stack([c[k].resample(rng, times) for c in cells]) for k in range(3))
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = 100.0 * (1 - np.abs(s - t).sum(axis=0) / np.abs(b - t).sum(axis=0))
    replicates = replicates[np.isfinite(replicates)]
    if not len(replicates):
        return None
    low, high = np.percentile(replicates, [2.5, 97.5])
    return BootstrapInterval(float(low), float(high), float(replicates.mean() - estimate))


def compare(a: Observations, b: Observations) -> float | None:
    """p-value that two roles differ in one cell: Fisher's exact test for shares, Welch's t for means."""
    if a.scored or b.scored or not len(a.values) or not len(b.values):
        return None
    if not a.numeric:
        ka, kb = int(a.values.sum()), int(b.values.sum())
        table = [[ka, len(a.values) - ka], [kb, len(b.values) - kb]]
        return float(stats.fisher_exact(table).pvalue)
    if len(a.values) < 2 or len(b.values) < 2:
        return None
    if np.var(a.values) == 0 and np.var(b.values) == 0:
        return 1.0 if a.values[0] == b.values[0] else 0.0
    return float(stats.ttest_ind(a.values, b.values, equal_var=False).pvalue)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (None stays None and does not count)."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    m = len(present)
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def jsd(a: Observations, b: Observations, support: Sequence[str]) -> float | None:
    """Jensen-Shannon divergence in bits (0 = same distribution, 1 = disjoint)."""
    pa, pb = a.histogram(support), b.histogram(support)
    if pa is None or pb is None:
        return None
    return float(jensenshannon(pa, pb, base=2) ** 2)


def correlation(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson correlation of two rate profiles across cells (None with < 3 cells or no spread)."""
    # A profile that is constant up to float rounding (np.std ~1e-17 for equal score-mode rates)
    # has no spread: its r would be rounding noise printed as 1.0 or 0.0, so it is None.
    if len(xs) < 3 or _flat(xs) or _flat(ys):
        return None
    return float(stats.pearsonr(xs, ys).statistic)


def _flat(values: Sequence[float]) -> bool:
    """True when the values differ by no more than float rounding of their size."""
    arr = np.asarray(values, dtype=float)
    return float(np.ptp(arr)) <= 1e-9 * max(1.0, float(np.max(np.abs(arr))))
