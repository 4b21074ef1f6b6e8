"""Backend for any OpenAI-compatible chat-completions server (vLLM, llama.cpp, Ollama, OpenAI).

    openai:<model>   base URL from --base-url, else OPENAI_BASE_URL, else https://api.openai.com/v1
                     API key only from OPENAI_API_KEY (local servers may need none)

Requests run concurrently on one asyncio loop in a background thread (one per model, started on
first use, stopped by `close()`), so the pooled connections survive from one window of requests
to the next, while `generate`/`score` stay plain iterators that yield each result as soon as it
arrives. Transient failures (429, 5xx, timeouts, dropped connections, garbled or empty replies)
are retried with exponential backoff; other client errors fail at once. A reply is garbled when
it is not shaped like a chat completion (content a number, choices of strings, no message, token
counts or log-probs that are not numbers): every field read from a reply is checked here, so such
a reply costs a retry and, if it persists, stops the run with one line, never a traceback or a
wrong number in the store. The API key never leaves the Authorization header: it is kept out of
info(), reprs, logs and error messages. The model name each reply says answered is counted in
`served_models`, which the elicitation records with the run.

Score mode reads the top 20 log-probs of one reply token (see `score`). Without a reply prefix
(the `answer` protocol) that is the first token. With one ("Answer:") the token right after it,
found in one of two ways, `prefix_mode` (ModelOptions.extra["prefix_mode"], else
$TOMDISTILL_OPENAI_PREFIX_MODE, else auto):
    continue  the prefix is sent as the start of the assistant's reply with vLLM's extra fields
              continue_final_message=true, add_generation_prompt=false; one token is asked for.
    sampled   a reply is sampled at the run's temperature with per-token log-probs; the top
              log-probs of the first non-space token after the prefix in it are the exact
              conditional distribution there. A reply that does not begin with the prefix is
              drawn again with another seed, PREFIX_TRIES times, then the record is invalid.
    auto      the first scored request tries continue; the server is taken not to support it when
              it refuses the fields (HTTP 400/422) or ignores them (the likeliest token is the start
              of the prefix itself, e.g. "Answer": the model began a fresh reply); every later
              request then goes sampled, for the model's life.
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
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import httpx

from ..errors import TomdistillError, quoted
from .base import (
    BackendError,
    BadScoreError,
    GenRequest,
    GenResult,
    Model,
    ModelInfo,
    ModelOptions,
    SamplingSettings,
    ScoreRequest,
    ScoreResult,
    UnsupportedError,
    answer_index,
    checked_logprob,
    first_token_mass,
    prompt_key,
    renormalise,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_BASE_URL = "https://api.openai.com/v1"
BACKOFF_BASE_S, BACKOFF_FACTOR, BACKOFF_CAP_S, RETRY_AFTER_CAP_S = 0.5, 2.0, 30.0, 60.0
#: 408 and 429 are "try again later"; 5xx are server-side trouble that often passes.
_RETRY_STATUS = frozenset({408, 429})
#: Far above any context window: a bigger "token count" is garbage (and would overflow SQLite).
MAX_TOKEN_COUNT = 10**9
#: A served model name longer than this is not a name; it is left unrecorded.
MAX_MODEL_NAME = 200
#: Log-probs listed per token: the most OpenAI's API (and vLLM's default --max-logprobs) allows.
TOP_LOGPROBS = 20
PREFIX_MODES = ("auto", "continue", "sampled")
PREFIX_MODE_ENV = "TOMDISTILL_OPENAI_PREFIX_MODE"
#: Sampled prefix mode: replies drawn per request before it is stored as invalid, and their length
#: (the prefix is a few tokens; the answer token must come within the reply).
PREFIX_TRIES, PREFIX_REPLY_TOKENS = 3, 16
#: What a server answers to request fields it does not know (FastAPI-style servers say 422).
_REJECTED_STATUS = frozenset({400, 422})


class _Garbled(Exception):
    """A reply that is not shaped like a chat completion; its message is the retry reason."""


class ClientError(BackendError):
    """A request the server refused for good (a 4xx other than 408/429); `status` says which."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def prefix_mode(options: ModelOptions) -> str:
    """How score mode finds the token after a reply prefix (see the module docstring)."""
    if "prefix_mode" in options.extra:
        source, mode = "prefix_mode", options.extra["prefix_mode"]
    else:
        source, mode = PREFIX_MODE_ENV, os.environ.get(PREFIX_MODE_ENV) or "auto"
    if mode not in PREFIX_MODES:
        raise TomdistillError(f"{source}={quoted(str(mode), 120)}: expected one of {', '.join(PREFIX_MODES)}")
    return mode


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


