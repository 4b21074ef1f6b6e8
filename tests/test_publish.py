"""`tomdistill push`: the files another tool needs, to a local folder or (faked here) the Hub."""

from __future__ import annotations

import json

import pytest

from tomdistill.cli import main
from tomdistill.dataset import build_dataset
from tomdistill.elicit import elicit
from tomdistill.errors import TomdistillError
from tomdistill.models.base import ModelOptions
from tomdistill.models.registry import load_model
from tomdistill.outdirs import MARKER, write_marker
from tomdistill.publish import files_to_push, push

pytest.importorskip("datasets")


@pytest.fixture
def dataset_dir(store, library, tmp_path):
    elicit(store, load_model("mock:teacher", ModelOptions()), library.scenarios("train")[:3], run_name="teacher",
           protocol="motivated", samples=2)
    build_dataset(store, store.require_run("teacher"), library, tmp_path / "ds")
    return tmp_path / "ds"


def test_a_dataset_pushed_to_a_folder_loads_with_every_column(dataset_dir, tmp_path) -> None:
    import datasets

    pushed = push(dataset_dir, to=tmp_path / "mirror")
    assert pushed.repo_type == "dataset" and "train.parquet" in pushed.files and "README.md" in pushed.files
    assert not any(f.startswith("hf/") or MARKER in f for f in pushed.files)  # the save_to_disk copy stays home
    mirror = tmp_path / "mirror"
    assert not (mirror / "hf").exists()
    data = datasets.load_dataset(str(mirror), split="train", cache_dir=str(tmp_path / "cache"))
    assert {"scenario", "split", "decision_target", "messages"} <= set(data.column_names)
    push(dataset_dir, to=mirror)  # a second push replaces its own earlier copy


def test_hub_errors_are_one_line(dataset_dir) -> None:
    from huggingface_hub.errors import HFValidationError

    class Refusing(FakeHub):
        def create_repo(self, repo_id, **kwargs):
            raise HFValidationError("Repo id must be in the form 'repo_name' or 'namespace/repo_name'")

    with pytest.raises(TomdistillError, match="push to bad id: Repo id must be"):
        push(dataset_dir, repo_id="bad id", api=Refusing())


def test_adapter_checkpoints_stay_behind(tmp_path) -> None:
    folder = tmp_path / "adapter"
    (folder / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (folder / "checkpoints" / "checkpoint-2" / "optimizer.pt").write_bytes(b"x")
    (folder / "runs").mkdir()
    (folder / "runs" / "events.out.tfevents.1").write_bytes(b"x")
    for name in ("adapter_config.json", "adapter_model.safetensors", "README.md", "training_args.bin"):
        (folder / name).write_text("{}")
    write_marker(folder, "adapter")
    assert files_to_push(folder, "adapter") == ["README.md", "adapter_config.json", "adapter_model.safetensors"]


def test_refusals_leave_user_folders_alone(dataset_dir, tmp_path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(TomdistillError):
        push(dataset_dir, to=mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"
    with pytest.raises(TomdistillError, match="not a dataset, adapter or merged-model folder"):
        push(mine, to=tmp_path / "out")
    with pytest.raises(TomdistillError, match="choose a folder outside it"):
        push(dataset_dir, to=dataset_dir / "export")  # a copy into itself
    with pytest.raises(TomdistillError, match="choose a folder outside it"):
        push(dataset_dir, to=dataset_dir.parent)  # a folder holding it: replacing it would delete the source
    assert (dataset_dir / "train.parquet").is_file()
    with pytest.raises(TomdistillError, match="either a Hub repo id"):
        push(dataset_dir)
    (dataset_dir / "train.parquet").unlink()
    with pytest.raises(TomdistillError, match="build it again"):
        push(dataset_dir, to=tmp_path / "old")


class FakeHub:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/datasets/{repo_id}"

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))


def test_a_hub_push_uploads_the_same_files_to_a_dataset_repo(dataset_dir) -> None:
    hub = FakeHub()
    pushed = push(dataset_dir, repo_id="someone/distilled", private=True, api=hub)
    (create, c), (upload, u) = hub.calls
    assert create == "create_repo" and c == {"repo_id": "someone/distilled", "repo_type": "dataset", "private": True,
                                             "exist_ok": True}
    assert upload == "upload_folder" and u["repo_type"] == "dataset" and u["allow_patterns"] == pushed.files
    assert u["folder_path"] == str(dataset_dir) and pushed.url.endswith("someone/distilled")


def test_push_json_names_the_files(dataset_dir, tmp_path, capsys) -> None:
    assert main(["push", str(dataset_dir), "--to", str(tmp_path / "m"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["repo_type"] == "dataset" and sorted(out["files"]) == out["files"] and out["url"] is None
    assert all((tmp_path / "m" / f).is_file() for f in out["files"])
