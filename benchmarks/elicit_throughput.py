"""Benchmark 1: elicitation throughput of tomdistill vs a loop like the paper's.

The baseline mimics a one-sample-at-a-time loop: one `transformers` pipeline call per sample,
same model, same prompts, same max_new_tokens and temperature, no sleep. tomdistill runs the
same requests through its hf backend (continuous batching over a KV cache, one prefill per
distinct prompt, per-sample seeds, the default dtype), and once more in float32 to separate the
decoding loop from the bf16 gain. The workload is what `tomdistill elicit` sends: several samples
of each scenario, side by side.

    python benchmarks/elicit_throughput.py --model default:student --scenarios 4 --per-scenario 12
    python benchmarks/elicit_throughput.py --model default:teacher --scenarios 4 --per-scenario 6

Prints one Markdown table row per variant and writes benchmarks/results/elicit_<model>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import transformers

from tomdistill.models.base import GenRequest, ModelOptions, SamplingSettings
from tomdistill.models.registry import load_model, local_model_path
from tomdistill.scenarios import load_library, render


def requests(n_scenarios: int, per_scenario: int) -> list[GenRequest]:
    """`per_scenario` samples of each of the first `n_scenarios` train scenarios, side by side, in
    the order `tomdistill elicit` asks for them."""
    scenarios = load_library().scenarios("train")[:n_scenarios]
    return [GenRequest((s.id, i), render(s, "motivated"), seed=i) for s in scenarios for i in range(per_scenario)]


def baseline(spec: str, reqs: list[GenRequest], settings: SamplingSettings) -> dict:
    pipe = transformers.pipeline("text-generation", model=local_model_path(spec), device="cpu")
    tokens = 0
    started = time.perf_counter()
    for r in reqs:
        torch.manual_seed(r.seed)
        out = pipe(r.messages, max_new_tokens=settings.max_new_tokens, do_sample=True,
                   temperature=settings.temperature, top_p=settings.top_p)
        reply = out[0]["generated_text"][-1]["content"]
        tokens += len(pipe.tokenizer.encode(reply, add_special_tokens=False))
    return {"seconds": time.perf_counter() - started, "tokens": tokens}


def ours(spec: str, reqs: list[GenRequest], settings: SamplingSettings, dtype: str, batch: int | None) -> dict:
    model = load_model(spec, ModelOptions(dtype=dtype, batch_size=batch))
    started = time.perf_counter()
    results = list(model.generate(reqs, settings))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "tokens": sum(r.completion_tokens or 0 for r in results),
            "dtype": str(model.dtype).removeprefix("torch."), "batch": model.batch_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default:student")
    parser.add_argument("--scenarios", type=int, default=4, help="How many train scenarios (of 20).")
    parser.add_argument("--per-scenario", type=int, default=8, help="Samples per scenario.")
    parser.add_argument("--batch-size", type=int, default=None, help="hf backend batch (default: the backend's).")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    settings = SamplingSettings(temperature=0.8, max_new_tokens=args.max_new_tokens)
    reqs = requests(args.scenarios, args.per_scenario)
    args.samples = len(reqs)
    rows = {"paper-style loop (pipeline per sample, fp32)": baseline(args.model, reqs, settings)}
    rows["tomdistill (fp32, batched)"] = ours(args.model, reqs, settings, "float32", args.batch_size)
    rows["tomdistill (default dtype, batched)"] = ours(args.model, reqs, settings, "auto", args.batch_size)
    base = rows["paper-style loop (pipeline per sample, fp32)"]["seconds"]
    print("| model | variant | samples | s | samples/s | gen tok/s | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        r["samples_per_s"] = args.samples / r["seconds"]
        r["tokens_per_s"] = r["tokens"] / r["seconds"]
        r["speedup"] = base / r["seconds"]
        print(f"| {args.model} | {name} | {args.samples} | {r['seconds']:.1f} | {r['samples_per_s']:.2f} | "
              f"{r['tokens_per_s']:.1f} | {r['speedup']:.1f}x |")
    out = Path(__file__).parent / "results" / f"elicit_{args.model.replace(':', '_')}.json"
    out.write_text(json.dumps({"model": args.model, "samples": args.samples, "max_new_tokens": args.max_new_tokens,
                               "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
                               "transformers": transformers.__version__, "torch": torch.__version__, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
