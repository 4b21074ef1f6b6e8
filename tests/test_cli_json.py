"""Every `--json` of the CLI: one JSON document on stdout (progress elsewhere), whose keys are the
ones its help documents and whose values are what the store, the config or eval.json hold."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tomdistill.cli import main
from tomdistill.cli.tables import EVAL_SPLIT_KEYS, RUN_KEYS
from tomdistill.config import Config, config_toml, load_config
from tomdistill.evaluate import load_report
from tomdistill.store import Store

from badinput import make_store

#: `tomdistill COMMAND...` that print JSON with --json.
JSON_COMMANDS = [("scenarios", "list"), ("scenarios", "show"), ("runs", "list"), ("runs", "show"), ("runs", "delete"),
                 ("config", "show"), ("elicit",), ("evaluate",), ("report",), ("run",), ("play",), ("push",)]
RUN_FIELDS = set(RUN_KEYS.split(", "))
EVAL_TOP = {"schema_version", "temperature", "bootstrap", "seed", "min_trusted_samples", "sources", "skipped", "splits"}


def json_out(capsys, *args: str) -> object:
    """The command's stdout, which must be exactly one JSON document, and exit code 0."""
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _command(*path: str):
    import typer.main

    from tomdistill.cli.app import app

    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", JSON_COMMANDS, ids=" ".join)
def test_every_list_and_show_command_has_a_documented_json_flag(path) -> None:
    flag = next((p for p in _command(*path).params if "--json" in p.opts), None)
    assert flag is not None, f"`tomdistill {' '.join(path)}` has no --json"
    assert "stdout" in flag.help and "Keys: " in flag.help


def test_runs_list_json_is_the_store(tmp_path, capsys) -> None:
    db = make_store(tmp_path / "t.db")
    listed = json_out(capsys, "runs", "list", "--store", str(db), "--json")
    with Store(db, readonly=True) as store:
        runs = store.runs()
        assert [r["name"] for r in listed] == [r.name for r in runs] == ["r0", "sc"]
        for entry, run in zip(listed, runs, strict=True):
            assert set(entry) == RUN_FIELDS | {"samples"}  # the keys the help names, no more
            assert entry["samples"] == store.count(run.id)
            assert (entry["model"], entry["mode"], entry["settings"], entry["seed"], entry["created"]) == \
                (run.model, run.mode, run.settings, run.seed, run.created)
    assert [r["samples"] for r in listed] == [6, 2]  # 3 samples x 2 scenarios; 1 score per scenario


def test_runs_show_json_is_the_run_and_its_rates(tmp_path, capsys) -> None:
    db = make_store(tmp_path / "t.db")
    shown = json_out(capsys, "runs", "show", "r0", "--store", str(db), "--json")
    assert set(shown) == {"run", "scenarios"} and set(shown["run"]) == RUN_FIELDS
    with Store(db, readonly=True) as store:
        samples = store.samples(store.require_run("r0").id)
    assert shown["run"]["name"] == "r0" and shown["run"]["model"] == "mock:rate=0.5"
    assert sum(s["n"] for s in shown["scenarios"]) == len(samples) == 6
    for row in shown["scenarios"]:
        mine = [s for s in samples if s.scenario == row["scenario"]]
        chosen = [s.action for s in mine if s.valid]
        assert row["valid"] == len(chosen) and row["valid_share"] == pytest.approx(len(chosen) / len(mine))
        assert row["rate"] == pytest.approx(chosen.count("C") / len(chosen))
        assert row["scenario"] == f"{row['context']}/{row['game']}"


def test_config_show_json_holds_what_the_toml_holds(tmp_path, capsys) -> None:
    config = tmp_path / "c.toml"
    config.write_text("seed = 7\n[teacher]\nsamples = 5\n[train]\nr = 4\n")
    for args in ([], [str(config)]):
        shown = json_out(capsys, "config", "show", *args, "--json")
        loaded = load_config(config if args else None)
        assert shown == loaded.model_dump(mode="json") and Config.model_validate(shown) == loaded
        # The TOML leaves out fields that are not set; the JSON has them as null.
        assert _without_nulls(shown) == tomllib.loads(config_toml(loaded))
    assert (shown["seed"], shown["teacher"]["samples"], shown["train"]["r"]) == (7, 5, 4)


