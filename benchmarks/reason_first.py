"""Benchmark 6: does a model decide differently after reasoning, and do its games differ then?

For each scenario of a split it measures P(cooperate) two ways, both exact up to the choice of
motivations (no sampled answers):
- **decision first** (`motivated` protocol, score mode): one forward pass, the decision right
  after "Answer:", before any motivation;
- **reason first** (`reasoned` protocol, score mode): N sampled motivations, the decision scored
  right after each, averaged. Its uncertainty comes from the motivations only: the table gives
  the standard error of that mean.

Game structure is what the product is after: within one context, do the four games get
different rates? Per context it reports the spread (largest minus smallest game rate) and, for
reason first, a one-way ANOVA across the games on the per-motivation probabilities: a small p
says the games differ by more than the motivations' own scatter.

    python benchmarks/reason_first.py --model default:teacher --samples 8
    python benchmarks/reason_first.py --model default:student --samples 8 --split train

Runs go into a store in the work folder (resumable: a rerun scores only what is missing) and
the summary into benchmarks/results/reason_first_<model>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from scipy.stats import f_oneway

from tomdistill.elicit import elicit
from tomdistill.models.base import SamplingSettings
from tomdistill.models.registry import load_model
from tomdistill.samples import current_samples, sample_rate
from tomdistill.scenarios import load_library
from tomdistill.store import Store

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def measure(store: Store, model_spec: str, split: str, samples: int, seed: int) -> dict[str, Any]:
    """Both measurements for every matrix scenario of `split`; per-cell values and timings."""
    library = load_library()
    scenarios = [s for s in library.scenarios(split) if not s.numeric]
    model = load_model(model_spec)
    settings = SamplingSettings()  # the paper's temperature 0.8, for sampling and scoring alike
    tag = model_spec.replace(":", "-")
    timings = {}
    for protocol, n in (("motivated", 1), ("reasoned", samples)):
        started = time.perf_counter()
        elicit(store, model, scenarios, run_name=f"{tag}-{split}-{protocol}-s{seed}", protocol=protocol,
               mode="score", samples=n, settings=settings, seed=seed,
               progress=lambda done, total, p=protocol: print(f"\r{p}: {done}/{total}", end="", flush=True))
        print()
        timings[protocol] = round(time.perf_counter() - started, 1)
    cells = []
    for scenario in scenarios:
        row: dict[str, Any] = {"scenario": scenario.id, "context": scenario.context.id, "game": scenario.game.id}
        for protocol in ("motivated", "reasoned"):
            run = store.require_run(f"{tag}-{split}-{protocol}-s{seed}")
            values = [sample_rate(scenario, s) for s in current_samples(store, run, scenario) if s.valid_mass]
            row[protocol] = values
        cells.append(row)
    return {"model": model_spec, "split": split, "samples": samples, "seed": seed, "seconds": timings,
            "cells": cells}


def context_summary(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per context: each game's rate both ways, the spreads, and the ANOVA across games (reason first)."""
    out = []
    for context in dict.fromkeys(c["context"] for c in cells):
        mine = [c for c in cells if c["context"] == context]
        first = [statistics.fmean(c["motivated"]) for c in mine]
        reasoned = [statistics.fmean(c["reasoned"]) for c in mine]
        groups = [c["reasoned"] for c in mine]
        p = float(f_oneway(*groups).pvalue) if all(len(g) > 1 for g in groups) else None
        out.append({
            "context": context, "games": [c["game"] for c in mine],
            "decision_first": first, "reason_first": reasoned,
            "reason_first_se": [statistics.stdev(g) / len(g) ** 0.5 if len(g) > 1 else None for g in groups],
            "spread_decision_first": max(first) - min(first), "spread_reason_first": max(reasoned) - min(reasoned),
            "anova_p": p,
        })
    return out


def markdown(record: dict[str, Any]) -> str:
    """The per-context table: game rates decision first -> reason first (± s.e.), spreads, ANOVA p."""
    games = record["contexts"][0]["games"]
    head = (f"{record['model']}, split {record['split']}, {record['samples']} motivations per scenario, "
            f"T 0.8; seconds: {record['seconds']}\n\n"
            "| context | " + " | ".join(f"{g} P(C) first -> reasoned" for g in games)
            + " | spread first | spread reasoned | ANOVA p (reasoned) |\n|---|" + "---|" * (len(games) + 3))
    lines = [head]
    for c in record["contexts"]:
        cols = [f"{100 * a:.0f} -> {100 * b:.0f} ± {100 * (se or 0):.0f}"
                for a, b, se in zip(c["decision_first"], c["reason_first"], c["reason_first_se"])]
        p = "–" if c["anova_p"] is None else f"{c['anova_p']:.3f}"
        lines.append(f"| {c['context']} | " + " | ".join(cols)
                     + f" | {100 * c['spread_decision_first']:.1f} | {100 * c['spread_reason_first']:.1f} | {p} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default:teacher", help="Model spec (default: the embedded teacher).")
    parser.add_argument("--samples", type=int, default=8, help="Sampled motivations per scenario (reason first).")
    parser.add_argument("--split", default="train", help="Split whose matrix scenarios are measured.")
    parser.add_argument("--seed", type=int, default=0, help="Run seed of the sampled motivations.")
    parser.add_argument("--work", type=Path, default=ROOT / "recipes-work", help="Folder for the store (reused).")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    with Store(args.work / "reason_first.sqlite") as store:
        record = measure(store, args.model, args.split, args.samples, args.seed)
    record["contexts"] = context_summary(record["cells"])
    name = f"reason_first_{args.model.replace(':', '-')}_{args.split}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=1))
    text = markdown(record)
    (RESULTS / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
