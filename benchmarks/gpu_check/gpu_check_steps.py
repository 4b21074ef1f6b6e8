"""The GPU check's steps (check.py runs them): each goes through tomdistill's own code, on the
device under test, with a randomly initialised model of the default student's shape.

Every step takes the shared `Context` and returns (detail, data): a one-line summary for the
table and the figures behind it for the JSON. A step whose work ran but came out wrong raises
`CheckFailed` with the reason; anything else it raises is an error of the step. torch and
transformers are imported inside the steps, so importing this module costs nothing.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Score mode promises exact probabilities; float32 on two devices must agree far below that.
AGREEMENT_LIMIT = 1e-3
#: The comparison temperature of the default config (evaluate.temperature).
TEMPERATURE = 0.8
StepResult = tuple[str, dict[str, Any]]


class CheckFailed(Exception):
    """A step ran but its result is wrong; the message says how."""


@dataclass(frozen=True)
class Sizes:
    """How much each step does: the defaults fit about five minutes on one GPU with the student's
    real shape; `TINY` shrinks the model and the work for a CPU smoke test."""

    scenarios: int = 8
    samples: int = 8
    max_new_tokens: int = 64
    train_steps: int = 10
    pipeline_steps: int = 4
    #: Config fields set over the student's (a smaller model of the same architecture); None keeps its shape.
    shrink: dict[str, int] | None = None


TINY = Sizes(scenarios=3, samples=2, max_new_tokens=8, train_steps=2, pipeline_steps=2,
             shrink={"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32})


@dataclass
class Context:
    """What the steps share: settings in, and what earlier steps made (the student, its adapter)."""

    device: str
    bundle: Path
    work: Path
    sizes: Sizes
    pipeline_timeout_s: float = 240.0
    student: Path | None = None
    adapter: Path | None = None
    base_probs: list[dict[str, float]] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=dict)

    def need_student(self) -> Path:
        if self.student is None:
            raise CheckFailed("no student model: its step did not run or failed")
        return self.student


# --- versions and the model ------------------------------------------------------------------------


def check_versions(ctx: Context) -> StepResult:
    """The libraries that will run (the carried ones first on the path) and the device."""
    from importlib import metadata

    import peft
    import torch
    import transformers
    import trl
    from packaging.version import Version

    import tomdistill

    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
                "trl": trl.__version__, "peft": peft.__version__}
    for name in ("accelerate", "datasets", "pydantic", "tokenizers", "huggingface-hub", "safetensors", "numpy",
                 "pyarrow", "pandas", "fsspec", "regex", "typing-extensions"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    ctx.env = {"versions": versions, "gpu": gpu, "cuda": torch.version.cuda, "tomdistill": tomdistill.__file__}
    if Version(transformers.__version__) < Version("5.24"):
        raise CheckFailed(f"transformers {transformers.__version__} was imported; tomdistill[hf] needs >=5.24")
    if ctx.device.startswith("cuda") and gpu is None:
        raise CheckFailed(f"--device {ctx.device} but torch sees no GPU (torch {torch.__version__})")
    return f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}, " \
           f"peft {peft.__version__}; {gpu or 'no GPU'}", ctx.env


def build_student(ctx: Context) -> StepResult:
    """A randomly initialised model of the student's shape (from the carried config) with the
    student's tokenizer, saved as a folder that `hf:FOLDER` loads."""
    source = ctx.bundle / "student"
    if not (source / "config.json").is_file():  # before torch loads: a missing bundle fails at once
        raise CheckFailed(f"{source}: no config.json; run benchmarks/gpu_check/pack.py and carry the bundle")
    import torch
    import transformers

    config = transformers.AutoConfig.from_pretrained(source)
    for name, value in (ctx.sizes.shrink or {}).items():
        setattr(config, name, value)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    folder = ctx.work / "student"
    model.save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    ctx.student = folder
    params = model.num_parameters()
    return (f"{config.model_type}, {config.num_hidden_layers} layers x {config.hidden_size}, "
            f"{params / 1e6:.1f}M parameters (random, seed 0)", {"parameters": params, "config": config.to_dict()})