def _without_nulls(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def test_elicit_json_is_the_stored_run(tmp_path, capsys) -> None:
    db = tmp_path / "t.db"
    args = ["elicit", "-m", "mock:rate=0.5", "-r", "e", "--scenario", "team/stag_hunt", "--scenario",
            "team/prisoners_dilemma", "-n", "3", "--store", str(db), "--json"]
    first = json_out(capsys, *args)  # the progress bar went elsewhere: stdout parsed as a whole
    assert set(first) == {"run", "scenarios", "requested", "new", "elapsed_s", "retries", "retry_reasons"}
    assert (first["requested"], first["new"], first["retries"]) == (6, 6, 0)
    again = json_out(capsys, *args)
    assert (again["requested"], again["new"]) == (6, 0)  # resumed: nothing new
    shown = json_out(capsys, "runs", "show", "e", "--store", str(db), "--json")
    assert again["run"] == shown["run"]
    assert sorted(again["scenarios"], key=str) == sorted(shown["scenarios"], key=str)


@pytest.fixture()
def three_runs(tmp_path) -> Path:
    """A store with teacher, base and student runs scored on two scenarios (mock models)."""
    db = tmp_path / "t.db"
    for role, rate in (("teacher", 0.3), ("base", 0.8), ("student", 0.5)):
        assert main(["elicit", "-m", f"mock:rate={rate}", "-r", role, "--mode", "score", "--store", str(db),
                     "--scenario", "team/stag_hunt", "--scenario", "team/prisoners_dilemma"]) == 0
    return db


def test_evaluate_json_is_its_eval_json(three_runs, tmp_path, capsys) -> None:
    capsys.readouterr()
    out = tmp_path / "eval.json"
    summary = json_out(capsys, "evaluate", "--teacher", "teacher", "--base", "base", "--student", "student",
                       "--store", str(three_runs), "--out", str(out), "--bootstrap", "20", "--json")
    assert set(summary) == EVAL_TOP | {"eval_json"} and summary["eval_json"] == str(out)
    _check_eval_summary(summary, load_report(out))
    assert [s["run"] for s in summary["sources"]] == ["teacher", "base", "student"]
    assert summary["splits"]["train"]["cells"] == 2

    # report prints the same summary, with the files it wrote.
    shown = json_out(capsys, "report", str(out), "--out", str(tmp_path / "report"), "--json")
    assert {k: v for k, v in shown.items() if k != "files"} == {k: v for k, v in summary.items() if k != "eval_json"}
    assert Path(shown["files"]["html"]).is_file() and Path(shown["files"]["markdown"]).is_file()


def _check_eval_summary(summary: dict, report) -> None:
    """The summary's numbers are eval.json's, unrounded, under eval.json's names."""
    assert (summary["temperature"], summary["bootstrap"], summary["seed"]) == \
        (report.temperature, report.bootstrap, report.seed)
    assert set(summary["splits"]) == set(report.splits)
    for name, split in summary["splits"].items():
        assert set(split) == set(EVAL_SPLIT_KEYS) | {"cells"}
        saved = report.splits[name]
        assert split["cells"] == len(saved.cells)
        for key in EVAL_SPLIT_KEYS:
            assert split[key] == getattr(saved, key), key


def test_play_json_is_play_json(tmp_path, capsys) -> None:
    out = tmp_path / "play"
    summary = json_out(capsys, "play", "--agents", "always-C", "always-D", "--scenario", "team/prisoners_dilemma",
                       "--rounds", "2", "--store", str(tmp_path / "t.db"), "--out", str(out), "--json")
    files = summary.pop("files")
    assert summary == json.loads((out / "play.json").read_text())
    assert all(Path(p).is_file() for p in files.values()) and files["json"] == str(out / "play.json")
    # 2 types -> 3 pairs (self-play included), 1 match each, 2 rounds, 2 seats
    assert (summary["matches"], summary["moves"], summary["new_moves"]) == (3, 12, 12)
    assert summary["types"]["always-C"]["cooperation"]["value"] == 100


def test_run_json_is_the_pipeline_result(tmp_path, stub_train, capsys) -> None:
    from tomdistill.pipeline import STAGES

    config = tmp_path / "c.toml"
    config.write_text('seed = 1\n[scenarios]\ninclude = ["team/*", "sports/*", "community/*"]\n'
                      '[teacher]\nmodel = "mock:rate=0.3"\nsamples = 2\n[student]\nmodel = "mock:rate=0.9"\n'
                      '[evaluate]\nbootstrap = 20\n')
    out = tmp_path / "run"
    result = json_out(capsys, "run", str(config), "--out", str(out), "--json")  # stage log and bars: not on stdout
    assert set(result) == {"out", "eval_json", "report", "peak_rss_mb", "stages", "evaluation"}
    assert result["eval_json"] == str(out / "eval.json") and Path(result["report"]).is_file()
    state = json.loads((out / "pipeline.json").read_text())
    assert list(result["stages"]) == list(STAGES)
    for stage, record in result["stages"].items():
        assert record["key"] == state[stage]["key"] and record["skipped"] is False
        assert record["details"] == state[stage]["details"]
    _check_eval_summary(result["evaluation"], load_report(out / "eval.json"))
    again = json_out(capsys, "run", str(config), "--out", str(out), "--json")
    assert all(r["skipped"] for r in again["stages"].values()) and again["evaluation"] == result["evaluation"]
