"""Evaluation: the paper's headline from its own counts, statistics, inputs and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tomdistill.cli import main
from tomdistill.elicit import elicit
from tomdistill.errors import TomdistillError
from tomdistill.evaluate import evaluate_records, evaluate_runs, load_report
from tomdistill.evaluate.cluster import split_estimates
from tomdistill.evaluate.paper import PAPER_COUNTS, write_paper_records
from tomdistill.evaluate.stats import Observations, holm, jsd, paper_improvement
from tomdistill.models.base import SamplingSettings
from tomdistill.models.registry import load_model


@pytest.fixture(scope="module")
def paper_csv(tmp_path_factory):
    return write_paper_records(tmp_path_factory.mktemp("paper") / "paper.csv")


def test_paper_headline_from_its_counts(library, paper_csv) -> None:
    report = evaluate_records(paper_csv, library, bootstrap=200)
    train = report.splits["train"]
    assert len(train.cells) == 20 and train.paper_improvement_cells == 20
    # Counts over 300: 46.3% (the paper prints 46.6% from rates whose valid totals it does not give).
    assert train.paper_improvement_mean == pytest.approx(46.26, abs=0.01)
    by_cell = {c.scenario: c for c in train.cells}
    assert by_cell["team/prisoners_delight"].paper_improvement == pytest.approx(200.0)  # the paper's unstable cell
    ir_pd = by_cell["IR/prisoners_dilemma"]
    assert (ir_pd.teacher.value, ir_pd.base.value, ir_pd.student.value) == pytest.approx((77 / 3, 254 / 3, 221 / 3))
    assert ir_pd.teacher.n == 300 and ir_pd.teacher.low < ir_pd.teacher.value < ir_pd.teacher.high
    assert 0 < train.gap_closed < 100
    low, high = train.gap_closed_ci
    assert low < train.gap_closed < high


def test_paper_headline_through_the_cli(paper_csv, tmp_path, capsys) -> None:
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--records", str(paper_csv), "--out", str(out), "--bootstrap", "100"]) == 0
    data = json.loads(out.read_text())
    assert round(data["splits"]["train"]["paper_improvement_mean"], 1) == 46.3
    assert data["schema_version"] == 2
    # The console rounds to whole percent (to fit 80 columns); the paper metric is the last but one column.
    row = next(line.split() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("train "))
    assert row[-2:] == ["46", "300"]


def gap_closed(triples: list[tuple[float, float, float]]) -> float | None:
    """Gap closed of exact (teacher, base, student) rates."""
    return split_estimates([tuple(Observations.exact(r) for r in cell) for cell in triples], None, 0, np.random.default_rng(0)).gap_closed


def test_hand_computed_statistics() -> None:
    assert paper_improvement(0.8, 0.6, 0.4) == pytest.approx(50.0)
    assert paper_improvement(0.5, 0.4, 0.5) is None
    # Squared gaps since schema 2 (schema 1 summed absolute gaps and read 50% here): 1 - 0.2^2 / 0.4^2.
    assert gap_closed([(0.4, 0.8, 0.6), (0.2, 0.2, 0.2)]) == pytest.approx(75.0)
    assert gap_closed([(0.4, 0.4, 0.3)]) is None
    assert holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    same = Observations(numeric=False, values=np.array([1.0, 0.0]))
    other = Observations(numeric=False, values=np.array([1.0, 1.0]))
    assert jsd(same, same, ["1", "0"]) == pytest.approx(0.0)
    assert 0 < jsd(same, other, ["1", "0"]) < 1
    wilson = same.interval()
    assert wilson[0] < 0.5 < wilson[1]


def test_runs_in_the_store_including_score_mode_and_donations(store, library, tmp_path, capsys) -> None:
    scenarios = library.scenarios("train")[:4] + library.scenarios("heldout_pgg") + library.scenarios("heldout_context")[:3]
    at_one = SamplingSettings(temperature=1.0)  # so the mock's rates are the scores
    elicit(store, load_model("mock:rate=0.2"), scenarios, run_name="t", samples=20, protocol="motivated",
           settings=at_one)
    elicit(store, load_model("mock:rate=0.9"), scenarios, run_name="b", mode="score", settings=at_one)
    elicit(store, load_model("mock:rate=0.5"), scenarios, run_name="s", mode="score", settings=at_one)
    report = evaluate_runs(store, {"teacher": "t", "base": "b", "student": "s"}, library, bootstrap=200)
    assert report.temperature == 1.0 and {s.temperature for s in report.sources} == {1.0}
    assert list(report.splits) == ["train", "heldout_context", "heldout_pgg"]
    pgg = report.splits["heldout_pgg"].cells[0]
    assert pgg.unit == "dollars" and pgg.base.source == "score" and pgg.teacher.source == "samples"
    train = report.splits["train"]
    cell = train.cells[0]
    assert cell.base.value == pytest.approx(90.0) and cell.student.value == pytest.approx(50.0)
    assert cell.base.low is None and cell.student_vs_base.p_value is None  # no sampling noise in score mode
    expected = (90 - 50) / (90 - cell.teacher.value) * 100
    assert cell.paper_improvement == pytest.approx(expected)
    assert train.gap_closed_ci[0] <= train.gap_closed <= train.gap_closed_ci[1]
    out = tmp_path / "e.json"
    db = str(store.path)
    assert main(["evaluate", "--teacher", "t", "--base", "b", "--student", "s", "--store", db, "--out", str(out)]) == 0
    assert load_report(out).splits["train"].paper_improvement_mean == pytest.approx(train.paper_improvement_mean)


BAD_RECORDS = [
    ("", "empty"),
    ("role,split,context,game,answer\nboss,train,IR,stag_hunt,C\n", "line 2: unknown role 'boss'"),
    ("role,split,context,game,answer\nteacher,train,IR,poker,C\n", "line 2: unknown game 'poker'"),
    ("role,split,context,game,answer\nteacher,train,IR,stag_hunt,X\n", "line 2: answer 'X' is not a valid answer"),
    ("role,split,context,game\nteacher,train,IR,stag_hunt\n", "line 2: needs an 'answer' or a 'text' column"),
    ("role,context,game,answer\nteacher,IR,stag_hunt,C\n", "line 1: missing columns: split"),
    ("role,split,context,game,answer\nteacher,train,IR,stag_hunt,C\nbase,test,IR,stag_hunt,D\n", "line 3: cell IR/stag_hunt appears in splits"),
    ("role,split,context,game,answer\nteacher,,IR,stag_hunt,C\n", "line 2: 'split' is empty"),
]


@pytest.mark.parametrize(("text", "message"), BAD_RECORDS)
def test_bad_records(library, tmp_path, text, message) -> None:
    path = tmp_path / "r.csv"
    path.write_text(text)
    with pytest.raises(TomdistillError, match=message):
        evaluate_records(path, library)


def test_jsonl_records_with_raw_text(library, tmp_path) -> None:
    rows = []
    for role, text in (("teacher", "I pick D"), ("base", "C"), ("student", "Answer: C\nMotivation: x")):
        rows += [{"role": role, "split": "train", "context": "x", "game": "snowdrift", "text": text}] * 4
    rows.append({"role": "student", "split": "train", "context": "x", "game": "snowdrift", "text": "C or D"})
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    with pytest.raises(TomdistillError, match="line 14: not valid JSON"):
        evaluate_records(path, library)
    path.write_text("\n".join(json.dumps(r) for r in rows))
    cell = evaluate_records(path, library).splits["train"].cells[0]
    assert (cell.teacher.value, cell.base.value, cell.student.value) == (0.0, 100.0, 100.0)
    assert cell.student.invalid == 1 and cell.student.n == 4
    assert cell.paper_improvement == pytest.approx(0.0)


def test_paper_counts_table_is_complete() -> None:
    assert len(PAPER_COUNTS) == 5 and all(len(v) == 4 for v in PAPER_COUNTS.values())


def test_report_files(library, paper_csv, tmp_path, capsys) -> None:
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--records", str(paper_csv), "--out", str(out), "--bootstrap", "50"]) == 0
    assert main(["report", str(out), "--out", str(tmp_path / "rep")]) == 0
    rep = tmp_path / "rep"
    names = {p.name for p in rep.iterdir()}
    assert {"report.md", "report.html", "improvement.png", "cells_train.png", "heatmap_train.png"} <= names
    for png in rep.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 200_000
    markdown = (rep / "report.md").read_text()
    assert "![heatmap train](heatmap_train.png)" in markdown and "| IR/prisoners_dilemma |" in markdown
    html = (rep / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "<table>" in html and "src=\"heatmap" not in html


def test_cli_evaluate_input_errors(tmp_path, capsys) -> None:
    assert main(["evaluate", "--teacher", "t", "--out", str(tmp_path / "e.json")]) == 2
    assert "missing --base, --student" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1}')
    assert main(["report", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "not a valid eval.json" in capsys.readouterr().err


def test_runs_at_other_temperatures_or_an_older_scoring_are_not_compared(store, library) -> None:
    scenarios = library.scenarios("train")[:2]
    elicit(store, load_model("mock:rate=0.2"), scenarios, run_name="t", samples=4)  # sampled at 0.8
    elicit(store, load_model("mock:rate=0.9"), scenarios, run_name="b", mode="score")  # scored at 0.8
    elicit(store, load_model("mock:rate=0.5"), scenarios, run_name="s1", mode="score",
           settings=SamplingSettings(temperature=1.0))
    with pytest.raises(TomdistillError, match=r"different temperatures \(teacher 0.8 \(t\), base 0.8 \(b\), student 1 \(s1\)\)"):
        evaluate_runs(store, {"teacher": "t", "base": "b", "student": "s1"}, library, bootstrap=10)
    elicit(store, load_model("mock:rate=0.5"), scenarios, run_name="s", mode="score")
    assert evaluate_runs(store, {"teacher": "t", "base": "b", "student": "s"}, library, bootstrap=10).temperature == 0.8
    # A score run from before scoring version 2 stored no temperature (it was computed at 1).
    store.conn.execute("UPDATE runs SET settings = '{}' WHERE name = 's'")
    store.conn.commit()
    with pytest.raises(TomdistillError, match="run 's' was scored by an older tomdistill .scoring version 1"):
        evaluate_runs(store, {"teacher": "t", "base": "b", "student": "s"}, library, bootstrap=10)
