"""Turn a model's raw reply into a Decision: an action (or amount), a motivation, or `invalid`.

The parser reads what small and large models actually write: bare letters, markdown, sentences
("I choose C because..."), labels ("My decision: C", "Strategy D."), amounts ("I would donate
$7", "5 dollars"). It never guesses: a reply that names more than one decision without saying
which one it takes is invalid, with the reason. Bump PARSER_VERSION whenever the rules change,
so stored samples can be re-parsed (`tomdistill reparse`) and the version recorded.

A reason-first reply ("Motivation: ..." first, protocol `reasoned`) is read from its first
labelled answer line ("Answer: C"); the text before it is the motivation. The same line is where
score mode cuts a sampled reasoned reply to weigh its decision (`reasoned_prefix`), so a stored
motivation and the scored decision always meet at the same point. Then the decision part
is read in this order, first rule that decides wins:
1. the first line is the decision alone (what the protocols ask for), maybe with a label;
2. an explicit first-person or labelled statement ("I pick D", "my answer is C");
3. (choices) a reply that starts with the action letter ("D - because ...");
4. the only action letter / amount mentioned anywhere; several different ones -> invalid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ConfigDict

from .protocols import Protocol, decision_prefix
from .render import num

if TYPE_CHECKING:
    from .spec import Scenario

#: 2: a minus glued to an amount ("-5", "$-3") is a negative amount, hence out of range, not 5.
#: 3: a reply that starts with its motivation is read from its last "Answer:" line (was invalid).
#: 4: ... from its first answer line, where score mode cuts it too; markdown labels ("**Answer:**") count.
PARSER_VERSION = "4"
T = TypeVar("T")


class Decision(BaseModel):
    """What a reply decided. Exactly one of `action` and `invalid_reason` is set."""

    model_config = ConfigDict(frozen=True)
    action: str | float | None = None
    motivation: str | None = None
    invalid_reason: str | None = None

    @property
    def valid(self) -> bool:
        return self.invalid_reason is None


@dataclass(frozen=True)
class ChoiceAnswer:
    """A pick among action labels, e.g. ('C', 'D')."""

    actions: tuple[str, ...]


@dataclass(frozen=True)
class NumberAnswer:
    """An amount in [low, high], e.g. dollars given in the donation game."""

    low: float
    high: float


AnswerSpec = ChoiceAnswer | NumberAnswer

# --- text clean-up -----------------------------------------------------------------------------

_MARKUP = re.compile(r"[*_`#~\"“”«»]+")
_APOSTROPHES = re.compile(r"[’‘´]")
_MOTIVATION_LABEL = re.compile(
    r"(?:^|\n|\s)(?:motivation|reason(?:ing)?|explanation|rationale|justification|why)\s*:\s*", re.IGNORECASE
)
#: The decision line of a reason-first reply, after its motivation: "Answer: C", "**Final decision** = 5".
_ANSWER_LINE = re.compile(
    r"^[ \t*_#>]*(?:(?:my|the)\s+)?(?:final\s+)?(?:answer|decision|choice)[ \t*_]*[:=]", re.IGNORECASE | re.MULTILINE
)
#: Words after which the rest of a sentence is reasoning, not the decision itself.
_REASON_START = re.compile(r"\b(?:because|since|given that|as (?:this|it|that)|if|so that|in order to|otherwise|unless)\b", re.IGNORECASE)
#: A reply that takes its decision back is never read as either decision.
_CHANGE_OF_MIND = re.compile(
    r"\b(?:actually|on second thought|wait|scratch that|i change my (?:mind|answer)|no,? (?:i mean|make that))\b", re.IGNORECASE
)
_LABEL = r"(?:(?:my|the)\s+)?(?:final\s+)?(?:answer|decision|choice|strategy|option|pick|move|action|selection)"
_SUBJECT = (
    r"\b(?:i|we)(?:\s+(?:would|will|shall|must|should|definitely|therefore|thus|then|also|still)|'d|'ll"
    r"|\s+am\s+going\s+to|\s+have\s+decided\s+to|\s+decide\s+to|\s+choose\s+to|\s+prefer\s+to)*"
)
_CHOOSE_VERB = r"(?:choose|chose|pick|picked|select|go\s+with|opt\s+for|play|take|vote\s+for)"
_CHOOSING_VERB = r"(?:choosing|picking|selecting|going\s+with|opting\s+for|playing)"
_GIVE_VERB = r"(?:donate|give|contribute|put\s+in|put|invest|offer|pay)"
#: Single letters that are also English words; such actions are only read in upper case.
_WORD_LETTERS = {"a", "i", "o"}

_NUMBER_WORDS = {
    "zero": 0, "nothing": 0, "none": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}
_NUMBER = r"\d+(?:\.\d+)?"
#: A minus glued to a number is its sign ("-5", "$-3", "-$3", "−2"); a dash after a word or a
#: number ("Answer-7", "5-7") is a hyphen, and one between spaces ("Answer - 7") a separator.
_SIGN = r"(?:(?<![\w.])[-−])?"
#: An amount as written, dollar sign and sign included (read by `_amount`).
_SIGNED = rf"{_SIGN}(?:\$\s*{_SIGN})?{_NUMBER}"
_AMOUNT = rf"({_SIGNED}|" + "|".join(_NUMBER_WORDS) + r")"
#: What may stand between a label and its amount; a dash glued to the number is its sign instead.
_AMOUNT_SEPARATOR = r"(?:[:=–]|-(?![\d$]))"


def _clean(text: str) -> str:
    text = _APOSTROPHES.sub("'", text)
    text = _MARKUP.sub("", text)
    lines = [line.strip() for line in text.strip().splitlines()]
    return "\n".join(line for line in lines if line)


def answer_line_start(text: str) -> int | None:
    """Where the first labelled answer line of a reason-first reply starts, or None without one.

    The one rule for where a reasoned reply's motivation ends and its decision starts: the parser
    reads the decision from here, and score mode weighs the decision at this point."""
    match = _ANSWER_LINE.search(text)
    return match.start() if match else None


def reasoned_prefix(reply: str, protocol: Protocol) -> str:
    """The text a reason-first decision is scored after: the sampled reply up to its answer line
    (`answer_line_start`), then the protocol's decision prefix ("Motivation: ...\nAnswer:").

    The prefix is put back even where the reply never got to it (it ran out of tokens, or wrote
    no answer line), so every motivation is followed by the same question."""
    label = decision_prefix(protocol)
    if not label:
        raise ValueError(f"protocol {protocol!r} is not reason-first")
    start = answer_line_start(reply)
    reasoning = reply if start is None else reply[:start]
    return f"{reasoning.rstrip()}\n{label}"


def _split_motivation(text: str) -> tuple[str, str | None]:
    """(decision part, motivation) split at a 'Motivation:'-style label, if the reply has one.

    A reply that starts with its motivation (reason first) has its decision from its first
    labelled answer line on (`answer_line_start`); without such a line the decision part is empty."""
    match = _MOTIVATION_LABEL.search(text)
    if match is None:
        return text, None
    body, motivation = text[: match.start()].strip(), text[match.end() :].strip() or None
    if not body and motivation and (start := answer_line_start(motivation)) is not None:
        return motivation[start:].strip(), motivation[:start].strip() or None
    return body, motivation


def _reason_clause_motivation(text: str) -> str | None:
    """For replies without a label, the reasoning after 'because' / 'since', if there is any."""
    match = re.search(r"\b(?:because|since)\b.*", text, re.IGNORECASE | re.DOTALL)
    return match.group(0).strip() if match else None


def _invalid(reason: str, motivation: str | None = None) -> Decision:
    return Decision(action=None, motivation=motivation, invalid_reason=reason)


def _explicit(patterns: Sequence[str], text: str, convert: Callable[[str], T]) -> set[T]:
    """The distinct decisions that explicit statements name (each pattern's last group)."""
    return {convert(m.group(m.lastindex or 1)) for p in patterns for m in re.finditer(p, text, re.IGNORECASE)}


# --- choices -----------------------------------------------------------------------------------


def _action_pattern(actions: Sequence[str]) -> str:
    """A regex group matching any action label, case-insensitive unless the letter is a word."""
    parts = []
    for a in sorted(actions, key=len, reverse=True):
        if a.lower() in _WORD_LETTERS:
            parts.append(f"(?-i:{re.escape(a)})")
        else:
            parts.append("".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in a))
    # Not followed by "or D" / "/D" / "and D": a label listing the options is no decision.
    labels = "|".join(re.escape(a) for a in actions)
    return "(" + "|".join(parts) + rf")(?![\w'])(?!\s*(?:or\b|/|vs\b|versus\b|and\s+(?:{labels})(?![\w'])))"


