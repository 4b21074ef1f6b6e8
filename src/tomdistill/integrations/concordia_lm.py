"""A tomdistill agent as Concordia's language model (`gdm-concordia`, `pip install 'tomdistill[concordia]'`).

Concordia asks its language model two things: free text (`sample_text`) and one of several given
responses (`sample_choice`, e.g. the letters of a multiple-choice question, or whole option texts).
Here a choice is drawn from the model's exact distribution over the responses: every response is
scored as a whole reply, all of its tokens (`Model.score_texts`), the probabilities are
renormalised over the responses, and the draw uses the call's seed. Text is sampled by the
agent's backend with the call's temperature, top-p, length and seed.

Concordia's prompts are documents to continue, and each ends with the start of its answer on a
line of its own ("Answer: (" before the option letters, "Answer: Alice " before free text). An
instruction-tuned student gets the document as a user message under a short instruction to
continue it (`CONTINUE_INSTRUCTION`), and that last line as the start of its own reply, where
the backend allows a reply prefix (hf and the default models). The reply start matters: in
examples/concordia_dilemma.py the default student's replies began with one of the option letters
with probability under 1% when the whole prompt was the user message, and about 80% with the last
line as the reply start (measured 2026-12-07; README "In Concordia"). What the student learnt
from tomdistill's own scenarios carries over only as far as it generalises to Concordia's
wording: put the same student through `tomdistill evaluate` for the numbers that say how it decides.

Every call is kept in `calls` (kind, prompt, seed, settings, reply or probabilities) so that a game
can be traced back; `write_calls` saves them as JSON lines.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from concordia.language_model import language_model

from ..agents.agent import Agent
from ..models.base import (
    GenRequest,
    SamplingSettings,
    TextScoreRequest,
    check_seed,
    draw_index,
    text_choice_probs,
)
from ..situations import ChatMessage

CONTINUE_INSTRUCTION = "Continue the text you are given. Write only what comes next and never repeat the text."
#: Concordia's default reply length is 5,000 tokens; a small model on a CPU would spend minutes on
#: each, so replies stop at this many unless the adapter is given another cap.
DEFAULT_TOKEN_CAP = 128
# Concordia 2.2+ adds top-p and top-k to sample_text; 2.1 has neither.
_DEFAULT_TOP_P = getattr(language_model, "DEFAULT_TOP_P", 1.0)


class AgentLanguageModel(language_model.LanguageModel):
    """Concordia's LanguageModel on a tomdistill agent (any `Agent.load` source, or an Agent).

    `max_tokens` caps every reply's length (Concordia asks for up to 5,000 tokens); `choice_temperature`
    is the temperature of the distribution choices are drawn from (default: the agent's own, 0.8
    unless its folder says otherwise); `seed` makes a whole game reproducible: calls that bring no
    seed of their own take the next one from a generator seeded with it. `system` is the
    instruction sent before every prompt (None: the prompt alone).
    """

    def __init__(self, agent: Agent | str | Path, *, max_tokens: int = DEFAULT_TOKEN_CAP,
                 choice_temperature: float | None = None, seed: int | None = None,
                 system: str | None = CONTINUE_INSTRUCTION, **load_options: Any) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        # Score mode: a local model runs in float32 then, the dtype exact probabilities need.
        self.agent = agent if isinstance(agent, Agent) else Agent.load(agent, mode="score", **load_options)
        self.max_tokens = max_tokens
        self.choice_temperature = self.agent.sampling.temperature if choice_temperature is None else choice_temperature
        self.system = system
        self._seeds = random.Random(seed)
        self.calls: list[dict[str, Any]] = []

    # --- Concordia's interface -------------------------------------------------------------------

    def sample_text(
        self,
        prompt: str,
        *,
        max_tokens: int = language_model.DEFAULT_MAX_TOKENS,
        terminators: Collection[str] = language_model.DEFAULT_TERMINATORS,
        temperature: float = language_model.DEFAULT_TEMPERATURE,
        top_p: float = _DEFAULT_TOP_P,
        top_k: int | None = None,
        timeout: float = language_model.DEFAULT_TIMEOUT_SECONDS,
        seed: int | None = None,
    ) -> str:
        """A sampled reply, cut before the first terminator. `top_k` and `timeout` are not applied:
        tomdistill samples with temperature and top-p, and a local model has no request to time out."""
        seed = self._seed(seed)
        settings = SamplingSettings(temperature=temperature, top_p=top_p,
                                    max_new_tokens=max(1, min(max_tokens, self.max_tokens)))
        started = time.perf_counter()
        messages, start = self._frame(prompt)
        [result] = list(self.agent.model.generate([GenRequest(0, messages, seed, prefix=start)], settings))
        text = cut_at_terminators(result.text, terminators)
        self._record("text", prompt, started, seed=seed, settings=settings.model_dump(), raw=result.text, reply=text,
                     ignored={"top_k": top_k} if top_k is not None else {})
        return text

    def sample_choice(self, prompt: str, responses: Sequence[str], *,
                      seed: int | None = None) -> tuple[int, str, Mapping[str, Any]]:
        """(index, response, info) drawn from the exact distribution over `responses`; `info`
        holds the probabilities, the mass the model put on the responses, the temperature and seed."""
        if not responses:
            raise language_model.InvalidResponseError("sample_choice was given no responses to choose from")
        seed = self._seed(seed)
        started = time.perf_counter()
        messages, start = self._frame(prompt)
        request = TextScoreRequest(0, messages, tuple(responses), self.choice_temperature, prefix=start)
        [scored] = list(self.agent.model.score_texts([request]))
        probs = text_choice_probs(scored.logprobs, self.choice_temperature)
        # A response listed twice is one reply: its probability goes to its first listing.
        weights = [probs[r] if responses.index(r) == i else 0.0 for i, r in enumerate(responses)]
        if sum(weights) <= 0:
            raise language_model.InvalidResponseError(f"the model gives no probability to any of {list(responses)}")
        index = draw_index(weights, random.Random(seed).random() * sum(weights))
        info = {"probabilities": probs, "valid_mass": sum(math.exp(lp) for lp in scored.logprobs.values()),
                "temperature": self.choice_temperature, "seed": seed}
        self._record("choice", prompt, started, responses=list(responses), choice=responses[index], **info)
        return index, responses[index], info

    # --- helpers ---------------------------------------------------------------------------------

    def _frame(self, prompt: str) -> tuple[list[ChatMessage], str]:
        """(chat messages, the start of the reply) for a Concordia prompt."""
        document, start = split_reply_start(prompt) if self.agent.model.reply_prefixes else (prompt, "")
        user: ChatMessage = {"role": "user", "content": document}
        return ([{"role": "system", "content": self.system}, user] if self.system else [user]), start

    def _seed(self, seed: int | None) -> int:
        return self._seeds.randrange(2**31) if seed is None else check_seed(seed)

    def _record(self, kind: str, prompt: str, started: float, **details: Any) -> None:
        self.calls.append({"kind": kind, "latency_s": round(time.perf_counter() - started, 4),
                           "prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest(), "prompt": prompt,
                           "system": self.system, "reply_start": self._frame(prompt)[1], "model": self.agent.source,
                           **details})

    def write_calls(self, path: str | Path) -> Path:
        """Every call so far as JSON lines (one object per call), for tracing a game back."""
        path = Path(path)
        path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in self.calls), encoding="utf-8")
        return path

    def close(self) -> None:
        self.agent.close()

    def __enter__(self) -> AgentLanguageModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def split_reply_start(prompt: str) -> tuple[str, str]:
    """(document, reply start): the prompt's last line starts the reply, unless the prompt ends
    with a line break (then nothing does)."""
    document, newline, last = prompt.rpartition("\n")
    return (document, last) if newline and last.strip() else (prompt, "")


def cut_at_terminators(text: str, terminators: Collection[str]) -> str:
    """`text` up to (not including) the earliest of `terminators` found in it."""
    ends = [i for i in (text.find(t) for t in terminators if t) if i >= 0]
    return text[: min(ends)] if ends else text
