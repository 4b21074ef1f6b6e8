"""Shared fixtures: a fresh store per test, the library, and a cache folder for converted models."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from tomdistill.scenarios import load_library
from tomdistill.store import Store


@pytest.fixture(scope="session")
def library():
    return load_library()


@pytest.fixture()
def store(tmp_path: Path):
    with Store(tmp_path / "test.db") as db:
        yield db


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory) -> None:
    # Converted default models are reused across test runs when TOMDISTILL_CACHE is set outside;
    # otherwise they go to the user cache like for any user.
    os.environ.setdefault("TOMDISTILL_CACHE", str(Path.home() / ".cache" / "tomdistill"))


@pytest.fixture()
def stub_train(monkeypatch) -> list[Path]:
    """Training replaced by a stub that writes an adapter folder's files: no model is loaded.

    Lets `tomdistill run` go through every stage on mock models in seconds; returns the adapter
    folders it was asked to write."""
    from tomdistill import train as train_module

    calls: list[Path] = []

    def stub(student, data_dir, out, config, *, resume=False, progress=True):
        calls.append(out)
        result = train_module.TrainResult(str(out), student, 1, 1, 0.5, 0.0, None)
        (out / "adapter_config.json").write_text("{}")
        # What train() records and the adapter's model card reads once `tomdistill run` evaluated it.
        (out / "train_config.json").write_text(json.dumps({"student": student, "config": config.model_dump(mode="json"),
                                                           "bf16": False, "result": asdict(result), "versions": {}}))
        return result

    monkeypatch.setattr(train_module, "train", stub)
    return calls
