"""Policy tables: an agent's exact distributions exported and drawn from without a model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tomdistill.agents import Agent
from tomdistill.agents.policy import PolicyTable, build_policy_table, histories_up_to, history_key, write_policy_table
from tomdistill.errors import TomdistillError
from tomdistill.models.base import ModelOptions
from tomdistill.models.registry import load_model
from tomdistill.scenarios.render import PastRound

SCENARIOS = ["team/stag_hunt", "business/prisoners_dilemma", "community/donation_game"]


@pytest.fixture
def agent() -> Agent:
    return Agent(load_model("mock:rate=0.7", ModelOptions()), mode="score", label="mock70")


def test_rows_cover_each_scenario_and_every_short_history(agent, library) -> None:
    table = build_policy_table(agent, SCENARIOS, rounds=3)
    # two matrix games x (1 + 4 + 16 histories); the donation game is one-shot only
    assert len(table) == 2 * 21 + 1
    game = library.scenario("team/stag_hunt").game
    assert len(histories_up_to(game, 3)) == 21 and history_key(histories_up_to(game, 2)[1]) == "C/C"
    assert table.covers("team/stag_hunt", [PastRound("D", "C", 0.0), PastRound("C", "C", 0.0)])
    assert not table.covers("team/stag_hunt", [PastRound("C", "C", 0.0)] * 3)


@pytest.mark.parametrize("source", ["mock:rate=0.7", "planted:default"])
def test_the_table_decides_exactly_as_the_agent_does(source) -> None:
    agent = Agent.load(source, mode="score")  # the planted player answers the history too
    table = build_policy_table(agent, SCENARIOS, rounds=2)
    if source.startswith("planted"):
        assert table.row("team/stag_hunt").probabilities != table.row("team/stag_hunt", [PastRound("C", "D", 0)]).probabilities
    history = [PastRound("C", "D", 0.0)]
    for seed in range(25):
        for scenario in SCENARIOS:
            hist = history if scenario != "community/donation_game" else None
            mine, theirs = table.decide(scenario, seed=seed, history=hist), agent.decide(scenario, seed=seed, history=hist)
            assert (mine.action, mine.probabilities) == (theirs.action, theirs.probabilities)
    assert isinstance(table.decide("community/donation_game", seed=3).action, float)


def test_a_population_draw_follows_the_distribution(agent) -> None:
    table = build_policy_table(agent, SCENARIOS[:1])
    picks = table.sample("team/stag_hunt", 200_000, np.random.default_rng(0))
    p = table.row("team/stag_hunt").probabilities
    assert abs(picks.count("C") / len(picks) - p["C"]) < 0.005


def test_written_and_loaded_the_table_is_the_same(agent, tmp_path) -> None:
    table = build_policy_table(agent, SCENARIOS, rounds=2)
    folder = write_policy_table(table, tmp_path / "policy")
    again = PolicyTable.load(folder)
    assert len(again) == len(table) and again.meta["scenarios"] == sorted(SCENARIOS)
    for seed in range(5):
        assert again.decide("team/stag_hunt", seed=seed) == table.decide("team/stag_hunt", seed=seed)
    assert "needs the model" in (folder / "README.md").read_text()
    write_policy_table(table, folder)  # its own folder is replaced


def test_what_the_table_cannot_answer_is_one_clear_error(agent, tmp_path) -> None:
    table = build_policy_table(agent, SCENARIOS[:1])
    with pytest.raises(TomdistillError, match="does not cover business/prisoners_dilemma; that decision needs the model"):
        table.decide("business/prisoners_dilemma", seed=1)
    with pytest.raises(TomdistillError, match="after history 'C/C'"):
        table.decide("team/stag_hunt", seed=1, history=[PastRound("C", "C", 4.0)])
    with pytest.raises(TomdistillError, match="score mode"):
        build_policy_table(Agent(load_model("mock:rate=0.7", ModelOptions()), mode="sample"), SCENARIOS)
    bad = tmp_path / "policy.json"
    bad.write_text(json.dumps({"format": 1, "rows": [{"scenario": "x"}]}))
    with pytest.raises(TomdistillError, match="malformed"):
        PolicyTable.load(bad)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")
    with pytest.raises(TomdistillError):
        write_policy_table(table, mine)
    assert (mine / "keep.txt").read_text() == "x"


def test_cli_writes_a_table_that_plays(tmp_path, capsys) -> None:
    from tomdistill.cli import main

    out = tmp_path / "policy"
    assert main(["policy", "planted:default", "--scenario", "business/prisoners_dilemma", "--rounds", "3",
                 "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 21 and summary["scenarios"] == 1 and summary["rounds"] == 3
    assert main(["play", "--agents", f"table={out}", "tit-for-tat", "--scenario", "business/prisoners_dilemma",
                 "--rounds", "3", "--pairs", "2", "--store", str(tmp_path / "p.db"), "--out", str(tmp_path / "play"),
                 "--json"]) == 0
    played = json.loads(capsys.readouterr().out)
    assert "table" in played["types"] and played["rounds"] == 3
