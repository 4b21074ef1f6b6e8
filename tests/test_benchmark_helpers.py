"""Checks of the logic inside benchmark scripts that is not timing: a benchmark whose generated
input were wrong would measure the wrong thing without failing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tomdistill.scenarios import load_library, render

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cost_growth_bulk_library_pairs_each_context_with_the_train_games(tmp_path: Path) -> None:
    cost = _load("cost_growth")
    library = load_library([cost.bulk_library(7, tmp_path / "bulk.toml")])
    bulk = library.scenarios("bulk")
    assert len(bulk) == 7 * cost.GAMES_PER_CONTEXT
    assert {s.game.id for s in bulk} == {s.game.id for s in library.scenarios("train")}
    assert len({s.context.framing for s in bulk}) == 7  # every context says something different
    assert "coplayer" in render(bulk[0], "answer")[-1]["content"]
    # The built-in splits are untouched by the bulk contexts.
    assert len(library.scenarios("train")) == len(load_library().scenarios("train"))


def test_cost_growth_samples_for_two_points() -> None:
    cost = _load("cost_growth")
    assert cost.samples_for_precision(0.5) == 2401
    assert cost.samples_for_precision(0.9) == 865
    assert cost.samples_for_precision(0.0) == 1
    with pytest.raises(SystemExit):
        cost.bulk_library(len(cost.ROLES) * len(cost.SETTINGS) + 1, Path("unused.toml"))
