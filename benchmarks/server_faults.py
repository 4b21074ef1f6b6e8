"""Benchmark 7: elicitation against a server that fails 30% of first attempts, some by hanging 40 s.

A local OpenAI-compatible server (127.0.0.1, no network) answers each request from its seed:
on a request's first attempt, 30% fail, a third of those by holding the connection for 40 s
before an HTTP 503, the rest with an immediate 503; retries succeed. tomdistill asks 60 samples
(12 scenarios x 5) with 8 requests in flight and retries, as `tomdistill elicit` would.

Before streaming (issue 18), elicitation handed the backend chunks of 4 x 8 requests and waited
for each chunk's slowest member, so every chunk with a hanging request cost 40 s. Goal: < 50 s.

    python benchmarks/server_faults.py                # the installed tomdistill
    PYTHONPATH=/path/to/old/src python benchmarks/server_faults.py --label before

Prints one Markdown row and writes benchmarks/results/server_faults_LABEL.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FAULT_SHARE = 0.3
HANG_S = 40.0
SAMPLES, SCENARIOS, CONCURRENCY = 5, 12, 8


def _fault(seed: int) -> str | None:
    """'hang', 'error' or None for a request's first attempt, fixed by its seed."""
    u = int.from_bytes(hashlib.sha256(str(seed).encode()).digest()[:4], "big") / 2**32
    if u >= FAULT_SHARE:
        return None
    return "hang" if u < FAULT_SHARE / 3 else "error"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: dict[int, int] = {}
        self.lock = threading.Lock()
        self.faults = {"hang": 0, "error": 0}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        seed = int(body.get("seed", 0))
        with self.server.lock:
            attempt = self.server.seen.get(seed, 0)
            self.server.seen[seed] = attempt + 1
            fault = _fault(seed) if attempt == 0 else None
            if fault:
                self.server.faults[fault] += 1
        if fault == "hang":
            time.sleep(HANG_S)
        if fault:
            return self._send(503, {"error": {"message": "overloaded"}})
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": "C"}}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 1}})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up on this connection
            pass


def _options(url: str):
    try:
        from tomdistill.models.base import ModelOptions
    except ImportError:  # tomdistill before issue 17 kept ModelOptions in the registry
        from tomdistill.models.registry import ModelOptions
    return ModelOptions(base_url=url, concurrency=CONCURRENCY, timeout_s=120.0, max_retries=6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="streaming", help="Name of this measurement (file name, table row).")
    args = parser.parse_args()

    from tomdistill.elicit import elicit
    from tomdistill.models.registry import load_model
    from tomdistill.scenarios import load_library
    from tomdistill.store import Store

    server = _Server()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    scenarios = load_library().scenarios("train")[:SCENARIOS]
    model = load_model("openai:fake", _options(url))
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "faults.db") as store:
        started = time.perf_counter()
        summary = elicit(store, model, scenarios, run_name="faults", samples=SAMPLES)
        wall = time.perf_counter() - started
    model.close()
    server.shutdown()
    result = {"label": args.label, "samples": summary.new, "wall_s": round(wall, 1), "faults": server.faults,
              "retries": summary.retries, "concurrency": CONCURRENCY, "hang_s": HANG_S, "goal_s": 50}
    out = Path(__file__).parent / "results" / f"server_faults_{args.label}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("| label | samples | hangs (40 s) | errors | retries | wall s |")
    print("|---|---|---|---|---|---|")
    print(f"| {args.label} | {summary.new} | {server.faults['hang']} | {server.faults['error']} | {summary.retries} "
          f"| {wall:.1f} |")


if __name__ == "__main__":
    main()
