"""Regression tests from the adversarial review of the planted reference teacher (issue 15): each
test failed on the first version; the comment above each says what was wrong."""

from __future__ import annotations

import os
import random
import re
import threading

from tomdistill.agents import Agent
from tomdistill.cli import main
from tomdistill.errors import ConfigError
from tomdistill.models.planted.behaviour import assess
from tomdistill.models.planted.params import load_params
from tomdistill.models.planted.replies import compose_reply
from tomdistill.scenarios.custom import make_scenario
from tomdistill.situations import MatrixSituation, PublicGoodsSituation
from tomdistill.store import Store

from badinput import make_store, run_bad

PARAMS = "lambda = 0.25\nlearning_rate = 0.5\n[default]\nbelief = {q}\nweight = {w}\n"
#: Phrases that say another option pays the player more than its pick.
PAYS_LESS = re.compile(r"another amount would pay me more|does not pay me the most|would pay me 0 points more"
                       r"|costs me 0 points")


def _motivations(situation, choice: int, params=None, seeds=range(60)) -> list[str]:
    params = params or load_params("default").params
    a = assess(situation, params, 0.8)
    return [compose_reply(situation, a, choice, random.Random(seed)) for seed in seeds]


# A motivated reply in a user game with large (valid, finite) payoffs crashes with
# decimal.InvalidOperation (replies._num quantizes past Decimal's 28 digits): a traceback, not a reply.
def test_large_payoffs_give_a_motivated_reply(tmp_path, capsys) -> None:
    lib = tmp_path / "big.toml"
    lib.write_text('[[game]]\nid = "big"\nname = "Big"\ntemplate = "two_player_matrix"\nactions = ["C", "D"]\n'
                   'contexts = ["team"]\npayoffs.C = { C = [5e27, 5e27], D = [2e27, 1e28] }\n'
                   'payoffs.D = { C = [1e28, 2e27], D = [3e27, 3e27] }\n')
    code = main(["elicit", "--model", "planted:default", "--library", str(lib), "--scenario", "team/big",
                 "--protocol", "motivated", "--samples", "2", "--run", "big", "--store", str(tmp_path / "s.db")])
    assert code == 0, capsys.readouterr().err


# A donation game where giving breaks even (multiplier == players): every amount pays the player the
# same, yet the reply for the weight-driven pick says another amount would pay it more.
def test_break_even_donation_never_says_another_amount_pays_more() -> None:
    game = PublicGoodsSituation("community", "even", players=4, endowment=10.0, multiplier=4.0, currency="$",
                                protocol="motivated")
    a = assess(game, load_params("default").params, 0.8)
    assert len(set(a.own)) == 1  # precondition: every amount pays the player the same
    for text in _motivations(game, a.options.index("10")):
        assert not PAYS_LESS.search(text), text


# A matrix game whose own payoffs tie (the player gets 3 whatever happens): the weight-driven pick is
# explained as "D would pay me 0 points more" / "costs me 0 points", a comparison that is not true.
def test_equal_own_payoffs_are_not_called_a_cost() -> None:
    payoffs = {"C": {"C": (3.0, 5.0), "D": (3.0, 1.0)}, "D": {"C": (3.0, 3.0), "D": (3.0, 0.0)}}
    game = MatrixSituation("team", "flat", ("C", "D"), "C", payoffs, "motivated")
    a = assess(game, load_params("default").params, 0.8)
    assert a.own[0] == a.own[1] and a.best == 0  # precondition: C wins by the weight alone
    for text in _motivations(game, 0):
        assert not PAYS_LESS.search(text), text


