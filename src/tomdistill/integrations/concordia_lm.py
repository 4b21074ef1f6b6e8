"""A tomdistill agent as Concordia's language model (`gdm-concordia`, `pip install 'tomdistill[concordia]'`).

Concordia asks its language model two things: free text (`sample_text`) and one of several given
responses (`sample_choice`, e.g. the letters of a multiple-choice question, or whole option texts).
Here a choice is drawn from the model's exact distribution over the responses: every response is
scored as a whole reply, all of its tokens (`Model.score_texts`); where one response begins
another ("C", "Cooperate") the shorter one keeps only replies that do not go on to the longer; the
probabilities are renormalised over the responses, and the draw uses the call's seed. Text is
sampled by the agent's backend with the call's temperature, top-p, length and seed.

Concordia's prompts are documents to continue, and each ends with the start of its answer on a
line of its own ("Answer: (" before the option letters, "Answer: Alice " before free text). An
instruction-tuned student gets the document as a user message under a short instruction to
continue it (`CONTINUE_INSTRUCTION`), and that last line as the start of its own reply, where
the backend allows a reply prefix (hf and the default models). The reply start matters: in
examples/concordia_dilemma.py the default student's replies began with one of the option letters
with probability under 1% when the whole prompt was the user message, and 75-82% with the last
line as the reply start (measured 2026-12-08; README "In Concordia"). What the student learnt
from tomdistill's own scenarios carries over only as far as it generalises to Concordia's
wording: put the same student through `tomdistill evaluate` for the numbers that say how it decides.

Calls may come from Concordia's thread pools: they reach the backend one at a time, and a call
without a seed of its own gets one from the adapter's seed, the prompt and how often that prompt
came before, so a seeded game replays whatever the threads' timing. Every call that returns is
kept in `calls` (kind, prompt, seed, settings, reply or probabilities) so that a game can be
traced back; `write_calls` saves them as JSON lines.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from concordia.language_model import language_model
from pydantic import ValidationError

from ..agents.agent import Agent, fresh_seed
from ..models.base import GenRequest, SamplingSettings, TextScoreRequest, check_seed, seeded_index
from ..situations import ChatMessage
from .prompting import (
    as_seed,
    call_seed,
    choice_distribution,
    cut_at_terminators,
    finite_at_least_zero,
    response_weights,
    split_reply_start,
)

CONTINUE_INSTRUCTION = "Continue the text you are given from where it stops. Write only what comes next."
#: Concordia's default reply length is 5,000 tokens; a small model on a CPU would spend minutes on
#: each, so replies stop at this many unless the adapter is given another cap.
DEFAULT_TOKEN_CAP = 128
# Concordia 2.2+ adds top-p and top-k to sample_text; 2.1 has neither.
_DEFAULT_TOP_P = getattr(language_model, "DEFAULT_TOP_P", 1.0)


class AgentLanguageModel(language_model.LanguageModel):
    """Concordia's LanguageModel on a tomdistill agent (any `Agent.load` source, or an Agent).

    `max_tokens` caps every reply's length (Concordia asks for up to 5,000 tokens); `choice_temperature`
    is the temperature of the distribution choices are drawn from (default: the agent's own, 0.8
    unless its folder says otherwise); `seed` makes a whole game reproducible (calls that bring no
    seed of their own derive one from it and their prompt). `system` is the instruction sent before
    every prompt (None: the prompt alone). Sources are loaded in score mode unless `mode` is given:
    a local model then runs in float32, the dtype exact probabilities need. An Agent handed in
    stays open when the adapter closes; one the adapter loaded is closed with it.
    """

    def __init__(self, agent: Agent | str | Path, *, max_tokens: int = DEFAULT_TOKEN_CAP,
                 choice_temperature: float | None = None, seed: int | None = None,
                 system: str | None = CONTINUE_INSTRUCTION, **load_options: Any) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be a whole number >= 1, got {max_tokens!r}")
        self._owns_agent = not isinstance(agent, Agent)
        self.agent = Agent.load(agent, **{"mode": "score", **load_options}) if self._owns_agent else agent
        self.max_tokens = max_tokens
        chosen = self.agent.sampling.temperature if choice_temperature is None else choice_temperature
        self.choice_temperature = finite_at_least_zero(chosen, "choice_temperature")
        self.system = system
        self.seed = fresh_seed() if seed is None else check_seed(as_seed(seed))
        self.calls: list[dict[str, Any]] = []
        self._asked: Counter[str] = Counter()
        self._lock = threading.Lock()  # one call at a time reaches the backend

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
        try:
            settings = SamplingSettings(temperature=temperature, top_p=top_p,
                                        max_new_tokens=max(1, min(int(max_tokens), self.max_tokens)))
        except ValidationError as exc:
            raise ValueError(f"sample_text: {exc.errors()[0]['loc'][0]} {exc.errors()[0]['msg'].lower()}") from None
        messages, start = self._frame(prompt)
        # A reply start that ends in a space ("Answer: Alice ") would leave the model to go on
        # from a bare space token, which tokenizers rarely produce; it writes the space itself.
        written = start.rstrip()
        with self._lock:
            seed = self._seed(prompt, seed)
            started = time.perf_counter()
            [result] = list(self.agent.model.generate([GenRequest(0, messages, seed, prefix=written)], settings))
            raw = result.text
            if start != written and raw.startswith(start[len(written):]):
                raw = raw[len(start) - len(written):]
            text = cut_at_terminators(raw, terminators)
            self._record("text", prompt, start, started, seed=seed, settings=settings.model_dump(), raw=result.text,
                         reply=text, ignored={"top_k": top_k} if top_k is not None else {})
        return text

    def sample_choice(self, prompt: str, responses: Sequence[str], *,
                      seed: int | None = None) -> tuple[int, str, Mapping[str, Any]]:
        """(index, response, info) drawn from the exact distribution over `responses`; `info`
        holds the probabilities, the mass the model put on the responses, the temperature and seed."""
        responses = list(responses)
        if not responses:
            raise language_model.InvalidResponseError("sample_choice was given no responses to choose from")
        messages, start = self._frame(prompt)
        with self._lock:
            seed = self._seed(prompt, seed)
            started = time.perf_counter()
            request = TextScoreRequest(0, messages, tuple(responses), self.choice_temperature, prefix=start)
            [scored] = list(self.agent.model.score_texts([request]))
            probs, mass = choice_distribution(scored.logprobs, self.choice_temperature)
            weights = response_weights(responses, probs)
            if sum(weights) <= 0:
                raise language_model.InvalidResponseError(f"the model gives no probability to any of {responses}")
            index = seeded_index(weights, seed)
            info = {"probabilities": probs, "valid_mass": mass, "temperature": self.choice_temperature, "seed": seed}
            self._record("choice", prompt, start, started, responses=responses, choice=responses[index], **info)
        return index, responses[index], info

    # --- helpers ---------------------------------------------------------------------------------

    def _frame(self, prompt: str) -> tuple[list[ChatMessage], str]:
        """(chat messages, the start of the reply) for a Concordia prompt."""
        document, start = split_reply_start(prompt) if self.agent.model.reply_prefixes else (prompt, "")
        user: ChatMessage = {"role": "user", "content": document}
        return ([{"role": "system", "content": self.system}, user] if self.system else [user]), start

    def _seed(self, prompt: str, seed: int | None) -> int:
        """The call's own seed, or one derived from the game's seed and the prompt (under the lock)."""
        occurrence = self._asked[prompt]
        self._asked[prompt] += 1
        return call_seed(self.seed, prompt, occurrence) if seed is None else check_seed(as_seed(seed))

    def _record(self, kind: str, prompt: str, reply_start: str, started: float, **details: Any) -> None:
        self.calls.append({"kind": kind, "latency_s": round(time.perf_counter() - started, 4),
                           "prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest(), "prompt": prompt,
                           "system": self.system, "reply_start": reply_start, "model": self.agent.source,
                           **details})

    def write_calls(self, path: str | Path) -> Path:
        """Every call so far as JSON lines (one object per call), for tracing a game back."""
        path = Path(path)
        path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in self.calls), encoding="utf-8")
        return path

    def close(self) -> None:
        """Close the agent if the adapter loaded it (an Agent handed in is its owner's to close)."""
        if self._owns_agent:
            self.agent.close()

    def __enter__(self) -> AgentLanguageModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

