"""Agents for simulations on the mock backend: scenarios in code, history prompts, decide(),
strategies, the population engine (payoffs, resume), export folders and the CLI."""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from pathlib import Path

import pytest

import tomdistill
from tomdistill import Agent, PastRound, make_scenario, prompt_hash, render
from tomdistill.agents.agent import draw
from tomdistill.agents.export import export_agent
from tomdistill.agents.play import load_players, move_seed, play, schedule
from tomdistill.agents.play_report import summarize, write_play_report
from tomdistill.agents.strategies import strategy
from tomdistill.cli import main
from tomdistill.errors import TomdistillError
from tomdistill.models.base import ModelOptions
from tomdistill.models.registry import load_model
from tomdistill.scenarios.custom import ScenarioError
from tomdistill.store import MIGRATIONS, SCHEMA_VERSION, Store

from fakeagent import fake_adapter

ROOT = Path(__file__).parent.parent
PD = {"C": {"C": (3, 3), "D": (0, 5)}, "D": {"C": (5, 0), "D": (1, 1)}}
VILLAGE = ("You fish a lake that your village shares with a neighbouring village, whose fisher you have never met. "
           "From here on that fisher is called the coplayer.")


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def seeded(rate: float):
    """A mock reply script: C with probability `rate`, drawn from the request's seed."""
    return lambda request: "C" if random.Random(request.seed).random() < rate else "D"


def mock_agent(label: str, rate: float = 0.5, *, mode: str = "sample", script=None, spec: str | None = None) -> Agent:
    spec = spec or f"mock:{label}"
    model = load_model(f"mock:rate={rate}", ModelOptions(extra={"spec": spec, "script": script or seeded(rate)}))
    return Agent(model, mode=mode, label=label)


# --- scenarios built in code ----------------------------------------------------------------------


