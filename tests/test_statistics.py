"""Split statistics of schema 2 (issue 14, items 5-7): the bias-corrected gap estimator, the cell
bootstrap, KL closed, the game-profile r, the constant baseline, trust below few samples, the
simulation, schema versions, and the report, console and behaviour card that show them."""

from __future__ import annotations

import itertools
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from tomdistill.cli import main
from tomdistill.evaluate import load_report, save_report
from tomdistill.evaluate.cluster import MIN_TRUSTED_SAMPLES, observed, split_estimates, squared_gaps
from tomdistill.evaluate.compute import evaluate
from tomdistill.evaluate.observations import CellKey
from tomdistill.evaluate.plots import _error_bars, sample_label
from tomdistill.evaluate.schema import SCHEMA_VERSION, EvalReport, Rate, Source
from tomdistill.evaluate.simulate import simulate
from tomdistill.evaluate.stats import Observations, game_profile_correlation

from badinput import run_bad

ROOT = Path(__file__).parent.parent
V1_EVAL = Path(__file__).parent / "data" / "eval-schema1.json"  # an eval.json written by tomdistill before schema 2
CONTEXTS = ("a", "b", "c", "d", "e")
GAMES = ("prisoners_dilemma", "prisoners_delight", "stag_hunt", "snowdrift")
#: The teacher's known pattern: a level per context plus an effect per game.
LEVELS = (0.3, 0.4, 0.5, 0.6, 0.7)
EFFECTS = (-0.15, 0.05, 0.1, 0.0)


exact, shares = Observations.exact, Observations.shares


def teacher_rates() -> list[float]:
    return [level + effect for level in LEVELS for effect in EFFECTS]


def run_eval(teacher: list[Observations], base: list[Observations], student: list[Observations], *,
             split: str = "train", bootstrap: int = 300) -> EvalReport:
    """Evaluate cells laid out as CONTEXTS x GAMES (as many as given) in one split."""
    keys = [CellKey(split, c, g) for c in CONTEXTS for g in GAMES][: len(teacher)]
    data = {role: dict(zip(keys, obs)) for role, obs in (("teacher", teacher), ("base", base), ("student", student))}
    return evaluate(data, [Source(role=r, records="constructed") for r in ("teacher", "base", "student")],  # type: ignore[arg-type]
                    bootstrap=bootstrap, seed=1)


# --- the estimator --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 4, 30])
def test_the_squared_gap_is_unbiased_where_the_plug_in_is_not(n: int) -> None:
    """Exact expectation over every outcome of n teacher samples at p, against an exact base."""
    p, b = 0.3, 0.8
    base = observed([exact(b)], 2)
    corrected = plug_in = 0.0
    for k in range(n + 1):
        weight = binom.pmf(k, n, p)
        corrected += weight * squared_gaps(base, observed([shares(k, n)], 2))[0, 0]
        plug_in += weight * (k / n - b) ** 2
    assert corrected == pytest.approx((p - b) ** 2, abs=1e-12)
    assert plug_in - (p - b) ** 2 == pytest.approx(p * (1 - p) / n)  # the noise the correction takes off


def test_the_squared_gap_is_unbiased_with_two_sampled_roles_and_amounts() -> None:
    # Two sampled shares: teacher 3 samples at 0.6, student 2 samples at 0.2.
    expected = sum(binom.pmf(i, 3, 0.6) * binom.pmf(j, 2, 0.2)
                   * squared_gaps(observed([shares(j, 2)], 2), observed([shares(i, 3)], 2))[0, 0]
                   for i in range(4) for j in range(3))
    assert expected == pytest.approx((0.6 - 0.2) ** 2, abs=1e-12)
    # Amounts (0-10 dollars, on a 0-1 scale): 3 samples from {0: 0.2, 5: 0.5, 10: 0.3} against an exact 2.
    law = {0.0: 0.2, 5.0: 0.5, 10.0: 0.3}
    base = observed([Observations(numeric=True, scale=10.0, distribution={"2": 1.0}, score=2.0)], 11)
    expected = 0.0
    for draw in itertools.product(law, repeat=3):
        obs = Observations(numeric=True, scale=10.0, values=np.array(draw))
        expected += np.prod([law[v] for v in draw]) * squared_gaps(base, observed([obs], 11))[0, 0]
    mean = sum(v * w for v, w in law.items()) / 10
    assert expected == pytest.approx((mean - 0.2) ** 2, abs=1e-12)


