"""Typed models of the scenario library entries: games, contexts, prose templates, game variants,
training-only paraphrases of context framings; and the Scenario (a context paired with a game)
that the loader builds from them and every other module reads.

A library file (TOML) holds arrays of tables named after these entries (`[[game]]`,
`[[context]]`, `[[template]]`, `[[variant]]`, `[[paraphrase]]`); each table is validated by the
model here, and unknown fields are refused so a typo never passes silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

#: Ids are used in scenario ids (`context/game`) and file names, so keep them plain.
Ident = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
#: Action labels are what models answer with (e.g. "C"): short and without spaces.
ActionLabel = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9]{0,15}$")]

#: The splits the built-in library uses; user files may add their own names.
BUILTIN_SPLITS: tuple[str, ...] = ("train", "heldout_context", "heldout_game", "heldout_pgg")


class _Entry(BaseModel):
    # allow_inf_nan=False: a NaN or infinite payoff would compare false with everything and
    # silently drop moves downstream; TOML allows `nan` and `inf`, so refuse them here.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Template(_Entry):
    """A Jinja2 text that tells a game's rules and payoffs in prose (no game name)."""

    id: Ident
    text: str = Field(min_length=1, description="Jinja2 template; sees the game's fields.")


class Context(_Entry):
    """A social framing: who you are, who the counterpart is, one meeting, no communication."""

    id: Ident
    name: str = Field(min_length=1)
    framing: str = Field(min_length=1, description="Opening text of the prompt.")
    split: Ident = Field("train", description="Split of scenarios pairing this context with a train game.")
    players: int = Field(2, ge=2, description="How many players the framing describes.")


class _GameBase(_Entry):
    id: Ident
    name: str = Field(min_length=1)
    template: Ident = Field(description="Id of the prose template that tells the rules.")
    split: Ident = Field(
        "train",
        description="'train' games take their split from the context; any other split is the game's own.",
    )
    contexts: list[str] | None = Field(
        None,
        description="Context ids or 'split:<name>' selectors this game pairs with; "
        "default: every context with the same number of players.",
    )


class MatrixGame(_GameBase):
    """A one-shot two-player game with a payoff for every action profile."""

    kind: Literal["matrix"] = "matrix"
    actions: list[ActionLabel] = Field(description="The two action labels, e.g. ['C', 'D'].")
    cooperate: ActionLabel | None = Field(
        None, description="The action counted as cooperation (default: the first action)."
    )
    payoffs: dict[str, dict[str, list[float]]] = Field(
        description="payoffs[your action][coplayer action] = [your payoff, coplayer payoff]."
    )

    players: Literal[2] = 2

    @field_validator("actions")
    @classmethod
    def _two_distinct_actions(cls, actions: list[str]) -> list[str]:
        if len(actions) != 2:
            raise ValueError(f"a two-player matrix game needs exactly 2 actions, got {len(actions)}")
        if len({a.upper() for a in actions}) != 2:
            raise ValueError("the two actions must differ (ignoring case)")
        return actions

    @field_validator("payoffs")
    @classmethod
    def _payoff_for_every_profile(
        cls, payoffs: dict[str, dict[str, list[float]]], info
    ) -> dict[str, dict[str, list[float]]]:
        actions = info.data.get("actions")
        if actions is None:  # actions already failed validation; that error is the useful one
            return payoffs
        for mine in payoffs:
            if mine not in actions:
                raise ValueError(f"'{mine}' is not one of the actions {actions}")
            for theirs in payoffs[mine]:
                if theirs not in actions:
                    raise ValueError(f"'{mine}.{theirs}': '{theirs}' is not one of the actions {actions}")
        for mine in actions:
            for theirs in actions:
                pair = payoffs.get(mine, {}).get(theirs)
                if pair is None:
                    raise ValueError(f"missing payoff for you={mine}, coplayer={theirs}")
                if len(pair) != 2:
                    raise ValueError(
                        f"'{mine}.{theirs}' must be [your payoff, coplayer payoff], got {len(pair)} numbers"
                    )
        return payoffs

    @model_validator(mode="after")
    def _cooperate_is_an_action(self) -> "MatrixGame":
        if self.cooperate is not None and self.cooperate not in self.actions:
            raise ValueError(f"cooperate='{self.cooperate}' is not one of the actions {self.actions}")
        return self

    @property
    def cooperative_action(self) -> str:
        return self.cooperate or self.actions[0]

    def scaled(self, factor: float, *, id: str, name: str, split: str, contexts: list[str] | None) -> "MatrixGame":
        """The same game with every payoff multiplied by `factor` (a held-out payoff transform)."""
        payoffs = {m: {t: [v * factor for v in pair] for t, pair in row.items()} for m, row in self.payoffs.items()}
        return self.model_copy(
            update={"id": id, "name": name, "split": split, "contexts": contexts, "payoffs": payoffs}
        )


class PublicGoodsGame(_GameBase):
    """An n-player public-goods ('donation') game: give part of an endowment to a shared fund."""

    kind: Literal["public_goods"]
    players: int = Field(4, ge=2)
    endowment: float = Field(10, gt=0, description="What each player holds before giving.")
    multiplier: float = Field(2.5, gt=0, description="The fund is multiplied by this, then split equally.")
    currency: str = Field("$", min_length=1, description="Symbol put before amounts.")

    @property
    def answer_range(self) -> tuple[float, float]:
        return (0.0, float(self.endowment))


#: Any game; library files pick the model with the `kind` field (default "matrix").
Game = Union[MatrixGame, PublicGoodsGame]  # noqa: UP007  (a runtime alias pydantic resolves)
GAME_KINDS: dict[str, type[MatrixGame] | type[PublicGoodsGame]] = {
    "matrix": MatrixGame,
    "public_goods": PublicGoodsGame,
}


class Variant(_Entry):
    """A payoff transform of existing matrix games, e.g. every payoff doubled (a held-out game set)."""

    id: Ident = Field(description="Suffix added to each derived game's id, e.g. 'x2'.")
    name: str = Field(min_length=1, description="Added to each derived game's name.")
    scale: float = Field(gt=0, description="Factor applied to every payoff.")
    games: list[Ident] = Field(min_length=1, description="Ids of the matrix games to transform.")
    split: Ident = Field(description="Split of the derived scenarios.")
    contexts: list[str] | None = Field(None, description="As for games: ids or 'split:<name>' selectors.")


class Paraphrase(_Entry):
    """Other wordings of a training context's framing, for training data only.

    A paraphrase never forms a scenario of its own: no evaluated prompt ever reads it, so it can
    vary the wording a student is trained on without changing what is measured."""

    context: Ident = Field(description="Id of the training context whose framing these texts reword.")
    framings: list[str] = Field(
        min_length=1, description="Jinja2 texts, each told like the context's `framing` and seeing the same fields."
    )

    @field_validator("framings")
    @classmethod
    def _no_blank_framing(cls, framings: list[str]) -> list[str]:
        # A blank text would render to nothing: a prompt without any framing, silently.
        for number, text in enumerate(framings, 1):
            if not text.strip():
                raise ValueError(f"framing #{number} is empty")
        return framings


@dataclass(frozen=True)
class Scenario:
    """One game in one social context; the unit every sample, rate and cell refers to."""

    id: str
    split: str
    context: Context
    game: Game
    template: Template

    @property
    def numeric(self) -> bool:
        """True when the answer is a number (donation game), False for a choice of action."""
        return not isinstance(self.game, MatrixGame)
