"""The prompt protocols: their names, and the built-in texts that ask for a decision in each
(library/protocols.toml), with what a reply in each starts with.

Kept apart from render.py so that the parser, the dataset builder and the library loader can
ask about a protocol without importing the renderer, and the renderer needs nothing from them.
"""

from __future__ import annotations

import tomllib
from functools import cache
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from .builtin import builtin_library_dir

#: `answer`: the decision alone. `motivated`: the decision on its own first line, then a motivation.
#: `reasoned`: reason first: the motivation, then the decision on its own last line.
Protocol = Literal["answer", "motivated", "reasoned"]
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)


class ProtocolText(BaseModel):
    """The texts that ask for a decision in one protocol."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    system: str = Field(min_length=1)
    choice: str = Field(min_length=1, description="Instruction for matrix games (pick an action).")
    number: str = Field(min_length=1, description="Instruction for numeric games (give an amount).")
    reply_prefix: str = Field("", description="Fixed text the reply starts with (motivated: 'Answer:'); "
                                              "score mode weighs the decision right after it.")
    decision_prefix: str = Field("", description="Reason-first protocols (reasoned: 'Answer:'): the text the "
                                                 "decision follows, after the motivation. Score mode samples a "
                                                 "motivation, then weighs the decision after it.")


@cache
def protocol_texts() -> dict[str, ProtocolText]:
    """The built-in protocol texts from library/protocols.toml."""
    with (builtin_library_dir() / "protocols.toml").open("rb") as fh:
        data = tomllib.load(fh)
    return {name: ProtocolText.model_validate(data[name]) for name in PROTOCOLS}


@cache
def history_text() -> str:
    """The Jinja2 text that tells earlier rounds (library/protocols.toml, table `history`)."""
    with (builtin_library_dir() / "protocols.toml").open("rb") as fh:
        return tomllib.load(fh)["history"]["text"]


def reply_prefix(protocol: Protocol) -> str:
    """The fixed text a reply in `protocol` starts with, before the decision ('' for `answer`)."""
    return protocol_texts()[protocol].reply_prefix


def decision_prefix(protocol: Protocol) -> str:
    """The text a reason-first reply's decision follows ('' for decision-first protocols)."""
    return protocol_texts()[protocol].decision_prefix


def reason_first(protocol: Protocol) -> bool:
    """Whether replies in `protocol` give their motivation before the decision."""
    return bool(decision_prefix(protocol))