@pytest.mark.parametrize(("low_n", "keys"), [(2, ("gap_closed",)), (MIN_TRUSTED_SAMPLES, ("gap_closed", "kl_closed"))],
                         ids=["tiny-samples", "trusted-samples"])
def test_the_interval_contains_the_estimate_on_random_small_datasets(low_n: int, keys: tuple[str, ...]) -> None:
    # gap_closed's interval holds its estimate at any n. KL closed's can miss it below the trusted
    # sample size (2 of 1,172 random datasets with 2-11 samples per sampled rate, none of 1,381
    # with 30-59): such splits are marked interval_trusted = false.
    rng = np.random.default_rng(7)
    checked = dict.fromkeys(keys, 0)
    for _ in range(250):
        cells = []
        for _ in range(int(rng.integers(2, 7))):  # one cell gets no interval (see below)
            roles = []
            for _ in range(3):
                rate, n = rng.uniform(0.05, 0.95), int(rng.integers(low_n, low_n + 10))
                roles.append(exact(rate) if rng.random() < 0.5 else shares(int(rng.binomial(n, rate)), n))
            cells.append(tuple(roles))
        est = split_estimates(cells, [0.5] * len(cells), 200, rng)
        for key in checked:
            value, ci = getattr(est, key), getattr(est, f"{key}_ci")
            if ci is not None:
                checked[key] += 1
                assert ci[0] <= value <= ci[1], (key, value, ci)
    assert min(checked.values()) > 40  # enough datasets had an interval for the check to mean something


def test_one_cell_gets_no_cell_bootstrap_interval() -> None:
    # Resampling one cell can only pick it again: no interval about the choice of cells.
    rng = np.random.default_rng(1)
    for teacher in (exact(0.5), shares(3, 10)):
        est = split_estimates([(teacher, exact(0.9), exact(0.6))], [0.5], 200, rng)
        assert est.gap_closed is not None and est.gap_closed_ci is None and est.kl_closed_ci is None


# --- distribution metrics, profile, baseline ------------------------------------------------------


def test_kl_closed_and_cross_entropy_on_a_known_case() -> None:
    report = run_eval([exact(0.5)], [exact(0.9)], [exact(0.6)])
    split = report.splits["train"]

    def kl(q: float) -> float:
        return 0.5 * np.log(0.5 / q) + 0.5 * np.log(0.5 / (1 - q))

    assert split.kl_closed == pytest.approx(100 * (1 - kl(0.6) / kl(0.9)))
    assert split.cross_entropy_base == pytest.approx(-(0.5 * np.log(0.9) + 0.5 * np.log(0.1)))
    assert split.cross_entropy_student == pytest.approx(-(0.5 * np.log(0.6) + 0.5 * np.log(0.4)))
    assert split.gap_closed == pytest.approx(100 * (1 - 0.1**2 / 0.4**2))
    assert split.kl_closed_ci is None  # one cell: no interval about the choice of cells
    assert split.beats_baseline is None  # a single cell decides nothing


def test_game_profile_correlation_on_a_known_pattern() -> None:
    contexts = [c for c in CONTEXTS for _ in GAMES]
    teacher = teacher_rates()
    # Another level per context, the same game differences (halved): r = 1.
    same = [0.9 - level + effect / 2 for level in LEVELS for effect in EFFECTS]
    reversed_ = [0.5 - effect for _ in LEVELS for effect in EFFECTS]
    level_only = [level for level in LEVELS for _ in EFFECTS]
    assert game_profile_correlation(contexts, same, teacher) == pytest.approx(1.0)
    assert game_profile_correlation(contexts, reversed_, teacher) == pytest.approx(-1.0)
    assert game_profile_correlation(contexts, level_only, teacher) is None  # no differences between games
    assert game_profile_correlation(["a", "b", "c"], [0.1, 0.5, 0.9], [0.2, 0.4, 0.8]) is None  # one cell per context
    # The level-profile r across all cells mixes in the context levels; the game-profile r does not.
    report = run_eval([exact(r) for r in teacher], [exact(r) for r in level_only], [exact(r) for r in same])
    split = report.splits["train"]
    assert split.game_profile_correlation_student == pytest.approx(1.0) and split.game_profile_correlation_base is None
    assert split.profile_correlation_base > 0.8  # level alone looks like a good profile


def _baseline_case(student: list[float]) -> EvalReport:
    return run_eval([exact(r) for r in teacher_rates()], [exact(0.9)] * 20, [exact(r) for r in student])


