"""Issue 13, items 7, 8 and 11 (command-line parts): non-finite numbers are refused, repeated
scenarios are asked once, and odd values, usage errors and stops end in one line with nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tomdistill.cli import main
from tomdistill.models.mock import MockModel

from badinput import make_store, run_bad, store_dump

GAME = ('[[game]]\nid = "g"\nname = "G"\ntemplate = "two_player_matrix"\nactions = ["C", "D"]\ncontexts = ["team"]\n'
        'payoffs.C = { C = [1, 1], D = [0, 2] }\npayoffs.D = { C = [2, 0], D = [0, 0] }\n')
PGG = ('[[game]]\nkind = "public_goods"\nid = "d"\nname = "D"\ntemplate = "public_goods"\nendowment = inf\n'
       'contexts = ["split:heldout_pgg"]\n')
VARIANT = '[[variant]]\nid = "huge"\nname = "huge"\nscale = {scale}\ngames = ["snowdrift"]\nsplit = "heldout_game"\n'

#: name -> (library text, what the one-line error must say)
NON_FINITE_LIBRARIES = {
    "nan-payoff": (GAME.replace("[2, 0]", "[nan, 0]"), "field 'payoffs.D.C.0': Input should be a finite number"),
    "inf-payoff": (GAME.replace("[0, 2]", "[0, inf]"), "field 'payoffs.C.D.1': Input should be a finite number"),
    "minus-inf-payoff": (GAME.replace("[0, 0]", "[-inf, 0]"), "field 'payoffs.D.D.0'"),
    "inf-endowment": (PGG, "field 'endowment': Input should be a finite number"),
    "nan-scale": (VARIANT.replace("{scale}", "nan"), "field 'scale'"),
    "scale-overflows-to-inf": (VARIANT.replace("{scale}", "1e308"), "too large to represent"),
}


@pytest.mark.parametrize("name", sorted(NON_FINITE_LIBRARIES))
def test_non_finite_library_numbers_are_refused(name: str, tmp_path: Path, capsys) -> None:
    text, message = NON_FINITE_LIBRARIES[name]
    lib = tmp_path / "lib.toml"
    lib.write_text(text)
    db = make_store(tmp_path / "store.db")
    run_bad(["elicit", "-m", "mock:x", "-r", "new", "--library", str(lib), "--store", str(db)], message, capsys, store=db)


NON_FINITE_CONFIGS = {
    "nan-temperature": ("[teacher.sampling]\ntemperature = nan\n", "field 'teacher.sampling.temperature'"),
    "inf-learning-rate": ("[train]\nlearning_rate = inf\n", "field 'train.learning_rate'"),
    "inf-epochs": ("[train]\nepochs = inf\n", "field 'train.epochs'"),
    "huge-seed": ("seed = 18446744073709551616\n", "field 'seed'"),
    "seed-above-numpy": ("seed = 4294967296\n", "field 'seed'"),
}


@pytest.mark.parametrize("name", sorted(NON_FINITE_CONFIGS))
def test_non_finite_config_numbers_are_refused(name: str, tmp_path: Path, capsys) -> None:
    text, message = NON_FINITE_CONFIGS[name]
    (tmp_path / "c.toml").write_text(text)
    run_bad(["run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "o")], message, capsys, watch=tmp_path)
    assert not (tmp_path / "o").exists()


#: Flag values that are refused before anything is loaded: one line, store unchanged.
BAD_FLAGS = {
    "temperature-nan": (["elicit", "-m", "mock:x", "-r", "new", "--temperature", "nan"], "'--temperature'"),
    "temperature-inf": (["elicit", "-m", "mock:x", "-r", "new", "--temperature", "inf"], "finite number"),
    "top-p-nan": (["elicit", "-m", "mock:x", "-r", "new", "--top-p", "nan"], "'--top-p'"),
    "seed-2-63": (["elicit", "-m", "mock:x", "-r", "new", "--seed", str(2**63)], "'--seed'"),
    "seed-minus-2-64": (["elicit", "-m", "mock:x", "-r", "new", "--seed", str(-(2**64))], "'--seed'"),
    "evaluate-seed-2-63": (["evaluate", "--teacher", "r0", "--base", "r0", "--student", "sc", "--seed", str(2**63),
                            "--out", "{tmp}/e.json"], "'--seed'"),
    "play-seed-2-63": (["play", "--agents", "tit-for-tat", "always-d", "--scenario", "team/prisoners_dilemma",
                        "--seed", str(2**64)], "'--seed'"),
    "train-seed-2-32": (["train", "--student", "default:student", "--data", "{tmp}", "--out", "{tmp}/a",
                         "--seed", str(2**32)], "'--seed'"),
    "samples-zero": (["elicit", "-m", "mock:x", "-r", "new", "-n", "0"], "'--samples'"),
    "samples-beyond-memory": (["elicit", "-m", "mock:x", "-r", "new", "-n", str(10**12)], "at most 10,000,000"),
    "pairs-beyond-memory": (["play", "--agents", "always-C", "always-D", "-s", "team/prisoners_dilemma", "--pairs",
                             str(10**8), "--out", "{tmp}/p"], "= 600,000,000 moves; one run asks for at most 10,000,000"),
    "rounds-beyond-memory": (["play", "--agents", "always-C", "-s", "team/prisoners_dilemma", "--rounds",
                              str(10**12), "--out", "{tmp}/p"], "x 1,000,000,000,000 rounds x 2 seats"),
    "mock-spec-not-a-number": (["elicit", "-m", "mock:rate=0.5&x=1", "-r", "new"],
                               "model spec 'mock:rate=0.5&x=1': rate='0.5&x=1' is not a number"),
    "unknown-flag": (["elicit", "-m", "mock:x", "-r", "new", "--sampels", "3"], "No such option"),
    "unknown-command": (["elicitate"], "No such command"),
}


@pytest.mark.parametrize("name", sorted(BAD_FLAGS))
def test_bad_flag_values_are_one_line(name: str, tmp_path: Path, capsys) -> None:
    args, message = BAD_FLAGS[name]
    db = make_store(tmp_path / "store.db")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if args[0] in {"elicit", "evaluate", "play"}:
        args += ["--store", str(db)]
    run_bad(args, message, capsys, store=db)


def test_a_config_files_sample_count_is_reported_without_a_flag_name(tmp_path: Path, capsys) -> None:
    # The limit elicit shares with play: a number from teacher.samples is not called --samples.
    (tmp_path / "c.toml").write_text('[teacher]\nmodel = "mock:rate=0.5"\nsamples = 1000000000000\n')
    line = run_bad(["run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "run")],
                   "1,000,000,000,000 samples per scenario x", capsys)
    assert "one run asks for at most 10,000,000 samples" in line and "--samples" not in line


#: name -> (config file bytes, or None for a folder; what the one-line error must say)
UNREADABLE_CONFIGS = {
    "a-folder": (None, "is a folder, expected the config file"),
    "utf16-bytes": (b"\xff\xfeout = 'x'\n", "not UTF-8 text (byte 0xff at offset 0)"),
    "nested-too-deeply": (b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "not valid TOML: arrays or tables nested too deeply"),
}


@pytest.mark.parametrize("command", [["config", "show"], ["run"]])
@pytest.mark.parametrize("name", sorted(UNREADABLE_CONFIGS))
def test_an_unreadable_config_is_one_line(name: str, command: list[str], tmp_path: Path, capsys) -> None:
    data, message = UNREADABLE_CONFIGS[name]
    path = tmp_path / "c.toml"
    if data is None:
        path.mkdir()
    else:
        path.write_bytes(data)
    run_bad([*command, str(path), *(["--out", str(tmp_path / "o")] if command == ["run"] else [])],
            f"{path}: {message}", capsys, watch=tmp_path)


def test_python_api_refuses_a_seed_sqlite_cannot_store(tmp_path: Path) -> None:
    from tomdistill.elicit import elicit
    from tomdistill.errors import TomdistillError
    from tomdistill.models.registry import load_model
    from tomdistill.scenarios import load_library
    from tomdistill.store import Store

    db = make_store(tmp_path / "store.db")
    before = store_dump(db)
    with Store(db) as store, pytest.raises(TomdistillError, match="2\\*\\*63"):
        elicit(store, load_model("mock:x"), load_library().scenarios("train")[:1], run_name="big", seed=2**63)
    assert store_dump(db) == before


@pytest.mark.parametrize("args", [
    ["--scenario", "team/snowdrift", "--scenario", "team/snowdrift"],
    ["--scenario", "team/snowdrift", "--split", "heldout_pgg", "--split", "heldout_pgg", "--scenario", "team/snowdrift"],
], ids=["scenario-twice", "scenario-and-split-twice"])
def test_repeated_scenarios_are_asked_once(args: list[str], tmp_path: Path, monkeypatch, capsys) -> None:
    asked: list[str] = []
    original = MockModel._reply

    def counting(self, request):
        asked.append(request.messages[-1]["content"][:80])
        return original(self, request)

    monkeypatch.setattr(MockModel, "_reply", counting)
    code = main(["elicit", "-m", "mock:rate=0.5", "-r", "twice", "-n", "4", "--store", str(tmp_path / "s.db"), *args])
    assert code == 0, capsys.readouterr().err
    scenarios = 1 + ("heldout_pgg" in args)
    assert len(asked) == 4 * scenarios
    assert len(set(asked)) == scenarios


def test_config_splits_named_twice_are_kept_once() -> None:
    from tomdistill.config import Config

    config = Config.model_validate({"teacher": {"splits": ["train", "heldout_game", "train"]},
                                    "evaluate": {"splits": ["heldout_pgg", "heldout_pgg"]}})
    assert config.teacher.splits == ["train", "heldout_game"]
    assert config.evaluate.splits == ["heldout_pgg"]


def _cli(args: list[str], env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    """The installed console script in a child process (signals need a real process)."""
    exe = Path(sys.executable).with_name("tomdistill")
    env = {**os.environ, **(env_extra or {})}
    return subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("delay", [0.15, 0.3])
def test_a_stop_during_start_up_is_one_line(sig: int, delay: float, tmp_path: Path) -> None:
    # Start-up (imports) takes about 0.3 s on the 2-core CI machine, so 0.15 s is inside it.
    proc = _cli(["scenarios", "list"])
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    if delay == 0.15:
        assert proc.returncode != 0, "the command finished before the signal: start-up got faster; lower the delay"
    if proc.returncode == -sig:  # arrived while the interpreter itself started, before tomdistill ran: no output
        assert err == ""
    elif proc.returncode != 0:  # 0: the command finished before the signal came
        assert proc.returncode == 128 + sig, (proc.returncode, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and ("interrupted" in lines[0] or "terminated" in lines[0]), err


def test_sigterm_during_elicit_stops_like_ctrl_c_and_the_run_continues(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    args = ["elicit", "-m", "mock:rate=0.5,delay=0.05", "-r", "slow", "--split", "train", "-n", "2", "--store", str(db)]
    proc = _cli(args)
    deadline = time.time() + 60
    while time.time() < deadline and not (db.exists() and _stored(db, "slow") >= 5):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stopped: terminated;") and "re-run the same command" in lines[0], err
    kept = _stored(db, "slow")
    assert 5 <= kept < 40
    assert main(args) == 0  # the same command continues where it stopped
    assert _stored(db, "slow") == 40


def _stored(db: Path, run: str) -> int:
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        row = con.execute("SELECT count(*) FROM samples JOIN runs ON runs.id = samples.run_id WHERE runs.name = ?",
                          (run,)).fetchone()
        return int(row[0])
    except sqlite3.OperationalError:  # the tables are not there yet
        return 0
    finally:
        con.close()


@pytest.mark.parametrize("state", ["{not json", '{"teacher": 3}', "[1, 2]", "\udcff".encode("utf-8", "surrogateescape")],
                         ids=["broken-json", "stage-not-a-table", "a-list", "not-utf8"])
def test_garbage_in_pipeline_json_is_one_line(state, tmp_path: Path, capsys) -> None:
    from tomdistill.outdirs import write_marker
    from tomdistill.pipeline import RUN_KIND

    out = tmp_path / "out"
    out.mkdir()
    write_marker(out, RUN_KIND)
    path = out / "pipeline.json"
    path.write_bytes(state if isinstance(state, bytes) else state.encode())
    run_bad(["run", "--out", str(out)], "pipeline.json: not a valid tomdistill pipeline state", capsys, watch=tmp_path)


def test_play_refuses_a_users_folder_and_rewrites_its_own(tmp_path: Path, capsys) -> None:
    db = make_store(tmp_path / "store.db")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    play = ["play", "--agents", "tit-for-tat", "always-d", "--scenario", "team/prisoners_dilemma", "--rounds", "2",
            "--store", str(db), "--out"]
    run_bad([*play, str(mine)], "folder is not empty and tomdistill did not write it", capsys, store=db, watch=mine)
    ours = tmp_path / "ours"
    assert main([*play, str(ours)]) == 0, capsys.readouterr().err
    assert main([*play, str(ours), "--rounds", "3"]) == 0, capsys.readouterr().err  # an earlier report: rewritten
    assert '"rounds": 3' in (ours / "play.json").read_text()


def test_the_lazy_public_api_lists_what_it_exports() -> None:
    import tomdistill

    assert sorted(tomdistill.__all__) == sorted([*tomdistill._EXPORTS, "__version__"])
    for name in tomdistill.__all__:
        assert getattr(tomdistill, name) is not None
    with pytest.raises(AttributeError):
        tomdistill.no_such_name  # noqa: B018
