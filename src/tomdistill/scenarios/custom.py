"""Scenarios built in code: a payoff matrix and a context text, validated like library entries.

`make_scenario` builds the same spec objects a library file does (MatrixGame, Context, the
built-in prose template), so a scenario made in a simulation script is checked, rendered and
hashed exactly like `business/prisoners_dilemma`. `resolve_scenario` turns whatever a user hands
an agent (a Scenario, a built-in id, or an id from the user's library files) into a Scenario.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import TomdistillError, describe_validation_error
from .library import Library, load_library
from .protocols import PROTOCOLS
from .render import TemplateRenderError, render
from .spec import Context, MatrixGame, Scenario, Template


class ScenarioError(TomdistillError):
    """A scenario built in code (or named by a user) is invalid; the message names the field."""


@cache
def builtin_library() -> Library:
    """The built-in library, loaded once per process (agents resolve scenario ids against it)."""
    return load_library()


def make_scenario(
    payoffs: Mapping[str, Mapping[str, Sequence[float]]],
    context: str,
    *,
    actions: Sequence[str] | None = None,
    cooperate: str | None = None,
    id: str = "custom/game",
    name: str = "Custom game",
    context_name: str = "Custom context",
    rules: str | None = None,
    split: str = "custom",
) -> Scenario:
    """A two-player one-shot scenario from a payoff matrix and a context text.

    - `payoffs[yours][coplayer's] = (your payoff, coplayer's payoff)` for every pair of actions,
      e.g. ``{"C": {"C": (3, 3), "D": (0, 5)}, "D": {"C": (5, 0), "D": (1, 1)}}``.
    - `context`: who the player is and who the counterpart is; the prompt calls the counterpart
      "the coplayer", so the text should say so (as the built-in contexts do).
    - `actions`: the two labels in the order told (default: the keys of `payoffs`); the first is
      the cooperative one unless `cooperate` names the other.
    - `id`: `context_id/game_id` (lower case, digits and `_`); `rules`: a Jinja2 text that tells
      the payoffs instead of the built-in prose template (it sees `actions`, `payoffs`, `num`).

    Raises ScenarioError naming the field at fault.
    """
    context_id, sep, game_id = id.partition("/")
    if not sep:
        raise ScenarioError(f"make_scenario: field 'id': '{id}' must look like context/game, e.g. village/fishing")
    chosen = list(actions) if actions is not None else list(payoffs)
    game = _validated(MatrixGame, {
        "id": game_id, "name": name, "template": "two_player_matrix" if rules is None else "custom_rules",
        "actions": chosen, "cooperate": cooperate, "split": "train",
        "payoffs": {m: {t: list(pair) for t, pair in row.items()} for m, row in payoffs.items()},
    })
    ctx = _validated(Context, {"id": context_id, "name": context_name, "framing": context, "split": split},
                     rename={"framing": "context", "name": "context_name"})
    if rules is None:
        template = builtin_library().templates["two_player_matrix"].entry
    else:
        template = _validated(Template, {"id": "custom_rules", "text": rules}, rename={"text": "rules"})
    scenario = Scenario(id=id, split=split, context=ctx, game=game, template=template)
    for protocol in PROTOCOLS:  # surface template errors (e.g. stray {{ in the context) now, not mid-run
        try:
            render(scenario, protocol)
        except TemplateRenderError as exc:
            field = {"framing": "context", "text": "rules"}.get(exc.part or "", "payoffs")
            raise ScenarioError(f"make_scenario: field '{field}': {exc} (context and rules are Jinja2 text, "
                                "rendered in a sandbox)") from None
    return scenario


def _validated(model: type, values: dict[str, Any], rename: dict[str, str] | None = None):
    """`model` built from `values`; an error names the make_scenario argument at fault."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        loc, msg = describe_validation_error(exc)
        field = (rename or {}).get(loc or "", loc)
        raise ScenarioError(f"make_scenario: field '{field}': {msg}") from None


def resolve_scenario(ref: Scenario | str, libraries: Iterable[Path | str] = ()) -> Scenario:
    """A Scenario from a Scenario (returned as is), a scenario id (built-in, or from `libraries`)."""
    if isinstance(ref, Scenario):
        return ref
    if not isinstance(ref, str):
        raise ScenarioError(f"expected a Scenario or a scenario id, got {type(ref).__name__}")
    files = list(libraries)
    library = load_library(files) if files else builtin_library()
    return library.scenario(ref)
