"""Backend for any OpenAI-compatible chat-completions server (vLLM, llama.cpp, Ollama, OpenAI).

    openai:<model>   base URL from --base-url, else OPENAI_BASE_URL, else https://api.openai.com/v1
                     API key only from OPENAI_API_KEY (local servers may need none)

Requests run concurrently on one asyncio loop in a background thread (one per model, started on
first use, stopped by `close()`), so the pooled connections survive from one window of requests
to the next, while `generate`/`score` stay plain iterators that yield each result as soon as it
arrives. Transient failures (429, 5xx, timeouts, dropped connections, garbled or empty replies)
are retried with exponential backoff; other client errors fail at once. The API key never
leaves the Authorization header: it is kept out of info(), reprs, logs and error messages.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import queue
import random
import threading
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import httpx

from .base import (
    BackendError,
    GenRequest,
    GenResult,
    Model,
    ModelInfo,
    SamplingSettings,
    ScoreRequest,
    ScoreResult,
    UnsupportedError,
    first_token_mass,
    renormalise,
)
from .registry import ModelOptions

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_BASE_URL = "https://api.openai.com/v1"
BACKOFF_BASE_S, BACKOFF_FACTOR, BACKOFF_CAP_S, RETRY_AFTER_CAP_S = 0.5, 2.0, 30.0, 60.0
#: 408 and 429 are "try again later"; 5xx are server-side trouble that often passes.
_RETRY_STATUS = frozenset({408, 429})


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """Stop the loop thread; also run by weakref.finalize if a model is dropped without close()."""
    if thread.is_alive():
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
    if not thread.is_alive() and not loop.is_closed():
        loop.close()


def _retry_after(resp: httpx.Response) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare on these servers and falls back to backoff)."""
    try:
        value = float(resp.headers.get("retry-after", ""))
    except ValueError:
        return None
    return min(max(value, 0.0), RETRY_AFTER_CAP_S) if math.isfinite(value) else None