# --- asking: sample and score through tomdistill.ask -----------------------------------------------


def questions(ctx: Context, protocol: str, samples: int = 1) -> list[Any]:
    """The first `sizes.scenarios` train scenarios, each asked `samples` times with its own seed."""
    from tomdistill.ask import Question
    from tomdistill.scenarios import load_library

    scenarios = load_library().scenarios("train")[: ctx.sizes.scenarios]
    asked = [Question.of(s, protocol) for s in scenarios]  # type: ignore[arg-type]
    return [q.with_seed(1000 * i + j) for i, q in enumerate(asked) for j in range(samples)]


def check_sample(ctx: Context) -> StepResult:
    """Sampled motivated replies from the hf backend on the device (its default dtype)."""
    from tomdistill.ask import model_options, open_model, sample_answers
    from tomdistill.models.base import SamplingSettings

    asked = questions(ctx, "motivated", ctx.sizes.samples)
    settings = SamplingSettings(temperature=TEMPERATURE, max_new_tokens=ctx.sizes.max_new_tokens)
    model = open_model(f"hf:{ctx.need_student()}", mode="sample", options=model_options(device=ctx.device)).model
    try:
        started = time.perf_counter()
        replies = {key: reply for key, reply, _ in sample_answers(model, asked, settings)}
        seconds = time.perf_counter() - started
        info = model.info().details
    finally:
        model.close()
    if sorted(replies) != list(range(len(asked))):
        raise CheckFailed(f"{len(replies)} of {len(asked)} replies came back")
    _check_device(info, ctx.device)
    tokens = sum(r.completion_tokens or 0 for r in replies.values())
    data = {"samples": len(replies), "seconds": seconds, "samples_per_s": len(replies) / seconds,
            "tokens_per_s": tokens / seconds, "dtype": info["dtype"], "device": info["device"]}
    return (f"{len(replies)} samples ({ctx.sizes.scenarios} scenarios x {ctx.sizes.samples}), "
            f"{data['samples_per_s']:.1f} samples/s, {data['tokens_per_s']:.0f} tok/s, {info['dtype']}"), data


def score(student: Path | str, device: str, asked: Sequence[Any], adapter: Path | None = None) -> tuple[list[Any], dict]:
    """Score-mode results of `asked` (float32, the mode's default) and the model's details."""
    from tomdistill.ask import model_options, open_model, score_answers

    source = adapter if adapter is not None else f"hf:{student}"
    model = open_model(source, mode="score", options=model_options(device=device)).model
    try:
        results = dict(score_answers(model, asked, TEMPERATURE))
        info = model.info().details
    finally:
        model.close()
    return [results[i] for i in range(len(asked))], info


def check_probabilities(results: Sequence[Any]) -> None:
    """Each result a distribution: finite, in [0, 1], summing to 1 (or all 0 with no valid mass)."""
    for i, result in enumerate(results):
        values = list(result.probs.values())
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
            raise CheckFailed(f"scenario {i}: probabilities out of range: {result.probs}")
        total = sum(values)
        if abs(total - 1.0) > 1e-5 and not (total == 0.0 and result.valid_mass == 0.0):
            raise CheckFailed(f"scenario {i}: probabilities sum to {total}")


def check_score(ctx: Context) -> StepResult:
    """Exact P(action) from one forward pass per scenario, on the device, in float32."""
    asked = questions(ctx, "answer")
    started = time.perf_counter()
    results, info = score(ctx.need_student(), ctx.device, asked)
    seconds = time.perf_counter() - started
    _check_device(info, ctx.device)
    check_probabilities(results)
    ctx.base_probs = [r.probs for r in results]
    first = [next(iter(r.probs.values())) for r in results]
    mass = sum(r.valid_mass for r in results) / len(results)
    data = {"scenarios": len(results), "seconds_with_load": seconds, "dtype": info["dtype"], "p_first": first,
            "mean_valid_mass": mass}
    return (f"{len(results)} scenarios, {info['dtype']}, {len(results) / seconds:.1f} scenarios/s with the load; "
            f"P(first action) {min(first):.3f}-{max(first):.3f}, valid mass {mass:.2e}"), data


