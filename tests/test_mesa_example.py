"""examples/mesa_dilemma.py: a Mesa grid of tomdistill players, one batched decision call per step."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

pytest.importorskip("mesa")

EXAMPLE = Path(__file__).parent.parent / "examples" / "mesa_dilemma.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("mesa_dilemma", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


class Counting:
    """A player that records each decide_many call and answers with always-defect."""

    def __init__(self) -> None:
        from tomdistill.agents.strategies import strategy

        self.inner, self.calls = strategy("always-D"), []

    def decide_many(self, scenarios, *, seeds=None, histories=None):
        self.calls.append((len(scenarios), histories))
        return self.inner.decide_many(scenarios, seeds=seeds, histories=histories)


def test_one_batched_call_per_step_with_each_agents_history(example) -> None:
    player = Counting()
    model = example.run(player, "team/prisoners_dilemma", size=4, steps=3, seed=1)
    assert [n for n, _ in player.calls] == [16, 16, 16]
    assert all(h is None for h in player.calls[0][1])  # nothing seen before the first step
    first = player.calls[1][1][0]
    assert len(first) == 1 and (first[0].mine, first[0].theirs) == ("D", "D")
    series = list(model.datacollector.get_model_vars_dataframe()["cooperation"])
    assert series == [0.0, 0.0, 0.0]
    assert all(a.score == 3 * 8 * model.game.payoffs["D"]["D"][0] for a in model.agents)


def test_a_policy_table_runs_the_grid_and_draws_a_plot(example, tmp_path) -> None:
    from tomdistill.agents import Agent
    from tomdistill.agents.policy import build_policy_table

    table = build_policy_table(Agent.load("planted:default", mode="score"), ["team/prisoners_dilemma"], rounds=2)
    model = example.run(table, "team/prisoners_dilemma", size=5, steps=4, seed=0)
    again = example.run(table, "team/prisoners_dilemma", size=5, steps=4, seed=0)
    series = list(model.datacollector.get_model_vars_dataframe()["cooperation"])
    assert len(series) == 4 and all(0 <= v <= 1 and not math.isnan(v) for v in series)
    assert series == list(again.datacollector.get_model_vars_dataframe()["cooperation"])  # seeded
    out = example.plot(model, tmp_path / "grid.png", "test")
    assert out.stat().st_size > 5_000


def test_the_command_refuses_to_overwrite_a_picture_unless_forced(example, tmp_path) -> None:
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"a user's picture")
    args = ["--agent", "always-D", "--size", "3", "--steps", "1", "--out", str(mine)]
    with pytest.raises(SystemExit, match="does not overwrite"):
        example.main(args)
    assert mine.read_bytes() == b"a user's picture"
    example.main([*args, "--force"])
    assert mine.read_bytes().startswith(b"\x89PNG")
