"""The planted reference teacher: its rule against hand-computed values, the criteria its default
parameters were fixed by (and the pinned file), both modes, and its place in the product."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path

import pytest

from tomdistill.agents import Agent
from tomdistill.cli import main
from tomdistill.elicit import summarize
from tomdistill.models.base import GenRequest, SamplingSettings, ScoreRequest
from tomdistill.models.planted.behaviour import assess, current_belief
from tomdistill.models.planted.params import DEFAULT_FILE, load_params
from tomdistill.models.registry import load_model
from tomdistill.scenarios import load_library, render
from tomdistill.scenarios.parse import parse_decision
from tomdistill.scenarios.render import PastRound
from tomdistill.scenarios.situate import situation
from tomdistill.store import Store

from badinput import assert_one_line_error

#: The default parameter file as fixed in issue 15. Recipes are tuned against this control; a
#: changed file would let later work move the target, so a change must be a deliberate new control.
DEFAULT_SHA256 = "bd2f1120d0db5b60a5cdab5a9fb1433abb5332f1c688ee1cc8e74e00f3b64ac3"
EVAL_T = 0.8


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.fixture(scope="module")
def library():
    return load_library()


@pytest.fixture(scope="module")
def params():
    return load_params("default").params


def p_coop(library, params, scenario_id: str, temperature: float = EVAL_T, protocol: str = "answer") -> float:
    s = library.scenario(scenario_id)
    a = assess(situation(s, protocol), params, temperature)
    return a.probs[a.options.index(s.game.cooperative_action)]


def test_default_file_is_pinned() -> None:
    assert hashlib.sha256(DEFAULT_FILE.read_bytes()).hexdigest() == DEFAULT_SHA256


def test_prisoners_dilemma_in_business_by_hand(library, params) -> None:
    # q = 0.3, w = 0.1, lambda = 0.25; CC 5/5, CD 2/10, DC 10/2, DD 3/3.
    u_c = 0.3 * (5 + 0.1 * 5) + 0.7 * (2 + 0.1 * 10)  # 3.75
    u_d = 0.3 * (10 + 0.1 * 2) + 0.7 * (3 + 0.1 * 3)  # 5.37
    assert p_coop(library, params, "business/prisoners_dilemma", 1.0) == pytest.approx(sigmoid(0.25 * (u_c - u_d)))
    assert p_coop(library, params, "business/prisoners_dilemma", 1.0) == pytest.approx(0.40011, abs=1e-5)
    assert p_coop(library, params, "business/prisoners_dilemma", 0.8) == pytest.approx(0.37607, abs=1e-5)


def test_stag_hunt_in_team_by_hand(library, params) -> None:
    # q = 0.7, w = 0.1; CC 10/10, CD 2/5, DC 5/2, DD 3/3.
    u_c = 0.7 * (10 + 1.0) + 0.3 * (2 + 0.5)  # 8.45
    u_d = 0.7 * (5 + 0.2) + 0.3 * (3 + 0.3)  # 4.63
    expected = sigmoid(0.25 * (u_c - u_d) / EVAL_T)
    assert p_coop(library, params, "team/stag_hunt") == pytest.approx(expected)
    assert expected == pytest.approx(0.76741, abs=1e-5)


def test_donation_game_by_hand(library, params) -> None:
    # community: w = 0.25; each dollar given changes U by -1 + 2.5/4 + 0.25 * 3 * 2.5/4 = 0.09375.
    s = library.scenario("community/donation_game")
    a = assess(situation(s, "answer"), params, EVAL_T)
    assert a.options == tuple(str(i) for i in range(11))
    weights = [math.exp(0.25 * 0.09375 * i / EVAL_T) for i in range(11)]
    assert a.probs == pytest.approx([w / sum(weights) for w in weights])


def test_doubled_payoffs_sharpen_the_choice(library, params) -> None:
    for ctx, game in itertools.product(["diplomacy", "business", "team"], ["prisoners_dilemma", "stag_hunt"]):
        base = p_coop(library, params, f"{ctx}/{game}")
        doubled = p_coop(library, params, f"{ctx}/{game}_x2")
        assert abs(doubled - 0.5) > abs(base - 0.5) and (doubled > 0.5) == (base > 0.5), (ctx, game)
        # lambda multiplies the payoffs as stated: doubling them is doubling lambda.
        assert sigmoid(2 * math.log(base / (1 - base))) == pytest.approx(doubled)


def test_temperature_divides_lambda_and_zero_is_greedy(library, params) -> None:
    base = p_coop(library, params, "team/stag_hunt", 1.0)
    logit = math.log(base / (1 - base))
    assert p_coop(library, params, "team/stag_hunt", 0.5) == pytest.approx(sigmoid(2 * logit))
    assert p_coop(library, params, "team/stag_hunt", 0.0) == 1.0
    assert p_coop(library, params, "team/prisoners_dilemma", 0.0) == 0.0


def test_default_parameters_meet_the_criteria_they_were_fixed_by(library, params) -> None:
    contexts = [c for c, src in library.contexts.items() if src.entry.players == 2]
    assert set(params.context) >= set(library.contexts)  # every built-in context, held-out ones too
    games = ["prisoners_dilemma", "snowdrift", "stag_hunt", "prisoners_delight"]
    table = {c: [p_coop(library, params, f"{c}/{g}") for g in games] for c in contexts}
    for c, row in table.items():
        assert max(row) - min(row) >= 0.3, c
    for s in library.scenarios():
        if not s.numeric:
            assert 0.05 <= p_coop(library, params, s.id) <= 0.95, s.id
    for a, b in itertools.combinations(contexts, 2):
        assert max(abs(x - y) for x, y in zip(table[a], table[b])) >= 0.05, (a, b)


def test_belief_moves_toward_observed_choices(library, params) -> None:
    assert current_belief(0.5, [("C", "C"), ("C", "D"), ("D", "D")], "C", 0.5) == pytest.approx(0.1875)
    s = library.scenario("team/stag_hunt")
    one_shot = assess(situation(s, "answer"), params, EVAL_T).probs[0]
    after_c = assess(situation(s, "answer", [PastRound("C", "C", 10)]), params, EVAL_T)
    after_d = assess(situation(s, "answer", [PastRound("C", "D", 2)]), params, EVAL_T)
    assert after_c.belief == pytest.approx(0.85) and after_d.belief == pytest.approx(0.35)
    assert after_d.probs[0] < one_shot < after_c.probs[0]


def _requests(library, scenario_id: str, protocol: str, seeds):
    s = library.scenario(scenario_id)
    messages = render(s, protocol)
    return s, [GenRequest(key=i, messages=messages, seed=seed, situation=situation(s, protocol))
               for i, seed in enumerate(seeds)]


@pytest.mark.parametrize(("scenario_id", "protocol"), [("team/stag_hunt", "answer"),
                                                        ("business/prisoners_dilemma", "motivated")])
def test_sample_share_converges_to_the_score(library, scenario_id: str, protocol: str) -> None:
    model = load_model("planted:default")
    s, requests = _requests(library, scenario_id, protocol, range(2000))
    decisions = [parse_decision(r.text, s) for r in model.generate(requests, SamplingSettings(temperature=EVAL_T))]
    assert all(d.valid for d in decisions)
    share = sum(d.action == "C" for d in decisions) / len(decisions)
    score = next(model.score([ScoreRequest(0, requests[0].messages, ("C", "D"), temperature=EVAL_T,
                                           situation=requests[0].situation)]))
    assert score.valid_mass == 1.0
    assert abs(share - score.probs["C"]) < 0.03


def test_donation_samples_follow_the_distribution(library) -> None:
    model = load_model("planted:default")
    s, requests = _requests(library, "community/donation_game", "motivated", range(2000))
    amounts = [parse_decision(r.text, s).action for r in model.generate(requests, SamplingSettings(temperature=EVAL_T))]
    expected = sum(i * p for i, p in enumerate(assess(requests[0].situation, model.params, EVAL_T).probs))
    assert abs(sum(amounts) / len(amounts) - expected) < 0.3


def test_same_seed_same_reply_and_seeds_vary_the_text(library) -> None:
    model = load_model("planted:default")
    _, requests = _requests(library, "diplomacy/snowdrift", "motivated", [7, 7, 8, 9, 10, 11])
    texts = [r.text for r in model.generate(requests, SamplingSettings())]
    assert texts[0] == texts[1]
    assert len(set(texts[1:])) == 5
    again = [r.text for r in load_model("planted:default").generate(requests, SamplingSettings())]
    assert again == texts


def test_a_free_text_request_is_refused() -> None:
    model = load_model("planted:default")
    request = GenRequest(key=0, messages=[{"role": "user", "content": "C or D?"}], seed=1)
    with pytest.raises(Exception, match="free text") as info:
        list(model.generate([request], SamplingSettings()))
    assert "\n" not in str(info.value)


def test_elicit_score_mode_stores_the_exact_table(tmp_path, capsys, library, params) -> None:
    store = tmp_path / "s.db"
    assert main(["elicit", "--model", "planted:default", "--mode", "score", "--split", "heldout_context",
                 "--run", "pl", "--store", str(store)]) == 0, capsys.readouterr().err
    with Store(store, readonly=True) as db:
        run = db.require_run("pl")
        rows = {r.scenario: r.rate for r in summarize(db, run, library.scenarios("heldout_context"))}
        assert run.model_info["params_sha256"] == DEFAULT_SHA256
    assert len(rows) == 12
    for sid, rate in rows.items():
        assert rate == pytest.approx(p_coop(library, params, sid))


def test_a_user_parameter_file_and_a_user_context(tmp_path, library) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("lambda = 1.0\nlearning_rate = 0\n[default]\nbelief = 1.0\nweight = 0\n")
    agent = Agent.load(f"planted:{path}", mode="score")
    # q = 1, selfish: PD compares 5 with 10 -> P(C) = sigmoid(-5 / 0.8).
    d = agent.decide("team/prisoners_dilemma", seed=1)
    assert d.probabilities["C"] == pytest.approx(sigmoid(-5 / EVAL_T))


@pytest.mark.parametrize(("text", "needle"), [
    ("lambda = 0\nlearning_rate = 0.5\n[default]\nbelief = 0.5\nweight = 0\n", "field 'lambda'"),
    ("lambda = 1\nlearning_rate = 0.5\n[default]\nbelief = 1.5\nweight = 0\n", "field 'default.belief'"),
    ("lambda = 1\nlearning_rate = 0.5\n[default]\nbelief = 0.5\nweight = 0\n[context.team]\nbelief = 0.5\nweight = 0\nbelif = 1\n",
     "field 'context.team.belif'"),
    ("lambda = 1\nlearning_rate = 0.5\n", "field 'default'"),
    ("lambda = nan\nlearning_rate = 0.5\n[default]\nbelief = 0.5\nweight = 0\n", "field 'lambda'"),
    ("lambda = [", "not valid TOML"),
    ("lambda = true\nlearning_rate = 0.5\n[default]\nbelief = 0.5\nweight = 0\n", "field 'lambda'"),
    ('lambda = 1\nlearning_rate = 0.5\n[default]\nbelief = "0.5"\nweight = 0\n', "field 'default.belief'"),
])
def test_bad_parameter_files_fail_with_one_line(tmp_path, capsys, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code = main(["elicit", "--model", f"planted:{path}", "--mode", "score", "--run", "x", "--store",
                 str(tmp_path / "s.db")])
    line = assert_one_line_error(code, capsys.readouterr().err, needle)
    assert str(path) in line
    assert not (tmp_path / "s.db").exists()


def test_planted_plays_as_an_opponent(tmp_path, capsys) -> None:
    out = tmp_path / "rep"
    code = main(["play", "--agents", "planted:default", "tit-for-tat", "always-D", "--scenario", "team/stag_hunt",
                 "--rounds", "3", "--pairs", "2", "--run", "pl", "--store", str(tmp_path / "s.db"),
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    data = json.loads((out / "play.json").read_text())
    assert data["agents"][0]["model"] == "planted:default"


def test_help_calls_it_a_positive_control(capsys) -> None:
    assert main(["elicit", "--help"]) == 0
    assert "positive control" in " ".join(capsys.readouterr().out.replace("│", " ").split())


def test_example_config_uses_the_planted_teacher() -> None:
    from tomdistill.config import load_config

    cfg = load_config(Path(__file__).parent.parent / "examples" / "planted.toml")
    assert cfg.teacher.model == "planted:default" and cfg.student.model == "default:student"


def test_an_edited_parameter_file_is_a_new_teacher_for_the_pipeline(tmp_path) -> None:
    from tomdistill.config import load_config
    from tomdistill.pipeline import Pipeline

    params, config = tmp_path / "p.toml", tmp_path / "run.toml"
    params.write_text("lambda = 0.25\nlearning_rate = 0.5\n[default]\nbelief = 0.5\nweight = 0.2\n")
    config.write_text(f'[teacher]\nmodel = "planted:{params}"\n')
    before = Pipeline(load_config(config), tmp_path / "o").keys
    params.write_text("lambda = 0.25\nlearning_rate = 0.5\n[default]\nbelief = 0.9\nweight = 0.2\n")
    after = Pipeline(load_config(config), tmp_path / "o").keys
    assert before["teacher"] != after["teacher"] and before["teacher_score"] != after["teacher_score"]
    assert before["base"] == after["base"]
