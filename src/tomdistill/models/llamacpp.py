"""llama.cpp backend (`llamacpp:<file.gguf>`, `llamacpp:default:teacher|student`): GGUF as it is.

Runs quantised GGUF files through llama-cpp-python, one request at a time on the CPU cores it
may use (see cpu_threads): no conversion to safetensors, a fifth of the memory of the float32
folder. The prompt is rendered with the GGUF's own chat template (the one the hf backend reads
from the same file), so both backends see the same tokens. Each sample draws from its request's
seed. Consecutive requests reuse the KV cache of their common prefix (the samples of a scenario
share their prompt), without changing a single logit (see MIN_FRESH).

Score mode computes what the hf backend computes: after the chat template's generation prompt
and the protocol's reply prefix ("Answer:"), the probability of each way of writing a candidate
("C", " C"; several-token spellings followed step by step), for amounts of the number (with or
without a leading space) followed by a token that does not extend it; every position's
distribution is softmax(logits / T) of llama.cpp's float32 logits, then renormalised.

llama_cpp is imported when a model is built, not with this module, so the logic here can be
unit-tested with a stand-in module; the registry turns a missing package into a pip hint.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TomdistillError
from ..situations import ChatMessage
from .base import (
    BackendError,
    GenRequest,
    GenResult,
    Model,
    ModelInfo,
    ModelOptions,
    SamplingSettings,
    ScoreRequest,
    ScoreResult,
    extends_number,
    is_amount_question,
    renormalise,
    tempered_logprobs,
    token_variants,
)
from .embedded import default_weights, ensure_gguf

#: Our prompts are ~400 tokens and replies at most a few hundred; the KV cache stays under 100 MB.
N_CTX = 4096
#: Tokens of a prompt always evaluated afresh. llama.cpp's CPU matmul takes another kernel for a
#: batch of one token, whose logits differ (by up to 0.8 in log-prob for the student) from those
#: of the same token in a longer batch; with two or more they are bitwise the same. So a prompt's
#: logits, and the samples drawn from them, do not depend on what the KV cache held before.
MIN_FRESH = 2
THREADS_ENV = "TOMDISTILL_LLAMACPP_THREADS"


def cpu_threads() -> int:
    """Threads for llama.cpp: $TOMDISTILL_LLAMACPP_THREADS, else the cores this process may use
    (taskset and cpusets respected).

    llama.cpp's threads meet at a spinning barrier after every operation, so one preempted thread
    stalls them all: on a 2-core machine, 2 threads decoded the student at 55 tokens/s and 1 thread
    at 29 when idle, but 2.2 against 26 with other jobs keeping the load near 5. The load average is
    not used to guess free cores: it lags by a minute and counts this process's own recent work
    (a pipeline stage that just finished), which halved the threads on an idle machine. On a shared
    machine, set the variable to the cores that are really free.
    """
    if value := os.environ.get(THREADS_ENV):
        if not value.isdigit() or int(value) < 1:
            raise TomdistillError(f"{THREADS_ENV}={value!r}: expected a whole number of threads, 1 or more")
        return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_gguf(ident: str) -> tuple[Path, dict[str, Any]]:
    """The GGUF file named by `ident` ("default:<name>" or a path) and what to record about it."""
    if ident.startswith("default:"):
        weights = default_weights(ident.removeprefix("default:"))
        return ensure_gguf(weights), {"gguf": weights.gguf_name, "gguf_sha256": weights.sha256,
                                      "gguf_size": weights.size}
    path = Path(ident).expanduser()
    if not path.is_file():
        raise TomdistillError(f"{path}: GGUF file not found (llamacpp: takes a .gguf file or default:teacher|student)")
    # Not hashed: a user's GGUF can be tens of GB; its size and name identify it well enough here.
    return path, {"gguf_size": path.stat().st_size}


def _last_logits(llm: Any) -> np.ndarray:
    """Next-token logits after the last eval(). Llama keeps them itself only with logits_all=True,
    which would hold n_ctx x vocab floats (2.5 GB for the teacher), so read the context's buffer."""
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float64)


