"""Population fidelity: a candidate population's tournament against the teacher population's."""

from __future__ import annotations

import json

import pytest

from tomdistill.agents import Agent
from tomdistill.agents.fidelity import compare, match_stats, population_fidelity
from tomdistill.agents.strategies import strategy
from tomdistill.store import Move, Store


def _opponents():
    return {"tit-for-tat": strategy("tit-for-tat"), "always-C": strategy("always-C")}


def test_the_same_player_is_identical_and_a_defector_is_not(tmp_path, library) -> None:
    scenario = library.scenario("team/prisoners_dilemma")
    with Store(tmp_path / "f.db") as store:
        report = population_fidelity(
            store, Agent.load("planted:default", mode="score"),
            {"same": Agent.load("planted:default", mode="score"), "defector": strategy("always-D")},
            _opponents(), scenario, rounds=3, pairs=6, resamples=300)
    same = report["candidates"]["same"]["quantities"]
    assert all(q["difference"] == pytest.approx(0, abs=1e-12) for q in same.values())  # same seeds, same moves
    for table in (same, report["candidates"]["defector"]["quantities"]):
        assert all(q["ci"][0] <= q["difference"] <= q["ci"][1] for q in table.values())  # each interval holds its estimate
    defector = report["candidates"]["defector"]["quantities"]
    assert defector["cooperation, round 1"]["candidate"] == 0 and defector["cooperation, round 1"]["ci"][1] < 0
    assert {"payoff vs tit-for-tat", "payoff vs always-C", "payoff vs focal", "outcome CD"} <= set(defector)
    assert "reproduces the teacher population's mean payoff within" in report["candidates"]["same"]["summary"]
    assert report["candidates"]["defector"]["cross_play_payoff_vs_teacher"] is not None
    json.dumps(report)  # a plain JSON document


def _move(match, round_, slot, agent, opponent, action, payoff):
    return Move(1, match, round_, slot, agent, opponent, "s", action, payoff)


def test_matches_are_the_units_and_self_play_counts_both_seats() -> None:
    moves = [_move(0, 1, 0, "focal", "tft", "C", 3), _move(0, 1, 1, "tft", "focal", "C", 3),
             _move(0, 2, 0, "focal", "tft", "D", 5), _move(0, 2, 1, "tft", "focal", "C", 0),
             _move(1, 1, 0, "focal", "focal", "C", 0), _move(1, 1, 1, "focal", "focal", "D", 5)]
    stats = {s.opponent: s for s in match_stats(moves, "C")}
    assert stats["tft"].payoff == 4 and stats["tft"].cooperation == [1.0, 0.0] and stats["tft"].outcomes == ["CC", "DC"]
    assert stats["focal"].payoff == 2.5 and stats["focal"].cooperation == [0.5] and sorted(stats["focal"].outcomes) == ["CD", "DC"]
    table = compare(list(stats.values()), list(stats.values()), ["C", "D"], resamples=50)
    assert table["payoff: all"]["difference"] == 0  # outcomes: CC, DC (vs tft) and CD, DC (self-play)
    assert table["outcome DC"]["teacher"] == 0.5 and table["outcome CC"]["teacher"] == 0.25


def test_cli_json(tmp_path, capsys) -> None:
    from tomdistill.cli import main

    assert main(["fidelity", "--teacher", "planted:default", "-c", "tft=tit-for-tat", "--scenario",
                 "team/prisoners_dilemma", "--opponent", "always-D", "--rounds", "2", "--pairs", "3",
                 "--bootstrap", "100", "--store", str(tmp_path / "f.db"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["opponents"] == ["always-D"] and set(report["candidates"]) == {"tft"}
    overall = report["candidates"]["tft"]["quantities"]["payoff: all"]
    assert overall["ci"][0] <= overall["difference"] <= overall["ci"][1]


def test_cli_plot_draws_every_candidate_and_refuses_a_file_it_did_not_write(tmp_path, capsys) -> None:
    from PIL import Image

    from tomdistill.cli import main

    args = ["fidelity", "--teacher", "planted:default", "-c", "tft=tit-for-tat", "-c", "defect=always-D",
            "--scenario", "team/prisoners_dilemma", "--opponent", "always-C", "--rounds", "2", "--pairs", "3",
            "--bootstrap", "100", "--store", str(tmp_path / "f.db")]
    plot = tmp_path / "fidelity.png"
    assert main([*args, "--plot", str(plot), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plot"] == str(plot)
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > 600
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"a user's picture")
    assert main([*args, "--plot", str(mine)]) != 0
    assert mine.read_bytes() == b"a user's picture"  # refused before any tournament, the file untouched
    assert main([*args, "--plot", str(tmp_path / "fidelity.txt")]) != 0
