"""A local OpenAI-compatible server that misbehaves on purpose, shared by the server test modules.

It listens on 127.0.0.1 only and decides each reply from the request's seed and how often it has
seen that seed, so failures are deterministic whatever order concurrent requests arrive in. Test
modules load its `serve` and `models` fixtures with `pytest_plugins = ["fakeserver_fixtures"]`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "sk-planted-test-key-0123456789"

#: plan(seed, attempt) -> action; attempt counts from 0 per seed.
Plan = Callable[[int, int], str]

#: Score mode with the reply prefix "Answer:". The answer token's top log-probs (what a server
#: that continues "Answer:" lists, and what sits at the answer token of a sampled reply).
AFTER_PREFIX = [(" C", 0.5), (" D", 0.3), (" <", 0.1), ("C", 0.05)]
#: The first token of a fresh reply: what a server that ignores continue_final_message lists.
FRESH_START = [("Answer", 0.9), ("C", 0.06)]
#: A sampled motivated reply, token by token; "miss" replies skip the prefix.
SAMPLED = ["Answer", ":", " C", "\n", "Motivation", ":", " fair", "."]
MISSED = ["C", "\n", "Motivation", ":", " fair", "."]
#: Actions that answer with log-probs the way servers do: "honours" continues a final assistant
#: message (vLLM), "rejects" answers continue_final_message with HTTP 400 (OpenAI), "ignores"
#: drops it (a fresh reply); all three sample replies that begin with the prefix, "miss" one that does not.
PREFIX_ACTIONS = ("honours", "rejects", "ignores", "miss")


def logprob_reply(tokens: list[str], answer_at: int | None = None) -> dict:
    """A chat completion of `tokens` with per-token logprobs; AFTER_PREFIX is listed at `answer_at`,
    FRESH_START at a fresh reply's first token, the sampled token alone elsewhere."""
    def top(i: int, token: str) -> list[tuple[str, float]]:
        if i == answer_at:
            return AFTER_PREFIX
        return FRESH_START if token == "Answer" and i == 0 else [(token, 0.9)]

    content = [{"token": t, "logprob": math.log(dict(top(i, t)).get(t, 0.01)),
                "top_logprobs": [{"token": a, "logprob": math.log(p)} for a, p in top(i, t)]}
               for i, t in enumerate(tokens)]
    return {"choices": [{"message": {"role": "assistant", "content": "".join(tokens)}, "logprobs": {"content": content}}],
            "usage": {"prompt_tokens": 13, "completion_tokens": len(tokens)}}


def prefix_reply(action: str, body: dict) -> tuple[int, dict]:
    """(status, reply) of a server of kind `action` (see PREFIX_ACTIONS) to a score request."""
    last = body["messages"][-1]
    continued = body.get("continue_final_message") is True and body.get("add_generation_prompt") is False
    if continued and action == "rejects":
        return 400, {"error": {"message": "Unrecognized request argument supplied: continue_final_message"}}
    if continued and action == "honours" and last["role"] == "assistant" and last["content"] == "Answer:":
        return 200, logprob_reply([" C"], answer_at=0)
    if body.get("max_tokens") == 1:  # a fresh reply's first token
        return 200, logprob_reply(["Answer"])
    return 200, logprob_reply(MISSED) if action == "miss" else logprob_reply(SAMPLED, answer_at=2)


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # hung handlers must not delay shutdown
    request_queue_size = 128  # the default listen(5) drops SYNs under a burst: a 1 s stall, a false timeout

    def __init__(self, plan: Plan, delay_s: float = 0.0, replies: dict[str, dict | bytes] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        #: action -> a 200 reply body of the test's own making (for shapes `Handler.act` lacks)
        self.plan, self.delay_s, self.replies = plan, delay_s, replies or {}
        self.lock = threading.Lock()
        self.attempts: Counter[int] = Counter()
        self.actions: Counter[str] = Counter()
        self.auth: list[str | None] = []
        self.bodies: list[dict] = []
        self.in_flight = self.max_in_flight = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request, client_address) -> None:  # clients that hung up: expected here
        pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        seed = body.get("seed", 0)
        with srv.lock:
            attempt = srv.attempts[seed]
            srv.attempts[seed] += 1
            action = srv.plan(seed, attempt)
            srv.actions[action] += 1
            srv.auth.append(self.headers.get("Authorization"))
            srv.bodies.append(body)
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            time.sleep(srv.delay_s)
            self.act(action, seed, body)
        finally:
            with srv.lock:
                srv.in_flight -= 1

    def act(self, action: str, seed: int, body: dict) -> None:
        if self.path != "/v1/chat/completions":
            return self.send(404, {"error": {"message": f"no route {self.path}"}})
        if action in self.server.replies:
            return self.send(200, self.server.replies[action])
        if action == "hang":
            time.sleep(1.5)
        elif action.startswith("slow:"):  # a reply that takes this many seconds, then is fine
            time.sleep(float(action[5:]))
            self.act("ok", seed, body)
        elif action == "close":
            self.close_connection = True  # read the request, answer nothing
        elif action in ("500", "503"):
            self.send(int(action), {"error": {"message": "overloaded"}})
        elif action.startswith("429:"):
            self.send(429, {"error": {"message": "slow down"}}, {"Retry-After": action[4:]})
        elif action == "401":
            self.send(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}})
        elif action == "400nested":  # an error body nested beyond Python's recursion limit
            self.send(400, b"[" * 100_000 + b"]" * 100_000)
        elif action == "badgzip":  # a body that says gzip and is not: httpx fails to decode it
            self.send(200, b"not gzip at all", {"Content-Encoding": "gzip"})
        elif action == "badjson":
            self.send(200, b'{"choices": [ {"message": ')
        elif action == "nochoices":
            self.send(200, {"choices": []})
        elif action in ("empty", "null"):
            self.send(200, {"choices": [{"message": {"role": "assistant", "content": "" if action == "empty" else None}}]})
        elif action == "prose":  # valid JSON, but no decision in it: stored as invalid, never dropped
            self.send(200, {"choices": [{"message": {"role": "assistant", "content": "I would rather not say."}}]})
        elif action in PREFIX_ACTIONS:
            self.send(*prefix_reply(action, body))
        elif action == "logprobs":
            top = [("C", 0.5), (" C", 0.1), ("D", 0.2), ("The", 0.15)]
            content = [{"token": "C", "logprob": math.log(0.5),
                        "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in top]}]
            self.send(200, {"choices": [{"message": {"content": "C"}, "logprobs": {"content": content}}]})
        else:
            text = f"C\nMotivation: seed was {seed}"
            self.send(200, {"choices": [{"message": {"role": "assistant", "content": text}}],
                            "usage": {"prompt_tokens": 11, "completion_tokens": 7}})

    def send(self, status: int, payload: dict | bytes, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout test); nothing to answer
            pass
