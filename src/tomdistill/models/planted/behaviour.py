"""The planted player's decision rule: expected payoffs under a belief, a weight on the
coplayers' payoffs, and a logit choice. Pure functions of a Situation and the parameters.

Matrix games: the coplayer cooperates with probability q. An action's utility is its expected
own payoff plus w times the coplayer's expected payoff; P(action) = softmax(lambda * U / T).
Repeated play moves q toward each observed choice: q <- q + rate * (observed - q).

Donation (public-goods) game: each of the n - 1 coplayers gives q * endowment in expectation;
an amount's utility is its expected own payoff plus w times the coplayers' summed payoff, and
the softmax runs over the whole amounts. docs/planted.md has the formulas and a worked example.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...situations import MatrixSituation, PublicGoodsSituation, Situation
from ..base import renormalise, tempered_logprobs
from .params import PlantedParams


@dataclass(frozen=True)
class Assessment:
    """Everything the planted player weighed in one decision, option by option."""

    #: The belief that a coplayer cooperates, after any earlier rounds.
    belief: float
    #: The weight on each coplayer's payoff.
    weight: float
    #: The options as the reply writes them: action labels, or amounts as text.
    options: tuple[str, ...]
    #: Expected own payoff of each option under the belief.
    own: tuple[float, ...]
    #: Expected payoff of the coplayer (summed over coplayers in the donation game) per option.
    others: tuple[float, ...]
    #: own + weight * others.
    utility: tuple[float, ...]
    #: P(option) at the request's temperature.
    probs: tuple[float, ...]

    @property
    def best(self) -> int:
        """Index of the option with the highest utility (the first on a tie)."""
        return int(np.argmax(self.utility))


def current_belief(prior: float, history: Sequence[tuple[str, str]], cooperate: str, learning_rate: float) -> float:
    """q after the earlier rounds: each observed coplayer choice pulls it `learning_rate` of the way."""
    belief = prior
    for _mine, theirs in history:
        belief += learning_rate * (float(theirs == cooperate) - belief)
    return belief


def assess(situation: Situation, params: PlantedParams, temperature: float,
           options: Sequence[str] | None = None) -> Assessment:
    """Payoffs, utilities and choice probabilities of every option in `situation`.

    `options`: the candidates to weigh (a score request's); default every action, or every whole
    amount from 0 to the endowment."""
    if isinstance(situation, MatrixSituation):
        belief, own, others, labels = _matrix_payoffs(situation, params, options)
    else:
        belief, own, others, labels = _donation_payoffs(situation, params, options)
    weight = params.disposition(situation.context).weight
    utility = own + weight * others
    probs = choice_probabilities(params.rationality * utility, temperature)
    return Assessment(belief, weight, labels, tuple(own.tolist()), tuple(others.tolist()),
                      tuple(utility.tolist()), tuple(probs.tolist()))


def choice_probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T), the same tempering every backend's score mode applies; T = 0 puts all
    probability on the best option (the first of a tie), as greedy decoding would."""
    raw = np.exp(tempered_logprobs(logits, temperature))
    probs, _ = renormalise(dict(enumerate(raw.tolist())), temperature)
    return np.array([probs[i] for i in range(len(raw))])


def _matrix_payoffs(situation: MatrixSituation, params: PlantedParams, options: Sequence[str] | None):
    labels = tuple(options) if options is not None else tuple(situation.actions)
    unknown = [o for o in labels if o not in situation.payoffs]
    if unknown:
        raise ValueError(f"{situation.context}/{situation.game}: {unknown[0]!r} is not one of the actions "
                         f"{list(situation.actions)}")
    defect = next(a for a in situation.actions if a != situation.cooperate)
    prior = params.disposition(situation.context).belief
    q = current_belief(prior, situation.history, situation.cooperate, params.learning_rate)
    against = ((situation.cooperate, q), (defect, 1.0 - q))
    own = np.array([sum(p * situation.payoffs[a][b][0] for b, p in against) for a in labels])
    others = np.array([sum(p * situation.payoffs[a][b][1] for b, p in against) for a in labels])
    return q, own, others, labels


def _donation_payoffs(situation: PublicGoodsSituation, params: PlantedParams, options: Sequence[str] | None):
    labels = tuple(options) if options is not None else tuple(str(a) for a in range(int(situation.endowment) + 1))
    amounts = np.array([float(o) for o in labels])
    q = params.disposition(situation.context).belief
    n, endowment, m = situation.players, situation.endowment, situation.multiplier
    share = m * (amounts + (n - 1) * q * endowment) / n  # what the fund pays each player
    own = endowment - amounts + share
    others = (n - 1) * (endowment - q * endowment + share)
    return q, own, others, labels
