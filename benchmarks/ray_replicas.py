"""Benchmark 8: elicitation on Ray replicas against one in-process model, same seeds.

The default student in float32 scores every evaluation scenario (score mode) and samples the
train scenarios (sample mode, `--samples` each), three ways: in this process, as one Ray replica
(all cores), and as two Ray replicas (half the cores each) on a local Ray instance. Reports the
wall time of each (model load included: a replica loads its own copy) and how the stored
results compare with the in-process run: sampled texts identical, largest difference in P(action).

    python benchmarks/ray_replicas.py [--samples 4]

Prints a Markdown table and writes benchmarks/results/ray_replicas.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

VARIANTS = {  # name -> ModelOptions fields
    "in-process": {},
    # Ray's address "local" starts a local instance: one replica still runs on Ray.
    "ray, 1 replica": {"replicas": 1, "ray_address": "local", "cpus_per_replica": 2},
    "ray, 2 replicas": {"replicas": 2, "cpus_per_replica": 1},
}


def _elicit_all(store, spec: str, fields: dict, samples: int) -> float:
    """Wall seconds to load `spec` with `fields` and elicit both runs into `store`."""
    from tomdistill.elicit import elicit
    from tomdistill.models.base import ModelOptions
    from tomdistill.models.registry import load_model
    from tomdistill.scenarios import load_library

    library = load_library()
    evaluation = [s for split in ("train", "heldout_context", "heldout_game", "heldout_pgg") for s in library.scenarios(split)]
    started = time.perf_counter()
    model = load_model(spec, ModelOptions(dtype="float32", **fields))
    try:
        elicit(store, model, evaluation, run_name="score", mode="score")
        elicit(store, model, library.scenarios("train"), run_name="sample", samples=samples)
    finally:
        model.close()
    return time.perf_counter() - started


def _compare(reference, store) -> dict:
    """Identical sampled texts and the largest P difference against the in-process run."""
    out = {}
    for run, field in (("sample", "raw_text"), ("score", "probs")):
        ref = {(s.scenario, s.sample_index): s for s in reference.samples(reference.require_run(run).id)}
        got = {(s.scenario, s.sample_index): s for s in store.samples(store.require_run(run).id)}
        assert ref.keys() == got.keys()
        if field == "raw_text":
            out["same_texts"] = f"{sum(ref[k].raw_text == got[k].raw_text for k in ref)}/{len(ref)}"
        else:
            out["max_abs_dp"] = max(abs(ref[k].probs[a] - got[k].probs[a]) for k in ref for a in ref[k].probs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4, help="Sampled replies per train scenario.")
    args = parser.parse_args()

    from tomdistill.store import Store

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = {}
        for name, fields in VARIANTS.items():
            db = stores[name] = Store(Path(tmp) / f"{len(stores)}.db")
            wall = _elicit_all(db, "default:student", fields, args.samples)
            row = {"variant": name, "wall_s": round(wall, 1)}
            if name != "in-process":
                row |= _compare(stores["in-process"], db)
            rows.append(row)
        for db in stores.values():
            db.close()
    out = Path(__file__).parent / "results" / "ray_replicas.json"
    out.write_text(json.dumps({"samples": args.samples, "rows": rows}, indent=2) + "\n")
    print("| variant | wall s | sampled texts identical | max abs diff in P(action) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['wall_s']} | {r.get('same_texts', '-')} | {r.get('max_abs_dp', '-')} |")


if __name__ == "__main__":
    main()
