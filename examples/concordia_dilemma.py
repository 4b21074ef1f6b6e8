"""A short Concordia game (`pip install 'tomdistill[concordia]'`): two Concordia entities whose
language model is a tomdistill agent play a tomdistill dilemma for a few rounds.

Each player is Concordia's `minimal` entity prefab (instructions, memory, the last observations,
an act component) built on `AgentLanguageModel`, so every word it says is sampled by the agent
and every decision is a `sample_choice` drawn from the agent's exact distribution over the
options. A round: each player thinks one thing over (free text, kept in its own memory only: the
rules say the players cannot talk), each picks an option without seeing the other's pick (a
multiple-choice question), and both observe the outcome with the payoffs of the tomdistill game.

The rounds are refereed by the short loop below rather than by one of Concordia's game-master
prefabs: in Concordia 2.1 the game-theoretic game master let the second player's observation
carry the first player's move, garbled a joint action (`' Alice: C'`) and stopped with an error
past its round count in our trials, and a social dilemma needs simultaneous, private moves.

    python examples/concordia_dilemma.py                          # default student, offline
    python examples/concordia_dilemma.py --agent runs/<run>/adapter --rounds 3 --out concordia-game

Writes game.json (what each player thought, picked, with what probability, and got) and calls.jsonl
(every model call: prompt, seed, settings, reply or probabilities) under --out: a new folder, or
one this example wrote before (replaced); a folder holding anything else is refused.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from concordia.associative_memory import basic_associative_memory
from concordia.prefabs.entity import minimal
from concordia.typing import entity as entity_lib

from tomdistill.errors import TomdistillError
from tomdistill.integrations.concordia_lm import AgentLanguageModel
from tomdistill.outdirs import check_dir, replace_owned_dir
from tomdistill.scenarios.custom import resolve_scenario
from tomdistill.scenarios.render import num, situation_text
from tomdistill.scenarios.spec import MatrixGame

NAMES = ("Alice", "Bob")
OUT_KIND = "concordia-game"  # the marker kind of the --out folders this example writes
THOUGHT = entity_lib.free_action_spec(
    call_to_action="Before picking, what does {name} think about the choice? One short sentence.", tag="thought")


def hashed_embedder(dim: int = 64) -> Callable[[str], np.ndarray]:
    """Words hashed into `dim` buckets: Concordia's memory wants an embedder, and none is offline
    here. The minimal entity reads its last observations in order, so retrieval quality does not
    matter to this game."""
    def embed(text: str) -> np.ndarray:
        vector = np.zeros(dim)
        for word in text.lower().split():
            vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dim] += 1.0
        return vector / (np.linalg.norm(vector) or 1.0)
    return embed


def build_players(lm: AgentLanguageModel, scenario: Any) -> dict[str, Any]:
    """The two Concordia entities, each told the rules. Options keep their order (C first), so a
    game with a seed is the same game every time."""
    players = {}
    for name in NAMES:
        params = {"name": name, "goal": f"{name} wants as many points as possible.", "randomize_choices": False}
        bank = basic_associative_memory.AssociativeMemoryBank(sentence_embedder=hashed_embedder())
        players[name] = minimal.Entity(params=params).build(model=lm, memory_bank=bank)
        players[name].observe(f"{name} is told the rules, in which {name} is 'you' and the other player "
                              f"is 'the coplayer':\n{situation_text(scenario)}")
    return players


def decision_spec(scenario: Any) -> entity_lib.ActionSpec:
    actions = scenario.game.actions
    return entity_lib.choice_action_spec(
        call_to_action=f"Which option does {{name}} pick, {' or '.join(actions)}?", options=actions, tag="decision")


def play_round(number: int, players: dict[str, Any], lm: AgentLanguageModel, scenario: Any,
               think: bool) -> dict[str, Any]:
    """One round: private thoughts (optional), simultaneous picks, payoffs observed by both."""
    game, other = scenario.game, {NAMES[0]: NAMES[1], NAMES[1]: NAMES[0]}
    thought = {name: players[name].act(THOUGHT) for name in NAMES} if think else {}
    for name, words in thought.items():  # Concordia's act component starts the text with the name
        players[name].observe(f"[thought] {words}")
    picks, probabilities = {}, {}
    for name in NAMES:  # one at a time, but neither observes the other's pick before the outcome
        picks[name] = players[name].act(decision_spec(scenario))
        probabilities[name] = _last_choice_probabilities(lm, game.actions)
    payoffs = dict(zip(NAMES, game.payoffs[picks[NAMES[0]]][picks[NAMES[1]]]))
    for name in NAMES:
        players[name].observe(f"Round {number}: {name} picked {picks[name]} and {other[name]} picked "
                              f"{picks[other[name]]}; {name} got {num(payoffs[name])} points.")
    return {"round": number, "thought": thought, "picks": picks, "probabilities": probabilities, "payoffs": payoffs}


def _last_choice_probabilities(lm: AgentLanguageModel, actions: list[str]) -> dict[str, float]:
    """P(each action) of the latest choice: Concordia asks for the options' letters in order."""
    call = next(c for c in reversed(lm.calls) if c["kind"] == "choice")
    return {action: call["probabilities"][letter] for action, letter in zip(actions, call["responses"])}


