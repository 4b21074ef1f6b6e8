"""Population fidelity: does a population of students play like a population of teachers?

One agent standing in for the teacher is not enough for a simulation builder: what matters is
whether a whole population behaves the same. For each population (the teacher, then each
candidate in the teacher's place) the same tournament is played against the same opponent types
with the same match seeds: the focal type against every opponent and against itself. Compared per
quantity, candidate minus teacher:

- the focal type's mean payoff against each opponent type (self-play included) and overall;
- its cooperation share in each round;
- the frequency of each outcome (both cooperate, only the focal one, ...).

Matches are the independent units (moves within a match depend on each other through the
history), so intervals come from a bootstrap that resamples matches, each population's matches
independently. A cross-play run (candidate against teacher) shows how the two meet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..scenarios import Scenario
from ..store import Move, Store
from .play import play
from .strategies import Player

FOCAL = "focal"


@dataclass(frozen=True)
class MatchStats:
    """What one match says about the focal type: its opponent, mean payoff, cooperation per round,
    and the outcome of each round (focal action + opponent action, e.g. 'CD')."""

    opponent: str
    payoff: float
    cooperation: list[float]
    outcomes: list[str]


def match_stats(moves: Sequence[Move], cooperate: str) -> list[MatchStats]:
    """Per match, the focal seat(s): in self-play both seats are the focal type and both count."""
    by_match: dict[int, list[Move]] = {}
    for mv in moves:
        by_match.setdefault(mv.match, []).append(mv)
    out = []
    for match_moves in by_match.values():
        seats = {mv.slot for mv in match_moves if mv.agent == FOCAL}
        if not seats:
            continue
        other = {(mv.round, mv.slot): mv for mv in match_moves}
        mine = sorted((mv for mv in match_moves if mv.slot in seats), key=lambda m: (m.round, m.slot))
        rounds = sorted({mv.round for mv in mine})
        opponent = next(mv.opponent for mv in mine)
        out.append(MatchStats(
            opponent=opponent,
            payoff=float(np.mean([mv.payoff for mv in mine])),
            cooperation=[float(np.mean([mv.action == cooperate for mv in mine if mv.round == r])) for r in rounds],
            outcomes=[mv.action + other[(mv.round, 1 - mv.slot)].action for mv in mine],
        ))
    return out


def quantities(stats: Sequence[MatchStats], actions: Sequence[str]) -> dict[str, float]:
    """The compared quantities of one population, from its matches."""
    out: dict[str, float] = {"payoff: all": float(np.mean([s.payoff for s in stats]))}
    for opponent in sorted({s.opponent for s in stats}):
        out[f"payoff vs {opponent}"] = float(np.mean([s.payoff for s in stats if s.opponent == opponent]))
    for r in range(max(len(s.cooperation) for s in stats)):
        out[f"cooperation, round {r + 1}"] = float(np.mean([s.cooperation[r] for s in stats if len(s.cooperation) > r]))
    outcomes = [o for s in stats for o in s.outcomes]
    for a in actions:
        for b in actions:
            out[f"outcome {a}{b}"] = outcomes.count(a + b) / len(outcomes)
    return out


def compare(teacher: Sequence[MatchStats], candidate: Sequence[MatchStats], actions: Sequence[str], *,
            resamples: int = 2000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per quantity: teacher, candidate, difference and its 95% interval from resampled matches."""
    rng = np.random.default_rng(seed)
    point_t, point_c = quantities(teacher, actions), quantities(candidate, actions)
    draws: dict[str, list[float]] = {k: [] for k in point_t}
    for _ in range(resamples):
        t = quantities([teacher[i] for i in rng.integers(len(teacher), size=len(teacher))], actions)
        c = quantities([candidate[i] for i in rng.integers(len(candidate), size=len(candidate))], actions)
        for k in draws:
            if k in t and k in c:  # a resample can miss an opponent type entirely
                draws[k].append(c[k] - t[k])
    out = {}
    for k in point_t:
        diff = point_c.get(k, float("nan")) - point_t[k]
        low, high = np.percentile(draws[k], [2.5, 97.5]) if draws[k] else (float("nan"), float("nan"))
        # The percentile interval of a skewed statistic can miss its own estimate; widen it to hold it.
        out[k] = {"teacher": point_t[k], "candidate": point_c.get(k), "difference": diff,
                  "ci": [float(min(low, diff)), float(max(high, diff))]}
    return out


def _tournament(store: Store, run: str, focal: Player, opponents: Mapping[str, Player], scenario: Scenario,
                rounds: int, pairs: int, seed: int) -> list[Move]:
    focal.label = FOCAL
    players = {FOCAL: focal, **opponents}
    return play(store, players, scenario, run=run, rounds=rounds, pairs=pairs, seed=seed).moves


def population_fidelity(store: Store, teacher: Player, candidates: Mapping[str, Player],
                        opponents: Mapping[str, Player], scenario: Scenario, *, run: str = "fidelity",
                        rounds: int = 5, pairs: int = 10, seed: int = 0, resamples: int = 2000) -> dict[str, Any]:
    """The teacher population's tournament against each candidate's in its place (same opponents,
    same match seeds), compared quantity by quantity, plus each candidate's cross-play with the teacher."""
    cooperate = scenario.game.cooperate or scenario.game.actions[0]  # type: ignore[union-attr]
    actions = list(scenario.game.actions)  # type: ignore[union-attr]
    labels = {"teacher": teacher.label, **{name: c.label for name, c in candidates.items()}}
    base = match_stats(_tournament(store, f"{run}-teacher", teacher, opponents, scenario, rounds, pairs, seed), cooperate)
    out: dict[str, Any] = {"scenario": scenario.id, "rounds": rounds, "pairs": pairs, "seed": seed,
                           "opponents": list(opponents), "players": labels, "candidates": {}}
    for name, candidate in candidates.items():
        stats = match_stats(_tournament(store, f"{run}-{name}", candidate, opponents, scenario, rounds, pairs, seed),
                            cooperate)
        table = compare(base, stats, actions, resamples=resamples, seed=seed)
        candidate.label = FOCAL
        teacher.label = "teacher"
        cross = play(store, {FOCAL: candidate, "teacher": teacher}, scenario, run=f"{run}-{name}-cross",
                     rounds=rounds, pairs=pairs, seed=seed).moves
        cross_stats = [s for s in match_stats(cross, cooperate) if s.opponent == "teacher"]
        overall = table["payoff: all"]
        out["candidates"][name] = {
            "quantities": table,
            "cross_play_payoff_vs_teacher": float(np.mean([s.payoff for s in cross_stats])) if cross_stats else None,
            "summary": (f"a {name} population reproduces the teacher population's mean payoff within "
                        f"{abs(overall['difference']):.3f} (difference {overall['difference']:+.3f}, 95% CI "
                        f"[{overall['ci'][0]:+.3f}, {overall['ci'][1]:+.3f}], {len(base)} vs {len(stats)} matches)"),
        }
    return out