def _canonical(found: str, actions: Sequence[str]) -> str:
    for a in actions:
        if a.lower() == found.lower():
            return a
    raise AssertionError(found)


def _explicit_choices(text: str, act: str, actions: Sequence[str]) -> set[str]:
    patterns = [
        rf"{_SUBJECT}\s+{_CHOOSE_VERB}\s+(?:(?:strategy|option|action|letter)\s+)?{act}",
        rf"\bi(?:'m|\s+am)\s+{_CHOOSING_VERB}\s+(?:(?:strategy|option|action|letter)\s+)?{act}",
        rf"{_LABEL}\s*(?:is|would\s+be|will\s+be|:|=|-|–)\s*(?:(?:strategy|option|action|letter)\s+)?{act}",
        rf"\bmy\s+(?:final\s+)?(?:answer|decision|choice|pick)\s+(?:is\s+)?(?:to\s+)?(?:choose|pick|go\s+with|play)\s+{act}",
    ]
    return _explicit(patterns, text, lambda found: _canonical(found, actions))


def _parse_choice(text: str, actions: Sequence[str]) -> Decision:
    act = _action_pattern(actions)
    body, motivation = _split_motivation(text)
    if not body:
        return _invalid("no decision before the motivation", motivation)
    first, _, rest = body.partition("\n")

    # 1. The first line is the decision alone, maybe labelled: "C", "(D)", "Strategy D.", "Answer: C".
    bare = re.fullmatch(rf"(?:{_LABEL}\s*[:=\-–]?\s*)?[(\[<]?{act}[)\]>.!:]*", first.strip(), re.IGNORECASE)
    if bare:
        return Decision(action=_canonical(bare.group(1), actions), motivation=motivation or rest.strip() or None)

    if _CHANGE_OF_MIND.search(body):
        return _invalid("the reply changes its decision", motivation)
    motivation = motivation or _reason_clause_motivation(body)

    # 2. Explicit statements, first in the part before any reasoning, then anywhere in the body.
    head = _REASON_START.split(body, maxsplit=1)[0]
    for part in (head, body):
        found = _explicit_choices(part, act, actions)
        if len(found) == 1:
            return Decision(action=found.pop(), motivation=motivation)
        if len(found) > 1:
            return _invalid(f"the reply states more than one decision ({', '.join(sorted(found))})", motivation)

    # 3./4. Standalone action letters, upper case only: lower-case letters are too often words.
    standalone = re.compile("(?<![\\w'])(" + "|".join(re.escape(a) for a in actions) + ")(?![\\w'])")
    mentioned = {m.group(1) for m in standalone.finditer(body)}
    lead = standalone.match(body)
    if lead:
        # "D - the coplayer ..." is a decision; "C: you pick D" or "C or D" names both, so it is not.
        first_sentence = re.split(r"[.!?\n]", body, maxsplit=1)[0]
        if {m.group(1) for m in standalone.finditer(first_sentence)} == {lead.group(1)}:
            return Decision(action=lead.group(1), motivation=motivation)
    if len(mentioned) == 1:
        return Decision(action=mentioned.pop(), motivation=motivation)
    if mentioned:
        return _invalid(f"the reply names {' and '.join(sorted(mentioned))} without saying which it picks", motivation)
    return _invalid("no action found in the reply", motivation)