def checked_base_url(given: str | None) -> str:
    """The server URL from --base-url, else OPENAI_BASE_URL, else OpenAI's; refused at once when it
    is no http(s) URL, so a typo is never retried as a network fault."""
    source = "--base-url" if given else "OPENAI_BASE_URL"
    url = given or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    example = "; write it like http://localhost:8000/v1"
    if any(c.isspace() or not c.isprintable() for c in url):
        raise TomdistillError(f"{source} {quoted(url, 120)}: a URL has no spaces or control characters{example}")
    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, ValueError) as exc:
        raise TomdistillError(f"{source} {quoted(url, 120)}: not a valid URL ({exc}){example}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise TomdistillError(f"{source} {quoted(url, 120)}: needs http:// or https:// and a host{example}")
    if (port is not None and not 0 < port < 65536) or parsed.query or parsed.fragment:
        raise TomdistillError(f"{source} {quoted(url, 120)}: needs a valid port and no ?query or #fragment{example}")
    return url.rstrip("/")


def _reply_json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise _Garbled("malformed JSON reply") from None


def _first_choice(data: Any) -> dict[str, Any]:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices:
        raise _Garbled("malformed JSON reply" if data is None else "reply without choices")
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise _Garbled("garbled reply: choices are not objects")
    return choices[0]


def _reply_text(choice: dict[str, Any]) -> str:
    """The reply text; content may be a string, null (an empty reply) or a list of parts."""
    message = choice.get("message")
    if not isinstance(message, dict):
        raise _Garbled("garbled reply: no message")
    content = message.get("content")
    if content is None or isinstance(content, str):
        # null/empty content is a real (bad) reply: stored and marked invalid, never dropped.
        return content or ""
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        # [{"type": "text", "text": "..."}, ...]: the text parts, in order; other parts carry no text.
        texts = [part.get("text") for part in content if part.get("type") == "text"]
        if all(isinstance(text, str) for text in texts):
            return "".join(texts)
    raise _Garbled("garbled reply: content is not text")


def _usage(data: dict[str, Any]) -> tuple[int | None, int | None]:
    """(prompt tokens, completion tokens); absent counts are None, wrong ones make the reply garbled."""
    usage = data.get("usage")
    if usage is None:
        return None, None
    if not isinstance(usage, dict):
        raise _Garbled("garbled reply: usage is not an object")
    counts = []
    for key in ("prompt_tokens", "completion_tokens"):
        value = usage.get(key)
        if value is not None and not (type(value) is int and 0 <= value <= MAX_TOKEN_COUNT):  # bool is no count
            raise _Garbled(f"garbled reply: usage.{key} is not a token count")
        counts.append(value)
    return counts[0], counts[1]


def _top_logprobs(choice: dict[str, Any], base_url: str) -> list[tuple[str, Any]]:
    """(token, logprob) pairs of the first reply token; the logprobs are checked by first_token_mass."""
    try:
        top = choice["logprobs"]["content"][0]["top_logprobs"]
    except (KeyError, IndexError, TypeError):
        top = None
    return _checked_top(top, base_url)


def _checked_top(top: Any, base_url: str) -> list[tuple[str, Any]]:
    """One token's top_logprobs as (token, logprob) pairs; none at all means the server has none."""
    if not top:
        raise UnsupportedError(f"{base_url} does not return top_logprobs; use --mode sample")
    if not isinstance(top, list) or not all(isinstance(e, dict) and isinstance(e.get("token"), str) for e in top):
        raise _Garbled("garbled reply: top_logprobs are not {token, logprob} objects")
    return [(entry["token"], entry.get("logprob")) for entry in top]


def _reply_tokens(choice: dict[str, Any], base_url: str) -> list[tuple[str, Any]]:
    """(token text, its top_logprobs as sent) for every token of a reply sampled with logprobs."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if content is None:
        raise UnsupportedError(f"{base_url} does not return top_logprobs; use --mode sample")
    if not isinstance(content, list) or not all(isinstance(e, dict) and isinstance(e.get("token"), str) for e in content):
        raise _Garbled("garbled reply: logprobs.content is not a list of {token, top_logprobs} objects")
    return [(entry["token"], entry.get("top_logprobs")) for entry in content]


def _began_afresh(pairs: list[tuple[str, Any]], prefix: str, candidates: Sequence[str]) -> bool:
    """Whether a continue request's likeliest token starts the prefix itself ("Answer" for
    "Answer:") and is no candidate: the server ignored continue_final_message and the model began
    a new reply. Called on pairs whose log-probs first_token_mass has checked already."""
    token = max(pairs, key=lambda pair: checked_logprob(pair[1]))[0].strip()
    return bool(token) and prefix.strip().startswith(token) and token not in candidates


def _prompt_seed(messages: Sequence[Any]) -> int:
    """The seed of a scored prompt's first sampled reply: the same prompt draws the same replies."""
    return zlib.crc32(prompt_key(messages).encode("utf-8", "surrogatepass"))


