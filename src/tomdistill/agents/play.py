"""Populations: agents (and fixed strategies) play one-shot or repeated games against each other.

Every pair of agent types, self-play included, meets in `pairs` matches of `rounds` rounds. In a
repeated game each player is shown the earlier rounds of its match (its moves, the coplayer's,
its points). Every move goes into the store, one transaction per round across all matches, so
Ctrl-C loses no finished round and re-running the same run continues where it stopped: seeds
derive from (run seed, match, round, player slot), never from how far a run got, so a continued
run makes the same moves an uninterrupted one would.

Each round, all decisions one agent type makes in that round (every match it plays, both slots
in self-play) go to the model in one decide_many() call.

A reply that cannot be read is asked again with a new seed (up to `max_attempts` in all); if it
still cannot be read, the move is drawn at random and flagged `fallback`, and the report counts
such moves per agent type.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..ask import source_kind
from ..errors import TomdistillError
from ..limits import check_size
from ..models.base import ModelOptions, check_seed
from ..scenarios import Scenario, prompt_hash, render
from ..scenarios.render import PastRound
from ..scenarios.spec import MatrixGame
from ..store import Move, Play, Store
from .agent import Agent
from .policy import POLICY_FILE, PolicyTable
from .strategies import STRATEGIES, Player, is_strategy, strategy

_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class Match:
    """One meeting of two agent types (by index into the population); slot 0 plays `row`."""

    id: int
    row: int
    col: int
    replica: int


@dataclass
class PlayResult:
    play: Play
    labels: list[str]
    scenario: Scenario
    rounds: int
    pairs: int
    matches: list[Match]
    moves: list[Move]
    new_moves: int
    elapsed_s: float
    calls: dict[str, int] = field(default_factory=dict)


def schedule(n_types: int, pairs: int) -> list[Match]:
    """Matches for every pair of types (row <= col, self-play included), `pairs` each.

    Replicas are the outer loop, so asking for more pairs later appends matches and keeps the ids
    (and so the seeds) of the existing ones."""
    out: list[Match] = []
    for replica in range(pairs):
        for row in range(n_types):
            for col in range(row, n_types):
                out.append(Match(len(out), row, col, replica))
    return out


def _check_size(n_types: int, pairs: int, rounds: int) -> None:
    # Before schedule() builds the match list: --pairs 100000000 would otherwise grow memory until killed.
    pairings = n_types * (n_types + 1) // 2
    check_size(pairs * pairings * rounds * 2,
               f"{pairs:,} matches per pairing x {pairings:,} pairings of {n_types} agent types x {rounds:,} rounds "
               "x 2 seats", "moves", "lower --pairs or --rounds")


def move_seed(run_seed: int, match: int, round_: int, slot: int, attempt: int = 0) -> int:
    """A 31-bit seed for one decision, independent of batching and of how far the run got."""
    digest = hashlib.sha256(f"{run_seed}|{match}|{round_}|{slot}|{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def check_playable(scenario: Scenario) -> MatrixGame:
    game = scenario.game
    if not isinstance(game, MatrixGame):
        raise TomdistillError(
            f"scenario '{scenario.id}' is a {game.players}-player game with a numeric answer ({game.name}); "
            "play supports two-player matrix games only"
        )
    return game


def _source_kind(source: str) -> str:
    """ask.source_kind, with the strategies named too when `source` is none of its kinds."""
    try:
        return source_kind(source)
    except TomdistillError as exc:
        raise TomdistillError(f"unknown agent '{source}': not a strategy ({', '.join(STRATEGIES)}); {exc}") from None


def load_players(
    refs: Sequence[str],
    *,
    mode: str | None = None,
    protocol: str | None = None,
    temperature: float | None = None,
    max_new_tokens: int | None = None,
    options: ModelOptions | None = None,
) -> dict[str, Player]:
    """Players from command-line references, each `[LABEL=]SOURCE`, where SOURCE is a strategy name
    (always-C, always-D, tit-for-tat, random), an agent or adapter folder, a policy table folder
    (`tomdistill policy`), or a model spec.

    `mode`, `protocol`, `temperature` and `max_new_tokens` set how model specs and adapter folders
    decide; an exported agent folder decides as its agent.json says (that is what it was exported
    for; the Python API can still override it). Labels default to the strategy name, the folder
    name or the spec, made unique with #2, #3."""
    if not refs:
        raise TomdistillError("give at least one agent (--agents A B ...)")
    parsed: list[tuple[str | None, str]] = []
    for ref in refs:
        label, sep, source = ref.partition("=")
        # "mock:rate=0.7" is a spec, not a label: a label has no ':' or '/'.
        if sep and _LABEL.match(label) and source:
            parsed.append((label, source))
        else:
            parsed.append((None, ref))
    players: dict[str, Player] = {}
    try:
        for label, source in parsed:
            if is_strategy(source):
                player: Player = strategy(source)
            elif (Path(source) / POLICY_FILE).is_file():  # a policy table plays without a model
                player = PolicyTable.load(source)
            elif _source_kind(source) == "agent":
                player = Agent.load(source, options=options)
            else:
                agent = Agent.load(source, mode=mode, protocol=protocol, options=options)
                changes = {k: v for k, v in {"temperature": temperature, "max_new_tokens": max_new_tokens}.items()
                           if v is not None}
                if changes:
                    agent.sampling = agent.sampling.model_copy(update=changes)
                player = agent
            name = label or player.label
            if label is None and name in players:
                n = 2
                while f"{name}#{n}" in players:
                    n += 1
                name = f"{name}#{n}"
            elif name in players:
                raise TomdistillError(f"agent label '{name}' is used twice; give each agent its own LABEL=SOURCE")
            player.label = name
            players[name] = player
    except BaseException:
        for p in players.values():
            p.close()
        raise
    return players


