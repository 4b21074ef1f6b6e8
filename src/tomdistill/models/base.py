"""The one small interface every model backend implements, and the records it exchanges.

A backend turns chat prompts into replies (`generate`, sampling mode) and, where it can, into
exact action probabilities (`score`, score mode). Backends import their heavy libraries lazily,
are built with `ModelOptions` and are looked up by spec (`provider:id`) in `registry`. A new
backend subclasses `Model` here and adds one row to the registry's table.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import TomdistillError
from ..situations import ChatMessage, Situation


class BackendError(TomdistillError):
    """A backend could not produce a reply (server down, retries exhausted, model missing)."""


class UnsupportedError(TomdistillError):
    """The backend cannot do what was asked (e.g. score mode on a server without logprobs)."""


class BadScoreError(BackendError):
    """A backend produced log-probs or probabilities that are no probabilities (NaN, inf, > 1, not numbers)."""


#: How a model is asked to decide: 'sample' a reply, or 'score' each answer's exact probability.
Mode = Literal["sample", "score"]
MODES: tuple[Mode, ...] = get_args(Mode)


class ModelSpecError(TomdistillError):
    """A model spec that names no known provider or is malformed."""


@dataclass(frozen=True)
class ModelOptions:
    """Backend options from the command line or config; each backend reads the ones it knows."""

    adapter: Path | None = None
    base_url: str | tuple[str, ...] | None = None  # several: servers of one model that share the requests
    device: str | None = None
    dtype: str | None = None  # auto (None), float32, bfloat16, float16: hf backends only
    batch_size: int | None = None
    concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 6
    #: Replicas of the backend as Ray actors (models/ray_pool.py); 1 and no address: this process.
    replicas: int = 1
    ray_address: str | None = None  # a Ray cluster ("ray://host:10001", "auto"); None: a local instance
    cpus_per_replica: float = 1.0
    gpus_per_replica: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def on_ray(self) -> bool:
        """Whether the backend runs as replicas on Ray rather than in this process."""
        return self.replicas > 1 or self.ray_address is not None

    def for_mode(self, mode: str) -> ModelOptions:
        """These options for decision `mode`: score mode runs local models in float32 unless a dtype
        was chosen. Scores come from fp32 logits either way, but the bf16 body alone moved the 135M
        student's P(C) by up to 0.0074 against an fp32 run (52 scenarios), more than the 0.005 that
        score mode promises; sampling keeps bf16 where the hardware has it (2.4x faster)."""
        if mode == "score" and self.dtype in (None, "auto"):
            return replace(self, dtype="float32")
        return self


ADAPTER_CONFIG = "adapter_config.json"  # what makes a folder a PEFT adapter


def check_adapter_dir(adapter: Path) -> None:
    """Refuse a missing or non-PEFT adapter folder with a message naming it (before any model loads)."""
    if not adapter.is_dir():
        raise TomdistillError(f"{adapter}: adapter folder not found")
    if not (adapter / ADAPTER_CONFIG).is_file():
        raise TomdistillError(f"{adapter}: not a PEFT adapter folder (no {ADAPTER_CONFIG})")


#: Seeds are stored as SQLite INTEGERs, which are signed 64-bit.
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1


def check_seed(seed: int, what: str = "seed") -> int:
    """`seed` if it fits a signed 64-bit integer; otherwise a one-line TomdistillError naming `what`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not SEED_MIN <= seed <= SEED_MAX:
        raise TomdistillError(f"{what}: {seed!r} is not a whole number from -2**63 to 2**63 - 1")
    return seed