def max_difference(a: Sequence[dict[str, float]], b: Sequence[dict[str, float]]) -> float:
    """The largest |P_a - P_b| over the scenarios and their answers (the answers must match)."""
    if len(a) != len(b) or any(x.keys() != y.keys() for x, y in zip(a, b)):
        raise CheckFailed("the two runs scored different answers")
    return max(abs(x[k] - y[k]) for x, y in zip(a, b) for k in x)


def check_agreement(ctx: Context) -> StepResult:
    """The same random weights scored on the device and on the CPU, both float32."""
    asked = questions(ctx, "answer")
    here, _ = score(ctx.need_student(), ctx.device, asked)
    cpu, _ = score(ctx.need_student(), "cpu", asked)
    diff = max_difference([r.probs for r in here], [r.probs for r in cpu])
    label = f"{ctx.device} vs cpu" if ctx.device != "cpu" else "cpu vs cpu (no GPU here: checks the comparison only)"
    data = {"max_abs_diff": diff, "limit": AGREEMENT_LIMIT, "scenarios": len(asked), "compared": label}
    if not diff < AGREEMENT_LIMIT:
        raise CheckFailed(f"{label}: max abs dP = {diff:.2e} over {len(asked)} scenarios, limit {AGREEMENT_LIMIT:g}")
    return f"{label}: max abs dP = {diff:.1e} over {len(asked)} scenarios (limit {AGREEMENT_LIMIT:g})", data


def _check_device(info: dict[str, Any], device: str) -> None:
    if info.get("device") != device:
        raise CheckFailed(f"the model ran on {info.get('device')}, not {device}")


# --- training and the whole pipeline ---------------------------------------------------------------


def planted_dataset(ctx: Context) -> Path:
    """A training set made the way `tomdistill run` makes one, from the planted teacher: motivated
    samples on the first train scenarios, its exact scores as soft targets, then build_dataset."""
    from tomdistill.dataset import build_dataset
    from tomdistill.elicit import elicit
    from tomdistill.models.base import SamplingSettings
    from tomdistill.models.registry import load_model
    from tomdistill.scenarios import load_library
    from tomdistill.store import Store

    library = load_library()
    scenarios = library.scenarios("train")[: ctx.sizes.scenarios]
    teacher = load_model("planted:default")
    with Store(ctx.work / "teacher.db") as store:
        elicit(store, teacher, scenarios, run_name="teacher", protocol="motivated", samples=4)
        elicit(store, teacher, scenarios, run_name="teacher_score", protocol="motivated", mode="score",
               settings=SamplingSettings(temperature=TEMPERATURE))
        build_dataset(store, store.require_run("teacher"), library, ctx.work / "dataset",
                      targets_run=store.require_run("teacher_score"))
    return ctx.work / "dataset"


