"""Local transformers backend (`hf:<hub id or folder>`): batched sampling and exact scoring.

Sampling runs its own decode loop over one KV cache per batch so that every row draws from its
own seeded generator: a sample is the same whatever batch it lands in (up to float noise from
padding). Score mode reads action probabilities from one forward pass. An optional PEFT LoRA
adapter makes a fine-tuned student go through exactly this path. bf16 where the hardware runs it natively (GPUs, recent CPUs), else fp16 / fp32.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TomdistillError
from ..hardware import default_device, prefer_bf16
from .base import (
    GenRequest,
    GenResult,
    Model,
    ModelInfo,
    ModelOptions,
    SamplingSettings,
    ScoreRequest,
    ScoreResult,
    TextScoreRequest,
    TextScoreResult,
    extends_number,
    is_amount_question,
    renormalise,
    tempered_logprobs,
    token_variants,
)

try:
    import torch
    import transformers
except ModuleNotFoundError as exc:  # the registry turns this into a pip hint
    raise ModuleNotFoundError(f"No module named '{exc.name}'", name=exc.name) from None

from .cast_load import load_causal_lm  # noqa: E402  (needs torch, checked just above)


def _forward_names() -> tuple[str, str]:
    """Keyword names for the KV cache and for 'last logits only', which transformers renamed in 5.x."""
    import inspect

    params = inspect.signature(transformers.LlamaForCausalLM.forward).parameters
    cache = "cache" if "cache" in params else "past_key_values"
    keep = "logits_to_keep" if "logits_to_keep" in params else "num_logits_to_keep"
    return cache, keep


_CACHE_KW, _KEEP_KW = _forward_names()
# Also for Python callers (Agent.load in a simulation), who do not pass through the CLI's
# silence_other_progress_bars: transformers' per-load bars only add noise to theirs.
transformers.utils.logging.disable_progress_bar()


def pick_device(requested: str | None) -> str:
    return requested or default_device()


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_dtype(device: str, requested: str | None = None) -> torch.dtype:
    """The requested dtype, else bf16 where the hardware runs it natively (GPUs, CPUs with
    AVX512-BF16/AMX: half the memory traffic, 2.4x faster generation here), fp16 on older GPUs and
    on Apple's mps (its bf16 depends on the macOS version), fp32 on other CPUs."""
    if requested and requested != "auto":
        if requested not in DTYPES:
            raise TomdistillError(f"unknown dtype '{requested}'; choose auto, {', '.join(DTYPES)}")
        return DTYPES[requested]
    if prefer_bf16(device):
        return torch.bfloat16
    return torch.float16 if device.startswith(("cuda", "mps")) else torch.float32


def default_batch_size(device: str, parameters: int) -> int:
    """Rows decoded together. A decode step reads every weight once whatever the batch, so bigger
    batches share that cost until compute dominates. Measured on 2 CPU cores (bf16, continuous
    batching, 64 new tokens): the 135M student gave 137 / 197 / 238 tok/s at 16 / 32 / 64 rows;
    the 0.5B teacher 74 / 100 / 94 tok/s at 16 / 32 / 48."""
    if device.startswith("cuda"):
        return 64
    return 64 if parameters < 300_000_000 else 32


