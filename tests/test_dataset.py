"""Teacher run -> SFT dataset: format, parser round trip, no held-out leak, counts."""

from __future__ import annotations

import json

import pytest

from tomdistill.dataset import build_dataset, load_manifest, load_training_data, teacher_reply
from tomdistill.elicit import elicit
from tomdistill.errors import TomdistillError
from tomdistill.models.base import ModelOptions
from tomdistill.models.registry import load_model
from tomdistill.scenarios.parse import parse_decision
from tomdistill.scenarios.render import num

pytest.importorskip("datasets")


def _teacher(store, library, scenarios, samples=3, script=None):
    model = load_model("mock:teacher", ModelOptions(extra={"script": script} if script else {}))
    elicit(store, model, scenarios, run_name="teacher", protocol="motivated", samples=samples)
    return store.require_run("teacher")


def test_only_train_scenarios_go_in(store, library, tmp_path) -> None:
    every_split = library.scenarios()  # 53 scenarios: train and all held-out splits
    run = _teacher(store, library, every_split, samples=2)
    manifest = build_dataset(store, run, library, tmp_path / "ds")
    assert manifest.examples == 40 and manifest.per_split == {"train": 40}
    assert manifest.dropped_other_split == (53 - 20) * 2
    held_out = {s.id for s in library.scenarios() if s.split != "train"}
    lines = (tmp_path / "ds" / "train.jsonl").read_text().splitlines()
    assert len(lines) == 40
    data = load_training_data(tmp_path / "ds")
    assert not held_out & set(data["scenario"])
    for line in lines:
        text = json.loads(line)["messages"][1]["content"]
        assert not any(text == s for s in held_out)
    assert set(data.column_names) >= {"prompt", "completion", "messages", "scenario", "split"}


def test_reply_format_reads_back_through_the_parser(store, library, tmp_path) -> None:
    scenarios = library.scenarios("train")[:4] + library.scenarios("heldout_pgg")
    run = _teacher(store, library, scenarios)
    build_dataset(store, run, library, tmp_path / "ds", splits=("train", "heldout_pgg"))
    data = load_training_data(tmp_path / "ds")
    by_id = {s.id: s for s in scenarios}
    for row in data:
        reply = row["completion"][0]["content"]
        # The decision opens the reply on its own line: what the answer protocol and score mode read.
        assert reply.split("\n")[0] == row["decision"]
        assert reply.split("\n")[1].startswith("Motivation: ")
        decision = parse_decision(reply, by_id[row["scenario"]])
        shown = num(decision.action) if isinstance(decision.action, float) else decision.action
        assert decision.valid and shown == row["decision"]
        assert row["prompt"][-1]["content"].endswith("(C or D).") or "whole number" in row["prompt"][-1]["content"]


def test_invalid_teacher_answers_are_dropped_and_counted(store, library, tmp_path) -> None:
    replies = iter(["Answer: C\nMotivation: a.", "C or D?", "Answer: D\nMotivation: b.", "no idea"] * 10)
    run = _teacher(store, library, library.scenarios("train")[:2], samples=2, script=lambda r: next(replies))
    manifest = build_dataset(store, run, library, tmp_path / "ds")
    assert (manifest.examples, manifest.dropped_invalid) == (2, 2)
    assert load_manifest(tmp_path / "ds").decisions == {"C": 1, "D": 1}


def test_teacher_reply_without_motivation() -> None:
    assert teacher_reply("D", None) == "D"
    assert teacher_reply("C", "Line one.\n  Line two.") == "C\nMotivation: Line one. Line two."


def test_refusals(store, library, tmp_path) -> None:
    elicit(store, load_model("mock:rate=0.5"), library.scenarios("train")[:1], run_name="sc", mode="score")
    with pytest.raises(TomdistillError, match="score-mode run"):
        build_dataset(store, store.require_run("sc"), library, tmp_path / "a")
    run = _teacher(store, library, library.scenarios("heldout_context")[:2])
    with pytest.raises(TomdistillError, match="no valid sample in splits train"):
        build_dataset(store, run, library, tmp_path / "b")
    with pytest.raises(TomdistillError, match="unknown split 'nope'"):
        build_dataset(store, run, library, tmp_path / "c", splits=("nope",))
    with pytest.raises(TomdistillError, match="not a tomdistill dataset folder"):
        load_manifest(tmp_path / "missing")


def test_load_dataset_reads_every_column_and_llama_factory_is_registered(store, library, tmp_path) -> None:
    import datasets
    from huggingface_hub import DatasetCard

    run = _teacher(store, library, library.scenarios("train")[:3])
    folder = tmp_path / "ds"
    manifest = build_dataset(store, run, library, folder)
    ours = load_training_data(folder)
    theirs = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "cache"))
    assert theirs.column_names == ours.column_names  # every column, not just messages from train.jsonl
    assert {"scenario", "split", "decision", "decision_target", "prompt", "completion", "messages"} <= set(theirs.column_names)
    assert theirs.to_list() == ours.to_list()
    card = DatasetCard.load(folder / "README.md").data.to_dict()
    assert card["tomdistill"]["teacher_run"] == manifest.teacher_run
    entry = json.loads((folder / "dataset_info.json").read_text())
    (name, spec), = entry.items()
    assert name.startswith("tomdistill_") and spec["file_name"] == "train.jsonl" and spec["formatting"] == "sharegpt"
    first = json.loads((folder / "train.jsonl").read_text().splitlines()[0])
    roles = {m[spec["tags"]["role_tag"]] for m in first[spec["columns"]["messages"]]}
    assert roles <= {spec["tags"][t] for t in ("system_tag", "user_tag", "assistant_tag")}
    # A rebuild replaces the folder it wrote, new files included.
    build_dataset(store, run, library, folder)
    assert (folder / "train.parquet").is_file()