# --- amounts -----------------------------------------------------------------------------------


def _amount(token: str) -> float:
    """The value of an `_AMOUNT` match: "five" -> 5, "$-3" -> -3, "−2" -> -2."""
    token = token.lower()
    if token in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[token])
    digits = re.sub(r"[$\s]", "", token)
    negative = digits[0] in "-−"
    value = float(digits.lstrip("-−"))
    return -value if negative and value else value


def _explicit_amounts(text: str) -> set[float]:
    money = rf"{_AMOUNT}(?:\s*(?:dollars?|usd|\$))?"
    patterns = [
        rf"{_SUBJECT}\s+{_GIVE_VERB}\s+(?:(?:all|only|just|about|exactly|around)\s+)?(?:of\s+)?{money}",
        rf"\bi(?:'m|\s+am)\s+(?:donating|giving|contributing|putting\s+in|putting|investing)\s+(?:(?:all|only|just)\s+)?{money}",
        rf"(?:(?:my|the)\s+)?(?:final\s+)?(?:answer|decision|donation|contribution|amount|choice)\s*(?:is|would\s+be|will\s+be|{_AMOUNT_SEPARATOR})\s*{money}",
    ]
    return _explicit(patterns, text, _amount)


def _parse_number(text: str, low: float, high: float) -> Decision:
    body, motivation = _split_motivation(text)
    if not body:
        return _invalid("no decision before the motivation", motivation)
    first, _, rest = body.partition("\n")

    def checked(value: float, motivation: str | None) -> Decision:
        if not low <= value <= high:
            return _invalid(f"amount {num(value)} is outside {num(low)}-{num(high)}", motivation)
        return Decision(action=value, motivation=motivation)

    # 1. The first line is the amount alone: "7", "$7", "7 dollars", "Answer: 7".
    bare = re.fullmatch(
        rf"(?:{_LABEL}\s*{_AMOUNT_SEPARATOR}?\s*)?<?{_AMOUNT}\s*(?:dollars?|usd|\$)?>?\.?", first.strip(), re.IGNORECASE
    )
    if bare:
        return checked(_amount(bare.group(1)), motivation or rest.strip() or None)

    if _CHANGE_OF_MIND.search(body):
        return _invalid("the reply changes its decision", motivation)
    motivation = motivation or _reason_clause_motivation(body)

    # 2. Explicit first-person or labelled amounts.
    head = _REASON_START.split(body, maxsplit=1)[0]
    for part in (head, body):
        found = _explicit_amounts(part)
        if len(found) == 1:
            return checked(found.pop(), motivation)
        if len(found) > 1:
            values = ", ".join(num(v) for v in sorted(found))
            return _invalid(f"the reply states more than one amount ({values})", motivation)

    # 3. Money amounts, then any numbers: only a single distinct value counts.
    money = rf"({_SIGN}\$\s*{_SIGN}{_NUMBER})|({_SIGN}{_NUMBER})\s*(?:dollars?|usd)\b"
    for pattern in (money, rf"(?<![\w.])({_SIGN}{_NUMBER})(?!\w|\.\d)"):
        values = {_amount(next(g for g in m.groups() if g)) for m in re.finditer(pattern, body, re.IGNORECASE)}
        if len(values) == 1:
            return checked(values.pop(), motivation)
        if values:
            shown = ", ".join(num(v) for v in sorted(values))
            return _invalid(f"the reply names several amounts ({shown}) without saying which it gives", motivation)
    return _invalid("no amount found in the reply", motivation)


# --- entry points ------------------------------------------------------------------------------


def parse_reply(text: str | None, answer: AnswerSpec) -> Decision:
    """Parse one raw reply against what the scenario asked for."""
    cleaned = _clean(text or "")
    if not cleaned:
        return _invalid("empty reply")
    if isinstance(answer, ChoiceAnswer):
        return _parse_choice(cleaned, answer.actions)
    return _parse_number(cleaned, answer.low, answer.high)


def answer_spec(scenario: "Scenario") -> AnswerSpec:
    """What a reply to this scenario must contain: an action label or an amount in range."""
    return game_answer_spec(scenario.game)


def game_answer_spec(game) -> AnswerSpec:
    """What a reply in this game must contain (an action label or an amount in range)."""
    from .spec import MatrixGame

    if isinstance(game, MatrixGame):
        return ChoiceAnswer(tuple(game.actions))
    return NumberAnswer(*game.answer_range)


def parse_decision(text: str | None, scenario: "Scenario") -> Decision:
    """Parse a raw reply to `scenario` into a Decision."""
    return parse_reply(text, answer_spec(scenario))
