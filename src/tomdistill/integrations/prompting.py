"""Framework-neutral pieces of putting an agent behind another framework's language-model
interface: where a document-style prompt's reply starts, per-call seeds that do not depend on the
order of calls, choice probabilities over responses that may begin one another, terminators.
No simulation framework is imported here, so these are tested without one."""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Collection, Mapping, Sequence

from ..models.base import text_choice_probs


def split_reply_start(prompt: str) -> tuple[str, str]:
    """(document, reply start): the prompt's last line starts the reply, unless the prompt ends
    with a line break (then nothing does)."""
    document, newline, last = prompt.rpartition("\n")
    return (document, last) if newline and last.strip() else (prompt, "")


def call_seed(base: int, prompt: str, occurrence: int) -> int:
    """The seed of the `occurrence`-th call (0, 1, ...) with this prompt in a game seeded `base`.

    Frameworks call their model from thread pools and rarely pass seeds, so drawing seeds in call
    order would tie a call's seed to thread timing; keyed by the prompt, a game replays exactly."""
    digest = hashlib.sha256(f"{base}\x00{occurrence}\x00{prompt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1  # 0 .. 2**31 - 1, like fresh seeds


def as_seed(value: object) -> int:
    """Any integer (numpy's included) as a Python int, or a one-line TypeError."""
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"seed must be a whole number, got {value!r}") from None


def exclusive_probabilities(start_probs: Mapping[str, float]) -> dict[str, float]:
    """From P(reply starts with r) per response r, P(reply starts with r and with no longer
    response that begins with r): "C" and "Cooperate" are then two outcomes, not one counted twice.

    The longer responses that extend r (and extend no other listed extension of r) are disjoint
    events inside r's, so their probabilities are subtracted. Tokenization can make the nesting
    inexact (a model may spell "Cooperate" without the token "C"), so a result below 0 is 0."""
    out = {}
    for r, p in start_probs.items():
        longer = [x for x in start_probs if x != r and x.startswith(r)]
        nearest = [x for x in longer if not any(y != x and x.startswith(y) for y in longer)]
        out[r] = max(0.0, p - sum(start_probs[x] for x in nearest))
    return out


def choice_distribution(logprobs: Mapping[str, float], temperature: float) -> tuple[dict[str, float], float]:
    """(probability of each response, the mass the model put on them all) from whole-text
    log-probs that are already at `temperature` (every token tempered): responses that begin one
    another are made exclusive, then renormalised; at temperature 0 all goes to the likeliest."""
    starts = text_choice_probs(logprobs)  # renormalised at once: long replies underflow exp()
    exclusive = exclusive_probabilities(starts)
    raw_mass = math.fsum(math.exp(lp) for lp in logprobs.values())
    total = math.fsum(exclusive.values())
    if total <= 0:
        return dict.fromkeys(exclusive, 0.0), 0.0
    if temperature == 0:
        best = max(exclusive, key=lambda r: exclusive[r])  # ties: the first listed
        return {r: float(r == best) for r in exclusive}, min(1.0, raw_mass * total)
    return {r: p / total for r, p in exclusive.items()}, min(1.0, raw_mass * total)


def response_weights(responses: Sequence[str], probabilities: Mapping[str, float]) -> list[float]:
    """One weight per listed response; a response listed twice is one reply and keeps its weight
    at its first listing only."""
    return [probabilities[r] if responses.index(r) == i else 0.0 for i, r in enumerate(responses)]


def cut_at_terminators(text: str, terminators: Collection[str]) -> str:
    """`text` up to (not including) the earliest of `terminators` found in it."""
    ends = [i for i in (text.find(t) for t in terminators if t) if i >= 0]
    return text[: min(ends)] if ends else text


def finite_at_least_zero(value: float, name: str) -> float:
    """`value` if it is a finite number >= 0, else a one-line ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)
