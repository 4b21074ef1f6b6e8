"""Benchmark 12: the resident-memory peak of loading a float32 checkpoint in a narrower dtype.

`transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=bf16)` against
`tomdistill.models.cast_load.load_causal_lm(folder, bf16)`, which fills an empty model one
tensor at a time (see that module). Each load runs in a fresh child process, so one's peak
cannot hide under the other's; the child reports VmHWM (the kernel's resident-set high-water
mark, file-backed pages included), the RSS after loading, the load time, and the first logits
of a fixed input, which must be equal between the two.

    python benchmarks/load_peak.py                                # the 1.5B Qwen teacher, bf16
    python benchmarks/load_peak.py --model default:teacher --repeats 3

Prints a Markdown table and writes benchmarks/results/load_peak.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "load_peak.json"

CHILD = r"""
import json, sys, time
import torch, transformers
from tomdistill.models.cast_load import load_causal_lm
way, folder, dtype = sys.argv[1], sys.argv[2], getattr(torch, sys.argv[3])
started = time.perf_counter()
if way == "from_pretrained":
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
else:
    model = load_causal_lm(folder, dtype)
seconds = time.perf_counter() - started
status = {line.split(":")[0]: int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("Vm")}
with torch.inference_mode():
    logits = model(torch.tensor([[1, 2, 3, 4]])).logits[0, -1, :8].float().tolist()
print(json.dumps({"seconds": seconds, "hwm_kib": status["VmHWM"], "rss_kib": status["VmRSS"], "logits": logits}))
"""


def measure(way: str, folder: str, dtype: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, way, folder, dtype], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default:qwen-coder-1.5b", help="a default: name or a model folder")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from tomdistill.models.registry import local_model_path

    folder = local_model_path(args.model)
    rows = {}
    for way in ("from_pretrained", "load_causal_lm"):
        runs = [measure(way, folder, args.dtype) for _ in range(args.repeats)]
        rows[way] = {
            "peak_gib": statistics.median(r["hwm_kib"] for r in runs) / 2**20,
            "after_gib": statistics.median(r["rss_kib"] for r in runs) / 2**20,
            "seconds": statistics.median(r["seconds"] for r in runs),
            "seconds_range": [min(r["seconds"] for r in runs), max(r["seconds"] for r in runs)],
            "logits": runs[0]["logits"],
        }
    same = rows["from_pretrained"]["logits"] == rows["load_causal_lm"]["logits"]
    print(f"{args.model} ({folder}) in {args.dtype}, median of {args.repeats}; first logits equal: {same}\n")
    print("| load | peak RSS (VmHWM) | RSS after | seconds (range) |\n|---|---|---|---|")
    for way, row in rows.items():
        low, high = row["seconds_range"]
        print(f"| `{way}` | {row['peak_gib']:.2f} GiB | {row['after_gib']:.2f} GiB | {row['seconds']:.1f} ({low:.1f}-{high:.1f}) |")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"model": args.model, "dtype": args.dtype, "repeats": args.repeats,
                                   "logits_equal": same, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