# A belief that is not a whole percent (a user's belief = 0.125) is stated as "a 13% chance ... a 87%
# chance" with no "about", though the replies promise to mark every rounded number.
def test_a_rounded_belief_is_marked_about(tmp_path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(PARAMS.format(q=0.125, w=0.125))
    params = load_params(str(path)).params
    payoffs = {"C": {"C": (5.0, 5.0), "D": (2.0, 10.0)}, "D": {"C": (10.0, 2.0), "D": (3.0, 3.0)}}
    game = MatrixSituation("mine", "pd", ("C", "D"), "C", payoffs, "motivated")
    for text in _motivations(game, 0, params):
        for match in re.finditer(r"(\S+ )?(\d+)% (chance|of my own)", text):
            assert float(match.group(2)) == 100 * 0.125 or match.group(1) in ("about ", "roughly "), text


# random.Random(seed) seeds with abs(seed), so two different seeds (3 and -3, both accepted by
# check_seed) give the identical reply: distinct seeds are not distinct draws.
def test_opposite_seeds_are_different_draws() -> None:
    scenario = make_scenario({"C": {"C": (3, 3), "D": (0, 5)}, "D": {"C": (5, 0), "D": (1, 1)}},
                             "You meet a stranger, from here on the coplayer.")
    agent = Agent.load("planted:default", protocol="motivated")
    texts = {seed: agent.decide(scenario, seed=seed).raw for seed in range(-20, 21) if seed}
    assert sum(texts[s] == texts[-s] for s in range(1, 21)) < 5


# Continuing a run after the planted:FILE.toml it names was edited silently mixes two parameter sets
# in one run, whose model_info still carries the first file's sha256.
def test_an_edited_parameter_file_does_not_join_the_old_run(tmp_path, capsys) -> None:
    path, store = tmp_path / "p.toml", tmp_path / "s.db"
    path.write_text(PARAMS.format(q=0.2, w=0.0))
    args = ["elicit", "--model", f"planted:{path}", "--mode", "score", "--run", "r", "--store", str(store)]
    assert main([*args, "--split", "train"]) == 0, capsys.readouterr().err
    path.write_text(PARAMS.format(q=0.9, w=0.5))
    code = main([*args, "--split", "heldout_context"])
    with Store(store, readonly=True) as db:
        recorded = db.require_run("r").model_info["params_sha256"]
    assert code == 2 or recorded == load_params(str(path)).sha256


# A deeply nested parameter file (400 kB, under the 1 MB cap) escapes as a RecursionError traceback;
# config.load_config and jsonfiles catch this case, params.load_params does not.
def test_a_deeply_nested_parameter_file_is_one_line(tmp_path, capsys) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 200_000 + "]" * 200_000 + "\n")
    run_bad(["elicit", "--model", f"planted:{path}", "--mode", "score", "--run", "x", "--store",
             str(tmp_path / "s.db")], str(path), capsys)


# planted:FIFO.toml blocks forever in open() (config.load_config and jsonfiles refuse a file that
# is not a regular file; params._read does not).
def test_a_fifo_parameter_file_is_refused_not_waited_on(tmp_path) -> None:
    fifo = tmp_path / "p.toml"
    os.mkfifo(fifo)
    outcome: dict[str, BaseException] = {}

    def load() -> None:
        try:
            load_params(str(fifo))
        except BaseException as exc:  # noqa: BLE001 - whatever it raises is the outcome checked below
            outcome["error"] = exc

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(3)
    hung = thread.is_alive()
    if hung:  # let the blocked reader see EOF so the test ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(3)
    assert not hung, "load_params waited on a FIFO"
    assert isinstance(outcome.get("error"), ConfigError)


# runs show --plot onto an existing file says "pick another --out", a flag runs show does not have
# (outdirs.check_new_file hard-codes --out; only the --force flag name is passed in).
def test_an_existing_plot_file_names_the_plot_flag(tmp_path, capsys) -> None:
    store = make_store(tmp_path / "s.db")
    existing = tmp_path / "x.png"
    existing.write_bytes(b"mine")
    line = run_bad(["runs", "show", "sc", "--store", str(store), "--plot", str(existing)], "--force", capsys)
    assert "--out" not in line and "--plot" in line, line


# --adapter with planted: is accepted and recorded on the run, yet changes nothing (the vllm backend
# refuses an adapter in one line; planted silently plays its rule under the adapter's name).
def test_an_adapter_on_the_planted_teacher_is_refused(tmp_path, capsys) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    run_bad(["elicit", "--model", "planted:default", "--adapter", str(adapter), "--mode", "score", "--scenario",
             "team/stag_hunt", "--run", "a", "--store", str(tmp_path / "s.db")], "adapter", capsys)