class OpenAIModel(Model):
    """Chat model served over the OpenAI chat-completions API."""

    def __init__(self, model_id: str, options: ModelOptions) -> None:
        self.model_id = model_id
        self.spec = f"openai:{model_id}"
        self.base_url = (options.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.batch_size = max(1, options.concurrency)
        self.concurrency = self.batch_size
        self.timeout_s = options.timeout_s
        self.max_retries = max(0, options.max_retries)
        #: Retries over the model's life, in total and by reason, for the engine's report.
        self.retries = 0
        self.retry_reasons: Counter[str] = Counter()
        # Kept private and only ever put in a header; `_redact` scrubs it from server texts.
        self._api_key = os.environ.get("OPENAI_API_KEY") or None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None
        self._finalizer: weakref.finalize | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIModel({self.model_id!r}, base_url={self.base_url!r})"

    def info(self) -> ModelInfo:
        return ModelInfo(self.spec, "openai", {"base_url": self.base_url, "model": self.model_id})

    # -- public API -------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenRequest], settings: SamplingSettings) -> Iterator[GenResult]:
        async def one(req: GenRequest) -> GenResult:
            body = {"model": self.model_id, "messages": list(req.messages), "temperature": settings.temperature,
                    "top_p": settings.top_p, "max_tokens": settings.max_new_tokens, "seed": req.seed, "n": 1}
            start = time.perf_counter()
            data = await self._post(body)
            # null/empty content is a real (bad) reply: stored and marked invalid, never dropped.
            text = ((data["choices"][0] or {}).get("message") or {}).get("content") or ""
            usage = data.get("usage") or {}
            return GenResult(req.key, text, time.perf_counter() - start,
                             usage.get("prompt_tokens"), usage.get("completion_tokens"))

        return self._stream([lambda r=r: one(r) for r in requests])

    def score(self, requests: Sequence[ScoreRequest]) -> Iterator[ScoreResult]:
        """Probabilities of single-token candidates from the first reply token's top_logprobs.

        Tokens are matched after stripping whitespace ("C" and " C" both count for "C"), so only
        candidates that are one token can be scored; a candidate missing from the top 20 gets 0.
        If no candidate appears at all, every prob is 0.0 and valid_mass is 0.0 (not renormalisable).
        """

        async def one(req: ScoreRequest) -> ScoreResult:
            body = {"model": self.model_id, "messages": list(req.messages), "max_tokens": 1,
                    "temperature": 0, "logprobs": True, "top_logprobs": 20}
            start = time.perf_counter()
            data = await self._post(body)
            try:
                top = data["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            except (KeyError, IndexError, TypeError):
                top = None
            if not top:
                raise UnsupportedError(f"{self.base_url} does not return top_logprobs; use --mode sample")
            pairs = ((str(entry.get("token", "")), float(entry["logprob"])) for entry in top)
            probs, valid = renormalise(first_token_mass(pairs, req.candidates))
            usage = data.get("usage") or {}
            return ScoreResult(req.key, probs, valid, time.perf_counter() - start, usage.get("prompt_tokens"))

        return self._stream([lambda r=r: one(r) for r in requests])

    def close(self) -> None:
        with self._lock:
            loop, client, finalizer = self._loop, self._client, self._finalizer
            self._loop = self._client = self._sem = self._finalizer = None
        if loop is None or finalizer is None:  # never started, or closed already
            return
        if client is not None and loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=5)
            except Exception:  # closing is best effort; the loop stops either way
                log.debug("closing the HTTP client failed", exc_info=True)
        finalizer()

    # -- machinery --------------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
                limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
                client = httpx.AsyncClient(headers=headers, timeout=self.timeout_s, limits=limits)
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=f"tomdistill-{self.spec}", daemon=True)
                # Record everything before the thread starts, so that a Ctrl-C landing anywhere
                # here still leaves close() (or the finalizer) able to stop it.
                self._loop, self._client, self._sem = loop, client, asyncio.Semaphore(self.concurrency)
                self._finalizer = weakref.finalize(self, _stop_loop, loop, thread)
                thread.start()
            return self._loop

    def _stream(self, jobs: list[Callable[[], Awaitable[T]]]) -> Iterator[T]:
        """Run the jobs on the loop thread; yield results in completion order, raise the first error.

        Whatever way the consumer leaves (exhausted, error, generator close, KeyboardInterrupt),
        the `finally` cancels the jobs still running and waits until their connections are shut.
        """
        if not jobs:
            return
        loop = self._ensure_loop()
        out: queue.Queue[tuple[bool, Any]] = queue.Queue()
        finished = threading.Event()

        async def guarded(job: Callable[[], Awaitable[T]]) -> None:
            try:
                out.put((True, await job()))
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # handed to the consumer thread, which re-raises it
                out.put((False, exc))

        async def batch() -> None:
            tasks = [asyncio.create_task(guarded(job)) for job in jobs]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        async def spawn() -> asyncio.Task[None]:
            task = asyncio.create_task(batch())
            task.add_done_callback(lambda _: finished.set())
            return task

        task = asyncio.run_coroutine_threadsafe(spawn(), loop).result()
        try:
            for _ in jobs:
                ok, value = out.get()
                if not ok:
                    raise value
                yield value
        finally:
            loop.call_soon_threadsafe(task.cancel)
            finished.wait(timeout=10)

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST one completion with retries; the parsed reply has a non-empty `choices` list."""
        assert self._client is not None and self._sem is not None
        url = f"{self.base_url}/chat/completions"
        reason = ""
        for attempt in range(self.max_retries + 1):
            wait: float | None = None
            async with self._sem:  # released during backoff, so a sleeping retry frees its slot
                try:
                    async with asyncio.timeout(self.timeout_s):  # total bound, not per read
                        resp = await self._client.post(url, json=body)
                except (TimeoutError, httpx.TimeoutException):
                    reason = "timeout"
                except httpx.TransportError as exc:
                    reason = f"connection error ({type(exc).__name__})"
                else:
                    status = resp.status_code
                    if status in _RETRY_STATUS or status >= 500:
                        reason, wait = f"HTTP {status}", _retry_after(resp)
                    elif not resp.is_success:
                        raise BackendError(self._client_error(resp))
                    else:
                        try:
                            data = resp.json()
                        except ValueError:
                            data = None
                        if isinstance(data, dict) and data.get("choices"):
                            return data
                        reason = "malformed JSON reply" if data is None else "reply without choices"
            if attempt == self.max_retries:
                break
            self.retries += 1
            self.retry_reasons[reason] += 1
            if wait is None:
                wait = min(BACKOFF_CAP_S, BACKOFF_BASE_S * BACKOFF_FACTOR**attempt) + random.uniform(0, 0.1)
            log.debug("%s: %s, retry %d in %.2f s", self.base_url, reason, attempt + 1, wait)
            await asyncio.sleep(wait)
        raise BackendError(
            f"{self.base_url}: no usable reply after {self.max_retries + 1} tries; last error: {reason}"
        )

    def _client_error(self, resp: httpx.Response) -> str:
        """A one-line message for a non-retryable HTTP error, with the server's own explanation."""
        try:
            detail = resp.json()
            detail = detail.get("error", detail) if isinstance(detail, dict) else detail
            detail = detail.get("message", detail) if isinstance(detail, dict) else detail
        except ValueError:
            detail = resp.text
        text = self._redact(" ".join(str(detail).split()))
        text = text if len(text) <= 300 else text[:297] + "..."
        hint = " (check OPENAI_API_KEY)" if resp.status_code in (401, 403) else ""
        return f"{self.base_url}: HTTP {resp.status_code}{hint}: {text}"

    def _redact(self, text: str) -> str:
        # Some servers echo the key they rejected; never let it reach a message or log.
        return text.replace(self._api_key, "***") if self._api_key else text