class LlamaCppModel(Model):
    """A GGUF chat model run by llama.cpp on the CPU."""

    def __init__(self, ident: str, options: ModelOptions) -> None:
        self.spec = f"llamacpp:{ident}"
        if options.adapter is not None:
            raise TomdistillError(
                f"{self.spec}: LoRA adapters (--adapter) are not supported by the llamacpp backend; run the "
                "adapter with hf:/default:, or merge it (`tomdistill merge`) and convert the result to GGUF"
            )
        self.path, self.gguf_details = resolve_gguf(ident)
        self.batch_size = options.batch_size or 8  # only how many requests the engine hands over at once
        self.n_threads = int(options.extra.get("n_threads") or cpu_threads())
        import llama_cpp

        self._version = llama_cpp.__version__
        try:
            # The same threads for prompt and decoding: beyond the free cores both only slow down.
            self.llm = llama_cpp.Llama(model_path=str(self.path), n_ctx=N_CTX, n_threads=self.n_threads,
                                       n_threads_batch=self.n_threads, verbose=False)
        except ValueError as exc:
            raise BackendError(f"{self.path}: llama.cpp cannot load this file ({exc})") from None
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise TomdistillError(f"{self.path}: the GGUF has no chat template; use an instruct/chat model")
        self._formatter = llama_cpp.llama_chat_format.Jinja2ChatFormatter(
            template=template, eos_token=self._token_text(self.llm.token_eos()),
            bos_token=self._token_text(self.llm.token_bos()),
        )
        self._number_mask: np.ndarray | None = None

    def info(self) -> ModelInfo:
        return ModelInfo(self.spec, "llamacpp", {"path": str(self.path), **self.gguf_details, "n_ctx": N_CTX,
                                                 "n_threads": self.n_threads, "llama_cpp": self._version})

    # --- shared -------------------------------------------------------------------------------

    def _token_text(self, token: int) -> str:
        return self.llm.detokenize([token], special=True).decode("utf-8", "replace") if token >= 0 else ""

    def _prompt(self, messages: Sequence[ChatMessage], prefix: str = "") -> list[int]:
        """The chat-formatted prompt, followed by the start of the reply (`prefix`, score mode)."""
        text = self._formatter(messages=list(messages)).prompt + prefix
        # The template writes the special tokens itself (as the hf backend's add_special_tokens=False).
        # The prefix is tokenized together with the prompt, as the hf backend does.
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def _encode(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    # --- sampling -----------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenRequest], settings: SamplingSettings) -> Iterator[GenResult]:
        for request in requests:
            started = time.perf_counter()
            prompt = self._prompt(request.messages)
            self._reuse_cache(prompt)
            try:
                # Only temperature and top_p, as on the other backends: llama.cpp's extra samplers
                # (top-k 40, min-p 0.05 by default) are switched off. One difference stays: llama.cpp
                # applies top_p before the temperature, the hf backend after it (same at top_p=1).
                out = self.llm.create_completion(
                    prompt=prompt, max_tokens=settings.max_new_tokens, temperature=settings.temperature,
                    top_p=settings.top_p, top_k=0, min_p=0.0, typical_p=1.0, repeat_penalty=1.0, seed=request.seed,
                )
            except ValueError as exc:  # e.g. a prompt longer than the context
                raise BackendError(f"{self.spec}: {exc}") from None
            usage = out.get("usage") or {}
            yield GenResult(request.key, out["choices"][0]["text"], time.perf_counter() - started,
                            usage.get("prompt_tokens", len(prompt)), usage.get("completion_tokens"))

    # --- scoring ------------------------------------------------------------------------------

    def score(self, requests: Sequence[ScoreRequest]) -> Iterator[ScoreResult]:
        for request in requests:
            started = time.perf_counter()
            prompt, temperature = self._prompt(request.messages, request.prefix), request.temperature
            first = self._next_logprobs(prompt, temperature)
            if is_amount_question(request.candidates):
                raw = self._amount_probs(prompt, first, request.candidates, temperature)
            else:
                raw = {c: sum(math.exp(self._sequence_logprob(prompt, ids, first, temperature))
                              for ids in token_variants(c, self._encode)) for c in request.candidates}
            probs, mass = renormalise(raw, temperature)
            yield ScoreResult(request.key, probs, mass, time.perf_counter() - started, len(prompt))

    def _reuse_cache(self, tokens: list[int]) -> int:
        """Cut the KV cache back to what it shares with `tokens`, but at least MIN_FRESH tokens
        short of their end; Llama then evaluates only the rest. Returns the tokens kept."""
        llm = self.llm
        n = max(0, min(llm.n_tokens, len(tokens) - MIN_FRESH))
        differ = np.flatnonzero(np.asarray(llm.input_ids[:n]) != np.asarray(tokens[:n], dtype=np.int64))
        keep = int(differ[0]) if differ.size else n
        llm.n_tokens = keep  # Llama drops the cache beyond n_tokens before it decodes more
        return keep

    def _next_logprobs(self, tokens: list[int], temperature: float) -> np.ndarray:
        """log P(next token | tokens) at `temperature`, evaluating only what the KV cache does not hold already."""
        self.llm.eval(tokens[self._reuse_cache(tokens):])
        return tempered_logprobs(_last_logits(self.llm), temperature)

    def _sequence_logprob(self, prompt: list[int], ids: list[int], first: np.ndarray, temperature: float) -> float:
        """log P(the reply continues with `ids`); tokens after the first cost one cached step each."""
        total = float(first[ids[0]])
        for i in range(1, len(ids)):
            total += float(self._next_logprobs(prompt + ids[:i], temperature)[ids[i]])
        return total

    def _amount_probs(self, prompt: list[int], first: np.ndarray, candidates: Sequence[str],
                      temperature: float) -> dict[str, float]:
        """P(reply is exactly this amount): its tokens (with or without a leading space, as after
        "Answer:"), then a token that does not extend the number."""
        out = dict.fromkeys(candidates, 0.0)
        for c in candidates:
            for ids in token_variants(c, self._encode):
                after = np.exp(self._next_logprobs(prompt + ids, temperature))
                stops = float(1.0 - after[self._extends_number()].sum())
                out[c] += math.exp(self._sequence_logprob(prompt, ids, first, temperature)) * stops
        return out

    def _extends_number(self) -> np.ndarray:
        if self._number_mask is None:
            n = self.llm.n_vocab()
            texts = (self.llm.detokenize([i]).decode("utf-8", "ignore") for i in range(n))
            self._number_mask = np.fromiter((extends_number(t) for t in texts), dtype=bool, count=n)
        return self._number_mask

    def close(self) -> None:
        self.llm.close()
