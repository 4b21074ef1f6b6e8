"""Benchmark: single-stream generation speed of the llamacpp backend vs the hf backend.

The same requests (the motivated protocol over the train scenarios, one sample each, per-sample
seeds) go through `llamacpp:<model>` (the quantised GGUF, one request at a time, as that backend
always runs) and through `<model>` on the hf backend in its default batches and dtype (what
`tomdistill elicit` does); `--hf-single-stream` adds hf one request at a time.

    python benchmarks/llamacpp_vs_hf.py --model default:student
    python benchmarks/llamacpp_vs_hf.py --model default:teacher --hf-single-stream

Prints one Markdown table row per backend and writes benchmarks/results/llamacpp_vs_hf_<model>.json.
The CPU must be otherwise idle: llama.cpp's threads wait for each other at every step, so a busy
core slows it far more than it slows torch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from tomdistill.models.base import GenRequest, ModelOptions, SamplingSettings
from tomdistill.models.registry import load_model
from tomdistill.scenarios import load_library, render


def requests(n: int) -> list[GenRequest]:
    scenarios = load_library().scenarios("train")
    return [GenRequest(i, render(scenarios[i % len(scenarios)], "motivated"), seed=i) for i in range(n)]


def measure(spec: str, reqs: list[GenRequest], settings: SamplingSettings, options: ModelOptions,
            single_stream: bool) -> dict:
    model = load_model(spec, options)
    list(model.generate(reqs[:1], settings.model_copy(update={"max_new_tokens": 2})))  # warm-up: first-call setup
    started = time.perf_counter()
    if single_stream:
        results = [r for req in reqs for r in model.generate([req], settings)]
    else:
        results = list(model.generate(reqs, settings))
    seconds = time.perf_counter() - started
    info = model.info().details
    model.close()
    return {"seconds": seconds, "tokens": sum(r.completion_tokens or 0 for r in results),
            "details": {k: info.get(k) for k in ("dtype", "n_threads", "llama_cpp", "torch") if k in info}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default:student", help="default:student, default:teacher, hf:<folder>")
    parser.add_argument("--gguf", help="GGUF file for llamacpp: when --model is not a default:* model")
    parser.add_argument("--samples", type=int, default=20, help="requests (cycling over the 20 train scenarios)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: the backend's choice)")
    parser.add_argument("--hf-single-stream", action="store_true", help="also time hf one request at a time")
    args = parser.parse_args()
    settings = SamplingSettings(temperature=0.8, max_new_tokens=args.max_new_tokens)
    reqs = requests(args.samples)
    gguf = args.gguf or args.model  # default:<name> works for both backends
    variants = {
        "llamacpp (GGUF, single stream)": lambda: measure(
            f"llamacpp:{gguf}", reqs, settings, ModelOptions(extra={"n_threads": args.threads} if args.threads else {}),
            single_stream=True),
        "hf (default dtype, batched)": lambda: measure(args.model, reqs, settings, ModelOptions(), single_stream=False),
    }
    if args.hf_single_stream:
        variants["hf (default dtype, single stream)"] = lambda: measure(
            args.model, reqs, settings, ModelOptions(), single_stream=True)
    print("| model | backend | samples | s | samples/s | gen tok/s |")
    print("|---|---|---|---|---|---|", flush=True)
    rows = {}
    for name, run in variants.items():
        rows[name] = r = run()
        r["samples_per_s"] = args.samples / r["seconds"]
        r["tokens_per_s"] = r["tokens"] / r["seconds"]
        print(f"| {args.model} | {name} | {args.samples} | {r['seconds']:.1f} | {r['samples_per_s']:.2f} | "
              f"{r['tokens_per_s']:.1f} |", flush=True)
    out = Path(__file__).parent / "results" / f"llamacpp_vs_hf_{args.model.replace(':', '_').replace('/', '_')}.json"
    out.write_text(json.dumps({"model": args.model, "samples": args.samples, "max_new_tokens": args.max_new_tokens,
                               "temperature": settings.temperature, "cpus": len(os.sched_getaffinity(0)),
                               "load_avg_1m": os.getloadavg()[0], "machine": platform.processor() or platform.machine(),
                               "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