class OpenAIModel(Model):
    """Chat model served over the OpenAI chat-completions API."""

    def __init__(self, model_id: str, options: ModelOptions) -> None:
        self.model_id = model_id
        self.spec = f"openai:{model_id}"
        given = (options.base_url,) if isinstance(options.base_url, str | None) else tuple(options.base_url)
        #: Several servers of one model share the requests: each goes to the least busy one.
        self.base_urls = tuple(dict.fromkeys(checked_base_url(url) for url in given))
        self.base_url = self.base_urls[0]  # named in messages that are about the model, not one server
        # `concurrency` is per server: requests in flight in all are that times the servers.
        self.batch_size = max(1, options.concurrency) * len(self.base_urls)
        self.concurrency = self.batch_size
        self._busy: Counter[str] = Counter()
        self.timeout_s = options.timeout_s
        self.max_retries = max(0, options.max_retries)
        #: Retries over the model's life, in total and by reason, for the engine's report.
        self.retries = 0
        self.retry_reasons: Counter[str] = Counter()
        #: Replies by the model name the server says answered (its `model` field).
        self.served_models: Counter[str] = Counter()
        # Kept private and only ever put in a header; `_redact` scrubs it from server texts.
        self._api_key = os.environ.get("OPENAI_API_KEY") or None
        #: auto, continue or sampled; auto turns into one of the others at the first prefixed score request.
        self.prefix_mode = prefix_mode(options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None
        self._finalizer: weakref.finalize | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIModel({self.model_id!r}, base_url={self.base_url!r})"

    def info(self) -> ModelInfo:
        servers = {"base_url": self.base_url} | ({"base_urls": list(self.base_urls)} if len(self.base_urls) > 1 else {})
        return ModelInfo(self.spec, "openai", servers | {"model": self.model_id, "prefix_mode": self.prefix_mode})

    # -- public API -------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenRequest], settings: SamplingSettings) -> Iterator[GenResult]:
        async def one(req: GenRequest) -> GenResult:
            body = {"model": self.model_id, "messages": list(req.messages), "temperature": settings.temperature,
                    "top_p": settings.top_p, "max_tokens": settings.max_new_tokens, "seed": req.seed, "n": 1}
            start = time.perf_counter()

            def read(data: Any) -> GenResult:
                text = _reply_text(_first_choice(data))
                return GenResult(req.key, text, time.perf_counter() - start, *_usage(data))

            return await self._post(body, read)

        return self._stream([lambda r=r: one(r) for r in requests])

    def score(self, requests: Sequence[ScoreRequest]) -> Iterator[ScoreResult]:
        """Candidate probabilities from the top_logprobs of the answer token (see the module docstring).

        Tokens are matched after stripping whitespace ("C" and " C" both count for "C"), so only
        candidates that are one token can be scored; a candidate missing from the top 20 gets 0.
        The server's log-probs are at temperature 1 (OpenAI's and vLLM's are); the run's
        temperature is applied to the listed tokens, so the normaliser is over those 20 (the
        candidates' ratios are exact). If no candidate appears at all, every prob is 0.0 and
        valid_mass is 0.0 (not renormalisable).
        """
        requests = list(requests)
        first = next((r for r in requests if r.prefix), None)
        if first is not None and self.prefix_mode == "auto":
            yield from self._stream([lambda: self._probe(first)])
            requests.remove(first)
        yield from self._stream([lambda r=r: self._score_one(r) for r in requests])

    async def _score_one(self, req: ScoreRequest) -> ScoreResult:
        if req.prefix and self.prefix_mode == "sampled":
            return await self._sampled(req)
        result = await self._first_token(req, self._continue_body(req) if req.prefix else self._plain_body(req))
        assert result is not None  # only a probe may find a fresh reply
        return result

    async def _probe(self, req: ScoreRequest) -> ScoreResult:
        """Score `req` by continuation if the server does it, else sampled; settle prefix_mode."""
        try:
            result = await self._first_token(req, self._continue_body(req), probe=True)
        except ClientError as exc:
            if exc.status not in _REJECTED_STATUS:
                raise
            result = None
        self.prefix_mode = "continue" if result is not None else "sampled"
        log.info("%s: reply prefix by %s", self.base_url, self.prefix_mode)
        return result if result is not None else await self._sampled(req)

    def _logprob_body(self, messages: list[Any], **fields: Any) -> dict[str, Any]:
        return {"model": self.model_id, "messages": messages, "logprobs": True, "top_logprobs": TOP_LOGPROBS, **fields}

    def _plain_body(self, req: ScoreRequest) -> dict[str, Any]:
        return self._logprob_body(list(req.messages), max_tokens=1, temperature=0)

    def _continue_body(self, req: ScoreRequest) -> dict[str, Any]:
        # vLLM's chat-completions extras: the final assistant message stays open and is continued.
        return self._logprob_body([*req.messages, {"role": "assistant", "content": req.prefix}], max_tokens=1,
                                  temperature=0, continue_final_message=True, add_generation_prompt=False)

    async def _first_token(self, req: ScoreRequest, body: dict[str, Any], probe: bool = False) -> ScoreResult | None:
        """Score from the first reply token; None when probing and the reply began afresh."""
        start = time.perf_counter()

        def read(data: Any) -> ScoreResult | None:
            pairs = _top_logprobs(_first_choice(data), self.base_url)
            result = self._result(req, pairs, start, _usage(data)[0])
            return None if probe and _began_afresh(pairs, req.prefix, req.candidates) else result

        return await self._post(body, read)

    async def _sampled(self, req: ScoreRequest) -> ScoreResult:
        """Score from the token after the prefix in a sampled reply, drawing again while none begins with it."""
        start, seed = time.perf_counter(), _prompt_seed(req.messages)

        def read(data: Any) -> ScoreResult | None:
            tokens = _reply_tokens(_first_choice(data), self.base_url)
            at = answer_index([token for token, _ in tokens], req.prefix)
            if at is None:
                return None
            return self._result(req, _checked_top(tokens[at][1], self.base_url), start, _usage(data)[0])

        missed = f"reply did not begin with {quoted(req.prefix, 120)} and an answer"
        for attempt in range(PREFIX_TRIES):
            body = self._logprob_body(list(req.messages), max_tokens=PREFIX_REPLY_TOKENS, temperature=req.temperature,
                                      top_p=1.0, seed=seed + attempt, n=1)
            result = await self._post(body, read)
            if result is not None:
                return result
            if attempt + 1 < PREFIX_TRIES:
                self.retries += 1
                self.retry_reasons[missed] += 1
        reason = f"none of {PREFIX_TRIES} sampled replies began with {quoted(req.prefix, 120)} and an answer"
        return ScoreResult(req.key, dict.fromkeys(req.candidates, 0.0), 0.0, time.perf_counter() - start,
                           invalid_reason=reason)

    def _result(self, req: ScoreRequest, pairs: list[tuple[str, Any]], start: float,
                prompt_tokens: int | None) -> ScoreResult:
        try:
            probs, valid = renormalise(first_token_mass(pairs, req.candidates, req.temperature), req.temperature)
        except BadScoreError:
            raise _Garbled("garbled reply: log-probs are not numbers <= 0") from None
        return ScoreResult(req.key, probs, valid, time.perf_counter() - start, prompt_tokens)

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

    async def _post(self, body: dict[str, Any], read: Callable[[Any], T]) -> T:
        """POST one completion with retries; `read` turns the parsed reply into the result, or
        raises _Garbled, which is retried like a 5xx."""
        assert self._client is not None and self._sem is not None
        reason, server = "", self.base_url
        for attempt in range(self.max_retries + 1):
            wait: float | None = None
            async with self._sem:  # released during backoff, so a sleeping retry frees its slot
                server = self._pick_server(avoid=server if attempt else None)
                self._busy[server] += 1
                try:
                    async with asyncio.timeout(self.timeout_s):  # total bound, not per read
                        resp = await self._client.post(f"{server}/chat/completions", json=body)
                except (TimeoutError, httpx.TimeoutException):
                    reason = "timeout"
                except httpx.RequestError as exc:  # transport faults, and bodies that fail to decode (bad gzip)
                    reason = f"connection error ({type(exc).__name__})"
                else:
                    status = resp.status_code
                    if status in _RETRY_STATUS or status >= 500:
                        reason, wait = f"HTTP {status}", _retry_after(resp)
                    elif not resp.is_success:
                        raise ClientError(self._client_error(resp, server), status)
                    else:
                        try:
                            data = _reply_json(resp)
                            result = read(data)
                        except _Garbled as exc:
                            reason = str(exc)
                        else:
                            self._count_served(data)
                            return result
                finally:
                    self._busy[server] -= 1
            if attempt == self.max_retries:
                break
            self.retries += 1
            self.retry_reasons[reason] += 1
            if wait is None:
                wait = min(BACKOFF_CAP_S, BACKOFF_BASE_S * BACKOFF_FACTOR**attempt) + random.uniform(0, 0.1)
            log.debug("%s: %s, retry %d in %.2f s", server, reason, attempt + 1, wait)
            await asyncio.sleep(wait)
        raise BackendError(
            f"{server}: no usable reply after {self.max_retries + 1} tries; last error: {reason}"
        )

    def _pick_server(self, avoid: str | None) -> str:
        """The server with the fewest requests in flight; a retry prefers another than the one that
        just failed it. (All on the loop thread: no lock needed.)"""
        return min(self.base_urls, key=lambda url: (url == avoid, self._busy[url]))

    def _count_served(self, data: dict[str, Any]) -> None:
        # Informational only: a name that is no short printable string is left out, not retried.
        name = data.get("model")
        if isinstance(name, str) and 0 < len(name) <= MAX_MODEL_NAME and name.isprintable():
            self.served_models[name] += 1

    def _client_error(self, resp: httpx.Response, server: str) -> str:
        """A one-line message for a non-retryable HTTP error, with the server's own explanation."""
        try:
            detail = resp.json()
            detail = detail.get("error", detail) if isinstance(detail, dict) else detail
            detail = detail.get("message", detail) if isinstance(detail, dict) else detail
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            detail = resp.text
        text = self._redact(" ".join(str(detail).split()))
        text = text if len(text) <= 300 else text[:297] + "..."
        hint = " (check OPENAI_API_KEY)" if resp.status_code in (401, 403) else ""
        return f"{server}: HTTP {resp.status_code}{hint}: {text}"

    def _redact(self, text: str) -> str:
        # Some servers echo the key they rejected; never let it reach a message or log.
        return text.replace(self._api_key, "***") if self._api_key else text
