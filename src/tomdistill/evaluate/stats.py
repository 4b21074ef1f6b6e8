"""Statistics of one cell: rates with intervals, resamples, tests, divergences, profile correlations.

Everything works on `Observations`: one role's answers in one cell, either sampled values
(1/0 for cooperate/defect, or amounts) or an exact score-mode distribution. The split-level
estimates and their cell bootstrap are in `cluster.py`.
"""

from __future__ import annotations

import math
import warnings
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

    @classmethod
    def exact(cls, rate: float) -> Observations:
        """A score-mode share: cooperate with probability `rate`."""
        return cls(numeric=False, distribution={"C": rate, "D": 1 - rate}, score=rate)

    @classmethod
    def shares(cls, cooperate: int, n: int) -> Observations:
        """n sampled answers to a choice, `cooperate` of them C."""
        return cls(numeric=False, values=np.r_[np.ones(cooperate), np.zeros(n - cooperate)])

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

    def support(self) -> list[str]:
        """What a distribution of this cell is over: "1"/"0" (cooperate/defect) or each whole amount."""
        if self.numeric:
            return [str(i) for i in range(int(self.scale) + 1)]
        return ["1", "0"]

    def histogram(self, support: Sequence[str] | None = None) -> np.ndarray | None:
        """Probabilities over `support` (default: `self.support()`)."""
        support = self.support() if support is None else support
        if self.scored:
            if not self.numeric:  # score mode keys shares by action label; its rate is P(cooperate)
                return np.array([{"1": self.score, "0": 1 - self.score}.get(k, 0.0) for k in support])
            return np.array([self.distribution.get(k, 0.0) for k in support]) if self.distribution else None
        if not len(self.values):
            return None
        labels = [str(int(round(v))) for v in self.values]
        counts = np.array([labels.count(k) for k in support], dtype=float)
        return counts / counts.sum() if counts.sum() else None

    def probabilities(self) -> np.ndarray:
        """`histogram()` over this cell's own support; NaN without data, so what needs it is undefined."""
        hist = self.histogram()
        return np.full(len(self.support()), np.nan) if hist is None else hist

    def correction(self) -> float:
        """Unbiased estimate of the variance of `unit_rate` (S^2 / n on the 0-1 scale, S^2 with n - 1).

        E[(rate - x)^2] = (true rate - x)^2 + variance, so subtracting this from a squared gap makes
        it unbiased. 0 for exact scores, and for a single sample (which gives no variance estimate)."""
        n = len(self.values)
        if self.scored or n < 2:
            return 0.0
        return float(np.var(self.values / self.scale, ddof=1) / n)

    def replicates(self, times: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`times` resamples of this cell's samples: unit rates, their `correction`s and histograms.

        Exact scores do not vary. Shares are redrawn as a binomial (resampling 0/1 answers with
        replacement is one); amounts are resampled value by value."""
        hist = self.probabilities()
        if self.scored or not len(self.values):
            rate = np.nan if self.unit_rate() is None else self.unit_rate()
            return np.full(times, rate), np.zeros(times), np.tile(hist, (times, 1))
        n = len(self.values)
        if not self.numeric:
            rates = rng.binomial(n, self.values.mean(), size=times) / n
            corrections = rates * (1 - rates) / (n - 1) if n > 1 else np.zeros(times)
            return rates, corrections, np.stack([rates, 1 - rates], axis=1)
        values = self.values[rng.integers(0, n, size=(times, n))] / self.scale
        corrections = values.var(axis=1, ddof=1) / n if n > 1 else np.zeros(times)
        size = int(self.scale) + 1
        labels = np.clip(np.round(values * self.scale), 0, size - 1).astype(int) + size * np.arange(times)[:, None]
        counts = np.bincount(labels.ravel(), minlength=size * times).reshape(times, size)
        return values.mean(axis=1), corrections, counts / n


def paper_improvement(base: float | None, student: float | None, teacher: float | None) -> float | None:
    """(base - student) / (base - teacher) x 100, the paper's per-cell metric; None when undefined."""
    if None in (base, student, teacher) or math.isclose(base, teacher, abs_tol=1e-12):  # type: ignore[arg-type]
        return None
    return 100.0 * (base - student) / (base - teacher)  # type: ignore[operator]


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
    with warnings.catch_warnings():  # flat profiles are refused above; nothing scipy warns of is news here
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(stats.pearsonr(xs, ys).statistic)


def within_context_deviations(contexts: Sequence[str], rates: Sequence[float]) -> tuple[list[int], list[float]]:
    """Each rate minus the mean of its context's rates, for contexts with two or more cells.

    Returns the positions kept and their deviations: a context's level is taken out, so what is
    left is how its games differ from one another (a one-cell context has no such difference)."""
    groups: dict[str, list[int]] = {}
    for i, context in enumerate(contexts):
        groups.setdefault(context, []).append(i)
    kept = sorted(i for members in groups.values() if len(members) > 1 for i in members)
    means = {c: float(np.mean([rates[i] for i in members])) for c, members in groups.items()}
    return kept, [rates[i] - means[contexts[i]] for i in kept]


def game_profile_correlation(contexts: Sequence[str], role: Sequence[float], teacher: Sequence[float]) -> float | None:
    """Pearson r of a role's and the teacher's within-context deviations: did it learn the teacher's
    differences between games, not just its level? None with < 3 usable cells or a flat profile."""
    kept, role_dev = within_context_deviations(contexts, role)
    _, teacher_dev = within_context_deviations(contexts, teacher)
    return correlation(role_dev, teacher_dev) if kept else None


def _flat(values: Sequence[float]) -> bool:
    """True when the values differ by no more than float rounding of their size."""
    arr = np.asarray(values, dtype=float)
    return float(np.ptp(arr)) <= 1e-9 * max(1.0, float(np.max(np.abs(arr))))
