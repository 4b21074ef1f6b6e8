"""What a model is asked: chat messages and, beside them, the game itself as data.

Every LLM backend reads only the messages. A backend that plays by a known rule (the planted
reference teacher) reads the payoffs from the situation instead. The types live here, outside
both `scenarios` and `models`, so model code never imports the scenario library: the scenario
package builds situations, backends only read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict


class ChatMessage(TypedDict):
    role: str
    content: str


@dataclass(frozen=True)
class MatrixSituation:
    """A two-player matrix game in a context, as the prompt states it."""

    context: str
    game: str
    #: The two action labels, in the order the prompt lists them.
    actions: tuple[str, ...]
    #: The action counted as cooperation.
    cooperate: str
    #: payoffs[your action][coplayer action] = (your payoff, coplayer payoff), as stated.
    payoffs: Mapping[str, Mapping[str, tuple[float, float]]]
    #: The protocol the reply must follow ('answer', 'motivated' or 'reasoned').
    protocol: str
    #: Earlier rounds with the same coplayer, oldest first: (your pick, coplayer's pick).
    history: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PublicGoodsSituation:
    """An n-player public-goods (donation) game in a context, as the prompt states it."""

    context: str
    game: str
    players: int
    endowment: float
    multiplier: float
    currency: str
    protocol: str


#: Any game a request can carry.
Situation = MatrixSituation | PublicGoodsSituation
