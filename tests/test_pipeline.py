"""`tomdistill run`: the config, and the whole pipeline on the real default models at a tiny size."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tomdistill.cli import main
from tomdistill.config import Config, load_config
from tomdistill.errors import TomdistillError
from tomdistill.evaluate import load_report
from tomdistill.pipeline import STAGES, Pipeline

from mockrun import mock_run_config

TINY = """
seed = 3
[scenarios]
include = ["team/*", "sports/*", "community/*"]
[teacher]
samples = 2
[teacher.sampling]
max_new_tokens = 40
[train]
max_steps = 2
save_steps = 1
max_length = 320
[evaluate]
bootstrap = 100
"""


def test_config_show_round_trips(tmp_path, capsys) -> None:
    assert main(["config", "show"]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert load_config(path) == load_config(None)
    assert tomllib.loads(text)["teacher"]["model"] == "default:teacher"


def test_examples_default_toml_is_what_config_show_prints(capsys) -> None:
    """The documented defaults file is generated; a default changed in config.py must show there."""
    assert main(["config", "show"]) == 0
    shown = capsys.readouterr().out
    path = Path(__file__).parent.parent / "examples" / "default.toml"
    assert path.read_text() == shown, "regenerate it: tomdistill config show > examples/default.toml"


@pytest.mark.parametrize("name", ["default.toml", "cpu-qwen-pair.toml", "gpu-paper.toml", "planted.toml"])
def test_example_configs_load(name: str) -> None:
    load_config(Path(__file__).parent.parent / "examples" / name)


def test_config_errors_name_the_field(tmp_path, capsys) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[teacher]\nsamples = 0\n")
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "field 'teacher.samples'" in capsys.readouterr().err
    path.write_text("[scenarios]\ninclude = ['nothing/*']\n")
    with pytest.raises(TomdistillError, match="no scenario matching scenarios.include"):
        Pipeline(load_config(path), tmp_path / "o")
    with pytest.raises(TomdistillError, match="unknown stage 'teach'"):
        Pipeline(Config(), tmp_path / "o", force={"teach"})
    assert not (tmp_path / "o").exists()


def test_stage_keys_follow_their_inputs(tmp_path) -> None:
    base = Pipeline(Config(), tmp_path).keys
    more_epochs = Pipeline(Config.model_validate({"train": {"epochs": 3}}), tmp_path).keys
    changed = {s for s in STAGES if base[s] != more_epochs[s]}
    assert changed == {"train", "student", "evaluate", "report"}  # teacher, dataset and base are reused
    # A tracker changes nothing the training produces: a finished training is not redone for it.
    tracked = Pipeline(Config.model_validate({"train": {"report_to": ["tensorboard"]}}), tmp_path).keys
    assert tracked == base
    bootstrap = Pipeline(Config.model_validate({"evaluate": {"bootstrap": 10}}), tmp_path).keys
    assert {s for s in STAGES if base[s] != bootstrap[s]} == {"evaluate", "report"}
    # The comparison temperature changes every scored stage, and the dataset (its soft-label targets
    # are the teacher's scores at that temperature) with the training on it.
    hotter = Pipeline(Config.model_validate({"evaluate": {"temperature": 1.0}}), tmp_path).keys
    assert {s for s in STAGES if base[s] != hotter[s]} == set(STAGES) - {"teacher"}

@pytest.mark.parametrize(("teacher", "mode"), [("mock:rate=0.3", "score"), ("mock:rate=0.3,noscore=1", "sample")],
                         ids=["scored", "cannot-be-scored"])
def test_the_teacher_reference_is_scored_on_every_split(teacher, mode, tmp_path, stub_train, capsys) -> None:
    config = tmp_path / "c.toml"
    config.write_text(mock_run_config(teacher=teacher, samples=3, bootstrap=50))
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out)]) == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    reference = manifest["stages"]["teacher_score"]["details"]
    assert reference["mode"] == mode and reference["run"] == manifest["runs"]["teacher"]
    assert ("fallback" in reference) == (mode == "sample")
    report = load_report(out / "eval.json")
    assert report.temperature == 0.8
    teacher_source = next(s for s in report.sources if s.role == "teacher")
    assert teacher_source.mode == mode and teacher_source.run == reference["run"]
    assert set(report.splits) == {"train", "heldout_context", "heldout_game", "heldout_pgg"}
    cell = report.splits["heldout_context"].cells[0]
    assert cell.teacher.source == ("score" if mode == "score" else "samples")
    if mode == "score":  # the mock's 0.3 at temperature 1, tempered to 0.8
        assert cell.teacher.value == pytest.approx(100 * 0.3 ** 1.25 / (0.3 ** 1.25 + 0.7 ** 1.25))
    # The sampled teacher run (motivations for the dataset) covers the train split only.
    from tomdistill.store import Store

    with Store(out / "tomdistill.db", readonly=True) as store:
        sampled = store.require_run(manifest["runs"]["teacher_samples"])
        assert {s.split for s in store.samples(sampled.id)} == {"train"}


@pytest.mark.e2e
def test_pipeline_end_to_end_on_the_default_models(tmp_path, capsys) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out)]) == 0
    first = capsys.readouterr().out
    for stage in STAGES:
        assert f"[{stage}] running" in first
    for path in ("eval.json", "manifest.json", "pipeline.json", "tomdistill.db", "dataset/train.jsonl",
                 "dataset/manifest.json", "adapter/adapter_model.safetensors", "adapter/README.md",
                 "report/report.md", "report/report.html", "report/improvement.png"):
        assert (out / path).is_file(), path
    report = load_report(out / "eval.json")  # validates against the schema
    assert set(report.splits) == {"train", "heldout_context", "heldout_game", "heldout_pgg"}
    assert len(report.splits["train"].cells) == 4 and len(report.splits["heldout_pgg"].cells) == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["versions"]["torch"] and manifest["seeds"]["run"] == 3
    assert manifest["stages"]["teacher"]["details"]["model_info"]["gguf_sha256"]

    # Re-running redoes nothing; forcing the evaluation redoes only it and the report.
    assert main(["run", str(config), "--out", str(out)]) == 0
    second = capsys.readouterr().out
    assert all(f"[{stage}] up to date" in second for stage in STAGES)
    assert main(["run", str(config), "--out", str(out), "--force", "evaluate"]) == 0
    third = capsys.readouterr().out
    assert "[evaluate] running" in third and "[report] running" in third and "[train] up to date" in third


@pytest.mark.e2e
def test_killed_run_continues_without_losing_or_duplicating(tmp_path) -> None:
    """kill -9 `tomdistill run` during the teacher stage and during training; the re-run finishes."""
    import signal
    import subprocess
    import sys
    import time

    from tomdistill.store import Store

    config = tmp_path / "tiny.toml"
    # The teacher is sampled on the train split only (4 team/* scenarios): 4 samples each, 4 rows at
    # a time, so the stage stores its samples in steps and the kill below lands mid-stage.
    config.write_text(TINY.replace("max_steps = 2", "max_steps = 3").replace("samples = 2", "samples = 4\nbatch_size = 4"))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "tomdistill", "run", str(config), "--out", str(out)]

    def teacher_samples() -> int:
        if not (out / "tomdistill.db").exists():
            return 0
        with Store(out / "tomdistill.db") as store:
            runs = [r for r in store.runs() if r.name.startswith("teacher-")]
            return store.count(runs[0].id) if runs else 0

    def kill_when(ready, limit: float = 600) -> None:  # generous: a loaded machine (CI beside other work) is slow
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + limit
        while not ready():
            assert proc.poll() is None, "the run ended before the kill"
            assert time.time() < deadline
            time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    kill_when(lambda: teacher_samples() >= 5)
    assert 5 <= teacher_samples() < 16
    kill_when(lambda: (out / "adapter" / "checkpoints" / "checkpoint-1" / "trainer_state.json").is_file())
    assert not (out / "adapter" / "adapter_model.safetensors").exists()
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[teacher] up to date" in done.stdout and "[train] running" in done.stdout
    state = json.loads((out / "pipeline.json").read_text())
    assert state["train"]["details"]["resumed_from"].endswith("checkpoint-1")
    assert state["train"]["details"]["steps"] == 3
    with Store(out / "tomdistill.db") as store:
        teacher = next(r for r in store.runs() if r.name.startswith("teacher-"))
        keys = store.conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT scenario || '/' || sample_index) FROM samples WHERE run_id = ?", (teacher.id,)
        ).fetchone()
    assert tuple(keys) == (16, 16)  # 4 train scenarios x 4 samples, each once
    load_report(out / "eval.json")


@pytest.mark.e2e
def test_planted_key_absent_from_every_artifact_of_a_run(tmp_path, monkeypatch, capsys) -> None:
    """A run whose teacher sits behind a (local, fake) OpenAI-compatible server that wants a key."""
    import threading

    from fakeserver import KEY, FakeServer

    splits = '["train", "heldout_context", "heldout_game"]'
    server = FakeServer(lambda seed, attempt: "500" if attempt == 0 and seed % 4 == 0 else "ok")
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        config = tmp_path / "c.toml"
        config.write_text(TINY.replace('include = ["team/*", "sports/*", "community/*"]',
                                       'include = ["team/stag_hunt", "sports/stag_hunt", "team/stag_hunt_x2"]')
                          .replace("[teacher]", f'[teacher]\nmodel = "openai:fake-70b"\nbase_url = "{server.url}"\n'
                                   f'splits = {splits}')
                          .replace("[evaluate]", f"[evaluate]\nsplits = {splits}"))
        out = tmp_path / "run"
        assert main(["run", str(config), "--out", str(out)]) == 0
        printed = capsys.readouterr()
    finally:
        server.shutdown()
        server.server_close()
    assert server.auth and all(a == f"Bearer {KEY}" for a in server.auth)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in files) and len(files) > 20
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in printed.out + printed.err

