"""GPU check (issue 18, item 5): tomdistill's GPU paths on one GPU, each step timed, one table.

Prepared for an offline single-GPU machine (run.sh installs the carried wheels, then runs this).
A randomly initialised model of the default student's shape is built from the carried config and
tokenizer (no weights travel), then, each step in its own try so one failure hides no other:

    versions    what will run: torch, the carried transformers / trl / peft, the GPU
    student     the random student, saved as a folder `hf:FOLDER` loads
    sample      hf backend on the device: motivated replies (tomdistill.ask.sample_answers)
    score       hf backend on the device: exact P(action), float32 (tomdistill.ask.score_answers)
    agreement   the same weights scored on the device and on the CPU: max |dP| < 1e-3
    train       a few LoRA steps of tomdistill's `train` (TRL SFTTrainer + accelerate) on the device
    adapter     the trained adapter folder opened and scored on the device
    pipeline    a shrunk `tomdistill run`: planted teacher -> random student, ending in eval.json

It prints one Markdown table (check | passed? | seconds | detail) under a line naming the
versions and the GPU, writes JSON to $OUT/gpu_check.json when $OUT is set (else --json, default
benchmarks/results/gpu_check.json), and exits 1 if any step failed.

    bash benchmarks/gpu_check/run.sh                                   # on the GPU machine
    python benchmarks/gpu_check/check.py --device cpu --tiny --json /tmp/gpu_check.json   # smoke test here
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # gpu_check_steps.py beside this file (benchmarks/ is no package)

from gpu_check_steps import (  # noqa: E402
    TINY,
    CheckFailed,
    Context,
    Sizes,
    StepResult,
    build_student,
    check_adapter,
    check_agreement,
    check_pipeline,
    check_sample,
    check_score,
    check_train,
    check_versions,
)

DEFAULT_JSON = HERE.parent / "results" / "gpu_check.json"
STEPS: dict[str, Callable[[Context], StepResult]] = {
    "versions": check_versions, "student": build_student, "sample": check_sample, "score": check_score,
    "agreement": check_agreement, "train": check_train, "adapter": check_adapter, "pipeline": check_pipeline,
}
#: Steps that need another's output; --only adds them.
NEEDS: dict[str, tuple[str, ...]] = {
    "sample": ("student",), "score": ("student",), "agreement": ("student",), "train": ("student",),
    "adapter": ("student", "score", "train"), "pipeline": ("student",),
}


@dataclass
class Row:
    """One step's line in the table."""

    check: str
    passed: bool
    seconds: float
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def run_step(name: str, step: Callable[[], StepResult]) -> Row:
    """Run one step, timed; a failure or error becomes a failed row (the traceback goes to stderr)."""
    print(f"[{name}] running", flush=True)
    started = time.perf_counter()
    try:
        detail, data = step()
        passed = True
    except CheckFailed as exc:
        detail, data, passed = str(exc), {}, False
    except Exception as exc:  # one broken step must not hide the others' results
        traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        detail, data, passed = f"{type(exc).__name__}: {first[:300]}", {}, False
    row = Row(name, passed, round(time.perf_counter() - started, 1), detail, data)
    print(f"[{name}] {'ok' if passed else 'FAILED'} in {row.seconds} s: {detail}", flush=True)
    return row


def selected(only: Sequence[str] | None) -> list[str]:
    """The steps to run, in order: all, or those named with the ones they need."""
    if not only:
        return list(STEPS)
    unknown = sorted(set(only) - set(STEPS))
    if unknown:
        raise SystemExit(f"--only: unknown step(s) {', '.join(unknown)}; steps: {', '.join(STEPS)}")
    wanted = set(only) | {need for name in only for need in NEEDS.get(name, ())}
    return [name for name in STEPS if name in wanted]


def header(env: dict[str, Any], device: str) -> str:
    """One line: the versions that ran and the GPU."""
    versions = env.get("versions")
    if not versions:
        return f"device {device}; versions not read (the versions step did not run or failed)"
    names = ("python", "torch", "transformers", "trl", "peft", "accelerate", "datasets")
    listed = ", ".join(f"{name} {versions[name]}" for name in names if name in versions)
    return f"{listed}; device {device}: {env.get('gpu') or 'no GPU'} (CUDA {env.get('cuda')})"


def markdown_table(rows: Sequence[Row]) -> str:
    """check | passed? | seconds | detail, a failed step marked in bold."""
    lines = ["| check | passed? | seconds | detail |", "|---|---|---|---|"]
    for row in rows:
        passed = "yes" if row.passed else "**no**"
        lines.append(f"| {row.check} | {passed} | {row.seconds:.1f} | {row.detail.replace('|', '/')} |")
    return "\n".join(lines)


def exit_code(rows: Sequence[Row]) -> int:
    """0 only when steps ran and all passed."""
    return 0 if rows and all(row.passed for row in rows) else 1


def json_path(given: Path | None) -> Path:
    """$OUT/gpu_check.json on the device machine, else --json, else the results folder."""
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"]) / "gpu_check.json"
    return given or DEFAULT_JSON


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="device under test (default: %(default)s); cpu for a smoke test")
    parser.add_argument("--bundle", type=Path, default=HERE / "bundle", help="pack.py's bundle (default: %(default)s)")
    parser.add_argument("--tiny", action="store_true", help="a small model and little work (CPU smoke test)")
    parser.add_argument("--only", help=f"comma-separated steps (and those they need): {', '.join(STEPS)}")
    parser.add_argument("--json", type=Path, help=f"JSON output when $OUT is unset (default: {DEFAULT_JSON})")
    parser.add_argument("--pipeline-timeout", type=float, default=240.0, help="seconds for `tomdistill run`")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = selected(args.only.split(",") if args.only else None)
    if args.device == "cpu":  # before torch loads: training and `tomdistill run` take a GPU whenever they see one
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sizes = TINY if args.tiny else Sizes()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as work:
        ctx = Context(args.device, args.bundle.resolve(), Path(work), sizes, args.pipeline_timeout)
        rows = [run_step(name, lambda step=STEPS[name]: step(ctx)) for name in names]
    title = header(ctx.env, args.device)
    print(f"\n## GPU check\n\n{title}\n\n{markdown_table(rows)}\n", flush=True)
    out = json_path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"header": title, "device": args.device, "tiny": args.tiny, "sizes": asdict(sizes), "env": ctx.env,
              "wall_s": round(time.perf_counter() - started, 1), "passed": exit_code(rows) == 0,
              "rows": [asdict(row) for row in rows]}
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {out}")
    return exit_code(rows)


if __name__ == "__main__":
    sys.exit(main())
