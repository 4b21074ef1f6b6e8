"""Issue 13, item 4: records files are read as written or refused. `evaluate --records` gives one
line naming the file, line and column for anything it would otherwise read wrongly: negative or
out-of-range amounts, NaN, repeated columns or keys, nested JSON, files without a role, other
encodings than UTF-8; quoted CSV cells may span lines without shifting decisions or line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tomdistill.cli import main
from tomdistill.evaluate import evaluate_records, load_report
from tomdistill.scenarios import load_library
from tomdistill.scenarios.parse import NumberAnswer, parse_decision, parse_reply

from badinput import make_store, run_bad

HEADER = "role,split,context,game,answer\n"


def rows(answers: dict[str, str], game: str = "snowdrift", context: str = "x") -> str:
    """One CSV row per role: role -> answer."""
    return "".join(f"{role},train,{context},{game},{answer}\n" for role, answer in answers.items())


def jsonl(*records: dict) -> str:
    base = {"role": "teacher", "split": "train", "context": "x", "game": "donation_game"}
    return "\n".join(json.dumps({**base, **r}) for r in records) + "\n"


THREE = rows({"teacher": "D", "base": "C", "student": "C"})
DONATE = "role,split,context,game,answer\nteacher,train,x,donation_game,{}\n"

#: name -> (file name, file bytes, what the error line must say after "{file}: ")
CASES: dict[str, tuple[str, bytes, str]] = {
    "negative-amount": ("x.csv", DONATE.format("-5").encode(), "line 2: answer '-5' is not a valid answer in donation_game: "
                        "amount -5 is outside 0-10"),
    "negative-dollars": ("x.csv", DONATE.format("$-3").encode(), "line 2: answer '$-3' is not a valid answer in "
                         "donation_game: amount -3 is outside 0-10"),
    "negative-labelled": ("x.csv", DONATE.format("Answer: -7").encode(), "line 2: answer 'Answer: -7' is not a valid "
                          "answer in donation_game: amount -7 is outside 0-10"),
    "negative-sentence": ("x.csv", DONATE.format("I give -2 dollars").encode(),
                          "line 2: answer 'I give -2 dollars' is not a valid answer in donation_game: amount -2 is outside"),
    "above-range": ("x.csv", DONATE.format("11").encode(), "line 2: answer '11' is not a valid answer in donation_game: "
                    "amount 11 is outside 0-10"),
    "nan-answer": ("x.csv", DONATE.format("NaN").encode(), "line 2: field 'answer' is 'NaN', not a finite number"),
    "inf-answer": ("x.csv", DONATE.format("-inf").encode(), "line 2: field 'answer' is '-inf', not a finite number"),
    "jsonl-nan": ("x.jsonl", jsonl({"answer": 3}, {"answer": float("nan")}).encode(),
                  "line 2: field 'answer' is nan, not a finite number"),
    "jsonl-overflow": ("x.jsonl", b'{"role": "teacher", "answer": 1e999}\n', "line 1: field 'answer' is inf"),
    "duplicate-column": ("x.csv", ("role,split,context,game,answer,answer\n" + THREE.replace("\n", ",C\n")).encode(),
                         "line 1: column 'answer' appears twice"),
    "duplicate-key": ("x.jsonl", b'{"role": "teacher", "role": "base", "answer": "C"}\n', "line 1: key 'role' appears twice"),
    "nested-object": ("x.jsonl", jsonl({"answer": 3}, {"answer": {"amount": 3}}).encode(),
                      "line 2: field 'answer' holds an object; expected a string or a number"),
    "nested-list": ("x.jsonl", jsonl({"answer": 3, "game": ["donation_game"]}).encode(), "line 1: field 'game' holds a list"),
    "json-boolean": ("x.jsonl", jsonl({"answer": True}).encode(), "line 1: field 'answer' holds true/false"),
    "no-teacher-rows": ("x.csv", (HEADER + rows({"base": "C", "student": "D"})).encode(), "column 'role': no teacher rows"),
    "no-student-rows": ("x.csv", (HEADER + rows({"teacher": "C", "base": "D"})).encode(), "column 'role': no student rows"),
    "no-shared-cell": ("x.csv", (HEADER + rows({"teacher": "C", "base": "D"}) + rows({"student": "C"}, context="y")).encode(),
                       "no cell (split, context, game) has valid answers from all of teacher, base and student"),
    "header-only": ("x.csv", HEADER.encode(), "holds no records"),
    "extra-cells": ("x.csv", (HEADER + THREE.replace("base,train,x,snowdrift,C", "base,train,x,snowdrift,C,D")).encode(),
                    "line 3: 6 cells, but the header names 5 columns"),
    "unclosed-quote": ("x.csv", (HEADER + rows({"teacher": "D"}) + 'base,train,x,snowdrift,"C\n' + rows({"student": "C"}))
                       .encode(), "line 3: not valid CSV"),
    "utf16-with-bom": ("x.csv", (HEADER + THREE).encode("utf-16"), "the file is UTF-16 text; save it as UTF-8"),
    "utf16-without-bom": ("x.csv", (HEADER + THREE).encode("utf-16-le"), "line 1: NUL bytes in the file (UTF-16 text?)"),
    "utf32": ("x.jsonl", jsonl({"answer": 3}).encode("utf-32"), "the file is UTF-32 text"),
    "latin-1": ("x.csv", (HEADER + THREE.replace("x,snowdrift", "café,snowdrift")).encode("latin-1"),
                "line 2: not UTF-8 text (byte 0xe9)"),
    "line-after-multiline-cell": ("x.csv", (b'role,split,context,game,text\nteacher,train,x,snowdrift,"D\nC is tempting\n'
                                           b'but risky"\nboss,train,x,snowdrift,C\n'), "line 5: unknown role 'boss'"),
    "deeply-nested-jsonl": ("x.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n",
                            "line 1: not valid JSON (lists or objects nested too deeply)"),
    "answer-and-text-disagree": ("x.csv", b"role,split,context,game,answer,text\nteacher,train,x,snowdrift,C,I choose D\n",
                                 "line 2: answer 'C' and text 'I choose D' disagree (the text reads as D)"),
    "amount-and-text-disagree": ("x.jsonl", jsonl({"answer": 5, "text": "I give 3 dollars"}).encode(),
                                 "line 1: answer '5' and text 'I give 3 dollars' disagree (the text reads as 3)"),
    "answer-on-two-lines": ("x.csv", b'role,split,context,game,answer\nteacher,train,x,snowdrift,"C\nD"\n',
                            "line 2: answer 'C\\nD' must be just an action label of snowdrift (C, D)"),
    "answer-in-words": ("x.csv", (HEADER + rows({"teacher": "I pick C"})).encode(),
                        "line 2: answer 'I pick C' must be just an action label"),
    "amount-with-underscore": ("x.csv", DONATE.format("0_5").encode(), "line 2: answer '0_5' must be just a number"),
    "line-after-crlf-multiline-cell": ("x.csv", (b'role,split,context,game,text\r\nteacher,train,x,snowdrift,"D\r\nfine"\r\n'
                                                b'\r\nbase,train,x,poker,C\r\n'), "line 5: unknown game 'poker'"),
}


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return make_store(tmp_path / "db" / "store.db")


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_records(name: str, tmp_path: Path, db: Path, capsys) -> None:
    filename, data, message = CASES[name]
    work = tmp_path / "work"
    work.mkdir()
    path = work / filename
    path.write_bytes(data)
    args = ["evaluate", "--records", str(path), "--out", str(work / "e.json"), "--store", str(db)]
    run_bad(args, f"{path}: {message}", capsys, store=db, watch=work)


@pytest.mark.parametrize("column", ["role", "answer"])
def test_a_long_value_is_quoted_cut_short(column: str, tmp_path: Path, db: Path, capsys) -> None:
    long = "x" * 5000  # a pasted essay must not make a 5 KB error line
    path = tmp_path / "r.csv"
    path.write_text(HEADER + ("teacher,train,x,snowdrift,C\n".replace("teacher", long) if column == "role"
                              else rows({"teacher": long})))
    line = run_bad(["evaluate", "--records", str(path), "--out", str(tmp_path / "e.json"), "--store", str(db)],
                   f"'{'x' * 60}'... (5,000 characters)", capsys, store=db, watch=tmp_path)
    assert len(line) < len(str(path)) + 250


# --- what is read right --------------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_multi_line_text_cell_keeps_its_decision(newline: str, tmp_path: Path) -> None:
    # Joined without its line break the teacher's reply reads "DC is tempting ...", i.e. C.
    reply = '"D{nl}C is tempting, but the coplayer may defect."'.replace("{nl}", newline)
    text = "role,split,context,game,text" + newline
    for role, answer in (("teacher", reply), ("base", "C"), ("student", "C")):
        text += f"{role},train,x,snowdrift,{answer}{newline}" * 3
    path = tmp_path / "r.csv"
    path.write_bytes(text.encode())
    cell = evaluate_records(path, load_library(), bootstrap=20).splits["train"].cells[0]
    assert (cell.teacher.value, cell.teacher.n, cell.teacher.invalid) == (0.0, 3, 0)
    assert cell.base.value == 100.0


def test_utf8_bom_from_excel_is_read_like_plain_utf8(tmp_path: Path, capsys) -> None:
    text = HEADER + rows({"teacher": "D", "base": "C", "student": "D"}) * 2
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    plain.write_bytes(text.encode())
    excel.write_bytes(text.encode("utf-8-sig"))
    assert excel.read_bytes().startswith(b"\xef\xbb\xbf")
    for path in (plain, excel):
        assert main(["evaluate", "--records", str(path), "--out", str(tmp_path / f"{path.stem}.json"), "--bootstrap", "20"]) == 0
    cells = [load_report(tmp_path / f"{p}.json").splits["train"].cells for p in ("plain", "excel")]
    assert cells[0] == cells[1]
    assert (cells[1][0].teacher.value, cells[1][0].base.value, cells[1][0].student.value) == (0.0, 100.0, 0.0)


def test_out_of_range_raw_replies_count_as_invalid(tmp_path: Path) -> None:
    # A raw reply is what a model wrote: a negative amount makes that sample invalid, not the file.
    path = tmp_path / "r.jsonl"
    path.write_text(jsonl({"text": "I give -2 dollars"}, {"text": "$-3"}, {"text": "4"},
                          {"role": "base", "text": "6"}, {"role": "student", "text": "Answer: 11"},
                          {"role": "student", "text": "5"}))
    cell = evaluate_records(path, load_library(), bootstrap=20).splits["train"].cells[0]
    assert (cell.teacher.value, cell.teacher.n, cell.teacher.invalid) == (4.0, 1, 2)
    assert (cell.student.value, cell.student.invalid) == (5.0, 1)


def test_json_numbers_are_read_as_written(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(jsonl({"answer": 2.5}, {"role": "base", "answer": 7}, {"role": "student", "answer": 0.0000001}))
    cell = evaluate_records(path, load_library(), bootstrap=20).splits["train"].cells[0]
    assert (cell.teacher.value, cell.base.value, cell.student.value) == (2.5, 7.0, pytest.approx(1e-7))


NEGATIVE = ["-5", "$-3", "-$3", "−2", "Answer: -7", "Answer -7", "I give -2 dollars", "My donation is -1.",
            "I would donate -$4 because nobody else gives."]


@pytest.mark.parametrize("reply", NEGATIVE)
def test_parser_reads_negative_amounts_as_negative(reply: str) -> None:
    decision = parse_reply(reply, NumberAnswer(0, 10))
    assert decision.action is None
    assert "is outside 0-10" in decision.invalid_reason and "amount -" in decision.invalid_reason
    # ... and so does the elicit path.
    assert not parse_decision(reply, load_library().scenario("community/donation_game")).valid


@pytest.mark.parametrize(("reply", "amount"), [("Answer - 7", 7), ("Answer-7", 7), ("I donate 5 dollars, not -5", 5),
                                               ("-0", 0), ("$ 6", 6)])
def test_a_dash_that_is_no_sign_is_not_read_as_one(reply: str, amount: float) -> None:
    assert parse_reply(reply, NumberAnswer(0, 10)).action == amount
