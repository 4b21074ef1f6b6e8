"""Benchmark 10: how the cost of elicitation grows with the number of scenarios, and what an
exact label costs against sampling to the same precision (issue 18, item 4).

**Scenarios.** A generated library file holds `ceil(max size / 4)` user contexts (roles x
counterparts x settings, each framing as long as a built-in one); each pairs with the 4 built-in
training games, so the library holds `4 x contexts` scenarios of split `bulk`. This is the way a
user brings contexts in bulk: one TOML file passed with `--library`.

**Growth.** For each model and each size N (10, 100, 1,000 by default), the first N bulk
scenarios are elicited into a fresh run through `tomdistill.elicit.elicit`, the function behind
`tomdistill elicit` (store writes included), in the two ways the pipeline asks:
- score mode: the exact P(action) of the `answer` protocol, one forward pass per scenario, in
  float32 (the dtype `auto` picks for scoring);
- sample mode: one `motivated` reply per scenario (a decision and its motivation, the text
  training needs), in the default dtype (bf16 on this CPU), at most 96 new tokens.
Model loading is timed apart, once per model and mode.

**Exact label vs samples.** A sampled estimate of P(C) reaches +-2 points (95% normal interval)
after `1.96^2 p (1 - p) / 0.02^2` valid samples (2,401 at p = 0.5). For the first
`--label-scenarios` bulk scenarios, p comes from score mode; the cost of one sampled decision
is measured with the cheapest sampled protocol (`answer`, short replies) at `--label-samples`
samples per scenario, which lets the backend share each prompt's prefill; the samples needed
are divided by the share of replies the parser can read. This is a lower bound for sampling's
cost: it assumes each readable reply is a draw from the scored distribution (benchmark 2 shows
parsed replies can differ from it, which only makes sampling worse).

    python benchmarks/cost_growth.py --sizes-for default:teacher=10,100   # what benchmarks/README.md shows
    python benchmarks/cost_growth.py --models default:student --sizes 10,100

Prints Markdown tables and writes benchmarks/results/cost_growth.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

GAMES_PER_CONTEXT = 4  # the built-in training games a bulk context pairs with
Z95 = 1.959964

ROLES = [
    ("the owner of a bakery", "the owner of another bakery"),
    ("a farmer", "a neighbouring farmer"),
    ("the manager of a hotel", "the manager of another hotel"),
    ("a software contractor", "another contractor"),
    ("the head of a school", "the head of another school"),
    ("a fishing cooperative's chair", "the chair of another cooperative"),
    ("a city councillor", "a councillor from the next town"),
    ("a research group leader", "the leader of another group"),
    ("the captain of a cargo ship", "the captain of another ship"),
    ("a hospital administrator", "an administrator at another hospital"),
    ("a tenant in a shared building", "another tenant"),
    ("a street musician", "another musician"),
    ("a wine grower", "a grower from the next valley"),
    ("a game developer", "a developer at a rival studio"),
    ("a taxi driver", "another driver"),
    ("the organiser of a festival", "the organiser of another festival"),
    ("a museum curator", "a curator at another museum"),
    ("a water utility's engineer", "an engineer at the neighbouring utility"),
    ("a delivery company's dispatcher", "a dispatcher at another company"),
    ("a beekeeper", "another beekeeper"),
    ("a data centre operator", "another operator"),
    ("a graduate student", "a student from another lab"),
    ("a sports club's treasurer", "the treasurer of another club"),
    ("a ferry operator", "the operator of a competing ferry"),
    ("a pharmacist", "the pharmacist across the street"),
]
SETTINGS = [
    "over the use of a shared resource",
    "over a joint order from a supplier",
    "over how much effort to put into a common task",
    "over a deadline that affects you both",
    "over the price you each ask this season",
    "over sharing a piece of equipment",
    "over a rule neither of you is forced to keep",
    "over a grant you could apply for together",
    "over cleaning up after a shared event",
    "over how to split a windfall",
]


def framing(role: str, counterpart: str, setting: str) -> str:
    """A context text in the built-in style: who you are, who the coplayer is, one meeting, no talk."""
    return (f"You are {role}, and you must decide something {setting} with {counterpart}. The two of you "
            "have no history together, good or bad, and expect no further dealings after this. You decide "
            "once, at the same time, and neither of you can speak to the other before deciding. From here "
            f"on {counterpart} is called the coplayer.")


def bulk_library(contexts: int, path: Path) -> Path:
    """Write a library file with `contexts` generated contexts of split `bulk`."""
    combos = list(itertools.product(ROLES, SETTINGS))
    if contexts > len(combos):
        raise SystemExit(f"at most {len(combos)} generated contexts ({len(combos) * GAMES_PER_CONTEXT} scenarios)")
    entries = []
    for i, ((role, counterpart), setting) in enumerate(combos[:contexts]):
        entries.append(f'[[context]]\nid = "bulk{i:04d}"\nname = "Bulk context {i}"\nsplit = "bulk"\n'
                       f'framing = """\n{framing(role, counterpart, setting)}\n"""\n')
    path.write_text("# Generated by benchmarks/cost_growth.py\n\n" + "\n".join(entries))
    return path


def samples_for_precision(p: float, half_width: float = 0.02) -> int:
    """Valid samples for a 95% normal interval of +-half_width around p."""
    return max(1, math.ceil(Z95 ** 2 * p * (1 - p) / half_width ** 2))


def _timed_elicit(store: Any, model: Any, scenarios: list, **kwargs: Any) -> tuple[float, Any]:
    from tomdistill.elicit import elicit

    started = time.perf_counter()
    summary = elicit(store, model, scenarios, **kwargs)
    return time.perf_counter() - started, summary


def _open(spec: str, mode: str) -> tuple[Any, float]:
    from tomdistill.ask import open_model

    started = time.perf_counter()
    opened = open_model(spec, mode=mode)
    return opened.model, time.perf_counter() - started


def growth_rows(spec: str, bulk: list, sizes: list[int], store: Any) -> list[dict]:
    """Seconds per scenario in score mode and in sample mode, for each size."""
    from tomdistill.models.base import SamplingSettings

    rows = []
    for mode in ("score", "sample"):
        model, load_s = _open(spec, mode)
        try:
            for n in sizes:
                kwargs = ({"protocol": "answer", "mode": "score"} if mode == "score" else
                          {"protocol": "motivated", "mode": "sample", "samples": 1,
                           "settings": SamplingSettings(max_new_tokens=96)})
                wall, summary = _timed_elicit(store, model, bulk[:n], run_name=f"{spec}-{mode}-{n}", **kwargs)
                rows.append({"model": spec, "mode": mode, "scenarios": n, "seconds": round(wall, 1),
                             "s_per_scenario": round(wall / n, 3), "load_s": round(load_s, 1),
                             "valid": sum(s.valid for s in summary.scenarios)})
                print(f"  {spec} {mode} {n}: {wall:.1f} s ({wall / n:.3f} s/scenario)", flush=True)
        finally:
            model.close()
    return rows


def label_row(spec: str, bulk: list, scenarios: int, per_scenario: int, store: Any) -> dict:
    """The exact label's cost against the samples that reach +-2 points, on `scenarios` bulk scenarios."""
    from tomdistill.ask import score_candidates

    chosen = bulk[:scenarios]
    model, _ = _open(spec, "score")
    try:
        score_s, scored = _timed_elicit(store, model, chosen, run_name=f"{spec}-label-score", mode="score")
    finally:
        model.close()
    probs = {s.id: next(iter(store.samples(scored.run.id, scenario=s.id))).probs for s in chosen}
    model, _ = _open(spec, "sample")
    try:
        sample_s, sampled = _timed_elicit(store, model, chosen, run_name=f"{spec}-label-sample", mode="sample",
                                          protocol="answer", samples=per_scenario)
    finally:
        model.close()
    valid = sum(s.valid for s in sampled.scenarios) / (scenarios * per_scenario)
    per_sample = sample_s / (scenarios * per_scenario)
    needed = [samples_for_precision(probs[s.id][score_candidates(s)[0]]) / max(valid, 1e-9) for s in chosen]
    mean_needed = sum(needed) / len(needed)
    return {"model": spec, "scenarios": scenarios, "score_s_per_scenario": round(score_s / scenarios, 3),
            "sample_s_per_reply": round(per_sample, 4), "valid_share": round(valid, 3),
            "replies_for_2_points": round(mean_needed), "sampling_s_per_scenario": round(mean_needed * per_sample, 1),
            "ratio": round(mean_needed * per_sample / (score_s / scenarios))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default:student,default:teacher")
    parser.add_argument("--sizes", default="10,100,1000", help="Scenario counts, comma-separated.")
    parser.add_argument("--sizes-for", action="append", default=[], metavar="MODEL=N,N",
                        help="Other counts for one model (e.g. default:teacher=10,100: its 1,000 take ~50 min here).")
    parser.add_argument("--label-scenarios", type=int, default=8, help="Scenarios for the exact-label comparison.")
    parser.add_argument("--label-samples", type=int, default=32, help="Sampled answers per scenario to time one sample.")
    args = parser.parse_args()
    sizes = {spec: _counts(args.sizes) for spec in args.models.split(",")}
    sizes |= {spec: _counts(counts) for spec, _, counts in (item.partition("=") for item in args.sizes_for)}

    from tomdistill.scenarios import load_library
    from tomdistill.store import Store

    out = Path(__file__).parent / "results" / "cost_growth.json"
    # Rows of models not run now stay from an earlier invocation, so models can run one at a time.
    result: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {"growth": [], "label": []}
    for table in ("growth", "label"):
        result[table] = [r for r in result[table] if r["model"] not in sizes]
    with tempfile.TemporaryDirectory() as tmp:
        most = max(max(counts) for counts in sizes.values())
        path = bulk_library(math.ceil(max(most, args.label_scenarios) / GAMES_PER_CONTEXT), Path(tmp) / "bulk.toml")
        bulk = load_library([path]).scenarios("bulk")
        store = Store(Path(tmp) / "cost.db")
        try:
            for spec, counts in sizes.items():
                result["growth"] += growth_rows(spec, bulk, counts, store)
                result["label"].append(label_row(spec, bulk, args.label_scenarios, args.label_samples, store))
                print(f"  {spec} label: {result['label'][-1]}", flush=True)
                out.write_text(json.dumps(result, indent=2) + "\n")
        finally:
            store.close()
    print_tables(result)


def _counts(text: str) -> list[int]:
    return sorted(int(n) for n in text.split(","))


def print_tables(result: dict) -> None:
    print("| model | mode | scenarios | seconds | s / scenario | valid | model load s |")
    print("|---|---|---|---|---|---|---|")
    for r in result["growth"]:
        print(f"| {r['model']} | {r['mode']} | {r['scenarios']} | {r['seconds']} | {r['s_per_scenario']} "
              f"| {r['valid']} | {r['load_s']} |")
    print()
    print("| model | exact label (score), s / scenario | one sampled answer, s | readable | answers for +-2 points "
          "| sampling, s / scenario | sampling / score |")
    print("|---|---|---|---|---|---|---|")
    for r in result["label"]:
        print(f"| {r['model']} | {r['score_s_per_scenario']} | {r['sample_s_per_reply']} | {r['valid_share']} "
              f"| {r['replies_for_2_points']} | {r['sampling_s_per_scenario']} | {r['ratio']}x |")


if __name__ == "__main__":
    main()
