"""A scenario (and the earlier rounds of a repeated game) as a `Situation`: the game as data
that travels beside the rendered messages, for backends that play from the payoffs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..situations import MatrixSituation, PublicGoodsSituation, Situation
from .spec import MatrixGame

if TYPE_CHECKING:
    from .render import PastRound
    from .spec import Scenario


def situation(scenario: Scenario, protocol: str, history: Sequence[PastRound] | None = None) -> Situation:
    """The game of `scenario` as structured data, with the same payoffs the prompt states."""
    game = scenario.game
    if isinstance(game, MatrixGame):
        payoffs = {mine: {theirs: (float(pair[0]), float(pair[1])) for theirs, pair in row.items()}
                   for mine, row in game.payoffs.items()}
        return MatrixSituation(
            context=scenario.context.id, game=game.id, actions=tuple(game.actions),
            cooperate=game.cooperative_action, payoffs=payoffs, protocol=protocol,
            history=tuple((r.mine, r.theirs) for r in history or ()),
        )
    if history:  # render refuses this too; said here so both agree
        raise TypeError(f"{scenario.id}: earlier rounds can only be told for two-player matrix games")
    return PublicGoodsSituation(
        context=scenario.context.id, game=game.id, players=game.players, endowment=float(game.endowment),
        multiplier=float(game.multiplier), currency=game.currency, protocol=protocol,
    )
