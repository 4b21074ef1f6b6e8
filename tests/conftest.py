"""Shared fixtures: a fresh store per test, the library, and a cache folder for converted models."""

from __future__ import annotations

import os
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
