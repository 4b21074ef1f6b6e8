"""Bad input at the command line: one clear line naming the file or field, exit code 2, no
traceback, and the store exactly as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from badinput import make_store, run_bad

GAME = '[[game]]\nid = "g"\nname = "G"\ntemplate = "two_player_matrix"\nactions = ["C", "D"]\n'
PAYOFFS = 'payoffs.C = { C = [1, 1], D = [0, 2] }\npayoffs.D = { C = [2, 0], D = [0, 0] }\n'

#: name -> (files to write {name: text}, command (with {tmp} and {db}), what the error must say)
CASES: dict[str, tuple[dict[str, str], list[str], str]] = {
    "library-missing-payoff": ({"lib.toml": GAME + 'payoffs.C = { C = [1, 1], D = [0, 2] }\n'},
                               ["elicit", "-m", "mock:x", "-r", "new", "--library", "{tmp}/lib.toml"], "field 'payoffs'"),
    "library-non-numeric-payoff": ({"lib.toml": GAME + PAYOFFS.replace("[2, 0]", '["two", 0]')},
                                   ["elicit", "-m", "mock:x", "-r", "new", "--library", "{tmp}/lib.toml"], "payoffs.D.C.0"),
    "library-three-actions": ({"lib.toml": GAME.replace('["C", "D"]', '["C", "D", "E"]') + PAYOFFS},
                              ["elicit", "-m", "mock:x", "-r", "new", "--library", "{tmp}/lib.toml"], "field 'actions'"),
    "library-duplicate-id": ({"lib.toml": GAME + PAYOFFS + GAME + PAYOFFS},
                             ["elicit", "-m", "mock:x", "-r", "new", "--library", "{tmp}/lib.toml"], "duplicate id"),
    "library-duplicate-builtin": ({"lib.toml": GAME.replace('"g"', '"snowdrift"') + PAYOFFS},
                                  ["elicit", "-m", "mock:x", "-r", "new", "--library", "{tmp}/lib.toml"], "already defined"),
    "library-unknown-field": ({"lib.toml": GAME + PAYOFFS + "colour = 1\n"},
                              ["elicit", "-m", "mock:x", "-r", "new", "--library", "{tmp}/lib.toml"], "field 'colour'"),
    "library-bad-toml": ({"lib.toml": "[[game]\n"},
                         ["elicit", "-m", "mock:x", "-r", "new", "--library", "{tmp}/lib.toml"], "not valid TOML"),
    "library-empty": ({"lib.toml": ""},
                      ["elicit", "-m", "mock:x", "-r", "new", "--library", "{tmp}/lib.toml"], "holds no entries"),
    "library-missing-file": ({}, ["elicit", "-m", "mock:x", "-r", "new", "--library", "{tmp}/nope.toml"], "file not found"),
    "config-bad-toml": ({"c.toml": "[scenarios\n"}, ["elicit", "-m", "mock:x", "-r", "new", "--config", "{tmp}/c.toml"],
                        "not valid TOML"),
    "config-unknown-field": ({"c.toml": "[teacher]\nsampels = 3\n"}, ["run", "{tmp}/c.toml", "--out", "{tmp}/o"],
                             "field 'teacher.sampels'"),
    "config-wrong-type": ({"c.toml": "[teacher]\nsamples = 'many'\n"}, ["run", "{tmp}/c.toml", "--out", "{tmp}/o"],
                          "field 'teacher.samples'"),
    "config-bad-preset": ({"c.toml": "[train]\npreset = 'turbo'\n"}, ["run", "{tmp}/c.toml", "--out", "{tmp}/o"],
                          "unknown preset 'turbo'"),
    "config-teacher-without-train": ({"c.toml": "[teacher]\nsplits = ['heldout_game']\n"},
                                     ["run", "{tmp}/c.toml", "--out", "{tmp}/o"], "teacher.splits must include 'train'"),
    "config-show-bad-file": ({"c.toml": "seed = [\n"}, ["config", "show", "{tmp}/c.toml"], "not valid TOML"),
    "run-unknown-stage": ({}, ["run", "--out", "{tmp}/o", "--force", "teach"], "unknown stage 'teach'"),
    "spec-unknown-provider": ({}, ["elicit", "-m", "gpt:4", "-r", "new"], "unknown provider 'gpt'"),
    "spec-without-provider": ({}, ["elicit", "-m", "student", "-r", "new"], "must look like provider:id"),
    "spec-unknown-default": ({}, ["elicit", "-m", "default:wizard", "-r", "new"], "unknown default model"),
    "adapter-missing": ({}, ["elicit", "-m", "mock:x", "-r", "new", "--adapter", "{tmp}/none"], "adapter folder not found"),
    "adapter-not-peft": ({"fake/readme.txt": "x"}, ["elicit", "-m", "mock:x", "-r", "new", "--adapter", "{tmp}/fake"],
                         "no adapter_config.json"),
    "unknown-scenario": ({}, ["elicit", "-m", "mock:x", "-r", "new", "--scenario", "team/poker"], "unknown scenario"),
    "unknown-split": ({}, ["elicit", "-m", "mock:x", "-r", "new", "--split", "validation"], "unknown split"),
    "run-name-clash": ({}, ["elicit", "-m", "mock:other", "-r", "r0", "--scenario", "team/stag_hunt"],
                       "already exists with other settings"),
    "store-is-a-folder": ({"folder/x": ""}, ["runs", "list", "--store", "{tmp}/folder"], "is a folder"),
    "records-empty": ({"r.csv": ""}, ["evaluate", "--records", "{tmp}/r.csv", "--out", "{tmp}/e.json"], "empty"),
    "records-unknown-role": ({"r.csv": "role,split,context,game,answer\nboss,train,x,snowdrift,C\n"},
                             ["evaluate", "--records", "{tmp}/r.csv", "--out", "{tmp}/e.json"], "line 2: unknown role"),
    "records-unknown-game": ({"r.csv": "role,split,context,game,answer\nbase,train,x,poker,C\n"},
                             ["evaluate", "--records", "{tmp}/r.csv", "--out", "{tmp}/e.json"], "line 2: unknown game"),
    "records-missing-column": ({"r.csv": "role,context,game,answer\nbase,x,snowdrift,C\n"},
                               ["evaluate", "--records", "{tmp}/r.csv", "--out", "{tmp}/e.json"], "missing columns: split"),
    "records-wrong-suffix": ({"r.txt": "role\n"}, ["evaluate", "--records", "{tmp}/r.txt", "--out", "{tmp}/e.json"],
                             ".csv or .jsonl"),
    "evaluate-missing-runs": ({}, ["evaluate", "--teacher", "r0", "--out", "{tmp}/e.json"], "missing --base, --student"),
    "evaluate-unknown-run": ({}, ["evaluate", "--teacher", "r0", "--base", "sc", "--student", "ghost", "--out",
                                  "{tmp}/e.json"], "no run named 'ghost'"),
    "report-invalid-json": ({"e.json": '{"splits": 3}'}, ["report", "{tmp}/e.json", "--out", "{tmp}/rep"],
                            "not a valid eval.json"),
    "report-missing-file": ({}, ["report", "{tmp}/none.json", "--out", "{tmp}/rep"], "file not found"),
    "dataset-unknown-run": ({}, ["dataset", "--from-run", "ghost", "--out", "{tmp}/ds"], "no run named 'ghost'"),
    "dataset-from-score-run": ({}, ["dataset", "--from-run", "sc", "--out", "{tmp}/ds"], "score-mode run"),
    "train-not-a-dataset": ({"nods/x": ""}, ["train", "--student", "default:student", "--data", "{tmp}/nods", "--out",
                                            "{tmp}/ad"], "not a tomdistill dataset folder"),
    "merge-missing-adapter": ({}, ["merge", "{tmp}/none", "--out", "{tmp}/m"], "adapter folder not found"),
    "reparse-score-run": ({}, ["reparse", "sc"], "score-mode run"),
    "runs-show-unknown": ({}, ["runs", "show", "ghost"], "no run named 'ghost'"),
}

#: Commands that read a store get --store {db}.
_STORE_COMMANDS = {"elicit", "evaluate", "dataset", "reparse", "runs"}


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return make_store(tmp_path / "store.db")


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name: str, tmp_path: Path, db: Path, capsys) -> None:
    files, command, message = CASES[name]
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    if args[0] in _STORE_COMMANDS and "--store" not in args:
        args += ["--store", str(db)]
    run_bad(args, message, capsys, store=db)


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
