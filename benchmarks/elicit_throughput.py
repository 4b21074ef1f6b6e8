"""Benchmark 1: elicitation throughput of tomdistill vs a loop like the paper's.

The baseline mimics a one-sample-at-a-time loop: one `transformers` pipeline call per sample,
same model, same prompts, same max_new_tokens and temperature, no sleep. tomdistill runs the
same requests through its hf backend (continuous batching over a KV cache, one prefill per
distinct prompt, per-sample seeds, the default dtype), and once more in float32 to separate the
decoding loop from the bf16 gain. The workload is what `tomdistill elicit` sends: several samples
of each scenario, side by side.

    python benchmarks/elicit_throughput.py --model default:student --scenarios 4 --per-scenario 12
    python benchmarks/elicit_throughput.py --model default:teacher --scenarios 4 --per-scenario 6
    python benchmarks/elicit_throughput.py --model default:student --scenarios 20 --per-scenario 1 --repeats 3
    python benchmarks/elicit_throughput.py --model default:student --scenarios 53 --per-scenario 1 --repeats 2

`--repeats N` runs every variant N times, interleaved, and reports the median and the range.

Prints one Markdown table row per variant and writes benchmarks/results/elicit_<model>_<scenarios>x<per-scenario>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import transformers

from tomdistill.models.base import GenRequest, ModelOptions, SamplingSettings
from tomdistill.models.registry import load_model, local_model_path
from tomdistill.scenarios import load_library, render


def requests(n_scenarios: int, per_scenario: int) -> list[GenRequest]:
    """`per_scenario` samples of each of the first `n_scenarios` scenarios (the train split first,
    then the held-out ones), side by side, in the order `tomdistill elicit` asks for them."""
    scenarios = sorted(load_library().scenarios(), key=lambda s: s.split != "train")[:n_scenarios]
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


VARIANTS = ("paper-style loop (pipeline per sample, fp32)", "tomdistill (fp32, batched)",
            "tomdistill (default dtype, batched)")


def run_variant(name: str, spec: str, reqs: list[GenRequest], settings: SamplingSettings, batch: int | None) -> dict:
    if name.startswith("paper"):
        return baseline(spec, reqs, settings)
    return ours(spec, reqs, settings, "float32" if "fp32" in name else "auto", batch)


def summarize(name: str, runs: list[dict], samples: int, base_runs: list[dict]) -> dict:
    """Median and range over the repeats; the speed-up compares medians of samples/s and of
    generated tokens/s (reply lengths differ between loops, so both are given)."""
    def median(values: list[float]) -> float:
        return statistics.median(values)

    sps = [samples / r["seconds"] for r in runs]
    tps = [r["tokens"] / r["seconds"] for r in runs]
    base_sps = median([samples / r["seconds"] for r in base_runs])
    base_tps = median([r["tokens"] / r["seconds"] for r in base_runs])
    return {"variant": name, "repeats": len(runs), "seconds": [round(r["seconds"], 2) for r in runs],
            "samples_per_s": round(median(sps), 3), "samples_per_s_range": [round(min(sps), 3), round(max(sps), 3)],
            "tokens_per_s": round(median(tps), 1), "tokens_per_s_range": [round(min(tps), 1), round(max(tps), 1)],
            "speedup_samples": round(median(sps) / base_sps, 2), "speedup_tokens": round(median(tps) / base_tps, 2),
            "speedup_samples_range": [round(min(sps) / base_sps, 2), round(max(sps) / base_sps, 2)],
            "tokens": [r["tokens"] for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default:student")
    parser.add_argument("--scenarios", type=int, default=4, help="How many scenarios: the 20 train ones first, then held-out ones (53 in all).")
    parser.add_argument("--per-scenario", type=int, default=8, help="Samples per scenario.")
    parser.add_argument("--batch-size", type=int, default=None, help="hf backend batch (default: the backend's).")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1,
                        help="Runs of each variant, interleaved (A B C A B C ...) so drift hits all alike.")
    parser.add_argument("--variants", default=",".join(str(i) for i in range(len(VARIANTS))),
                        help="Indexes into: " + "; ".join(f"{i}: {v}" for i, v in enumerate(VARIANTS)))
    args = parser.parse_args()
    settings = SamplingSettings(temperature=0.8, max_new_tokens=args.max_new_tokens)
    reqs = requests(args.scenarios, args.per_scenario)
    chosen = [VARIANTS[int(i)] for i in args.variants.split(",")]
    runs: dict[str, list[dict]] = {name: [] for name in chosen}
    for _ in range(args.repeats):
        for name in chosen:
            runs[name].append(run_variant(name, args.model, reqs, settings, args.batch_size))
    base_runs = runs.get(VARIANTS[0]) or runs[chosen[0]]
    rows = [summarize(name, r, len(reqs), base_runs) for name, r in runs.items()]
    print("| model | variant | samples | repeats | samples/s (median, range) | gen tok/s (median, range) "
          "| speed-up samples/s (range) | speed-up tok/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {args.model} | {r['variant']} | {len(reqs)} | {r['repeats']} | {r['samples_per_s']:.2f} "
              f"({r['samples_per_s_range'][0]:.2f}-{r['samples_per_s_range'][1]:.2f}) | {r['tokens_per_s']:.0f} "
              f"({r['tokens_per_s_range'][0]:.0f}-{r['tokens_per_s_range'][1]:.0f}) | {r['speedup_samples']:.1f}x "
              f"({r['speedup_samples_range'][0]:.1f}-{r['speedup_samples_range'][1]:.1f}) | {r['speedup_tokens']:.1f}x |")
    name = f"elicit_{args.model.replace(':', '_')}_{args.scenarios}x{args.per_scenario}.json"
    out = Path(__file__).parent / "results" / name
    out.write_text(json.dumps({"model": args.model, "samples": len(reqs), "max_new_tokens": args.max_new_tokens,
                               "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
                               "transformers": transformers.__version__, "torch": torch.__version__, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
