"""The one small interface every model backend implements, and the records it exchanges.

A backend turns chat prompts into replies (`generate`, sampling mode) and, where it can, into
exact action probabilities (`score`, score mode). Backends import their heavy libraries lazily
and are looked up by spec (`provider:id`) in `registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import TomdistillError
from ..scenarios.render import ChatMessage


class BackendError(TomdistillError):
    """A backend could not produce a reply (server down, retries exhausted, model missing)."""


class UnsupportedError(TomdistillError):
    """The backend cannot do what was asked (e.g. score mode on a server without logprobs)."""


class SamplingSettings(BaseModel):
    """How replies are sampled; stored with every run."""

    model_config = ConfigDict(extra="forbid", frozen=True)
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


#: A bare decision needs a few tokens; a motivation two or three sentences.
DEFAULT_MAX_NEW_TOKENS = {"answer": 24, "motivated": 128}


@dataclass(frozen=True)
class GenRequest:
    """One reply to produce. `key` comes back with the result; `seed` makes the sample reproducible."""

    key: Any
    messages: list[ChatMessage]
    seed: int


@dataclass(frozen=True)
class GenResult:
    key: Any
    text: str
    latency_s: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class ScoreRequest:
    """Probability of each candidate reply (action labels or amounts written as text)."""

    key: Any
    messages: list[ChatMessage]
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class ScoreResult:
    key: Any
    #: Renormalised over the candidates: sums to 1, or all 0.0 when valid_mass is 0.
    probs: dict[str, float]
    #: Probability mass the model put on the candidates before renormalising (1.0 = all of it).
    valid_mass: float
    latency_s: float
    prompt_tokens: int | None = None


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

    @abstractmethod
    def info(self) -> ModelInfo:
        """Backend name, resolved model path or URL, file hashes, dtype, device."""

    @abstractmethod
    def generate(self, requests: Sequence[GenRequest], settings: SamplingSettings) -> Iterator[GenResult]:
        """Yield one result per request, in any order, as soon as each is ready."""

    def score(self, requests: Sequence[ScoreRequest]) -> Iterator[ScoreResult]:
        """Yield candidate probabilities per request; backends without log-probs refuse."""
        raise UnsupportedError(f"{self.spec}: this backend has no score mode; use --mode sample")

    def close(self) -> None:
        """Release connections or memory; the default has nothing to release."""
