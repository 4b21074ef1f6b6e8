"""Render a scenario into chat messages for a protocol, and hash them.

Rendering is deterministic: the same scenario data and protocol always give the same messages
and the same hash, and any edit to the data changes the hash, so stored answers to an older
wording never mix with answers to the new one.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
import jinja2.sandbox

from ..situations import ChatMessage
from .protocols import PROTOCOLS, Protocol, history_text, protocol_texts
from .spec import MatrixGame, Scenario


class TemplateRenderError(ValueError):
    """A Jinja2 template could not be rendered with the fields it was given.

    `part` says which text failed ("framing" of the context, "text" of the template, or a
    built-in protocol text), so a loader can name the file, entry and field at fault."""

    def __init__(self, message: str, part: str | None = None) -> None:
        super().__init__(message)
        self.part = part


def num(value: float) -> str:
    """A payoff as people write it: 10.0 -> '10', 2.5 -> '2.5'."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


#: Filters a library text may use. Library files are shared between people, so a template is
#: untrusted input: it gets no filter that reaches Python objects, formats strings, emits markup
#: or multiplies text (`replace` could turn 10^5 characters into 10^10).
_ALLOWED_FILTERS = (
    "join", "length", "count", "first", "last", "lower", "upper", "capitalize", "title", "trim",
    "default", "round", "int", "float", "abs", "string", "sum", "min", "max",
)
_ALLOWED_TESTS = ("defined", "undefined", "number", "string", "even", "odd", "in", "eq", "ne", "lt", "le", "gt", "ge")
#: The template constructs a library text may use: output, data look-ups, allowed filters and
#: tests, `num(...)`, arithmetic and comparisons, `if`, and `for` over the game's own data. No
#: `set`, macros, calls of methods, includes or blocks: nothing a text needs, and each is a way to
#: loop or grow without bound (`{% set a = a ~ a %}`, a recursive macro, "x".center(10**9)).
_ALLOWED_NODES = tuple(getattr(jinja2.nodes, name) for name in (
    "Template", "Output", "TemplateData", "Const", "Name", "Getattr", "Getitem", "Slice", "Filter", "Test",
    "Call", "For", "If", "CondExpr", "Compare", "Operand", "And", "Or", "Not", "Neg", "Pos", "Add", "Sub",
    "Mul", "Div", "FloorDiv", "Mod", "Pow", "Concat", "List", "Tuple", "Keyword",
))
#: Longest text (or list) a template may build, and longest text it may render.
_MAX_TEXT = 10_000
_MAX_RENDERED = 100_000


class _LibrarySandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """Jinja2's sandbox (no `__globals__`, no private attributes, no mutation) with bounded values.

    The sandbox already refuses attribute paths to Python internals; `call_binop` bounds the
    operators that let a few bytes of template text build gigabytes or run for minutes, and
    `call` allows `num(...)` only."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's signature)
        if __obj is not num:
            raise jinja2.sandbox.SecurityError("calling anything but num(...) is not allowed")
        return super().call(__context, __obj, *args, **kwargs)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be huge, and string formatting with `%`."""
    sequences = (str, list, tuple)
    if operator == "%" and not isinstance(left, int | float):
        raise jinja2.sandbox.SecurityError("'%' formatting is not allowed (use num(...) and ~)")
    if operator == "**" and not _small_power(left, right):
        raise jinja2.sandbox.SecurityError("powers with results above 10**1000 are not allowed")
    if operator == "+" and isinstance(left, sequences) and isinstance(right, sequences):
        if len(left) + len(right) > _MAX_TEXT:
            raise jinja2.sandbox.SecurityError(f"texts longer than {_MAX_TEXT} characters are not allowed")
    if operator == "*":
        if isinstance(left, list | tuple) or isinstance(right, list | tuple):  # its items could be long texts
            raise jinja2.sandbox.SecurityError("repeating a list is not allowed")
        if isinstance(left, str) or isinstance(right, str):
            seq, times = (left, right) if isinstance(left, str) else (right, left)
            if not isinstance(times, int) or len(seq) * max(times, 0) > _MAX_TEXT:
                raise jinja2.sandbox.SecurityError(f"repeating text beyond {_MAX_TEXT} characters is not allowed")
        elif isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > 3400:
            raise jinja2.sandbox.SecurityError("products above 10**1000 are not allowed")


def _small_power(base: Any, exponent: Any) -> bool:
    """True when base ** exponent stays far below a number that takes seconds to compute."""
    if not isinstance(exponent, int | float) or not isinstance(base, int | float):
        return True  # not arithmetic on numbers: Python raises its own TypeError
    if abs(base) <= 1 or exponent <= 0:
        return True
    return math.log10(abs(base)) * exponent <= 1000


