"""How well the split estimates and their intervals hold, measured by simulation.

Run `python -m tomdistill.evaluate.simulate` for the table in docs/statistics.md. Each simulated
dataset draws 20 cells from a known population of true rates, then the teacher's answers (n per
cell, sampled) while base and student are exact scores, and evaluates them with the same code as
`tomdistill evaluate` (cluster.split_estimates). Reported per n:

- bias and sd of gap closed against the 20-cell value: 1 - sum (s - t)^2 / sum (b - t)^2 of the
  drawn cells' true rates (the quantity the data describe, conditional on the cells);
- coverage of the 95% interval for the population value: the same ratio with expectations over
  the population of cells, which is what a cell bootstrap's interval is an interval for;
- coverage of the 20-cell value too, for comparison: as n grows the estimate stops varying given
  the cells, while the interval keeps the width of the cell-to-cell spread, so this tends to 100%.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .cluster import split_estimates
from .stats import Observations

#: n per cell of the sampled teacher in the documented table.
SAMPLE_SIZES = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 50, 100, 300)


@dataclass(frozen=True)
class Population:
    """True rates of a cell: teacher ~ Beta(a, b); base ~ Beta(a_base, b_base), independent; the
    student moves `pull` of the way from its base toward the teacher, plus normal noise (sd `spread`)."""

    teacher: tuple[float, float] = (4.0, 4.0)
    base: tuple[float, float] = (8.0, 3.0)
    pull: float = 0.5
    spread: float = 0.05

    def draw(self, rng: np.random.Generator, cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = rng.beta(*self.teacher, size=cells)
        b = rng.beta(*self.base, size=cells)
        s = np.clip(t + (1 - self.pull) * (b - t) + rng.normal(0, self.spread, size=cells), 0.001, 0.999)
        return t, b, s

    def gap_closed(self, draws: int = 2_000_000, seed: int = 12345) -> float:
        """The population value, 1 - E(s - t)^2 / E(b - t)^2, by Monte Carlo (sd about 0.02 points)."""
        t, b, s = self.draw(np.random.default_rng(seed), draws)
        return float(100 * (1 - np.mean((s - t) ** 2) / np.mean((b - t) ** 2)))


@dataclass
class Row:
    n: int
    bias: float  #: mean(estimate - 20-cell value) over datasets with an estimate, points
    sd: float  #: sd of the estimate, points
    coverage: float  #: share of datasets whose interval contains the population value (no interval: a miss)
    coverage_cells: float  #: share of datasets whose interval contains the 20-cell value
    width: float  #: mean interval width, points
    no_estimate: float  #: share of datasets without an estimate (no base-teacher gap left after correction)
    no_interval: float  #: share of datasets without an interval (too many undefined replicates)
    plug_in_bias: float  #: the same bias for schema 1's plug-in 1 - sum|s - t| / sum|b - t| (its own 20-cell value)


def simulate(n: int, *, reps: int = 1000, bootstrap: int = 1000, cells: int = 20, seed: int = 0,
             population: Population | None = None, truth: float | None = None, within: bool = True) -> Row:
    """`reps` simulated datasets with the teacher sampled n times per cell (`within=False`: the
    bootstrap resamples cells only, keeping their answers)."""
    population = population or Population()
    truth = population.gap_closed() if truth is None else truth
    rng = np.random.default_rng(seed)
    errors, estimates, hits, hits_cells, widths, plug_in = [], [], [], [], [], []
    for _ in range(reps):
        t, b, s = population.draw(rng, cells)
        data = [(Observations.shares(int(rng.binomial(n, ti)), n), Observations.exact(bi), Observations.exact(si))
                for ti, bi, si in zip(t, b, s)]
        result = split_estimates(data, None, bootstrap, rng, within=within)
        value = 100 * (1 - np.sum((s - t) ** 2) / np.sum((b - t) ** 2))
        rates = np.array([cell[0].unit_rate() for cell in data])
        if np.sum(np.abs(b - rates)) > 0:
            plug_in.append(100 * (np.sum(np.abs(s - t)) / np.sum(np.abs(b - t))
                                  - np.sum(np.abs(s - rates)) / np.sum(np.abs(b - rates))))
        if result.gap_closed is not None:
            estimates.append(result.gap_closed)
            errors.append(result.gap_closed - value)
        low, high = result.gap_closed_ci or (np.nan, np.nan)
        hits.append(low <= truth <= high)
        hits_cells.append(low <= value <= high)
        if result.gap_closed_ci:
            widths.append(high - low)
    return Row(n, _mean(errors), float(np.std(estimates)) if estimates else np.nan, float(np.mean(hits)),
               float(np.mean(hits_cells)), _mean(widths), 1 - len(estimates) / reps, 1 - len(widths) / reps,
               _mean(plug_in))


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else np.nan


def trusted_from(rows: Sequence[Row], floor: float = 0.90) -> int | None:
    """The smallest n from which coverage of the population value stays at `floor` or above."""
    trusted = None
    for row in sorted(rows, key=lambda r: r.n, reverse=True):
        if not row.coverage >= floor:
            break
        trusted = row.n
    return trusted


HEADER = ("   n   bias     sd  coverage  coverage(drawn cells)  width  no estimate  no interval  plug-in bias\n"
          "----  -----  -----  --------  ---------------------  -----  -----------  -----------  ------------")


def table_row(r: Row) -> str:
    return (f"{r.n:4d}  {r.bias:+5.1f}  {r.sd:5.1f}  {100 * r.coverage:7.1f}%  {100 * r.coverage_cells:20.1f}%  "
            f"{r.width:5.1f}  {100 * r.no_estimate:10.1f}%  {100 * r.no_interval:10.1f}%  {r.plug_in_bias:+12.1f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tomdistill.evaluate.simulate", description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000, help="simulated datasets per n (default 1000)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates per dataset (default 1000)")
    parser.add_argument("--cells", type=int, default=20, help="cells per dataset (default 20)")
    parser.add_argument("--n", type=int, nargs="+", default=list(SAMPLE_SIZES), help="teacher samples per cell")
    parser.add_argument("--teacher", type=float, nargs=2, default=Population.teacher, metavar=("A", "B"),
                        help="Beta(A, B) of the teacher's true rates (default 4 4)")
    parser.add_argument("--base", type=float, nargs=2, default=Population.base, metavar=("A", "B"),
                        help="Beta(A, B) of the base's true rates (default 8 3)")
    parser.add_argument("--cells-only", action="store_true",
                        help="resample cells only, keeping each drawn cell's answers (not what evaluate does)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    population = Population(teacher=tuple(args.teacher), base=tuple(args.base))
    truth = population.gap_closed()
    print(f"population: teacher ~ Beta{population.teacher}, base ~ Beta{population.base}, student = teacher + "
          f"{1 - population.pull:g} x (base - teacher) + N(0, {population.spread:g}); base and student exact")
    print(f"population gap closed {truth:.2f}%; {args.cells} cells, {args.reps} datasets per n, "
          f"{args.bootstrap} bootstrap replicates{' of cells only' if args.cells_only else ''}, seed {args.seed}")
    print(f"bias, sd, width in points of gap closed; bias against the {args.cells} drawn cells' true value; coverage "
          "of the 95% interval for the population value (and for the drawn cells' value), no interval counting as a miss\n")
    print(HEADER)
    rows = []
    for n in args.n:
        rows.append(simulate(n, reps=args.reps, bootstrap=args.bootstrap, cells=args.cells, seed=args.seed + n,
                             population=population, truth=truth, within=not args.cells_only))
        print(table_row(rows[-1]), flush=True)
    threshold = trusted_from(rows)
    print("\ncoverage of the population value is " + (f"90% or more from n = {threshold} on" if threshold else
                                                      "below 90% at the largest n"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