def test_a_student_equal_to_the_teacher_beats_the_baseline() -> None:
    split = _baseline_case(teacher_rates()).splits["train"]
    mean = float(np.mean(teacher_rates()))
    expected = 100 * (1 - sum((mean - t) ** 2 for t in teacher_rates()) / sum((0.9 - t) ** 2 for t in teacher_rates()))
    assert split.gap_closed == pytest.approx(100.0) and split.gap_closed_baseline == pytest.approx(expected)
    assert split.interval_trusted is True and split.samples_min is None  # all exact
    assert split.beats_baseline is True


def test_a_constant_student_at_the_teacher_mean_does_not_beat_it_and_the_base_loses() -> None:
    mean = float(np.mean(teacher_rates()))
    constant = _baseline_case([mean] * 20).splits["train"]
    assert constant.gap_closed == pytest.approx(constant.gap_closed_baseline) and constant.beats_baseline is None
    assert constant.game_profile_correlation_student is None
    like_base = _baseline_case([0.9] * 20).splits["train"]
    assert like_base.gap_closed == pytest.approx(0.0) and like_base.beats_baseline is False


def test_the_baseline_takes_the_train_mean_into_held_out_splits_and_is_null_without_one() -> None:
    teacher = teacher_rates()
    keys = [CellKey("train", c, g) for c in CONTEXTS for g in GAMES] + [CellKey("heldout_context", "x", g) for g in GAMES]
    rates = {"teacher": teacher + [0.1, 0.2, 0.3, 0.4], "base": [0.9] * 24, "student": teacher + [0.9] * 4}
    data = {role: {k: exact(r) for k, r in zip(keys, rates[role])} for role in rates}
    sources = [Source(role=r, records="constructed") for r in rates]  # type: ignore[arg-type]
    held = evaluate(data, sources, bootstrap=100).splits["heldout_context"]  # type: ignore[arg-type]
    mean = float(np.mean(teacher))
    expected = 100 * (1 - sum((mean - t) ** 2 for t in (0.1, 0.2, 0.3, 0.4)) / sum((0.9 - t) ** 2 for t in (0.1, 0.2, 0.3, 0.4)))
    assert held.gap_closed_baseline == pytest.approx(expected)
    no_train = run_eval([exact(0.2), exact(0.3)], [exact(0.9)] * 2, [exact(0.5)] * 2, split="heldout_game")
    assert no_train.splits["heldout_game"].gap_closed_baseline is None
    assert no_train.splits["heldout_game"].beats_baseline is None


def test_few_samples_make_the_interval_untrusted_and_nothing_significant() -> None:
    rng = np.random.default_rng(3)
    few = [shares(int(rng.binomial(4, r)), 4) for r in teacher_rates()]
    split = run_eval(few, [exact(0.9)] * 20, [exact(r) for r in teacher_rates()]).splits["train"]
    assert split.samples_min == 4 < MIN_TRUSTED_SAMPLES
    assert split.interval_trusted is False and split.beats_baseline is None
    many = [shares(int(rng.binomial(300, r)), 300) for r in teacher_rates()]
    split = run_eval(many, [exact(0.9)] * 20, [exact(r) for r in teacher_rates()]).splits["train"]
    assert split.samples_min == 300 and split.interval_trusted is True and split.beats_baseline is True


# --- the simulation -------------------------------------------------------------------------------


def test_the_simulation_covers_from_n_30_with_little_bias() -> None:
    row = simulate(30, reps=200, bootstrap=200, seed=5)
    assert 0.85 <= row.coverage <= 0.99, row
    assert abs(row.bias) < 2.0 and row.sd > 0, row  # points of gap closed
    assert row.no_estimate == 0 and row.no_interval < 0.02
    assert row.plug_in_bias < -2.0  # what the correction is for: schema 1's absolute gaps shrank the estimate
    few = simulate(4, reps=40, bootstrap=200, seed=5)  # below MIN_TRUSTED_SAMPLES no interval holds
    assert few.coverage < 0.9 and few.plug_in_bias < -10.0, few


# --- schema versions ------------------------------------------------------------------------------


