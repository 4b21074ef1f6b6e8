"""The elicitation engine on the mock backend: counts, resume, interruption, score mode, reparse."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tomdistill.cli import main
from tomdistill.elicit import elicit, sample_seed
from tomdistill.models.base import SCORING_VERSION, BackendError, ModelOptions, ModelSpecError, SamplingSettings
from tomdistill.models.registry import load_model
from tomdistill.run_export import export_run
from tomdistill.run_reparse import reparse_run
from tomdistill.store import Store


def counts(store: Store, run_name: str) -> dict[str, list[int]]:
    run = store.require_run(run_name)
    out: dict[str, list[int]] = {}
    for s in store.samples(run.id):
        out.setdefault(s.scenario, []).append(s.sample_index)
    return {k: sorted(v) for k, v in out.items()}


def test_sample_mode_stores_n_per_scenario(store, library) -> None:
    scenarios = library.scenarios("train")[:3]
    summary = elicit(store, load_model("mock:rate=0.7"), scenarios, run_name="r", samples=5, protocol="motivated")
    assert summary.new == 15
    assert counts(store, "r") == {s.id: [0, 1, 2, 3, 4] for s in scenarios}
    stored = store.samples(store.require_run("r").id)
    assert all(s.raw_text and s.parser_version and s.seed is not None for s in stored)
    assert all(s.motivation == "scripted." for s in stored)
    assert {s.action for s in stored} <= {"C", "D"}
    # Re-running asks for nothing; asking for more adds only the missing indexes.
    assert elicit(store, load_model("mock:rate=0.7"), scenarios, run_name="r", samples=5, protocol="motivated").new == 0
    assert elicit(store, load_model("mock:rate=0.7"), scenarios, run_name="r", samples=7, protocol="motivated").new == 6


def test_rates_follow_the_replies(store, library) -> None:
    scenarios = library.scenarios("train")[:2] + library.scenarios("heldout_pgg")
    summary = elicit(store, load_model("mock:rate=1"), scenarios, run_name="all-c", samples=4)
    rates = {s.scenario: s.rate for s in summary.scenarios}
    assert rates == {scenarios[0].id: 1.0, scenarios[1].id: 1.0, "community/donation_game": 10.0}
    summary = elicit(store, load_model("mock:rate=0"), scenarios, run_name="all-d", samples=4)
    assert [s.rate for s in summary.scenarios] == [0.0, 0.0, 0.0]


def test_seeds_do_not_depend_on_batching(store, library) -> None:
    scenario = library.scenarios("train")[0]
    seen: list[int] = []
    model = load_model("mock:scripted", ModelOptions(batch_size=3, extra={"script": lambda r: seen.append(r.seed) or "C"}))
    elicit(store, model, [scenario], run_name="s", samples=5, seed=42)
    assert seen == [sample_seed(42, scenario.id, i) for i in range(5)]
    assert len(set(seen)) == 5


def test_backend_failure_keeps_finished_samples_and_resumes(store, library) -> None:
    scenarios = library.scenarios("train")[:4]
    with pytest.raises(BackendError, match="scripted failure"):
        elicit(store, load_model("mock:fail_after=7", ModelOptions(extra={"spec": "mock:scripted"})), scenarios,
               run_name="f", samples=3)
    assert sum(len(v) for v in counts(store, "f").values()) == 7
    elicit(store, load_model("mock:scripted"), scenarios, run_name="f", samples=3)
    assert counts(store, "f") == {s.id: [0, 1, 2] for s in scenarios}


def test_ctrl_c_keeps_finished_samples(store, library) -> None:
    scenarios = library.scenarios("train")[:2]
    calls = {"n": 0}

    def script(request):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return "D"

    with pytest.raises(KeyboardInterrupt):
        elicit(store, load_model("mock:scripted", ModelOptions(extra={"script": script})), scenarios, run_name="k", samples=3)
    assert sum(len(v) for v in counts(store, "k").values()) == 3
    elicit(store, load_model("mock:scripted"), scenarios, run_name="k", samples=3)
    assert counts(store, "k") == {s.id: [0, 1, 2] for s in scenarios}


def test_score_mode_stores_probabilities(store, library) -> None:
    scenarios = library.scenarios("train")[:2] + library.scenarios("heldout_pgg")
    at_one = SamplingSettings(temperature=1.0)
    summary = elicit(store, load_model("mock:rate=0.3"), scenarios, run_name="sc", mode="score", settings=at_one)
    run = store.require_run("sc")
    stored = store.samples(run.id)
    assert len(stored) == 3 and all(s.raw_text is None for s in stored)
    assert stored[0].probs == pytest.approx({"C": 0.3, "D": 0.7})
    assert set(stored[2].probs) == {str(i) for i in range(11)}
    assert [round(s.rate, 6) for s in summary.scenarios] == [0.3, 0.3, 3.0]
    # The run records what its numbers are: scoring version, temperature, reply prefix.
    assert run.settings == {"scoring": SCORING_VERSION, "temperature": 1.0, "reply_prefix": ""}
    # The default temperature is the paper's 0.8: P(C) = softmax(log p / 0.8).
    elicit(store, load_model("mock:rate=0.3"), scenarios[:1], run_name="sc08", mode="score", protocol="motivated")
    run08 = store.require_run("sc08")
    assert run08.settings == {"scoring": SCORING_VERSION, "temperature": 0.8, "reply_prefix": "Answer:"}
    assert store.samples(run08.id)[0].probs["C"] == pytest.approx(0.3 ** 1.25 / (0.3 ** 1.25 + 0.7 ** 1.25))


def test_reparse_restores_parses_without_a_model(store, library) -> None:
    scenarios = library.scenarios("train")[:2]
    elicit(store, load_model("mock:text=I%20pick%20D%2C%20not%20C."), scenarios, run_name="p", samples=2)
    run = store.require_run("p")
    store.conn.execute("UPDATE samples SET action = NULL, invalid_reason = 'old parser'")
    result = reparse_run(store, run, library)
    assert (result.samples, result.changed, result.valid_before, result.valid_after) == (4, 4, 0, 4)
    assert {s.action for s in store.samples(run.id)} == {"D"}
    assert reparse_run(store, run, library).changed == 0


def test_export_jsonl(store, library, tmp_path) -> None:
    elicit(store, load_model("mock:rate=1"), library.scenarios("train")[:1], run_name="e", samples=2)
    out = export_run(store, store.require_run("e"), tmp_path / "e.jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["run"] == "e" and rows[0]["raw_text"].startswith("C")


def test_unknown_provider() -> None:
    with pytest.raises(ModelSpecError, match="unknown provider 'gpt'"):
        load_model("gpt:4")
    with pytest.raises(ModelSpecError, match="provider:id"):
        load_model("student")


def test_cli_elicit_show_export_reparse(tmp_path, capsys) -> None:
    db = str(tmp_path / "cli.db")
    args = ["elicit", "--model", "mock:rate=0.5", "--run", "c", "--split", "heldout_context", "-n", "3", "--store", db]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "36 new of 36 requested" in out and "sports/stag_hunt" in out
    assert main(args) == 0 and "0 new of 36" in capsys.readouterr().out
    assert main(["runs", "list", "--store", db]) == 0 and "mock:rate=0.5" in capsys.readouterr().out
    assert main(["runs", "show", "c", "--store", db]) == 0 and "roomsharing/snowdrift" in capsys.readouterr().out
    assert main(["reparse", "c", "--store", db]) == 0 and "0 changed" in capsys.readouterr().out
    assert main(["runs", "export", "c", "--out", str(tmp_path / "c.jsonl"), "--store", db]) == 0
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 36


def test_cli_refuses_bad_input_before_touching_the_store(tmp_path, capsys) -> None:
    db = tmp_path / "untouched.db"
    for args in (
        ["elicit", "--model", "nope:x", "--run", "r", "--store", str(db)],
        ["elicit", "--model", "mock:plain", "--run", "r", "--scenario", "x/y", "--store", str(db)],
        ["elicit", "--model", "mock:plain", "--run", "r", "--split", "bogus", "--store", str(db)],
    ):
        assert main(args) == 2
        assert "error:" in capsys.readouterr().err
    assert not db.exists()


def test_run_name_clash_is_refused(tmp_path, capsys) -> None:
    db = str(tmp_path / "clash.db")
    assert main(["elicit", "--model", "mock:plain", "--run", "r", "--scenario", "team/stag_hunt", "--store", db]) == 0
    capsys.readouterr()
    assert main(["elicit", "--model", "mock:plain", "--run", "r", "--scenario", "team/stag_hunt", "--temperature", "0.1",
                 "--store", db]) == 2
    assert "already exists with other settings" in capsys.readouterr().err


def test_kill_mid_run_then_rerun_gives_exactly_n(tmp_path) -> None:
    """kill -9 the CLI at 10 random moments while it writes; the store ends with each index once."""
    import random

    db = tmp_path / "kill.db"
    cmd = [sys.executable, "-m", "tomdistill", "elicit", "--model", "mock:rate=0.5,delay=0.01", "--run", "k",
           "--split", "train", "-n", "6", "--store", str(db)]
    env = os.environ | {"COLUMNS": "100"}
    rng = random.Random(7)
    progress = []
    for _ in range(10):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(0.5, 1.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if db.exists():
            with Store(db) as store:
                run = store.get_run("k")
                progress.append(store.count(run.id) if run else 0)
    assert progress[-1] > 0  # the kills did land while samples were being written
    assert subprocess.run(cmd, capture_output=True, env=env).returncode == 0
    with Store(db) as store:
        got = counts(store, "k")
        rows = store.conn.execute("SELECT COUNT(*), COUNT(DISTINCT scenario || '/' || sample_index) FROM samples").fetchone()
        integrity = store.conn.execute("PRAGMA integrity_check").fetchone()[0]
        unparsed = store.conn.execute("SELECT COUNT(*) FROM samples WHERE raw_text IS NULL OR parser_version IS NULL").fetchone()[0]
    assert len(got) == 20 and all(v == list(range(6)) for v in got.values())
    assert tuple(rows) == (120, 120) and integrity == "ok" and unparsed == 0


def test_sampling_settings_default_length_depends_on_protocol() -> None:
    assert SamplingSettings().for_protocol("answer").max_new_tokens == 24
    assert SamplingSettings().for_protocol("motivated").max_new_tokens == 128
    assert SamplingSettings(max_new_tokens=5).for_protocol("motivated").max_new_tokens == 5


def test_export_parquet_and_datasets_folder(store, library, tmp_path) -> None:
    datasets = pytest.importorskip("datasets")
    elicit(store, load_model("mock:rate=0.5"), library.scenarios("heldout_pgg"), run_name="x", mode="score")
    elicit(store, load_model("mock:rate=0.5"), library.scenarios("train")[:2], run_name="y", samples=2)
    for name in ("x", "y"):
        run = store.require_run(name)
        table = datasets.Dataset.from_parquet(str(export_run(store, run, tmp_path / f"{name}.parquet")))
        assert table.num_rows == store.count(run.id)
        folder = export_run(store, run, tmp_path / f"{name}-ds")
        assert datasets.load_from_disk(str(folder)).num_rows == store.count(run.id)


def test_run_of_a_user_scenario_needs_its_library(tmp_path, capsys) -> None:
    example = str(Path(__file__).parent.parent / "examples" / "my_library.toml")
    db = str(tmp_path / "u.db")
    assert main(["elicit", "--model", "mock:rate=1", "--run", "u", "--scenario", "fishing/chicken_high_stakes",
                 "--library", example, "--store", db]) == 0
    capsys.readouterr()
    assert main(["runs", "show", "u", "--store", db]) == 2
    assert "library lacks (fishing/chicken_high_stakes)" in capsys.readouterr().err
    assert main(["reparse", "u", "--store", db, "--library", example]) == 0


def test_two_processes_write_one_store_at_once(tmp_path) -> None:
    """WAL and a busy timeout let two elicitations share a store; both finish with every sample."""
    db = tmp_path / "shared.db"
    procs = [
        subprocess.Popen([sys.executable, "-m", "tomdistill", "elicit", "--model", "mock:rate=0.5,delay=0.002",
                          "--run", name, "--split", "train", "-n", "15", "--store", str(db)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for name in ("left", "right")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-500:]
    with Store(db) as store:
        for name in ("left", "right"):
            assert store.count(store.require_run(name).id) == 300
