"""`tomdistill report` renders every eval.json that `evaluate` can write, escapes user text in
report.html, and never writes over a file or folder of the user's (issue 13, items 3 and 11).

Every eval.json here comes from the real `evaluate` command, on a records file or on mock runs.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from tomdistill.cli import main
from tomdistill.elicit import elicit
from tomdistill.evaluate import load_report
from tomdistill.evaluate.schema import EvalReport
from tomdistill.models.base import ModelOptions
from tomdistill.models.registry import load_model
from tomdistill.scenarios import load_library
from tomdistill.store import Store

from badinput import run_bad, tree_digest

PNG = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert(1)</script>"


# --- inputs: records files and mock runs -----------------------------------------------------------


def cell(split: str, context: str, game: str, **answers: list[str]) -> list[dict[str, str]]:
    """Rows of one cell: answers per role, e.g. teacher=["C", "D"]; a "text:" prefix gives a raw reply."""
    rows = []
    for role, values in answers.items():
        for value in values:
            column, text = ("text", value[5:]) if value.startswith("text:") else ("answer", value)
            rows.append({"role": role, "split": split, "context": context, "game": game, column: text})
    return rows


def write_records(path: Path, rows: list[dict[str, str]]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, ["role", "split", "context", "game", "answer", "text"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def mock_runs(store: Path, scripts: dict[str, str], *, mode: str = "sample", spec: str | None = None) -> list[str]:
    """Runs named after the roles, from mock models with these scripts; the evaluate flags that name them."""
    library = load_library()
    scenarios = library.scenarios("train")[:3] + library.scenarios("heldout_pgg")
    with Store(store) as db:
        for role, script in scripts.items():
            options = ModelOptions(extra={"spec": spec} if spec else {})
            elicit(db, load_model(f"mock:{script}", options), scenarios, run_name=role, mode=mode, samples=4)
    return ["--store", str(store), "--teacher", "teacher", "--base", "base", "--student", "student"]


PD, SH, DONATION = "prisoners_dilemma", "stag_hunt", "donation_game"


def _records(rows: list[dict[str, str]], suffix: str = ".csv") -> Callable[[Path], list[str]]:
    return lambda tmp: ["--records", str(write_records(tmp / f"records{suffix}", rows))]


def _split(report: EvalReport, name: str = "train"):
    return report.splits[name]


# Each case: how to get the evaluate arguments, a check that the eval.json really is the edge case,
# and the PNGs the report must hold.
CASES = {
    "one cell": (
        _records(cell("train", "biz", PD, teacher=["C", "D", "D"], base=["C", "C", "D"], student=["C", "D"])),
        lambda r: len(_split(r).cells) == 1 and _split(r).profile_correlation_student is None,
        {"improvement", "cells_train"},
    ),
    "base equals teacher everywhere": (
        _records(cell("train", "biz", PD, teacher=["C", "D"], base=["D", "C"], student=["C", "C"])
                 + cell("train", "IR", SH, teacher=["C"], base=["C"], student=["D"]), ".jsonl"),
        lambda r: (_split(r).paper_improvement_mean is None and _split(r).paper_improvement_cells == 0
                   and _split(r).gap_closed is None and _split(r).gap_closed_ci is None),
        {"improvement", "cells_train", "heatmap_train"},
    ),
    "a split without teacher rows": (
        _records(cell("train", "biz", PD, teacher=["C", "D"], base=["C", "C"], student=["C", "D"])
                 + cell("heldout_context", "team", PD, base=["C"], student=["D"])),
        lambda r: list(r.splits) == ["train"] and r.skipped == ["team/prisoners_dilemma"],
        {"improvement", "cells_train"},
    ),
    "a cell with only invalid answers": (
        _records(cell("train", "biz", PD, teacher=["C"], base=["text:no idea", "text:???"], student=["D"])
                 + cell("train", "IR", PD, teacher=["C"], base=["D"], student=["C"])),
        lambda r: [c.scenario for c in _split(r).cells] == ["IR/prisoners_dilemma"] and r.skipped == ["biz/prisoners_dilemma"],
        {"improvement", "cells_train"},
    ),
    "a run with only invalid answers": (
        lambda tmp: mock_runs(tmp / "s.db", {"teacher": "rate=0.2", "base": "text=no%20idea", "student": "rate=0.5"}),
        lambda r: r.splits == {} and len(r.skipped) == 4,
        set(),
    ),
    "some invalid answers": (
        _records(cell("train", "biz", PD, teacher=["C", "text:hmm"], base=["D", "text:??"], student=["C", "D"])),
        lambda r: _split(r).cells[0].base.invalid == 1 and _split(r).cells[0].base.n == 1,
        {"improvement", "cells_train"},
    ),
    "dollars only": (
        _records(cell("heldout_pgg", "community", DONATION, teacher=["5", "7"], base=["2", "3"], student=["4", "6"])),
        lambda r: {c.unit for c in _split(r, "heldout_pgg").cells} == {"dollars"},
        {"improvement", "cells_heldout_pgg"},
    ),
    "dollars and shares in one split": (
        _records(cell("train", "community", DONATION, teacher=["5"], base=["2"], student=["4"])
                 + cell("train", "biz", PD, teacher=["C"], base=["D"], student=["C"])),
        lambda r: {c.unit for c in _split(r).cells} == {"dollars", "percent"},
        {"improvement", "cells_train"},
    ),
    "no bootstrap": (
        lambda tmp: _records(cell("train", "biz", PD, teacher=["C"], base=["D"], student=["C"])
                             + cell("train", "IR", PD, teacher=["D"], base=["C"], student=["C"]))(tmp)
        + ["--bootstrap", "0"],
        lambda r: _split(r).gap_closed is not None and _split(r).gap_closed_ci is None,
        {"improvement", "cells_train", "heatmap_train"},
    ),
    "names that are markup, paths and TeX": (
        _records(cell("../up $x$ [/]", "a|b $\\frac$ [bold]", PD, teacher=["C"], base=["D"], student=["C"])
                 + cell("../up $x$ [/]", "c_d_", SH, teacher=["D"], base=["C"], student=["C"])),
        lambda r: list(r.splits) == ["../up $x$ [/]"],
        {"improvement", "cells_../up $x$ [/]", "heatmap_../up $x$ [/]"},
    ),
    "score-mode runs": (
        lambda tmp: mock_runs(tmp / "s.db", {"teacher": "rate=0.2", "base": "rate=0.8", "student": "rate=0.5"}, mode="score"),
        lambda r: (_split(r).cells[0].teacher.source == "score" and _split(r).cells[0].teacher.low is None
                   and _split(r).significant_moves is None),
        {"improvement", "cells_train", "heatmap_train", "cells_heldout_pgg"},
    ),
    "runs with base equal to teacher": (
        lambda tmp: mock_runs(tmp / "s.db", {"teacher": "rate=0.5", "base": "rate=0.5", "student": "rate=0.9"}),
        lambda r: all(s.paper_improvement_mean is None and s.gap_closed is None for s in r.splits.values()),
        {"improvement", "cells_train", "heatmap_train", "cells_heldout_pgg"},
    ),
}


def evaluate_and_report(tmp_path: Path, args: list[str]) -> tuple[EvalReport, Path]:
    eval_json, out = tmp_path / "eval.json", tmp_path / "rep"
    assert main(["evaluate", "--bootstrap", "50", *args, "--out", str(eval_json)]) == 0  # a later --bootstrap wins
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy or matplotlib warning on odd data is a defect here too
        assert main(["report", str(eval_json), "--out", str(out)]) == 0
    return load_report(eval_json), out


@pytest.mark.parametrize("case", list(CASES))
def test_report_renders_every_evaluation(case: str, tmp_path: Path, capsys) -> None:
    make_args, is_edge_case, plots = CASES[case]
    report, out = evaluate_and_report(tmp_path, make_args(tmp_path))
    assert is_edge_case(report), report.model_dump_json(indent=1)
    markdown, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    images = re.findall(r"!\[((?:\\.|[^\]\\])*)\]\(([^)]*)\)", markdown)
    assert {re.sub(r"\\(.)", r"\1", alt).replace(" ", "_", 1) for alt, _ in images} == plots
    for _, name in images:
        assert (out / name).read_bytes()[:8] == PNG and "/" not in name
    assert sorted(p.name for p in out.glob("*.png")) == sorted(name for _, name in images)
    assert html.count("data:image/png;base64,") == len(plots)
    # Every cell of every split is a row of the report, and every left-out cell is named.
    cells = sum(len(s.cells) for s in report.splits.values())
    headline = 1 + len(report.splits) if report.splits else 0  # its header and one row per split
    assert html.count("<tr>") == headline + len(report.splits) + cells  # each split's table: header and cells
    for scenario in report.skipped:
        assert scenario in markdown
    assert "Traceback" not in capsys.readouterr().err


# --- user text in report.html ----------------------------------------------------------------------


def _hostile_records(tmp: Path) -> list[str]:
    folder = tmp / HOSTILE.replace("/", "_")
    folder.mkdir()
    rows = (cell("train", HOSTILE, PD, teacher=["C"], base=["D"], student=["C"])
            + cell("train", "[click](javascript:alert(1))", SH, teacher=["D"], base=["C"], student=["C"]))
    return ["--records", str(write_records(folder / "records.csv", rows))]


@pytest.mark.parametrize("source", ["records", "runs"])
def test_user_text_is_escaped_in_the_html_report(source: str, tmp_path: Path, capsys) -> None:
    if source == "records":
        args = _hostile_records(tmp_path)
    else:
        args = mock_runs(tmp_path / "s.db", {"teacher": "rate=0.2", "base": "rate=0.8", "student": "rate=0.5"}, spec=f"mock:{HOSTILE}")
    report, out = evaluate_and_report(tmp_path, args)
    html = (out / "report.html").read_text()
    body = html.split("<body>", 1)[1]
    assert "<script" not in body and "<a " not in body  # the report has no links of its own
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    if source == "records":
        assert "[click](javascript:alert(1))/stag_hunt" in body  # shown as the text it is
    else:
        assert body.count("&lt;script&gt;") == 3  # the model of each role's run


def test_population_report_escapes_user_text(tmp_path: Path, capsys) -> None:
    library = tmp_path / "lib.toml"
    library.write_text(f'[[context]]\nid = "evil"\nname = "{HOSTILE} [x](javascript:alert(1))"\n'
                       'split = "heldout_context"\nframing = "You and a coplayer decide."\n')
    out = tmp_path / "play"
    assert main(["play", "--agents", "always-C", "tit-for-tat", "--scenario", f"evil/{PD}", "--library", str(library),
                 "--store", str(tmp_path / "s.db"), "--out", str(out)]) == 0
    body = (out / "report.html").read_text().split("<body>", 1)[1]
    assert "<script" not in body and "<a " not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


# --- output paths: refuse what tomdistill did not write ---------------------------------------------


@pytest.fixture()
def eval_json(tmp_path: Path) -> Path:
    records = write_records(tmp_path / "r.csv", cell("train", "biz", PD, teacher=["C"], base=["D"], student=["C"]))
    path = tmp_path / "eval.json"
    assert main(["evaluate", "--records", str(records), "--out", str(path), "--bootstrap", "10"]) == 0
    return path


def _user_files(root: Path) -> Path:
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    (root / "report.md").write_text("# my own report\n")
    return root


def _old_report_with_user_file(root: Path) -> Path:
    """A report folder from before markers (tomdistill's title) where the user added a file."""
    root.mkdir()
    (root / "report.md").write_text("# tomdistill evaluation\n")
    (root / "my-notes.txt").write_text("mine")
    return root


REPORT_REFUSALS = {
    "a file": (lambda tmp: (tmp / "notes.txt", tmp), "is a file"),
    "an old report holding a user's file": (lambda tmp: (_old_report_with_user_file(tmp / "old"), tmp),
                                            "tomdistill did not write it"),
    "a user's folder": (lambda tmp: (_user_files(tmp / "mine"), tmp), "tomdistill did not write it"),
    "below a file": (lambda tmp: (tmp / "notes.txt" / "rep", tmp), "is a file"),
}


@pytest.mark.parametrize("case", list(REPORT_REFUSALS))
def test_report_refuses_an_out_it_did_not_write(case: str, eval_json: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    make, message = REPORT_REFUSALS[case]
    out, watch = make(tmp_path)
    run_bad(["report", str(eval_json), "--out", str(out)], message, capsys, watch=watch)


def test_report_rewrites_its_own_folder(eval_json: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "rep"
    assert main(["report", str(eval_json), "--out", str(out)]) == 0
    (out / "report.md").write_text("stale")
    (out / "report.html").unlink()
    assert main(["report", str(eval_json), "--out", str(out)]) == 0
    assert (out / "report.md").read_text().startswith("# tomdistill evaluation") and (out / "report.html").is_file()
    legacy = tmp_path / "legacy"  # written before folders were marked: its report.md is recognised
    legacy.mkdir()
    (legacy / "report.md").write_text("# tomdistill evaluation\n")
    assert main(["report", str(eval_json), "--out", str(legacy)]) == 0
    assert (legacy / "report.html").is_file()


def _deeply_nested(tmp: Path) -> Path:
    path = tmp / "deep.json"  # the JSON parser runs out of stack on it (RecursionError)
    path.write_text("[" * 100_000 + "]" * 100_000)
    return path


EVALUATE_REFUSALS = {
    "a folder": (lambda tmp: tmp / "folder", "is a folder"),
    "deeply nested JSON": (_deeply_nested, "is not an eval.json"),
    "a file that is not an eval.json": (lambda tmp: tmp / "notes.txt", "is not an eval.json"),
    "the records file itself": (lambda tmp: tmp / "r.csv", "is not an eval.json"),
    "below a file": (lambda tmp: tmp / "notes.txt" / "eval.json", "is a file"),
}


@pytest.mark.parametrize("case", list(EVALUATE_REFUSALS))
def test_evaluate_refuses_an_out_it_did_not_write(case: str, eval_json: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "keep.txt").write_text("mine")
    (tmp_path / "notes.txt").write_text('{"splits": "mine"}')
    make, message = EVALUATE_REFUSALS[case]
    run_bad(["evaluate", "--records", str(tmp_path / "r.csv"), "--out", str(make(tmp_path))], message, capsys,
            watch=tmp_path)


def test_evaluate_replaces_its_own_eval_json(eval_json: Path, tmp_path: Path, capsys) -> None:
    before = tree_digest(tmp_path)
    assert main(["evaluate", "--records", str(tmp_path / "r.csv"), "--out", str(eval_json), "--bootstrap", "20"]) == 0
    assert load_report(eval_json).bootstrap == 20
    assert set(tree_digest(tmp_path)) == set(before)  # no temporary file left behind


def test_a_profile_flat_up_to_rounding_has_no_correlation() -> None:
    from tomdistill.evaluate.stats import correlation

    rounding = [0.1 + 0.2, 0.3, 0.30000000000000004, 0.3]  # equal rates that float arithmetic made unequal
    assert correlation(rounding, [0.1, 0.5, 0.2, 0.9]) is None
    assert correlation([0.1, 0.5, 0.2, 0.9], rounding) is None
    assert correlation([0.1, 0.5, 0.2, 0.9], [0.2, 0.6, 0.3, 1.0]) == pytest.approx(1.0)
