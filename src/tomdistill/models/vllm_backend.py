"""In-process vLLM backend (`vllm:<hub id or folder>`, `vllm:default:teacher|student`), for GPUs.

One `vllm.LLM` with prefix caching: the samples of a scenario share their prompt, so it is
prefilled once. generate() hands vLLM a whole window of requests, and the samples of one prompt
go as ONE request, `SamplingParams(n=k, seed=s)` with s the seed of the group's first sample;
vLLM fans it out into k children seeded s, s+1, ..., s+k-1.

What is reproducible: the same command on the same GPU and vLLM version forms the same groups and
so draws the same samples, given deterministic scheduling (VLLM_ENABLE_V1_MULTIPROCESSING=0) or
batch invariance (VLLM_BATCH_INVARIANT=1); without either, float noise from batching can still
change a token now and then. What is not: a sample depends on its group (the first seed, its
place in it), not on its own seed alone, so a resumed run, another --batch-size or another
backend draws different (equally valid) samples for the same sample seeds.

score() renders the prompt as the hf backend does (the chat template with its generation prompt,
then the protocol's reply prefix, e.g. "Answer:", tokenized together without added special
tokens), asks vLLM for one greedy token with its top 20 log-probs, and reads them as the openai
backend does, at the run's temperature (see score()).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import TomdistillError
from .base import (
    GenRequest,
    GenResult,
    Model,
    ModelInfo,
    ModelOptions,
    SamplingSettings,
    ScoreRequest,
    ScoreResult,
    UnsupportedError,
    first_token_mass,
    is_amount_question,
    prompt_key,
    renormalise,
    token_variants,
)
from .embedded import converted_folder

#: vLLM's default cap on returned log-probs; more is refused unless the engine is built for it.
TOP_LOGPROBS = 20


def group_by_prompt(requests: Sequence[GenRequest]) -> list[list[GenRequest]]:
    """The requests that share a conversation, groups in order of first appearance."""
    groups: dict[str, list[GenRequest]] = {}
    for request in requests:
        groups.setdefault(prompt_key(request.messages), []).append(request)
    return list(groups.values())


class VLLMModel(Model):
    """A chat model run in this process by vLLM (continuous batching on the GPU)."""

    def __init__(self, ident: str, options: ModelOptions) -> None:
        self.spec = f"vllm:{ident}"
        if options.adapter is not None:
            raise TomdistillError(f"{self.spec}: --adapter is not supported by the vllm backend; merge the adapter "
                                  "(`tomdistill merge`) and pass the merged folder as vllm:<folder>")
        self.path = str(converted_folder(ident.removeprefix("default:"))) if ident.startswith("default:") else ident
        # vLLM schedules what it is given; a large window keeps the GPU full.
        self.batch_size = options.batch_size or 256
        import vllm

        self._vllm = vllm
        # A replica that Ray gave several GPUs (gpus_per_replica) spreads the model over them.
        self.tensor_parallel = max(1, int(options.gpus_per_replica))
        self.llm = vllm.LLM(model=self.path, dtype=options.dtype or "auto", enable_prefix_caching=True, seed=0,
                            tensor_parallel_size=self.tensor_parallel)

    def info(self) -> ModelInfo:
        return ModelInfo(self.spec, "vllm", {"path": self.path, "vllm": self._vllm.__version__,
                                             "prefix_caching": True, "tensor_parallel": self.tensor_parallel})

    def generate(self, requests: Sequence[GenRequest], settings: SamplingSettings) -> Iterator[GenResult]:
        # Greedy samples of one prompt are all the same: n > 1 would buy nothing.
        groups = group_by_prompt(requests) if settings.temperature > 0 else [[r] for r in requests]
        params = [self._vllm.SamplingParams(n=len(g), seed=g[0].seed, temperature=settings.temperature,
                                            top_p=settings.top_p, max_tokens=settings.max_new_tokens) for g in groups]
        # Latency is the window's: vLLM returns all of them together.
        outputs, latency = self._chat([g[0].messages for g in groups], params)
        for group, out in zip(groups, outputs, strict=True):
            completions = sorted(out.outputs, key=lambda c: c.index)  # child i drew with seed s + i
            for request, completion in zip(group, completions, strict=True):
                yield GenResult(request.key, completion.text, latency, len(out.prompt_token_ids),
                                len(completion.token_ids))

    def score(self, requests: Sequence[ScoreRequest]) -> Iterator[ScoreResult]:
        """Single-token candidates from the top log-probs of the token after the reply prefix.

        The temperature is applied here, to the listed log-probs (first_token_mass: exact for the
        candidates' ratios, the normaliser is over the 20 listed tokens). That relies on vLLM
        returning temperature-1 log-probs: its engine argument `logprobs_mode` defaults to
        `raw_logprobs`, "the values before applying any logit processors", temperature and
        top-k/top-p included (docs.vllm.ai/en/latest/configuration/engine_args/#-logprobs-mode),
        and the engine is built here with that default. The request itself is greedy, so no
        temperature is applied inside vLLM whichever mode an older version used.
        """
        if not requests:
            return
        tokenizer = self.llm.get_tokenizer()
        for request in requests:
            self._check_first_token(tokenizer, request.candidates)
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, logprobs=TOP_LOGPROBS)
        prompts = [{"prompt_token_ids": self._score_prompt(tokenizer, r)} for r in requests]
        started = time.perf_counter()
        outputs = self.llm.generate(prompts, [params] * len(requests), use_tqdm=False)
        latency = time.perf_counter() - started  # the window's: vLLM returns all of them together
        for request, out in zip(requests, outputs, strict=True):
            top = out.outputs[0].logprobs[0]  # token id -> Logprob, for the first reply token
            pairs = ((lp.decoded_token if lp.decoded_token is not None else tokenizer.decode([token]), lp.logprob)
                     for token, lp in top.items())
            probs, mass = renormalise(first_token_mass(pairs, request.candidates, request.temperature),
                                      request.temperature)
            yield ScoreResult(request.key, probs, mass, latency, len(out.prompt_token_ids))

    @staticmethod
    def _score_prompt(tokenizer: Any, request: ScoreRequest) -> list[int]:
        """Token ids of the chat-formatted prompt followed by the reply prefix, as the hf backend
        builds them (LLM.chat would render the same template, but has no place for the prefix)."""
        text = tokenizer.apply_chat_template(list(request.messages), add_generation_prompt=True, tokenize=False)
        # The template holds the special tokens already; adding them again would double BOS.
        return tokenizer.encode(text + request.prefix, add_special_tokens=False)

    def _check_first_token(self, tokenizer: Any, candidates: Sequence[str]) -> None:
        """Refuse candidates that the first token cannot show: those with no one-token spelling."""
        for c in candidates:
            if all(len(ids) > 1 for ids in token_variants(c, lambda t: tokenizer.encode(t, add_special_tokens=False))):
                what = f"amounts like '{c}' are" if is_amount_question(candidates) else f"'{c}' is"
                raise UnsupportedError(f"{self.spec}: {what} several tokens for this tokenizer, which first-token "
                                       "scoring cannot weigh; use hf: or llamacpp: for score mode on this scenario, "
                                       "or --mode sample")

    def _chat(self, conversations: list[Any], params: list[Any]) -> tuple[list[Any], float]:
        """(one RequestOutput per conversation, in input order; seconds taken). vLLM applies the
        model's own chat template."""
        if not conversations:
            return [], 0.0
        started = time.perf_counter()
        outputs = self.llm.chat([list(c) for c in conversations], params, use_tqdm=False)
        return outputs, time.perf_counter() - started

    def close(self) -> None:
        del self.llm
