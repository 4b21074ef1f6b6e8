"""Benchmark 4: the default `tomdistill run`, wall time per stage and peak memory.

Runs `tomdistill run` in a child process into a new folder, waits for it with `os.wait4` (which
gives the child's own peak RSS), and reads the per-stage seconds from the run's manifest.json.
Goals: <= 10 min wall and <= 8 GiB peak RSS on 2 CPU cores.

    python benchmarks/default_run.py                 # model cache as it is (conversion done once before)
    python benchmarks/default_run.py --fresh-cache   # an empty cache: includes the GGUF conversion

Prints a Markdown table and writes benchmarks/results/default_run.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WALL_GOAL_S = 600
RSS_GOAL_GIB = 8.0


def run_child(out: Path, env: dict[str, str], extra: list[str]) -> tuple[int, float, float]:
    """(exit status, wall seconds, peak RSS GiB) of `tomdistill run --out OUT`."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "tomdistill", "run", "--out", str(out), *extra], env=env)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux.
    return child.returncode, time.perf_counter() - started, usage.ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh-cache", action="store_true", help="Convert the embedded weights again (empty cache).")
    parser.add_argument("--keep", type=Path, default=None, help="Run into this folder instead of a temporary one.")
    parser.add_argument("extra", nargs="*", help="More arguments for `tomdistill run` (after --).")
    args = parser.parse_args()

    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="tomdistill-bench-") as tmp:
        if args.fresh_cache:
            env["TOMDISTILL_CACHE"] = str(Path(tmp) / "cache")
        out = args.keep or Path(tmp) / "run"
        code, wall, rss = run_child(out, env, args.extra)
        if code != 0:
            sys.exit(f"tomdistill run failed with exit status {code}")
        manifest = json.loads((out / "manifest.json").read_text())

    stages = manifest["stages"]
    print("| stage | seconds | what |")
    print("|---|---|---|")
    for name, record in stages.items():
        details = record.get("details") or {}
        what = ", ".join(f"{k} {v}" for k, v in details.items() if isinstance(v, int | float | str) and len(str(v)) < 40)
        print(f"| {name} | {record['seconds']:.1f} | {what} |")
    print(f"| **total (wall, incl. loading)** | **{wall:.1f}** | goal <= {WALL_GOAL_S} s: "
          f"{'met' if wall <= WALL_GOAL_S else 'NOT met'} |")
    print(f"\npeak RSS {rss:.2f} GiB (goal <= {RSS_GOAL_GIB} GiB: {'met' if rss <= RSS_GOAL_GIB else 'NOT met'})")

    result = {"wall_s": wall, "peak_rss_gib": rss, "fresh_cache": args.fresh_cache,
              "stages": {k: {"seconds": v["seconds"], "details": v.get("details")} for k, v in stages.items()},
              "versions": manifest.get("versions"), "machine": manifest.get("machine") or platform.platform()}
    (Path(__file__).parent / "results" / "default_run.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