class SamplingSettings(BaseModel):
    """How replies are sampled; stored with every run."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    temperature: float = Field(0.8, ge=0, description="0 means greedy decoding.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling threshold.")
    max_new_tokens: int | None = Field(
        None, ge=1, description="Longest reply, in tokens. Default: 24 for the answer protocol, 128 for motivated."
    )

    def for_protocol(self, protocol: str) -> "SamplingSettings":
        """These settings with the reply length filled in for `protocol` when it was left open."""
        if self.max_new_tokens is not None:
            return self
        return self.model_copy(update={"max_new_tokens": DEFAULT_MAX_NEW_TOKENS[protocol]})


#: A bare decision needs a few tokens; a motivation two or three sentences (reasoned: and the
#: answer line after them).
DEFAULT_MAX_NEW_TOKENS = {"answer": 24, "motivated": 128, "reasoned": 144}


@dataclass(frozen=True)
class GenRequest:
    """One reply to produce. `key` comes back with the result; `seed` makes the sample reproducible."""

    key: Any
    messages: list[ChatMessage]
    seed: int
    #: The game as data beside the messages; LLM backends ignore it, the planted teacher plays from it.
    situation: Situation | None = None
    #: Text the reply starts with, written by the caller (the result holds only what follows it).
    #: Backends with `reply_prefixes` only; tomdistill's own prompts never use it.
    prefix: str = ""

    @property
    def prompt_key(self) -> str:
        """One string per distinct prompt, reply prefix included (samples that share it share a prefill)."""
        key = prompt_key(self.messages)
        return f"{key}\x02{self.prefix}" if self.prefix else key


@dataclass(frozen=True)
class GenResult:
    key: Any
    text: str
    latency_s: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


#: What score mode computes, stored with every score run and in the pipeline's stage keys.
#: 1: temperature 1, first reply token, logits in the model's dtype. 2: the distribution at the
#: run's temperature, right after the protocol's reply prefix, from fp32 logits. Runs of
#: different versions are never reused for one another nor compared.
SCORING_VERSION = 2


@dataclass(frozen=True)
class ScoreRequest:
    """Probability of each candidate reply (action labels or amounts written as text)."""

    key: Any
    messages: list[ChatMessage]
    candidates: tuple[str, ...]
    #: Text the reply starts with (the protocol's reply prefix, e.g. "Answer:"); the candidates follow it.
    prefix: str = ""
    #: The distribution is softmax(logits / temperature); 0 puts all mass on the likeliest token.
    temperature: float = 1.0
    #: The game as data beside the messages; LLM backends ignore it, the planted teacher plays from it.
    situation: Situation | None = None


@dataclass(frozen=True)
class ScoreResult:
    key: Any
    #: Renormalised over the candidates: sums to 1, or all 0.0 when valid_mass is 0.
    probs: dict[str, float]
    #: Probability mass the model put on the candidates before renormalising (1.0 = all of it).
    valid_mass: float
    latency_s: float
    prompt_tokens: int | None = None
    #: Why nothing could be read when valid_mass is 0 for a reason other than the model's own
    #: choice (e.g. no sampled reply began with the reply prefix); None otherwise.
    invalid_reason: str | None = None


@dataclass(frozen=True)
class TextScoreRequest:
    """Log-probability of each candidate reply text, every token of it: what a simulation framework
    needs when it offers a model free-form options ("a", "Yes", "leave the market") rather than
    the game's action labels. No leading-space variants and no number handling: the reply
    (after `prefix`, if any) goes on with the candidate exactly as written."""

    key: Any
    messages: list[ChatMessage]
    candidates: tuple[str, ...]
    #: Each token's distribution is softmax(logits / temperature), as sampling at it would draw;
    #: 0 is read at temperature 1 (the caller takes the likeliest candidate).
    temperature: float = 1.0
    #: Text the reply starts with before the candidate (as GenRequest.prefix).
    prefix: str = ""


@dataclass(frozen=True)
class TextScoreResult:
    key: Any
    #: log P(reply starts with the candidate's tokens), per candidate (-inf: impossible).
    logprobs: dict[str, float]
    latency_s: float
    prompt_tokens: int | None = None


def draw_index(weights: Sequence[float], point: float) -> int:
    """The option whose cumulative weight first passes `point` (a uniform draw scaled to the
    weights' total); the last option with weight when rounding leaves `point` past the sum."""
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w
        if point < acc:
            return i
    return max(i for i, w in enumerate(weights) if w > 0)


def seeded_index(weights: Sequence[float], seed: int) -> int:
    """The option a uniform draw from `random.Random(seed)` picks among `weights` (total > 0)."""
    return draw_index(weights, random.Random(seed).random() * sum(weights))


def prompt_key(messages: Sequence[ChatMessage]) -> str:
    """One string per distinct conversation, for grouping the samples that share a prompt."""
    return "\x00".join(f"{m['role']}\x01{m['content']}" for m in messages)


# --- score mode, shared by the backends so that "the probability of C" means the same everywhere ---


def is_amount_question(candidates: Sequence[str]) -> bool:
    """Numeric candidates (the donation game's "0".."10") are scored as whole numbers, not first tokens."""
    return all(c.replace(".", "", 1).isdigit() for c in candidates)


def extends_number(token_text: str) -> bool:
    """Whether this token, read right after a number, would make it a longer one ("5" -> "50", "5.")."""
    return bool(token_text) and (token_text[0].isdigit() or token_text[0] == ".")


def token_variants(candidate: str, encode: Callable[[str], list[int]]) -> list[list[int]]:
    """Token ids of the ways a reply can start with `candidate` ("C" and " C" are both C)."""
    seen: list[list[int]] = []
    for text in (candidate, " " + candidate):
        ids = encode(text)
        if ids and ids not in seen:
            seen.append(ids)
    return seen


def tempered_logprobs(logits: np.ndarray, temperature: float) -> np.ndarray:
    """log softmax(logits / temperature) over the last axis, in float64.

    The one definition of "the distribution at temperature T" that every local backend's score
    mode uses (sampling draws from the same softmax). Temperature 0 (greedy) gives temperature 1
    here; `renormalise(raw, 0)` then puts all probability on the likeliest candidate."""
    z = np.asarray(logits, dtype=np.float64)
    if temperature != 0:
        z = z / temperature
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def first_token_mass(top: Iterable[tuple[str, float]], candidates: Sequence[str],
                     temperature: float = 1.0) -> dict[str, float]:
    """Probability of each candidate among a server's top first tokens, as (text, logprob) pairs.

    Tokens are matched after stripping whitespace, so "C" and " C" both count for "C"; only
    single-token candidates can be found, and one missing from the list gets 0. The log-probs are
    the server's at temperature 1; at another temperature they are re-tempered over the listed
    tokens, which is exact for the candidates' ratios and leaves out only the unlisted tail from
    the normaliser (so `valid_mass` can read a little high)."""
    pairs = [(text.strip(), checked_logprob(lp)) for text, lp in top]
    if temperature not in (0, 1) and pairs:  # 0: greedy, decided in renormalise
        tempered = tempered_logprobs(np.array([lp for _, lp in pairs]), temperature)
        pairs = [(text, float(lp)) for (text, _), lp in zip(pairs, tempered)]
    mass = dict.fromkeys(candidates, 0.0)
    for token, logprob in pairs:
        if token in mass:
            mass[token] += math.exp(logprob)
    return mass


def answer_index(tokens: Sequence[str], prefix: str) -> int | None:
    """Position of the answer token in a reply given as its tokens' texts: the first token that is
    not whitespace after the reply has spelled out `prefix` (leading whitespace allowed).

    None when the reply does not start with the prefix, when the prefix ends inside a token (that
    token's distribution is not the one right after the prefix), or when the reply ends first."""
    start, text = 0, ""
    while text.lstrip() != prefix:
        if start == len(tokens) or not prefix.startswith((text + tokens[start]).lstrip()):
            return None  # the reply ends, strays from the prefix, or runs past it inside a token
        text += tokens[start]
        start += 1
    return next((i for i in range(start, len(tokens)) if tokens[i].strip()), None)


#: Rounding slack: float32 sums of probabilities may pass 1 (or a log-prob 0) by a hair.
PROB_SLACK = 1e-3


def checked_logprob(value: object) -> float:
    """`value` as a log-probability (a number <= 0; -inf is probability 0), or BadScoreError.

    Servers send whatever they like: a string, null, NaN or 1e308 must never reach exp() or the store.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = max(value, -10_000)  # JSON integers have no size limit; exp() of this is 0.0 already
    if not isinstance(value, int | float) or isinstance(value, bool) or not value <= PROB_SLACK:  # NaN fails <=
        raise BadScoreError(f"log-prob {_short(value)} is not a number <= 0")
    return min(float(value), 0.0)


def renormalise(raw: Mapping[str, float], temperature: float = 1.0) -> tuple[dict[str, float], float]:
    """(probabilities over the candidates, the raw mass they had); all 0.0 when that mass is 0.

    Every backend's score mode ends here, so this is the one place that refuses a NaN, a negative
    or a total above 1: no such number is ever stored as a probability. At temperature 0 (greedy)
    the backends pass their temperature-1 masses and the likeliest candidate gets probability 1:
    the limit of the tempered distribution over the candidates (ties go to the first).
    """
    bad = [c for c, p in raw.items() if not -PROB_SLACK <= p <= 1 + PROB_SLACK]  # False for NaN
    kept = {c: max(float(p), 0.0) for c, p in raw.items()}
    mass = sum(kept.values())
    if bad or not mass <= 1 + PROB_SLACK:
        shown = f"{bad[0]}: {_short(raw[bad[0]])}" if bad else f"{mass:.4g} in total"
        raise BadScoreError(f"the model's probabilities are not probabilities ({shown})")
    if temperature == 0 and mass > 0:
        best = max(kept, key=lambda c: kept[c])
        return {c: float(c == best) for c in kept}, min(mass, 1.0)
    return {c: (p / mass if mass > 0 else 0.0) for c, p in kept.items()}, min(mass, 1.0)


def text_choice_probs(logprobs: Mapping[str, float]) -> dict[str, float]:
    """Probabilities over candidate texts from their whole-sequence log-probs (`score_texts`),
    renormalised over the candidates: all 0.0 when none is possible. Checked like every score:
    no NaN or positive log-prob becomes a probability."""
    checked = {c: checked_logprob(lp) for c, lp in logprobs.items()}
    if not checked or max(checked.values()) == -math.inf:
        return dict.fromkeys(checked, 0.0)
    top = max(checked.values())
    # Shifted by the largest before exp(): long candidates have log-probs far below exp()'s range.
    weights = {c: math.exp(lp - top) for c, lp in checked.items()}
    total = sum(weights.values())
    return {c: w / total for c, w in weights.items()}


def _short(value: object) -> str:
    """A value from a reply, quoted short enough for a one-line message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class ModelInfo:
    """What to record about a model so a run can be traced back to exact weights."""

    spec: str
    backend: str
    details: dict[str, Any] = field(default_factory=dict)


class Model(ABC):
    """A chat model that answers scenarios. Subclasses live one per file in this package."""

    spec: str
    #: How many requests the engine hands over at once (a batch on hf, a window on servers).
    batch_size: int = 8
    #: Whether `generate` honours GenRequest.prefix (and `score_texts` TextScoreRequest.prefix).
    reply_prefixes: bool = False

    @abstractmethod
    def info(self) -> ModelInfo:
        """Backend name, resolved model path or URL, file hashes, dtype, device."""

    @abstractmethod
    def generate(self, requests: Sequence[GenRequest], settings: SamplingSettings) -> Iterator[GenResult]:
        """Yield one result per request, in any order, as soon as each is ready."""

    def score(self, requests: Sequence[ScoreRequest]) -> Iterator[ScoreResult]:
        """Yield candidate probabilities per request; backends without log-probs refuse."""
        raise UnsupportedError(f"{self.spec}: this backend has no score mode; use --mode sample")

    def score_texts(self, requests: Sequence[TextScoreRequest]) -> Iterator[TextScoreResult]:
        """Yield whole-sequence log-probs of arbitrary candidate replies; backends without them refuse."""
        raise UnsupportedError(f"{self.spec}: this backend cannot score whole reply texts "
                               "(the local hf backends and default models can)")

    def close(self) -> None:
        """Release connections or memory; the default has nothing to release."""
