"""Fixed strategies that play against agents in populations, with the agents' decide_many interface.

`always-C` always takes the game's cooperative action and `always-D` the other one (whatever the
labels are called); `tit-for-tat` cooperates first, then copies the coplayer's previous move;
`random` picks either action with probability 1/2, from the decision's seed. They need a
two-player matrix game.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol

from ..errors import TomdistillError
from ..scenarios import Scenario
from ..scenarios.custom import resolve_scenario
from ..scenarios.render import PastRound
from ..scenarios.spec import MatrixGame
from .agent import AgentDecision, fresh_seed


class Player(Protocol):
    """What a population needs from a participant: an Agent or a Strategy."""

    label: str

    def decide_many(self, scenarios: Sequence[Scenario | str], *, seeds: Sequence[int | None] | None = None,
                    histories: Sequence[Sequence[PastRound] | None] | None = None) -> list[AgentDecision]: ...

    def info(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class Strategy:
    """A rule that maps the game and the history so far to an action; no model involved."""

    name: str = ""
    description: str = ""

    def __init__(self, label: str | None = None) -> None:
        self.label = label or self.name

    def choose(self, game: MatrixGame, history: Sequence[PastRound], rng: random.Random) -> str:
        raise NotImplementedError

    def decide(self, scenario: Scenario | str, *, seed: int | None = None,
               history: Sequence[PastRound] | None = None) -> AgentDecision:
        return self.decide_many([scenario], seeds=[seed], histories=[history])[0]

    def decide_many(self, scenarios: Sequence[Scenario | str], *, seeds: Sequence[int | None] | None = None,
                    histories: Sequence[Sequence[PastRound] | None] | None = None) -> list[AgentDecision]:
        out = []
        n = len(scenarios)
        for scenario, seed, history in zip(scenarios, seeds or [None] * n, histories or [None] * n):
            game = resolve_scenario(scenario).game
            if not isinstance(game, MatrixGame):
                raise TomdistillError(f"strategy '{self.name}' plays two-player matrix games only, not '{game.id}'")
            seed = fresh_seed() if seed is None else seed
            action = self.choose(game, history or [], random.Random(seed))
            out.append(AgentDecision(action=action, seed=seed))
        return out

    def info(self) -> dict[str, Any]:
        return {"label": self.label, "kind": "strategy", "source": self.name}

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"Strategy({self.name!r})"


def _other(game: MatrixGame, action: str) -> str:
    return next(a for a in game.actions if a != action)


class AlwaysCooperate(Strategy):
    name, description = "always-C", "always the cooperative action"

    def choose(self, game, history, rng):
        return game.cooperative_action


class AlwaysDefect(Strategy):
    name, description = "always-D", "always the non-cooperative action"

    def choose(self, game, history, rng):
        return _other(game, game.cooperative_action)


class TitForTat(Strategy):
    name, description = "tit-for-tat", "cooperates first, then copies the coplayer's previous move"

    def choose(self, game, history, rng):
        return history[-1].theirs if history else game.cooperative_action


class RandomStrategy(Strategy):
    name, description = "random", "either action with probability 1/2 (seeded)"

    def choose(self, game, history, rng):
        return game.actions[rng.random() < 0.5]


STRATEGIES: dict[str, type[Strategy]] = {s.name: s for s in (AlwaysCooperate, AlwaysDefect, TitForTat, RandomStrategy)}


def is_strategy(name: str) -> bool:
    return name.lower() in {k.lower() for k in STRATEGIES}


def strategy(name: str, label: str | None = None) -> Strategy:
    """The fixed strategy called `name` (case does not matter), e.g. 'tit-for-tat'."""
    for key, cls in STRATEGIES.items():
        if key.lower() == name.lower():
            return cls(label)
    raise TomdistillError(f"unknown strategy '{name}'; known: {', '.join(STRATEGIES)}")