def test_schema_2_round_trips(tmp_path: Path) -> None:
    report = _baseline_case(teacher_rates())
    path = save_report(report, tmp_path / "eval.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION == 2 and data["min_trusted_samples"] == MIN_TRUSTED_SAMPLES
    split = data["splits"]["train"]
    for key in ("cross_entropy_base", "cross_entropy_student", "kl_closed", "kl_closed_ci", "game_profile_correlation_base",
                "game_profile_correlation_student", "gap_closed_baseline", "beats_baseline", "samples_min",
                "interval_trusted"):
        assert key in split
    assert load_report(path) == report


def test_a_schema_1_file_still_loads_and_says_so(tmp_path: Path, capsys) -> None:
    report = load_report(V1_EVAL)
    assert report.schema_version == 1 and report.splits["train"].kl_closed is None
    out = tmp_path / "rep"
    assert main(["report", str(V1_EVAL), "--out", str(out)]) == 0
    assert "schema version 1" in (out / "report.md").read_text() and "schema version 1" in capsys.readouterr().out


@pytest.mark.parametrize("version", [0, 3])
def test_an_unknown_schema_version_is_one_line(version: int, tmp_path: Path, capsys) -> None:
    data = json.loads(V1_EVAL.read_text())
    data["schema_version"] = version
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(data))
    run_bad(["report", str(path), "--out", str(tmp_path / "rep")], f"schema version {version} is not one this tomdistill reads",
            capsys, watch=tmp_path)


# --- what the reader sees -------------------------------------------------------------------------


def _render(report: EvalReport, tmp_path: Path, capsys) -> tuple[str, str]:
    path = save_report(report, tmp_path / "eval.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["report", str(path), "--out", str(tmp_path / "rep")]) == 0
    return (tmp_path / "rep" / "report.md").read_text(), capsys.readouterr().out


def test_the_report_leads_with_the_new_measures(tmp_path: Path, capsys) -> None:
    report = _baseline_case(teacher_rates())
    report.temperature = 0.8
    markdown, console = _render(report, tmp_path, capsys)
    header = next(line for line in markdown.splitlines() if line.startswith("| split |"))
    assert header.index("gap closed") < header.index("baseline") < header.index("KL closed") < header.index("paper metric (this run)")
    row = next(line for line in markdown.splitlines() if line.startswith("| train |"))
    split = report.splits["train"]
    assert f"{split.gap_closed:.1f}% [" in row and f"{split.gap_closed_baseline:.1f}%" in row and "| yes |" in row
    assert "1.00 / –" in row  # the base's flat profile has no r: printed as a dash
    assert "Temperature: 0.8" in markdown and "Temperature: 0.8" in console
    assert "(exact)" in markdown and "(n=1)" not in markdown
    for png in (tmp_path / "rep").glob("*.png"):
        from PIL import Image

        assert round(Image.open(png).info["dpi"][0]) >= 150


def test_the_report_says_when_an_interval_is_not_trusted(tmp_path: Path, capsys) -> None:
    few = [shares(c, 4) for c in (1, 2, 3, 1) * 5]
    report = run_eval(few, [exact(0.9)] * 20, [exact(0.5)] * 20)
    markdown, console = _render(report, tmp_path, capsys)
    assert "not trustworthy" in markdown and "4 (too few)" in markdown and f"4<{MIN_TRUSTED_SAMPLES}" in console


def test_plots_label_exact_rates_and_draw_no_empty_error_bars() -> None:
    exact_rate = Rate(value=50.0, n=1, source="score")
    sampled_rate = Rate(value=50.0, n=4, low=20.0, high=80.0, source="samples")
    assert sample_label([exact_rate, exact_rate]) == "exact"
    assert sample_label([sampled_rate, Rate(value=1.0, n=3, low=0.0, high=5.0, source="samples")]) == "n=3-4"
    assert sample_label([exact_rate, sampled_rate]) == "exact / n=4"
    where, values, ends = _error_bars([exact_rate, sampled_rate, exact_rate], np.arange(3.0))
    assert list(where) == [1.0] and list(values) == [50.0] and ends.tolist() == [[30.0], [30.0]]


def test_the_behaviour_card_carries_the_new_measures(tmp_path: Path) -> None:
    from tomdistill.agents.export import behaviour_from_eval, behaviour_markdown

    report = _baseline_case(teacher_rates())
    report.temperature = 0.8
    card = behaviour_from_eval(report, tmp_path / "eval.json")
    split = card["splits"]["train"]
    assert card["temperature"] == 0.8 and card["eval_schema_version"] == 2
    assert split["beats_baseline"] is True and split["kl_closed"] == report.splits["train"].kl_closed
    assert split["game_profile_correlation_agent"] == pytest.approx(1.0)
    md = behaviour_markdown("agent", card, report)
    assert "Temperature: 0.8" in md and re.search(r"\| train \| 20 \| 100\.0% \[100\.0, 100\.0\] \| [0-9.]+% \| yes \|", md)