def playable(scenario_id: str) -> Any:
    """The scenario, if it is a symmetric two-player matrix game: both players are told the rules
    from the row player's side, which is the column player's side too only when the game is symmetric."""
    scenario = resolve_scenario(scenario_id)
    game = scenario.game
    if not isinstance(game, MatrixGame):
        raise SystemExit(f"{scenario.id}: this example plays two-player matrix games; this one is {game.kind}")
    p = game.payoffs
    if any(p[a][b][0] != p[b][a][1] for a in game.actions for b in game.actions):
        raise SystemExit(f"{scenario.id}: the payoffs are not symmetric, and both players are told them as 'you'")
    return scenario


def play(lm: AgentLanguageModel, scenario_id: str, rounds: int, think: bool = True) -> dict[str, Any]:
    """The whole game as a JSON-ready record."""
    scenario = playable(scenario_id)
    started = time.perf_counter()
    players = build_players(lm, scenario)
    played = [play_round(i, players, lm, scenario, think) for i in range(1, rounds + 1)]
    kinds = [c["kind"] for c in lm.calls]
    return {
        "agent": lm.agent.source, "scenario": scenario.id, "rounds": played,
        "totals": {n: sum(r["payoffs"][n] for r in played) for n in NAMES},
        "calls": {"text": kinds.count("text"), "choice": kinds.count("choice")},
        "concordia": importlib.metadata.version("gdm-concordia"), "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", default="default:student", help="any Agent.load source (default: %(default)s)")
    parser.add_argument("--scenario", default="team/prisoners_dilemma", help="a two-player matrix scenario")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seeds every call of the game")
    parser.add_argument("--max-tokens", type=int, default=48, help="longest thought, in tokens")
    parser.add_argument("--no-thoughts", action="store_true", help="pick without a thought first")
    parser.add_argument("--out", type=Path, default=Path("concordia-game"))
    args = parser.parse_args(argv)
    playable(args.scenario)  # before the model loads
    try:  # a folder with someone else's files in it is refused before the game, not overwritten after it
        check_dir(args.out, OUT_KIND)
    except TomdistillError as exc:
        raise SystemExit(str(exc)) from None
    with AgentLanguageModel(args.agent, seed=args.seed, max_tokens=args.max_tokens) as lm:
        record = play(lm, args.scenario, args.rounds, think=not args.no_thoughts)
        out = replace_owned_dir(args.out, OUT_KIND)
        (out / "game.json").write_text(json.dumps(record, indent=2) + "\n")
        lm.write_calls(out / "calls.jsonl")
    for r in record["rounds"]:
        for name in NAMES:
            p = r["probabilities"][name][r["picks"][name]]
            print(f"round {r['round']} {name}: thought {r['thought'].get(name, '-')!r}; picked {r['picks'][name]} "
                  f"(p={p:.2f}), got {num(r['payoffs'][name])}")
    print(f"totals {record['totals']} in {record['seconds']} s; files in {args.out}/")
    return record


if __name__ == "__main__":
    main()
