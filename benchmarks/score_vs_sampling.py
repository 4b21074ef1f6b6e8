"""Benchmark 2: score mode vs sampling, for P(C) of the 20 train scenarios.

Score mode reads P(C) from one forward pass per scenario. Sampling estimates it from N replies
per scenario (the paper used 300). This script times both on the same model and prompts (the
`answer` protocol) and checks that they agree: is the score-mode probability inside the 95%
Wilson interval of the sampled share?

Two sampled estimates are compared, because they answer slightly different questions:
- **first token:** the share of replies whose first token is C among those starting with C or
  D. At temperature 1 and top_p 1 this has exactly the score-mode probability as its
  expectation, so disagreement beyond the interval's 5% means a bug.
- **parsed decision:** the share of C among replies the parser reads as a decision (what
  `tomdistill evaluate` uses for sampled runs). A model that starts "C" but then argues for D,
  or opens with other words, makes this differ from score mode for real reasons.

    python benchmarks/score_vs_sampling.py --model default:student --samples 300

Prints a Markdown summary and writes benchmarks/results/score_vs_sampling_<model>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from pathlib import Path

import torch
import transformers
from scipy.stats import binomtest

from tomdistill.ask import score_candidates
from tomdistill.models.base import GenRequest, ModelOptions, SamplingSettings, ScoreRequest
from tomdistill.models.registry import load_model
from tomdistill.scenarios import load_library, render
from tomdistill.scenarios.parse import parse_decision


def wilson(k: int, n: int) -> tuple[float, float] | None:
    if n == 0:
        return None
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


def first_letter(text: str) -> str | None:
    """'C' or 'D' when the reply opens with that action (as score mode counts it), else None."""
    stripped = text.lstrip()
    if stripped[:1] in ("C", "D") and (len(stripped) == 1 or not stripped[1].isalpha()):
        return stripped[0]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default:student")
    parser.add_argument("--samples", type=int, default=300, help="Sampled replies per scenario.")
    parser.add_argument("--max-new-tokens", type=int, default=24, help="The answer protocol's default reply length.")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()

    scenarios = load_library().scenarios("train")
    model = load_model(args.model, ModelOptions(batch_size=args.batch_size))

    started = time.perf_counter()
    scored = {r.key: r for r in model.score(
        [ScoreRequest(s.id, render(s, "answer"), score_candidates(s)) for s in scenarios])}
    score_s = time.perf_counter() - started

    # Temperature 1, no nucleus cut: the sampled first token then follows the scored distribution.
    settings = SamplingSettings(temperature=1.0, top_p=1.0, max_new_tokens=args.max_new_tokens)
    requests = [GenRequest((s.id, i), render(s, "answer"), seed=i) for s in scenarios for i in range(args.samples)]
    started = time.perf_counter()
    replies = list(model.generate(requests, settings))
    sample_s = time.perf_counter() - started
    tokens = sum(r.completion_tokens or 0 for r in replies)

    by_scenario = {s.id: s for s in scenarios}
    first: dict[str, Counter] = {s.id: Counter() for s in scenarios}
    parsed: dict[str, Counter] = {s.id: Counter() for s in scenarios}
    for reply in replies:
        sid = reply.key[0]
        first[sid][first_letter(reply.text)] += 1
        decision = parse_decision(reply.text, by_scenario[sid])
        parsed[sid][decision.action if decision.valid else None] += 1

    rows, inside = [], {"first token": 0, "parsed decision": 0}
    defined = {"first token": 0, "parsed decision": 0}
    for s in scenarios:
        p = scored[s.id].probs["C"]
        row = {"scenario": s.id, "score_p_c": p, "score_mass": scored[s.id].valid_mass}
        for name, counts in (("first token", first[s.id]), ("parsed decision", parsed[s.id])):
            k, n = counts["C"], counts["C"] + counts["D"]
            ci = wilson(k, n)
            row[name] = {"c": k, "n": n, "share": k / n if n else None, "ci": ci,
                         "score_inside": None if ci is None else ci[0] <= p <= ci[1]}
            if ci is not None:
                defined[name] += 1
                inside[name] += ci[0] <= p <= ci[1]
        rows.append(row)

    n_samples = len(requests)
    print(f"| model | score mode, {len(scenarios)} scenarios | sampling, {args.samples} per scenario | speed-up |")
    print("|---|---|---|---|")
    print(f"| {args.model} | {score_s:.1f} s | {sample_s:.1f} s ({n_samples} replies, {tokens / sample_s:.0f} tok/s) "
          f"| {sample_s / score_s:.0f}x |")
    print()
    print("| scenario | score P(C) | first token C/(C+D) | n | 95% CI | inside | parsed C share | n | 95% CI | inside |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        cells = []
        for name in ("first token", "parsed decision"):
            est = row[name]
            ci = est["ci"]
            cells += [f"{est['share']:.3f}" if est["share"] is not None else "-", str(est["n"]),
                      f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-",
                      {True: "yes", False: "**no**", None: "-"}[est["score_inside"]]]
        print(f"| {row['scenario']} | {row['score_p_c']:.3f} | " + " | ".join(cells) + " |")
    for name in ("first token", "parsed decision"):
        print(f"\nscore mode inside the sampled 95% interval ({name}): {inside[name]} of {defined[name]} scenarios")

    out = Path(__file__).parent / "results" / f"score_vs_sampling_{args.model.replace(':', '_')}.json"
    out.write_text(json.dumps({
        "model": args.model, "samples_per_scenario": args.samples, "max_new_tokens": args.max_new_tokens,
        "batch_size": model.batch_size, "score_seconds": score_s, "sample_seconds": sample_s,
        "generated_tokens": tokens, "inside": inside, "defined": defined, "rows": rows,
        "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "transformers": transformers.__version__, "torch": torch.__version__,
    }, indent=2))


if __name__ == "__main__":
    main()