def check_train(ctx: Context) -> StepResult:
    """A few LoRA steps of `tomdistill train` (TRL SFTTrainer + accelerate) with the default recipe."""
    import torch

    from tomdistill.config import TrainConfig
    from tomdistill.train import TRAIN_CONFIG, TRAIN_LOG, train

    data = planted_dataset(ctx)
    on_gpu = ctx.device.startswith("cuda")
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    config = TrainConfig(max_steps=ctx.sizes.train_steps, save_steps=10_000, logging_steps=1)
    out = ctx.work / "adapter"
    result = train(f"hf:{ctx.need_student()}", data, out, config, progress=False)
    logged = [json.loads(line) for line in (out / TRAIN_LOG).read_text().splitlines() if line.strip()]
    losses = [float(entry["loss"]) for entry in logged if "loss" in entry]
    bf16 = json.loads((out / TRAIN_CONFIG).read_text()).get("bf16")
    peak = torch.cuda.max_memory_allocated() / 2**20 if on_gpu else None
    data_out = {"steps": result.steps, "examples": result.examples, "wall_s": result.wall_s, "losses": losses,
                "bf16": bf16, "gpu_peak_mib": peak}
    if result.steps != ctx.sizes.train_steps:
        raise CheckFailed(f"{result.steps} steps ran, {ctx.sizes.train_steps} asked")
    if not losses or not all(math.isfinite(x) for x in losses):
        raise CheckFailed(f"losses logged: {losses}")
    if not (out / "adapter_config.json").is_file():
        raise CheckFailed("no adapter_config.json written")
    if on_gpu and not peak:
        raise CheckFailed("training allocated nothing on the GPU")
    ctx.adapter = out
    gpu = f", GPU peak {peak:.0f} MiB" if peak else ""
    return (f"{result.steps} steps on {result.examples} examples in {result.wall_s} s (first step included), "
            f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, bf16 {bf16}{gpu}"), data_out


def check_adapter(ctx: Context) -> StepResult:
    """The trained adapter folder, opened as `tomdistill` opens one, scored on the device."""
    if ctx.adapter is None:
        raise CheckFailed("no adapter: the training step did not run or failed")
    asked = questions(ctx, "answer")
    results, info = score(ctx.need_student(), ctx.device, asked, adapter=ctx.adapter)
    _check_device(info, ctx.device)
    check_probabilities(results)
    moved = max_difference(ctx.base_probs, [r.probs for r in results]) if ctx.base_probs else None
    if moved is not None and moved <= 1e-6:  # LoRA's B starts at zero: no change means no training took hold
        raise CheckFailed(f"the adapter leaves P(action) unchanged (max abs dP = {moved:.1e})")
    data = {"scenarios": len(results), "max_abs_change_vs_base": moved, "adapter": info.get("adapter")}
    change = f"max abs dP vs base {moved:.1e}" if moved is not None else "base not scored"
    return f"{len(results)} scenarios scored with the PEFT adapter on {info['device']}; {change}", data


def pipeline_config(student: Path, sizes: Sizes) -> str:
    """A shrunk `tomdistill run`: the planted teacher, the random student, two contexts of two splits."""
    import tomli_w

    return tomli_w.dumps({
        "seed": 0,
        "scenarios": {"include": ["team/*", "sports/*"]},
        "teacher": {"model": "planted:default", "samples": 2},
        "student": {"model": f"hf:{student}"},
        "train": {"max_steps": sizes.pipeline_steps, "save_steps": 10_000},
        "evaluate": {"splits": ["train", "heldout_context"], "bootstrap": 50},
    })


def check_pipeline(ctx: Context) -> StepResult:
    """`python -m tomdistill run` in a child process, as a user runs it, ending in eval.json and a report."""
    from tomdistill.pipeline import STAGES

    config, out = ctx.work / "run.toml", ctx.work / "run"
    config.write_text(pipeline_config(ctx.need_student(), ctx.sizes))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tomdistill", "run", str(config), "--out", str(out)],
                          capture_output=True, text=True, timeout=ctx.pipeline_timeout_s, env=os.environ.copy())
    seconds = time.perf_counter() - started
    print("\n".join((proc.stdout + proc.stderr).splitlines()[-25:]), flush=True)  # the run's own log, in ours
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        raise CheckFailed(f"tomdistill run exited {proc.returncode}: {last[0][:200]}")
    state = json.loads((out / "pipeline.json").read_text())
    missing = [s for s in STAGES if s not in state]
    if missing or not (out / "eval.json").is_file() or not (out / "report" / "report.html").is_file():
        raise CheckFailed(f"stages missing: {missing or 'none'}; eval.json / report.html present: "
                          f"{(out / 'eval.json').is_file()} / {(out / 'report' / 'report.html').is_file()}")
    devices = {stage: state[stage]["details"]["model_info"].get("device") for stage in ("base", "student")}
    if set(devices.values()) != {ctx.device}:
        raise CheckFailed(f"the student ran on {devices}, not {ctx.device}")
    gap = state["evaluate"]["details"].get("train", {}).get("gap_closed")  # meaningless for a random student
    data = {"seconds": seconds, "stages": {s: state[s]["seconds"] for s in STAGES}, "gap_closed_train": gap}
    return (f"{len(STAGES)} stages in {seconds:.0f} s (train {state['train']['seconds']} s), base and student on "
            f"{ctx.device}, eval.json written (train gap_closed {_number(gap)})"), data


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
