"""`tomdistill run`: the config, and the whole pipeline on the real default models at a tiny size."""

from __future__ import annotations

import json
import tomllib

import pytest

from tomdistill.cli import main
from tomdistill.config import Config, load_config
from tomdistill.errors import TomdistillError
from tomdistill.evaluate import load_report
from tomdistill.pipeline import STAGES, Pipeline

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
    bootstrap = Pipeline(Config.model_validate({"evaluate": {"bootstrap": 10}}), tmp_path).keys
    assert {s for s in STAGES if base[s] != bootstrap[s]} == {"evaluate", "report"}


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