def _check_constructs(template: jinja2.nodes.Template) -> None:
    """Refuse, before rendering, any construct outside the small language library texts use."""
    for node in template.find_all(jinja2.nodes.Node):
        kind = type(node).__name__
        if not isinstance(node, _ALLOWED_NODES):
            raise jinja2.sandbox.SecurityError(f"'{kind}' ({{% set %}}, macros, blocks, includes ...) is not allowed")
        if isinstance(node, jinja2.nodes.Filter) and node.name not in _ALLOWED_FILTERS:
            raise jinja2.sandbox.SecurityError(f"filter '{node.name}' is not allowed")
        if isinstance(node, jinja2.nodes.Test) and node.name not in _ALLOWED_TESTS:
            raise jinja2.sandbox.SecurityError(f"test '{node.name}' is not allowed")
        if isinstance(node, jinja2.nodes.Call) and not (isinstance(node.node, jinja2.nodes.Name) and node.node.name == "num"):
            raise jinja2.sandbox.SecurityError("calling anything but num(...) is not allowed")
        if isinstance(node, jinja2.nodes.For) and (node.recursive or not _from_data(node.iter)):
            raise jinja2.sandbox.SecurityError("'for' may only loop over the game's data (e.g. actions, rounds)")


def _from_data(node: jinja2.nodes.Node) -> bool:
    """Whether an expression is a variable, or an item, attribute or filter of one (bounded data)."""
    while isinstance(node, jinja2.nodes.Getattr | jinja2.nodes.Getitem | jinja2.nodes.Filter):
        node = node.node
    return isinstance(node, jinja2.nodes.Name)


def _bounded_join(join: Any) -> Any:
    """Jinja's `join`, refused before it runs when its separator repeated over a (user-made, e.g.
    a game's `contexts`) list would make a text past the render limit; nesting joins would
    otherwise multiply lengths."""

    @jinja2.pass_eval_context
    def bounded(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
        items = list(value)
        if len(str(d)) * max(len(items) - 1, 0) > _MAX_RENDERED:
            raise jinja2.sandbox.SecurityError(f"joining beyond {_MAX_RENDERED:,} characters is not allowed")
        return join(eval_ctx, items, d, attribute)

    return bounded


def _environment() -> jinja2.Environment:
    env = _LibrarySandbox(
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        keep_trailing_newline=False,
    )
    # Only what the texts need: no `range`, `lipsum`, `cycler`, `joiner`, `namespace` or `dict`.
    env.globals.clear()
    env.globals["num"] = num
    env.filters = {name: env.filters[name] for name in _ALLOWED_FILTERS}
    env.filters["join"] = _bounded_join(env.filters["join"])
    env.tests = {name: env.tests[name] for name in _ALLOWED_TESTS}
    return env


_ENV = _environment()


@cache
def _compiled(text: str) -> jinja2.Template:
    _check_constructs(_ENV.parse(text))
    return _ENV.from_string(text)


def render_text(text: str, variables: dict[str, Any]) -> str:
    """Render one Jinja2 text; undefined names, syntax errors and refused constructs raise TemplateRenderError."""
    try:
        rendered = _compiled(text).render(**variables).strip()
    except jinja2.sandbox.SecurityError as exc:
        raise TemplateRenderError(f"not allowed in a library text: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateRenderError(f"template error: {exc}") from None
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - a library text is data: any failure is the text's
        raise TemplateRenderError(f"template error: {type(exc).__name__}: {exc}") from None
    if len(rendered) > _MAX_RENDERED:
        raise TemplateRenderError(f"not allowed in a library text: it renders to {len(rendered):,} characters "
                                  f"(at most {_MAX_RENDERED:,})")
    return rendered


@dataclass(frozen=True)
class PastRound:
    """One earlier round of a repeated two-player game, as one player saw it."""

    mine: str
    theirs: str
    payoff: float


def render(scenario: Scenario, protocol: Protocol, history: Sequence[PastRound] | None = None) -> list[ChatMessage]:
    """The system and user messages that ask for a decision in this scenario.

    `history` (repeated games) adds an account of the earlier rounds between the rules and the
    question; without it (or with an empty one) the messages are exactly the one-shot prompt.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    texts = protocol_texts()[protocol]
    variables = scenario.game.model_dump()
    ask = texts.choice if isinstance(scenario.game, MatrixGame) else texts.number
    instruction = _render_part("protocol", ask, variables)
    parts = [situation_text(scenario)]
    if history:
        parts.append(_render_history(scenario, history))
    parts.append(instruction)
    return [
        {"role": "system", "content": texts.system.strip()},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def situation_text(scenario: Scenario) -> str:
    """The scenario's framing and rules as the prompt tells them, without the question that asks
    for a reply (for simulations that ask in their own words, e.g. Concordia's)."""
    variables = scenario.game.model_dump()
    framing = _render_part("framing", scenario.context.framing, variables)
    rules = _render_part("text", scenario.template.text, variables)
    return f"{framing}\n\n{rules}"


def _render_part(part: str, text: str, variables: dict[str, Any]) -> str:
    """render_text, with the failing part recorded on the error."""
    try:
        return render_text(text, variables)
    except TemplateRenderError as exc:
        raise TemplateRenderError(str(exc), part) from None


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
