"""Render a scenario into chat messages for a protocol, and hash them.

Rendering is deterministic: the same scenario data and protocol always give the same messages
and the same hash, and any edit to the data changes the hash, so stored answers to an older
wording never mix with answers to the new one.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, TypedDict, get_args

import jinja2
from pydantic import BaseModel, ConfigDict, Field

from .spec import MatrixGame

if TYPE_CHECKING:
    from .library import Scenario

#: `answer`: the decision alone. `motivated`: the decision on its own first line, then a motivation.
Protocol = Literal["answer", "motivated"]
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)


class ChatMessage(TypedDict):
    role: str
    content: str


class TemplateRenderError(ValueError):
    """A Jinja2 template could not be rendered with the fields it was given."""


class ProtocolText(BaseModel):
    """The texts that ask for a decision in one protocol."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    system: str = Field(min_length=1)
    choice: str = Field(min_length=1, description="Instruction for matrix games (pick an action).")
    number: str = Field(min_length=1, description="Instruction for numeric games (give an amount).")


def num(value: float) -> str:
    """A payoff as people write it: 10.0 -> '10', 2.5 -> '2.5'."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
    keep_trailing_newline=False,
)
_ENV.globals["num"] = num


@cache
def _compiled(text: str) -> jinja2.Template:
    return _ENV.from_string(text)


def render_text(text: str, variables: dict[str, Any]) -> str:
    """Render one Jinja2 text; undefined names and syntax errors raise TemplateRenderError."""
    try:
        return _compiled(text).render(**variables).strip()
    except jinja2.TemplateError as exc:
        raise TemplateRenderError(f"template error: {exc}") from None


@cache
def protocol_texts() -> dict[str, ProtocolText]:
    """The built-in protocol texts from library/protocols.toml."""
    from .library import builtin_library_dir

    with (builtin_library_dir() / "protocols.toml").open("rb") as fh:
        data = tomllib.load(fh)
    return {name: ProtocolText.model_validate(data[name]) for name in PROTOCOLS}


@dataclass(frozen=True)
class PastRound:
    """One earlier round of a repeated two-player game, as one player saw it."""

    mine: str
    theirs: str
    payoff: float


@cache
def history_text() -> str:
    """The Jinja2 text that tells earlier rounds (library/protocols.toml, table `history`)."""
    from .library import builtin_library_dir

    with (builtin_library_dir() / "protocols.toml").open("rb") as fh:
        return tomllib.load(fh)["history"]["text"]


def render(scenario: Scenario, protocol: Protocol, history: Sequence[PastRound] | None = None) -> list[ChatMessage]:
    """The system and user messages that ask for a decision in this scenario.

    `history` (repeated games) adds an account of the earlier rounds between the rules and the
    question; without it (or with an empty one) the messages are exactly the one-shot prompt.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    texts = protocol_texts()[protocol]
    variables = scenario.game.model_dump()
    framing = render_text(scenario.context.framing, variables)
    rules = render_text(scenario.template.text, variables)
    ask = texts.choice if isinstance(scenario.game, MatrixGame) else texts.number
    instruction = render_text(ask, variables)
    parts = [framing, rules]
    if history:
        parts.append(_render_history(scenario, history))
    parts.append(instruction)
    return [
        {"role": "system", "content": texts.system.strip()},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def _render_history(scenario: Scenario, history: Sequence[PastRound]) -> str:
    game = scenario.game
    if not isinstance(game, MatrixGame):
        raise TypeError(f"{scenario.id}: earlier rounds can only be told for two-player matrix games")
    for r in history:
        if r.mine not in game.actions or r.theirs not in game.actions:
            raise ValueError(f"{scenario.id}: an earlier round has {r.mine!r} / {r.theirs!r}; actions are {game.actions}")
    rounds = [{"number": i, "mine": r.mine, "theirs": r.theirs, "payoff": r.payoff} for i, r in enumerate(history, 1)]
    return render_text(history_text(), game.model_dump() | {"rounds": rounds})


def prompt_hash(messages: list[ChatMessage]) -> str:
    """A short content hash of rendered messages (16 hex chars of sha256 over canonical JSON)."""
    canonical = json.dumps(messages, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