class HFModel(Model):
    """A causal LM loaded with transformers, optionally with a LoRA adapter on top."""

    reply_prefixes = True

    def __init__(self, ident: str, options: ModelOptions, *, spec: str | None = None) -> None:
        self.spec = spec or f"hf:{ident}"
        self.path = ident
        self.adapter = options.adapter
        self.device = pick_device(options.device)
        self.dtype = pick_dtype(self.device, options.dtype)
        if Path(ident).exists() and not (Path(ident) / "config.json").is_file():
            raise TomdistillError(f"{ident}: folder has no config.json; expected a transformers model folder")
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(ident, padding_side="left")
            model = load_causal_lm(ident, self.dtype)
        except OSError as exc:
            raise TomdistillError(
                f"hf:{ident}: cannot load the model ({str(exc).splitlines()[0]}); give a local folder, "
                "or a hub id that is already in the local Hugging Face cache"
            ) from None
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(self.adapter))
        self.model = model.to(self.device).eval()
        self.batch_size = options.batch_size or default_batch_size(self.device, self.model.num_parameters())
        self.stop_ids = self._stop_ids()
        self._head_lock = threading.Lock()

    def _stop_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(source)
        end_of_turn = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(end_of_turn, int) and end_of_turn != self.tokenizer.unk_token_id:
            ids.add(end_of_turn)
        return ids

    def info(self) -> ModelInfo:
        return ModelInfo(
            self.spec,
            "hf",
            {
                "path": self.path,
                "adapter": str(self.adapter) if self.adapter else None,
                "device": self.device,
                "dtype": str(self.dtype).removeprefix("torch."),
                "transformers": transformers.__version__,
                "torch": torch.__version__,
            },
        )

    # --- shared -------------------------------------------------------------------------------

    def _encode_texts(self, conversations: Sequence[Sequence[dict[str, str]]], prefixes: Sequence[str] | None = None) -> list[str]:
        """Chat-formatted prompts as text, each followed by the start of the reply (`prefixes`)."""
        texts = [
            self.tokenizer.apply_chat_template(list(m), add_generation_prompt=True, tokenize=False) for m in conversations
        ]
        if prefixes:
            texts = [text + prefix for text, prefix in zip(texts, prefixes, strict=True)]
        return texts

    def _encode(self, conversations: Sequence[Sequence[dict[str, str]]], prefixes: Sequence[str] | None = None) -> dict[str, Any]:
        """Chat-formatted prompts, each followed by the start of the reply (`prefixes`: score mode's
        protocol prefix, or a caller's reply start in generate)."""
        texts = self._encode_texts(conversations, prefixes)
        # The chat template already holds the special tokens; adding them again would double BOS.
        return self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)

    @staticmethod
    def _positions(mask: torch.Tensor) -> torch.Tensor:
        # Left padding: real tokens count from 0 so rotary positions match an unpadded prompt.
        return (mask.long().cumsum(-1) - 1).clamp(min=0)

    # --- sampling -----------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenRequest], settings: SamplingSettings) -> Iterator[GenResult]:
        """Continuous batching: rows leave the batch when they finish and queued requests take
        their place, so every decode step runs a full batch until the queue runs dry."""
        queue = list(requests)
        keys = [r.prompt_key for r in queue]
        start = 0
        live: _LiveBatch | None = None
        # Joining costs one extra forward pass, so wait until a quarter of the batch is free.
        refill_at = max(1, self.batch_size // 4)
        while start < len(queue) or live is not None:
            # Finished rows stay in the batch (as cheap padding) until a quarter of it is finished:
            # dropping them copies the whole KV cache, which would cost more than their share of a
            # step if it happened every time one reply ended.
            if live is not None and (live.finished >= refill_at or live.finished == live.size):
                live.drop_finished()
                live = live if live.size else None
            free = self.batch_size - (live.size if live else 0)
            waiting = len(queue) - start
            if waiting and (live is None or (live.joinable and free >= min(refill_at, waiting))):
                end = _whole_groups(keys, start, free)
                fresh = self._prefill(queue[start:end])
                start = end
                live = fresh if live is None else live.merge(fresh)
            if live is not None:
                yield from self._decode_step(live, settings)

    @torch.inference_mode()
    def _prefill(self, batch: Sequence[GenRequest]) -> _LiveBatch:
        """Run the prompts of `batch` and return them as a live batch holding their first logits."""
        started = time.perf_counter()
        # Samples of one scenario share their prompt: prefill each distinct prompt once and copy
        # its KV cache to every row that asks for it (elicitation sends them side by side).
        distinct: dict[str, int] = {}
        row_prompt = [distinct.setdefault(r.prompt_key, len(distinct)) for r in batch]
        first_of = {p: row for row, p in reversed(list(enumerate(row_prompt)))}
        firsts = [batch[first_of[p]] for p in range(len(distinct))]
        enc = self._encode([r.messages for r in firsts], prefixes=[r.prefix for r in firsts])
        # Only the last position's logits are needed: skips a (batch x prompt x vocab) matrix.
        out = self.model(
            input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
            position_ids=self._positions(enc["attention_mask"]), use_cache=True, **{_KEEP_KW: 1},
        )
        expand = torch.tensor(row_prompt, device=self.device)
        cache = getattr(out, _CACHE_KW)
        if len(distinct) < len(batch):
            cache.batch_select_indices(expand)
        mask = enc["attention_mask"][expand]
        rows = [_Row(r, torch.Generator().manual_seed(r.seed), int(n), started) for r, n in zip(batch, mask.sum(dim=1).tolist())]
        return _LiveBatch(rows, cache, mask, out.logits[:, -1, :][expand])

    @torch.inference_mode()
    def _decode_step(self, live: _LiveBatch, settings: SamplingSettings) -> list[GenResult]:
        """Pick one token per unfinished row, hand back the rows that end, run one step."""
        slots = [i for i, row in enumerate(live.rows) if not row.finished]
        picked = self._pick(live.logits[slots], [live.rows[i].generator for i in slots], settings)
        done = []
        for slot, token in zip(slots, picked.tolist()):
            row = live.rows[slot]
            stop = token in self.stop_ids
            if not stop:
                row.tokens.append(token)
            if stop or len(row.tokens) >= settings.max_new_tokens:
                row.finished = True
                done.append(GenResult(row.request.key, self.tokenizer.decode(row.tokens, skip_special_tokens=True),
                                      time.perf_counter() - row.started, row.prompt_tokens, len(row.tokens)))
        if live.finished < live.size:
            # Finished rows get the pad token; what they compute is never read.
            tokens = torch.full((live.size,), self.tokenizer.pad_token_id, dtype=torch.long)
            tokens[slots] = picked
            live.advance(self.model, tokens.to(self.device))
        return done

    @staticmethod
    def _pick(logits: torch.Tensor, generators: list[torch.Generator], settings: SamplingSettings) -> torch.Tensor:
        """Next token per row: greedy at temperature 0, else nucleus sampling from the row's own generator."""
        logits = logits.float().cpu()
        if settings.temperature == 0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits / settings.temperature, dim=-1)
        if settings.top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            # Keep the smallest prefix whose mass reaches top_p (the top token always stays).
            drop = sorted_p.cumsum(dim=-1) - sorted_p >= settings.top_p
            sorted_p[drop] = 0.0
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        return torch.stack([torch.multinomial(probs[row], 1, generator=g)[0] for row, g in enumerate(generators)])

    # --- scoring ------------------------------------------------------------------------------
    # Scores come from fp32 logits whatever dtype the model runs in: the hidden state the LM head
    # reads is taken from the forward pass and multiplied by an fp32 copy of the head, for the
    # scored positions only. bf16 logits quantise P(C) to a few dozen values (22 distinct over 52
    # scenarios for the 135M student, off by up to 0.02).

    def score(self, requests: Sequence[ScoreRequest]) -> Iterator[ScoreResult]:
        for start in range(0, len(requests), self.batch_size):
            yield from self._score_batch(requests[start : start + self.batch_size])

    def _token_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _variants(self, candidate: str) -> list[list[int]]:
        return token_variants(candidate, self._token_ids)

    @torch.inference_mode()
    def _score_batch(self, batch: Sequence[ScoreRequest]) -> list[ScoreResult]:
        started = time.perf_counter()
        enc = self._encode([r.messages for r in batch], prefixes=[r.prefix for r in batch])
        mask = enc["attention_mask"]
        first_logits = self._fp32_logits(enc["input_ids"], mask, keep=1)[:, -1, :]
        results = []
        for row, request in enumerate(batch):
            prompt = enc["input_ids"][row][mask[row].bool()]
            first = tempered_logprobs(first_logits[row], request.temperature)
            if is_amount_question(request.candidates):
                raw = self._amount_probs(prompt, request.candidates, request.temperature)
            else:
                raw = {c: self._sequence_prob(first, prompt, self._variants(c), request.temperature)
                       for c in request.candidates}
            probs, mass = renormalise(raw, request.temperature)
            results.append(ScoreResult(request.key, probs, mass, time.perf_counter() - started, int(mask[row].sum())))
        return results

    def score_texts(self, requests: Sequence[TextScoreRequest]) -> Iterator[TextScoreResult]:
        for request in requests:
            yield self._score_texts_one(request)

    @torch.inference_mode()
    def _score_texts_one(self, request: TextScoreRequest) -> TextScoreResult:
        """Every candidate's tokens after the prompt and reply prefix, `batch_size` candidates per
        forward pass. Each candidate is tokenized together with the text before it, as the model
        would have written it: "Answer: " + "a" is "Answer:" + " a", not "Answer: " + "a". Where a
        candidate merges with the end of the prefix, every candidate is scored from the last token
        boundary all of them share, so their probabilities stay comparable."""
        started = time.perf_counter()
        text = self._encode_texts([request.messages], [request.prefix])[0]
        base = self._token_ids(text)
        full = {c: self._token_ids(text + c) for c in request.candidates}
        shared = min((_common_length(base, ids) for ids in full.values()), default=len(base))
        prompt = torch.tensor(base[:shared], device=self.device)
        tails = {c: ids[shared:] for c, ids in full.items()}
        # An empty tail is the certain event (every reply starts with it), and has no tokens to run.
        logprobs = {c: 0.0 for c, ids in tails.items() if not ids}
        todo = [c for c, ids in tails.items() if ids]
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            scored = self._continuation_logprob(prompt, [tails[c] for c in chunk], request.temperature)
            logprobs |= {c: lp for c, (lp, _) in zip(chunk, scored)}
        return TextScoreResult(request.key, {c: logprobs[c] for c in request.candidates},
                               time.perf_counter() - started, len(base))

    def _fp32_logits(self, ids: torch.Tensor, mask: torch.Tensor, keep: int) -> np.ndarray:
        """Logits of the last `keep` positions, (batch, keep, vocab), computed in fp32."""
        head = self.model.get_output_embeddings()
        captured: list[torch.Tensor] = []
        # The hook sits on the shared head: another thread's forward pass in the meantime would
        # add its hidden state to `captured` (seen with Concordia, which calls from a thread pool).
        with self._head_lock:
            hook = head.register_forward_hook(lambda module, args, output: captured.append(args[0]))
            try:
                self.model(input_ids=ids, attention_mask=mask, position_ids=self._positions(mask), **{_KEEP_KW: keep})
            finally:
                hook.remove()
        hidden = captured[-1][:, -keep:, :].float()
        logits = hidden @ self._head_weight_fp32().T
        if getattr(head, "bias", None) is not None:
            logits = logits + head.bias.float()
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        if cap:  # Gemma-style models squash their logits; the fp32 path must do the same
            logits = torch.tanh(logits / cap) * cap
        return logits.cpu().numpy()

    def _head_weight_fp32(self) -> torch.Tensor:
        """The LM head's weight in fp32, made once (the same tensor when the model is fp32 already)."""
        if not hasattr(self, "_head_fp32"):
            self._head_fp32 = self.model.get_output_embeddings().weight.float()
        return self._head_fp32

    def _sequence_prob(self, first: np.ndarray, prompt: torch.Tensor, variants: list[list[int]], temperature: float) -> float:
        """P(reply starts with any variant). Single-token variants read the first-step distribution."""
        total = 0.0
        for ids in variants:
            if len(ids) == 1:
                total += float(np.exp(first[ids[0]]))
            else:
                total += float(np.exp(self._continuation_logprob(prompt, [ids], temperature)[0][0]))
        return total

    def _continuation_logprob(self, prompt: torch.Tensor, continuations: list[list[int]], temperature: float):
        """(log P(continuation | prompt), next-token log-probs after it) for each continuation."""
        rows = [torch.cat([prompt, torch.tensor(c, device=prompt.device)]) for c in continuations]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.stack([torch.cat([r.new_full((width - len(r),), pad), r]) for r in rows])
        mask = torch.stack([torch.cat([r.new_zeros(width - len(r)), r.new_ones(len(r))]) for r in rows])
        keep = max(len(c) for c in continuations) + 1
        logp = tempered_logprobs(self._fp32_logits(ids, mask, keep), temperature)
        out = []
        for row, cont in enumerate(continuations):
            n = len(cont)
            # Position t predicts token t+1: the continuation's tokens are predicted by the n positions
            # before the last one (rows are left-padded, so every row ends at the same place).
            steps = logp[row, keep - n - 1 : keep - 1]
            out.append((float(steps[np.arange(n), cont].sum()), logp[row, -1]))
        return out

    def _amount_probs(self, prompt: torch.Tensor, candidates: Sequence[str], temperature: float) -> dict[str, float]:
        """P(reply is exactly this amount): its tokens (with or without a leading space, as after
        "Answer:"), then a token that does not extend the number."""
        variants = [(c, ids) for c in candidates for ids in self._variants(c)]
        scored = self._continuation_logprob(prompt, [ids for _, ids in variants], temperature)
        digit_start = self._digit_start_mask(len(scored[0][1]))
        probs = dict.fromkeys(candidates, 0.0)
        for (c, _), (lp, nxt) in zip(variants, scored):
            probs[c] += float(np.exp(lp)) * float(1.0 - np.exp(nxt[digit_start]).sum())
        return probs

    def _digit_start_mask(self, size: int) -> np.ndarray:
        """Which of `size` token ids would extend a number; ids past the tokenizer's (the head's
        padding rows, e.g. 151,936 logits for Qwen's 151,665 tokens) never do."""
        if not hasattr(self, "_digit_mask"):
            vocab = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
            self._digit_mask = np.array([extends_number(t) for t in vocab])
        mask = np.zeros(size, dtype=bool)
        mask[: min(size, len(self._digit_mask))] = self._digit_mask[:size]
        return mask

    def close(self) -> None:
        del self.model


