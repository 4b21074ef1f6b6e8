"""Training-only variants of the training scenarios, so a student reads the game instead of
keying on one wording or on a letter.

Paraphrase: the same game in the same context told in other words (the library's
`[[paraphrase]]` framings, written for training contexts only); the teacher's answer and target
carry over unchanged, since the situation is the same.

Label permutation: the same game with its two options under other letters and, every other
time, listed in the other order (C/D becomes K/J, then X/Y, ...); payoffs and the teacher's
target follow the options, so P(K) here is P(C) there. Only matrix games of the training split
are varied, and the variants never become cells of an evaluated split: they exist only inside a
dataset. Letters that read as words or as the original labels are not used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .scenarios import Scenario
from .scenarios.spec import MatrixGame

#: Letter pairs for permuted options, in the order they are used; none is C, D, A or I.
LABEL_PAIRS: tuple[tuple[str, str], ...] = (("K", "J"), ("X", "Y"), ("F", "G"), ("P", "Q"), ("M", "N"), ("R", "S"))
#: The most variants one scenario may get (one per pair and order).
MAX_PERMUTATIONS = 2 * len(LABEL_PAIRS)


@dataclass(frozen=True)
class Variant:
    """A training-only scenario and how its options map from the original's."""

    scenario: Scenario
    #: original action label -> this variant's label
    labels: dict[str, str]


def permuted(scenario: Scenario, count: int) -> list[Variant]:
    """`count` relabelled copies of a matrix scenario (none for other games)."""
    game = scenario.game
    if not isinstance(game, MatrixGame) or count <= 0:
        return []
    if count > MAX_PERMUTATIONS:
        raise ValueError(f"at most {MAX_PERMUTATIONS} label permutations per scenario, not {count}")
    variants = []
    for k in range(count):
        labels = dict(zip(game.actions, LABEL_PAIRS[k % len(LABEL_PAIRS)]))
        # Every other variant lists the options in the other order; the second round of pairs flips
        # the first round's order, so no two variants are alike.
        flipped = (k + k // len(LABEL_PAIRS)) % 2 == 1
        order = list(reversed(labels.values())) if flipped else list(labels.values())
        variants.append(Variant(_relabelled(scenario, game, labels, order, k + 1), labels))
    return variants


def _relabelled(scenario: Scenario, game: MatrixGame, labels: dict[str, str], order: list[str], k: int) -> Scenario:
    payoffs = {labels[mine]: {labels[theirs]: list(pair) for theirs, pair in row.items()}
               for mine, row in game.payoffs.items()}
    new_game = MatrixGame.model_validate(
        game.model_dump() | {"id": f"{game.id}_perm{k}", "actions": order, "payoffs": payoffs,
                             "cooperate": labels[game.cooperative_action]})
    return replace(scenario, id=f"{scenario.context.id}/{new_game.id}", game=new_game)


def paraphrased(scenario: Scenario, framings: list[str], count: int) -> list[Variant]:
    """Up to `count` copies of `scenario` whose context is told by one of `framings` each."""
    variants = []
    identity = {a: a for a in getattr(scenario.game, "actions", [])}
    for k, framing in enumerate(framings[:count], start=1):
        context = scenario.context.model_copy(update={"id": f"{scenario.context.id}_para{k}", "framing": framing})
        variants.append(Variant(replace(scenario, id=f"{context.id}/{scenario.game.id}", context=context), identity))
    return variants


def mapped_target(target: dict[str, float], labels: dict[str, str]) -> dict[str, float]:
    """The teacher's distribution with the options renamed (the variant's listing order kept by key)."""
    return {labels[action]: p for action, p in target.items()}