def play(
    store: Store,
    players: Mapping[str, Player],
    scenario: Scenario,
    *,
    run: str,
    rounds: int = 1,
    pairs: int = 1,
    seed: int = 0,
    max_attempts: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> PlayResult:
    """Play (or continue) population run `run`; returns every move of the requested rounds/matches."""
    game = check_playable(scenario)
    if rounds < 1 or pairs < 1 or max_attempts < 1:
        raise TomdistillError("rounds, pairs and attempts must be at least 1")
    check_seed(seed)
    labels = list(players)
    _check_size(len(labels), pairs, rounds)
    record = store.open_play(
        run, scenario=scenario.id, agents=[players[label].info() for label in labels],
        settings={"max_attempts": max_attempts, "scenario_hash": prompt_hash(render(scenario, "answer"))}, seed=seed,
    )
    matches = schedule(len(labels), pairs)
    have: dict[tuple[int, int, int], Move] = {(m.match, m.round, m.slot): m for m in store.moves(record.id)}
    total = len(matches) * rounds
    done = sum(1 for m in matches for r in range(1, rounds + 1) if (m.id, r, 0) in have)
    started = time.perf_counter()
    calls: dict[str, int] = {}
    new = 0
    if progress:
        progress(done, total)
    for round_ in range(1, rounds + 1):
        todo = [m for m in matches if (m.id, round_, 0) not in have]
        if not todo:
            continue
        moves, prompts = _play_round(players, labels, scenario, game, record, todo, round_, have, max_attempts, calls)
        new += store.add_moves(moves, prompts)
        for mv in moves:
            have[(mv.match, mv.round, mv.slot)] = mv
        done += len(todo)
        if progress:
            progress(done, total)
    wanted = {m.id for m in matches}
    kept = [mv for mv in store.moves(record.id) if mv.match in wanted and mv.round <= rounds]
    return PlayResult(record, labels, scenario, rounds, pairs, matches, kept, new, time.perf_counter() - started, calls)


def _history(have: Mapping[tuple[int, int, int], Move], match: int, slot: int, round_: int) -> list[PastRound]:
    out = []
    for r in range(1, round_):
        mine, theirs = have[(match, r, slot)], have[(match, r, 1 - slot)]
        out.append(PastRound(mine=mine.action, theirs=theirs.action, payoff=mine.payoff))
    return out


def _play_round(players, labels, scenario, game, record, todo, round_, have, max_attempts, calls):
    """Every decision of one round, batched per agent type, then the payoffs."""
    seats: dict[str, list[tuple[Match, int]]] = {}
    for m in todo:
        seats.setdefault(labels[m.row], []).append((m, 0))
        seats.setdefault(labels[m.col], []).append((m, 1))
    chosen: dict[tuple[int, int], dict[str, Any]] = {}
    prompts: dict[str, list] = {}
    for label, seat_list in seats.items():
        player = players[label]
        histories = [_history(have, m.id, slot, round_) for m, slot in seat_list]
        pending = list(range(len(seat_list)))
        attempts = [0] * len(seat_list)
        results: list[Any] = [None] * len(seat_list)
        for attempt in range(max_attempts):
            if not pending:
                break
            seeds = [move_seed(record.seed, seat_list[i][0].id, round_, seat_list[i][1], attempt) for i in pending]
            decisions = player.decide_many([scenario] * len(pending), seeds=seeds, histories=[histories[i] for i in pending])
            calls[label] = calls.get(label, 0) + 1
            for i, d in zip(pending, decisions):
                results[i], attempts[i] = d, attempt + 1
            pending = [i for i in pending if not (results[i].valid and results[i].action in game.actions)]
        for i, (m, slot) in enumerate(seat_list):
            d = results[i]
            fallback = not (d.valid and d.action in game.actions)
            action = d.action
            if fallback:
                action = random.Random(move_seed(record.seed, m.id, round_, slot, -1)).choice(game.actions)
            if isinstance(player, Agent) and d.prompt_hash:
                prompts[d.prompt_hash] = player.prompt(scenario, histories[i])
            chosen[(m.id, slot)] = {
                "agent": label, "action": action, "raw_text": d.raw, "motivation": d.motivation,
                "probs": d.probabilities, "seed": d.seed, "prompt_hash": d.prompt_hash, "attempts": attempts[i],
                "fallback": fallback,
                "invalid_reason": (d.invalid_reason or f"'{d.action}' is not an action of this game") if fallback else None,
            }
    moves = []
    for m in todo:
        a0, a1 = chosen[(m.id, 0)]["action"], chosen[(m.id, 1)]["action"]
        pay = game.payoffs[a0][a1]
        for slot in (0, 1):
            c = chosen[(m.id, slot)]
            moves.append(Move(play_id=record.id, match=m.id, round=round_, slot=slot,
                              opponent=labels[m.col] if slot == 0 else labels[m.row], scenario=scenario.id,
                              payoff=float(pay[slot]), **c))
    return moves, list(prompts.items())