def _common_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens `a` and `b` share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass
class _Row:
    """One request being decoded."""

    request: GenRequest
    generator: torch.Generator
    prompt_tokens: int
    started: float
    tokens: list[int] = field(default_factory=list)
    finished: bool = False


class _LiveBatch:
    """The rows decoding together, with their KV cache, attention mask and next-token logits.

    Every row's real tokens sit right-aligned in the cache (prompts are left-padded and each step
    appends a column), which is what lets rows of different lengths join and leave: joining pads
    the shorter side on the left, finished rows are dropped a few at a time, and all-padding
    columns on the left are then trimmed so the cache never grows past the longest live row.
    """

    def __init__(self, rows: list[_Row], cache: Any, mask: torch.Tensor, logits: torch.Tensor) -> None:
        self.rows, self.cache, self.mask, self.logits = rows, cache, mask, logits

    @property
    def size(self) -> int:
        return len(self.rows)

    @property
    def joinable(self) -> bool:
        """Whether rows can join and columns be trimmed: plain full-length KV layers only (a
        sliding-window layer drops old columns itself, so padding it would misalign rows)."""
        return all(not getattr(layer, "is_sliding", False) and hasattr(layer, "keys") for layer in self.cache.layers)

    @property
    def finished(self) -> int:
        return sum(row.finished for row in self.rows)

    def drop_finished(self) -> None:
        keep = [i for i, row in enumerate(self.rows) if not row.finished]
        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in keep]
        if keep:
            index = torch.tensor(keep, device=self.mask.device)
            self.cache.batch_select_indices(index)
            self.mask, self.logits = self.mask[index], self.logits[index]
            if self.joinable:
                self._trim()

    def merge(self, other: _LiveBatch) -> _LiveBatch:
        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.keys = torch.cat([_left_pad(mine.keys, width), _left_pad(theirs.keys, width)])
            mine.values = torch.cat([_left_pad(mine.values, width), _left_pad(theirs.values, width)])
        self.mask = torch.cat([_left_pad(self.mask, width), _left_pad(other.mask, width)])
        self.logits = torch.cat([self.logits, other.logits])
        self.rows += other.rows
        return self

    def advance(self, model: Any, tokens: torch.Tensor) -> None:
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.size, 1))], dim=1)
        # Positions count real tokens only, so rotary positions match an unpadded prompt.
        positions = self.mask.sum(dim=1, keepdim=True) - 1
        out = model(input_ids=tokens.unsqueeze(1), attention_mask=self.mask, position_ids=positions,
                    use_cache=True, **{_CACHE_KW: self.cache})
        self.logits = out.logits[:, -1, :]

    def _trim(self) -> None:
        needed = int(self.mask.sum(dim=1).max())
        if needed < self.mask.shape[1]:
            self.mask = self.mask[:, -needed:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, -needed:], layer.values[:, :, -needed:]


def _whole_groups(keys: Sequence[str], start: int, room: int) -> int:
    """End of the requests to take from `start`: as many whole runs of one prompt as fit in `room`,
    so a prompt is prefilled once rather than once per join; a run longer than the room is split."""
    end = start
    while end < len(keys) and end - start < room:
        run_end = end
        while run_end < len(keys) and keys[run_end] == keys[end]:
            run_end += 1
        if run_end - start > room:
            return end if end > start else start + room
        end = run_end
    return end


def _left_pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad the sequence axis (the last axis of a mask, the third of a [batch, heads, seq, dim]
    KV tensor) on the left up to `width`."""
    axis = 1 if tensor.dim() == 2 else 2
    missing = width - tensor.shape[axis]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[axis] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=axis)