def test_make_scenario_renders_like_a_library_scenario(library) -> None:
    scenario = make_scenario(PD, VILLAGE, id="village/fishing")
    assert scenario.id == "village/fishing" and scenario.game.actions == ["C", "D"]
    text = render(scenario, "answer")[1]["content"]
    assert text.startswith(VILLAGE)
    assert "You pick D and the coplayer picks C: you get 5 points, the coplayer gets 0 points." in text
    assert text.endswith("Reply with the letter of your option only (C or D).")
    # The same payoffs as a built-in game give the same rules paragraph as the library's scenario.
    builtin = library.scenario("team/prisoners_dilemma")
    same = make_scenario({a: {b: tuple(v) for b, v in row.items()} for a, row in builtin.game.payoffs.items()},
                         builtin.context.framing.strip(), id="team/prisoners_dilemma")
    assert render(same, "motivated") == render(builtin, "motivated")
    # Other labels, with the second one as the cooperative action.
    swap = make_scenario({"X": {"X": (1, 1), "Y": (4, 0)}, "Y": {"X": (0, 4), "Y": (3, 3)}}, VILLAGE,
                         actions=["X", "Y"], cooperate="Y")
    assert swap.game.cooperative_action == "Y"


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"payoffs": {"C": {"C": (3, 3)}, "D": {"C": (5, 0), "D": (1, 1)}}}, "field 'payoffs': missing payoff for you=C, coplayer=D"),
    ({"payoffs": {"C": {"C": (3, 3, 3), "D": (0, 5)}, "D": {"C": (5, 0), "D": (1, 1)}}}, "field 'payoffs'"),
    ({"context": ""}, "field 'context'"),
    ({"id": "Village/fishing"}, "field 'id'"),
    ({"id": "fishing"}, "must look like context/game"),
    ({"actions": ["C"]}, "field 'actions': a two-player matrix game needs exactly 2 actions"),
    ({"cooperate": "Z"}, "cooperate='Z' is not one of the actions"),
    ({"context": "You and {{ who }} meet."}, "'who' is undefined"),
])
def test_make_scenario_errors_name_the_field(kwargs, needle) -> None:
    args = {"payoffs": PD, "context": VILLAGE} | kwargs
    with pytest.raises(ScenarioError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        make_scenario(**args)


# --- history in the prompt ------------------------------------------------------------------------

#: sha256 over every built-in scenario's prompt hash in the two decision-first protocols, before
#: history (and the reasoned protocol) existed: stored runs keep their hashes only if one-shot
#: prompts stay byte-identical.
ONE_SHOT_DIGEST = "278645b963acaf7a3bdeeb0d8ec581ed6401f7ebad74741a681cc3e792f41d89"


def test_one_shot_prompts_and_hashes_are_unchanged(library) -> None:
    lines = [f"{s.id}|{p}|{prompt_hash(render(s, p))}" for s in library.scenarios() for p in ("answer", "motivated")]
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == ONE_SHOT_DIGEST
    scenario = library.scenario("business/stag_hunt")
    assert render(scenario, "answer", []) == render(scenario, "answer", None) == render(scenario, "answer")


def test_history_is_told_between_rules_and_question(library) -> None:
    scenario = library.scenario("team/prisoners_dilemma")
    plain = render(scenario, "motivated")[1]["content"]
    told = render(scenario, "motivated", [PastRound("C", "D", 2), PastRound("D", "D", 3)])[1]["content"]
    rules, question = plain.rsplit("\n\n", 1)
    assert told.startswith(rules) and told.endswith(question)
    middle = told[len(rules):-len(question)]
    assert "- Round 1: you picked C and the coplayer picked D; you got 2 points." in middle
    assert "- Round 2: you picked D and the coplayer picked D; you got 3 points." in middle
    assert "This is round 3." in middle
    assert prompt_hash(render(scenario, "motivated", [PastRound("C", "D", 2)])) != prompt_hash(render(scenario, "motivated"))
    with pytest.raises(ValueError, match="actions are"):
        render(scenario, "answer", [PastRound("X", "D", 2)])
    with pytest.raises(TypeError, match="two-player matrix"):
        render(library.scenario("community/donation_game"), "answer", [PastRound("C", "D", 2)])


# --- agents ---------------------------------------------------------------------------------------


def test_decide_on_a_code_built_scenario_parses_the_reply() -> None:
    seen = []

    def script(request):
        seen.append(request)
        return "Answer: D\nMotivation: The other fisher may take more."

    agent = Agent(load_model("mock:x", ModelOptions(extra={"script": script})), protocol="motivated")
    scenario = make_scenario(PD, VILLAGE)
    decision = agent.decide(scenario, seed=7)
    assert decision.action == "D" and decision.valid
    assert decision.motivation == "The other fisher may take more."
    assert decision.probabilities is None and decision.raw.startswith("Answer: D")
    assert decision.seed == 7 and seen[0].seed == 7
    assert seen[0].messages == render(scenario, "motivated") and decision.prompt_hash == prompt_hash(seen[0].messages)
    assert agent.decide("team/stag_hunt").seed is not None  # a built-in id; a fresh seed is drawn and returned


def test_decide_many_is_one_batch_in_order_with_histories() -> None:
    calls = []
    model = load_model("mock:x", ModelOptions(extra={"script": lambda r: "C" if "Round 1" in r.messages[1]["content"] else "D"}))
    original = model.generate
    model.generate = lambda requests, settings: calls.append(len(requests)) or original(requests, settings)
    agent = Agent(model)
    scenario = make_scenario(PD, VILLAGE)
    decisions = agent.decide_many([scenario, scenario, "team/prisoners_dilemma"], seeds=[1, 2, 3],
                                  histories=[None, [PastRound("C", "C", 3)], None])
    assert calls == [3]
    assert [d.action for d in decisions] == ["D", "C", "D"] and [d.seed for d in decisions] == [1, 2, 3]
    bad = agent.decide_many([scenario], seeds=[1])[0]
    assert bad.valid
    unreadable = Agent(load_model("mock:text=I%20cannot%20say")).decide(scenario, seed=1)
    assert not unreadable.valid and unreadable.action is None and unreadable.invalid_reason
    with pytest.raises(ValueError, match="seeds has 1 entries for 2"):
        agent.decide_many([scenario, scenario], seeds=[1])


def test_score_mode_gives_probabilities_and_a_seeded_draw() -> None:
    at_one = tomdistill.models.base.SamplingSettings(temperature=1.0)
    agent = Agent(load_model("mock:rate=0.7"), mode="score", sampling=at_one)
    scenario = make_scenario(PD, VILLAGE)
    decisions = agent.decide_many([scenario] * 400, seeds=list(range(400)))
    assert all(d.probabilities == pytest.approx({"C": 0.7, "D": 0.3}) for d in decisions)
    # The default is the evaluation's temperature, 0.8: the backend returns softmax(log p / 0.8).
    tempered = Agent(load_model("mock:rate=0.7"), mode="score").decide(scenario, seed=1).probabilities
    assert tempered["C"] == pytest.approx(0.7 ** 1.25 / (0.7 ** 1.25 + 0.3 ** 1.25))
    share = sum(d.action == "C" for d in decisions) / 400
    assert 0.63 < share < 0.77
    assert [d.action for d in agent.decide_many([scenario] * 20, seeds=list(range(20)))] == [d.action for d in decisions[:20]]
    greedy = Agent(load_model("mock:rate=0.7"), mode="score", sampling=tomdistill.models.base.SamplingSettings(temperature=0))
    assert {greedy.decide(scenario, seed=s).action for s in range(20)} == {"C"}
    assert draw({"C": 0.0, "D": 0.0}, 1) is None
    amount = Agent(load_model("mock:rate=0.3"), mode="score").decide("community/donation_game", seed=1)
    assert amount.action == 3.0 and amount.probabilities["3"] == 1.0


def test_agent_load_errors_name_the_thing(tmp_path) -> None:
    with pytest.raises(TomdistillError, match="no such agent folder, and not a model spec"):
        Agent.load(tmp_path / "missing")
    with pytest.raises(TomdistillError, match="not an agent folder"):
        Agent.load(tmp_path)
    with pytest.raises(TomdistillError, match="unknown provider|not a model spec"):
        Agent.load("nope:thing")
    with pytest.raises(TomdistillError, match="unknown decision mode"):
        Agent.load("mock:rate=1", mode="vote")
    (tmp_path / "agent.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(TomdistillError, match="newer tomdistill"):
        Agent.load(tmp_path)


# --- strategies -----------------------------------------------------------------------------------


def test_strategies_follow_their_rules(library) -> None:
    pd = library.scenario("business/prisoners_dilemma")
    tft = strategy("tit-for-tat")
    assert tft.decide(pd, seed=1).action == "C"
    assert tft.decide(pd, seed=1, history=[PastRound("C", "D", 2)]).action == "D"
    assert tft.decide(pd, seed=1, history=[PastRound("C", "D", 2), PastRound("D", "C", 10)]).action == "C"
    assert strategy("always-c").decide(pd).action == "C" and strategy("ALWAYS-D").decide(pd).action == "D"
    swapped = make_scenario({"X": {"X": (1, 1), "Y": (4, 0)}, "Y": {"X": (0, 4), "Y": (3, 3)}}, VILLAGE, cooperate="Y")
    assert strategy("always-C").decide(swapped).action == "Y" and strategy("always-D").decide(swapped).action == "X"
    draws = [d.action for d in strategy("random").decide_many([pd] * 200, seeds=list(range(200)))]
    assert 70 < draws.count("C") < 130
    assert draws[:10] == [d.action for d in strategy("random").decide_many([pd] * 10, seeds=list(range(10)))]
    with pytest.raises(TomdistillError, match="unknown strategy 'grim'"):
        strategy("grim")
    with pytest.raises(TomdistillError, match="two-player matrix games only"):
        strategy("always-C").decide("community/donation_game")


# --- the population engine ------------------------------------------------------------------------


def test_schedule_keeps_match_ids_when_pairs_grow() -> None:
    two = schedule(3, 2)
    assert len(two) == 12 and {(m.row, m.col) for m in two} == {(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)}
    assert schedule(3, 3)[:12] == two
    assert move_seed(0, 1, 2, 0) == move_seed(0, 1, 2, 0) != move_seed(0, 1, 2, 1)


def test_payoffs_match_a_hand_computed_tournament(store, library) -> None:
    pd = library.scenario("team/prisoners_dilemma")  # CC 5,5  CD 2,10  DC 10,2  DD 3,3
    players = {"tft": strategy("tit-for-tat"), "alld": strategy("always-D")}
    result = play(store, players, pd, run="hand", rounds=3, pairs=1)
    assert len(result.moves) == 3 * 3 * 2  # matches tft-tft, tft-alld, alld-alld; 3 rounds; 2 seats
    s = summarize(result)
    # tft: self-play 6 moves x 5, against alld 2 + 3 + 3 -> 38 / 9; alld: 10 + 3 + 3 against tft, 6 x 3 -> 34 / 9.
    assert s["types"]["tft"]["mean_payoff"] == pytest.approx(38 / 9)
    assert s["types"]["alld"]["mean_payoff"] == pytest.approx(34 / 9)
    m = s["matrix"]
    assert (m["tft"]["tft"]["mean_payoff"], m["tft"]["alld"]["mean_payoff"]) == (5.0, pytest.approx(8 / 3))
    assert (m["alld"]["tft"]["mean_payoff"], m["alld"]["alld"]["mean_payoff"]) == (pytest.approx(16 / 3), 3.0)
    assert s["types"]["tft"]["cooperation_by_round"] == [100.0, pytest.approx(200 / 3), pytest.approx(200 / 3)]
    assert s["types"]["alld"]["cooperation_by_round"] == [0.0, 0.0, 0.0]
    rows = store.conn.execute("SELECT match, round, slot, agent, opponent, action, payoff FROM moves ORDER BY match, round, slot")
    assert [tuple(r) for r in rows][6:12] == [
        (1, 1, 0, "tft", "alld", "C", 2.0), (1, 1, 1, "alld", "tft", "D", 10.0),
        (1, 2, 0, "tft", "alld", "D", 3.0), (1, 2, 1, "alld", "tft", "D", 3.0),
        (1, 3, 0, "tft", "alld", "D", 3.0), (1, 3, 1, "alld", "tft", "D", 3.0),
    ]


def test_agents_see_their_history_and_are_batched_per_round(store, library) -> None:
    prompts: list[str] = []

    def script(request):
        prompts.append(request.messages[1]["content"])
        return "C"

    agent = mock_agent("llm", script=script)
    batches = []
    original = agent.model.generate
    agent.model.generate = lambda requests, settings: batches.append(len(requests)) or original(requests, settings)
    pd = library.scenario("team/prisoners_dilemma")
    result = play(store, {"llm": agent, "alld": strategy("always-D")}, pd, run="h", rounds=3, pairs=2)
    # Per round, one call for the agent's 6 seats: 2 self-play matches x 2 seats + 2 matches against alld.
    assert batches == [6, 6, 6]
    assert sum("Round 1:" in p for p in prompts) == 12 and sum("Round 2:" in p for p in prompts) == 6
    assert "you picked C and the coplayer picked D; you got 2 points" in "\n".join(prompts)
    stored = {mv.prompt_hash for mv in result.moves if mv.agent == "llm"}
    assert all(store.prompt(h) for h in stored)  # every prompt an agent saw is kept


def test_unreadable_replies_are_asked_again_then_fall_back(store, library) -> None:
    # Round 1 asks 3 seats (2 in self-play, 1 against allc), then the first one again; later replies are unreadable.
    replies = iter(["no idea", "C", "C", "C"] + ["still thinking"] * 100)
    agent = mock_agent("shy", script=lambda r: next(replies))
    pd = library.scenario("team/prisoners_dilemma")
    result = play(store, {"shy": agent, "allc": strategy("always-C")}, pd, run="f", rounds=2, pairs=1, max_attempts=2)
    first = [mv for mv in result.moves if mv.agent == "shy" and mv.round == 1]
    assert first[0].attempts == 2 and not first[0].fallback and first[0].action == "C"
    assert sum(mv.fallback for mv in result.moves) > 0
    flagged = [mv for mv in result.moves if mv.fallback]
    assert all(mv.action in ("C", "D") and mv.invalid_reason for mv in flagged)
    assert summarize(result)["types"]["shy"]["fallback_moves"] == len(flagged)


def test_an_interrupted_play_resumes_without_duplicates(tmp_path, library) -> None:
    pd = library.scenario("team/snowdrift")

    def players(interrupt_at: int | None):
        calls = {"n": 0}

        def script(request):
            calls["n"] += 1
            if interrupt_at is not None and calls["n"] == interrupt_at:
                raise KeyboardInterrupt
            return seeded(0.6)(request)

        return {"llm": mock_agent("llm", script=script, spec="mock:pinned"), "tft": strategy("tit-for-tat")}

    with Store(tmp_path / "whole.db") as whole:
        reference = play(whole, players(None), pd, run="p", rounds=4, pairs=2, seed=5)
    with Store(tmp_path / "cut.db") as cut:
        # The agent has 6 seats a round (2 self-play matches x 2 + 2 against tft); reply 15 is in round 3.
        with pytest.raises(KeyboardInterrupt):
            play(cut, players(15), pd, run="p", rounds=4, pairs=2, seed=5)
        assert {mv.round for mv in cut.moves(cut.get_play("p").id)} == {1, 2}
        resumed = play(cut, players(None), pd, run="p", rounds=4, pairs=2, seed=5)
        assert resumed.new_moves == 2 * 6 * 2  # rounds 3 and 4, 6 matches, 2 seats
        count = cut.conn.execute("SELECT COUNT(*), COUNT(DISTINCT match || '/' || round || '/' || slot) FROM moves").fetchone()
        assert tuple(count) == (4 * 6 * 2, 4 * 6 * 2)
        assert play(cut, players(None), pd, run="p", rounds=4, pairs=2, seed=5).new_moves == 0
        more = play(cut, players(None), pd, run="p", rounds=4, pairs=3, seed=5)  # more matches: only those are added
        assert more.new_moves == 4 * 3 * 2
    def key(mv):
        return (mv.match, mv.round, mv.slot, mv.action, mv.payoff, mv.seed)
    assert [key(m) for m in resumed.moves] == [key(m) for m in reference.moves]
    with Store(tmp_path / "cut.db") as cut, pytest.raises(TomdistillError, match="already exists with another setup"):
        play(cut, players(None), pd, run="p", rounds=4, pairs=2, seed=6)


def test_play_refuses_numeric_games_and_unknown_agents(store, library) -> None:
    with pytest.raises(TomdistillError, match="two-player matrix games only"):
        play(store, {"a": strategy("always-C")}, library.scenario("community/donation_game"), run="x")
    with pytest.raises(TomdistillError, match="unknown agent 'tit-for-tot'"):
        load_players(["tit-for-tot"])
    with pytest.raises(TomdistillError, match="used twice"):
        load_players(["a=always-C", "a=always-D"])
    players = load_players(["always-C", "always-C", "coop=mock:rate=1"])
    assert list(players) == ["always-C", "always-C#2", "coop"]


def test_store_migrates_an_existing_store(tmp_path) -> None:
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript(MIGRATIONS[0])
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO runs (name, model, protocol, mode, settings, seed, created) VALUES ('r', 'm', 'answer', 'sample', '{}', 0, 'now')")
    con.commit()
    con.close()
    with Store(path) as db:
        assert db.schema_version == SCHEMA_VERSION == 2
        assert db.require_run("r").model == "m" and db.get_play("x") is None


def test_play_report_files(tmp_path, store, library) -> None:
    players = {"tft": strategy("tit-for-tat"), "rnd": strategy("random")}
    result = play(store, players, library.scenario("diplomacy/stag_hunt"), run="r", rounds=3, pairs=2, seed=1)
    paths = write_play_report(summarize(result, str(store.path)), tmp_path / "rep")
    assert {p.name for p in (tmp_path / "rep").iterdir()} == {
        "play.json", "report.md", "report.html", "payoff_matrix.png", "cooperation_by_round.png", ".tomdistill"}
    data = json.loads(paths["json"].read_text())
    assert data["moves"] == 3 * 6 * 2 and set(data["matrix"]) == {"tft", "rnd"}
    md = paths["markdown"].read_text()
    assert "## Payoff matrix" in md and "| **tft** |" in md and "round 3" in md
    assert "data:image/png;base64," in paths["html"].read_text()


# --- export ---------------------------------------------------------------------------------------


def test_export_writes_a_loadable_agent_folder(tmp_path) -> None:
    adapter = fake_adapter(tmp_path / "adapter", "mock:rate=1")
    result = export_agent(adapter, tmp_path / "agent")
    agent_dir = tmp_path / "agent"
    assert {p.name for p in agent_dir.iterdir()} == {"agent.json", "README.md", "adapter"}
    assert {p.name for p in (agent_dir / "adapter").iterdir()} == {
        "adapter_config.json", "adapter_model.safetensors", "chat_template.jinja", "train_config.json"}
    manifest = json.loads((agent_dir / "agent.json").read_text())
    assert manifest["kind"] == "adapter" and manifest["base"]["spec"] == "mock:rate=1"
    assert manifest["protocol"] == "answer" and manifest["mode"] == "score"
    assert manifest["chat_template"] == "adapter/chat_template.jinja"
    assert "Reply with the letter" in manifest["protocol_texts"]["choice"]
    assert manifest["files"]["adapter/adapter_model.safetensors"]["size"] == 64
    assert manifest["tomdistill_version"] == tomdistill.__version__ and manifest["format"] == 1
    assert any("dataset was not found" in n for n in result.notes)
    agent = Agent.load(agent_dir)
    assert agent.label == "agent" and agent.mode == "score" and agent.model.spec == "mock:rate=1"
    assert agent.decide(make_scenario(PD, VILLAGE), seed=3).probabilities == {"C": 1.0, "D": 0.0}
    assert Agent.load(agent_dir, mode="sample").sampling.temperature == 0.8
    # In populations the command-line mode and temperature set model specs; an agent folder keeps its own.
    players = load_players([str(agent_dir), "mock:rate=1"], mode="sample", temperature=0.2)
    assert manifest["sampling"]["temperature"] == 0.8  # the default evaluation temperature
    assert (players["agent"].mode, players["agent"].sampling.temperature) == ("score", 0.8)
    assert (players["mock:rate=1"].mode, players["mock:rate=1"].sampling.temperature) == ("sample", 0.2)
    with pytest.raises(TomdistillError, match="already exists and is not empty"):
        export_agent(adapter, agent_dir)
    (agent_dir / "adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(TomdistillError, match="weight file changed since export"):
        Agent.load(agent_dir)


def test_export_builds_the_behaviour_card_from_an_eval(tmp_path) -> None:
    evaluation = ROOT / "docs" / "default-run-eval.json"
    adapter = fake_adapter(tmp_path / "run" / "adapter", "default:student")
    result = export_agent(adapter, tmp_path / "agent", eval_json=evaluation)
    card = json.loads((tmp_path / "agent" / "behaviour.json").read_text())
    assert set(card["splits"]) == {"train", "heldout_context", "heldout_game", "heldout_pgg"}
    cell = card["splits"]["train"]["cells"][0]
    assert set(cell) == {"scenario", "unit", "agent", "teacher", "base"} and cell["teacher"]["n"] >= 1
    assert card["sources"]["agent"]["model"] == "default:student"
    md = (tmp_path / "agent" / "BEHAVIOUR.md").read_text()
    assert "| diplomacy/prisoners_dilemma |" in md and "gap closed" in md
    manifest = json.loads((tmp_path / "agent" / "agent.json").read_text())
    assert manifest["behaviour"] == "behaviour.json" and manifest["mode"] == "score"
    assert manifest["base"]["gguf_sha256"].startswith("b179c952")
    assert result.behaviour is not None
    other = fake_adapter(tmp_path / "other", "mock:rate=1")
    with pytest.raises(TomdistillError, match="the evaluation's student is default:student"):
        export_agent(other, tmp_path / "agent2", eval_json=evaluation)
    # An adapter inside a `tomdistill run` folder finds the run's eval.json by itself.
    (tmp_path / "run" / "pipeline.json").write_text("{}")
    (tmp_path / "run" / "eval.json").write_text(evaluation.read_text())
    assert export_agent(adapter, tmp_path / "agent3").eval_json == tmp_path / "run" / "eval.json"


def test_an_exported_agent_decides_at_the_temperature_it_was_evaluated_at(tmp_path) -> None:
    evaluation = json.loads((ROOT / "docs" / "default-run-eval.json").read_text())
    evaluation["temperature"] = 0.5
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(evaluation))
    adapter = fake_adapter(tmp_path / "adapter", "default:student")
    export_agent(adapter, tmp_path / "agent", eval_json=path)
    assert json.loads((tmp_path / "agent" / "agent.json").read_text())["sampling"]["temperature"] == 0.5


def test_export_checks_the_base_weights(tmp_path) -> None:
    adapter = fake_adapter(tmp_path / "adapter", "default:student")
    export_agent(adapter, tmp_path / "agent")
    path = tmp_path / "agent" / "agent.json"
    manifest = json.loads(path.read_text())
    manifest["base"]["gguf_sha256"] = "0" * 64
    path.write_text(json.dumps(manifest))
    with pytest.raises(TomdistillError, match="trained on default:student with weights sha256 000000000000"):
        Agent.load(tmp_path / "agent")


# --- command line ---------------------------------------------------------------------------------


def test_play_command_writes_the_report(capsys, tmp_path) -> None:
    out = tmp_path / "rep"
    code, stdout, err = run(capsys, "play", "--agents", "coop=mock:rate=0.9", "tit-for-tat", "always-D",
                            "--scenario", "team/prisoners_dilemma", "--rounds", "2", "--pairs", "2",
                            "--run", "cli", "--store", str(tmp_path / "s.db"), "--out", str(out))
    assert code == 0, err
    assert "payoff matrix" in stdout and "coop" in stdout
    data = json.loads((out / "play.json").read_text())
    assert [a["label"] for a in data["agents"]] == ["coop", "tit-for-tat", "always-D"]
    assert data["moves"] == 2 * 6 * 2 * 2
    code, _, err = run(capsys, "play", "always-C", "--agents", "random", "tit-for-tat", "--library",
                       str(ROOT / "examples" / "my_library.toml"), "--scenario", "fishing/chicken_high_stakes",
                       "--store", str(tmp_path / "s.db"), "--out", str(tmp_path / "rep2"))
    assert code == 0, err
    assert json.loads((tmp_path / "rep2" / "play.json").read_text())["scenario"] == "fishing/chicken_high_stakes"


def test_agent_commands_fail_with_one_line(capsys, tmp_path) -> None:
    store = str(tmp_path / "s.db")
    cases = [
        (["play", "--agents", "tit-for-tot", "--scenario", "team/stag_hunt", "--store", store], "unknown agent 'tit-for-tot'"),
        (["play", "--agents", "always-C", "--scenario", "community/donation_game", "--store", store], "two-player matrix games only"),
        (["play", "--agents", "always-C", "--scenario", "team/stag_hunnt", "--store", store], "unknown scenario"),
        (["play", "--agents", str(tmp_path), "--scenario", "team/stag_hunt", "--store", store], "not an agent folder"),
        (["export", str(tmp_path / "none"), "--out", str(tmp_path / "a")], "adapter folder not found"),
        (["export", str(tmp_path), "--out", str(tmp_path / "a")], "not a PEFT adapter folder"),
    ]
    for args, needle in cases:
        code, _, err = run(capsys, *args)
        assert code == 2, args
        assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "a").exists()
