"""Benchmark 3: LoRA training speed and memory of `tomdistill train` vs a minimal PEFT + torch loop.

Variants, each in its own process so that each gets its own peak RSS:
- **tomdistill**: `tomdistill.train.train` (TRL SFTTrainer) with the default TrainConfig.
- **plain**: AutoModelForCausalLM + peft.get_peft_model with the same LoRA settings, torch AdamW,
  the same examples tokenised with the chat template, loss on the completion tokens only, the same
  batch size, dtype (bf16 autocast as the Trainer does it), learning rate, clipping and number of
  steps; no Trainer.
- **fp32**, **checkpointing**, **packing**: `tomdistill train` with bf16=False,
  gradient_checkpointing=True or packing=True.
- **tokens**, **tokens-qv**: the cost of the recipe: the default LoRA with the token loss only
  (tomdistill / tokens: what the soft decision loss adds per step), and the earlier default
  (token loss, LoRA r 8 on q/v; tomdistill / tokens-qv: what the whole recipe adds).

Every variant runs `--steps` optimizer steps after one untimed warm-up step; loading the model
and preparing the data are not timed either, but what `tomdistill train` does on every step is
(loss logging, a checkpoint every `save_steps`; the progress bar is off). tokens/s counts the non-pad tokens the steps
processed, so "vs plain loop" (plain tokens/s / variant tokens/s: > 1 is slower) also compares
packing, whose steps hold more tokens. The data is `--data DIR` (a `tomdistill dataset` folder)
or, by default, built here without any model: the 20 train scenarios x 4 scripted teacher
replies (~50 tokens each) through the project's own elicit -> dataset path, like the default run.

    python benchmarks/train_speed.py                                 # all variants, 20 steps
    python benchmarks/train_speed.py --data DATASET_DIR --steps 40
    python benchmarks/train_speed.py --variants tomdistill,plain --steps 2 --out /tmp/smoke.json

Prints a Markdown table and writes benchmarks/results/train_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tomdistill.config import TrainConfig, resolve_train_config
from tomdistill.dataset import load_manifest, teacher_reply
from tomdistill.models.base import GenRequest
from tomdistill.versions import package_versions

RESULTS = Path(__file__).parent / "results"
DEFAULT_STUDENT = "default:student"
SAMPLES_PER_SCENARIO = 4  # 20 train scenarios x 4 = 80 examples, like the default run's 79


@dataclass(frozen=True)
class Variant:
    label: str
    #: TrainConfig fields set over the defaults; None marks the plain loop.
    overrides: dict[str, Any] | None


#: The recipe before issue 16: token loss only, LoRA r 8 on q_proj / v_proj.
TOKENS_QV = {"decision_loss": "tokens", "decision_weight": 1.0, "r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]}

VARIANTS: dict[str, Variant] = {
    "tomdistill": Variant("tomdistill train (default config)", {}),
    "tokens-qv": Variant("tomdistill train, the earlier default: token loss, LoRA r 8 on q/v", TOKENS_QV),
    "tokens": Variant("tomdistill train, default LoRA, token loss only (no soft decision loss)",
                      {"decision_loss": "tokens"}),
    "plain": Variant("plain PEFT + torch loop", None),
    "fp32": Variant("tomdistill train, fp32 (bf16=False)", {"bf16": False}),
    "checkpointing": Variant("tomdistill train, gradient checkpointing", {"gradient_checkpointing": True}),
    "packing": Variant("tomdistill train, packing (token loss: a packed row has no one decision position)",
                       {"packing": True, "decision_loss": "tokens"}),
}

# Teacher-style motivations of realistic length (44-50 tokens with the decision line), per decision.
MOTIVATIONS: dict[str, tuple[str, ...]] = {
    "C": (
        ("Both of us gain most when we pick the same option, and the other side has the same reasons I do. I expect "
         "them to think this through as well, so I go with the choice that rewards mutual trust."),
        ("Working together has served both sides well in situations like this one. Even though I could earn a little "
         "more by going my own way, cooperating keeps the relationship healthy and the total payoff higher."),
        ("The difference between the options is small for me but matters a lot for the coplayer. Since the choice is "
         "made at the same time by both of us, I lean towards the outcome that is fair to everyone involved."),
    ),
    "D": (
        ("I cannot see what the coplayer picks before I decide, so I weigh what each of my options earns against "
         "both of theirs. Choosing this way keeps my worst outcome acceptable, whatever they end up doing."),
        ("The coplayer might be tempted to take advantage of me, and the points I would lose then are large. "
         "Protecting my own payoff matters more here than the extra points we could share if everything went well."),
        ("This is a one-time decision with no chance to talk first or to punish the other side later. Given that, I "
         "pick the option that is best for me whatever the coplayer does, without counting on their goodwill."),
    ),
}


def scripted_reply(request: GenRequest) -> str:
    """A teacher reply drawn from the sample's seed, so the data is the same on every run."""
    rng = random.Random(request.seed)
    decision = "C" if rng.random() < 0.6 else "D"
    return teacher_reply(decision, rng.choice(MOTIVATIONS[decision]))


def build_data(out: Path) -> Path:
    """A dataset folder built the way `tomdistill teacher` + `tomdistill dataset` build one, with a scripted teacher."""
    from tomdistill.dataset import build_dataset
    from tomdistill.elicit import elicit
    from tomdistill.models.base import ModelOptions
    from tomdistill.models.registry import load_model
    from tomdistill.scenarios import load_library
    from tomdistill.store import Store

    library = load_library()
    teacher = load_model("mock:scripted", ModelOptions(extra={"script": scripted_reply}))
    with Store(out.parent / "teacher.db") as store:
        elicit(store, teacher, library.scenarios("train"), run_name="teacher", protocol="motivated",
               samples=SAMPLES_PER_SCENARIO)
        build_dataset(store, store.require_run("teacher"), library, out)
    return out


# ---------------------------------------------------------------- child side: one variant per process


def _peak_rss_gib() -> float:
    """This process's peak RSS. Read from VmHWM rather than the parent's wait4: a child started by
    (v)fork + exec inherits the parent's high-water mark into ru_maxrss, so the figure would mix in
    the parent's memory."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    scale = 2**30 if sys.platform == "darwin" else 2**20  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _sync() -> None:
    """Wait for queued GPU work so that a step's time is the step's own."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _real_tokens(batch: dict[str, Any]) -> int:
    """Non-pad tokens in a batch; padding-free (packed) batches carry no attention mask and no padding."""
    mask = batch.get("attention_mask")
    return int(mask.sum()) if mask is not None else batch["input_ids"].numel()


def _rows_summary(labels: list[list[int]]) -> dict[str, float]:
    """The training rows as prepared: how many, their mean length, and the share of tokens that carry loss
    (about the replies' share with completion-only loss, 1.0 without it)."""
    tokens = sum(len(row) for row in labels)
    return {"train_rows": len(labels), "mean_row_tokens": tokens / max(1, len(labels)),
            "loss_token_share": sum(t != -100 for row in labels for t in row) / max(1, tokens)}


class StepMarks:
    """(time, tokens so far) at the end of every optimizer step; the first one closes the warm-up step."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, int]] = []
        self.tokens = 0

    def mark(self) -> None:
        _sync()
        self.marks.append((time.perf_counter(), self.tokens))

    def summary(self, steps: int) -> dict[str, float | int]:
        if len(self.marks) != steps + 1:
            raise RuntimeError(f"expected {steps + 1} steps (warm-up included), saw {len(self.marks)}")
        (t0, n0), (t1, n1) = self.marks[0], self.marks[-1]
        return {"steps": steps, "seconds": t1 - t0, "tokens": n1 - n0,
                "s_per_step": (t1 - t0) / steps, "tokens_per_s": (n1 - n0) / (t1 - t0)}


def run_tomdistill(student: str, data: Path, steps: int, overrides: dict[str, Any], work: Path) -> dict[str, Any]:
    """`tomdistill.train.train` itself, with step timing hooked into the SFTTrainer it builds."""
    import torch
    import transformers

    from tomdistill.train import TRAIN_CONFIG, train
    from tomdistill.train import trainer as train_trainer

    marks = StepMarks()
    prepared: dict[str, float] = {}

    class Probe(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            marks.mark()

    class TimedSFTTrainer(train_trainer.TomdistillSFTTrainer):
        def __init__(self, *args: Any, callbacks: list | None = None, **kwargs: Any) -> None:
            super().__init__(*args, callbacks=[*(callbacks or []), Probe()], **kwargs)
            # After TRL's preparation (tokenising, labels, packing): shows whether completion-only loss survived
            # and how many examples packing put in each row.
            prepared.update(_rows_summary(self.train_dataset["labels"]))

        def training_step(self, model, inputs, *args: Any, **kwargs: Any):
            marks.tokens += _real_tokens(inputs)
            return super().training_step(model, inputs, *args, **kwargs)

    # train() looks its trainer class up when it builds the trainer, so it picks up the timed subclass.
    train_trainer.TomdistillSFTTrainer = TimedSFTTrainer
    config = resolve_train_config(TrainConfig(), {**overrides, "max_steps": steps + 1})
    out = work / "adapter"
    result = train(student, data, out, config, progress=False)
    bf16 = json.loads((out / TRAIN_CONFIG).read_text())["bf16"]
    return marks.summary(steps) | {"final_loss": result.final_loss, "dtype": "bf16" if bf16 else "fp32",
                                   "torch_threads": torch.get_num_threads()} | prepared


def _tokenize(tokenizer, row: dict[str, Any], max_length: int) -> dict[str, list[int]]:
    """Prompt + reply through the chat template; the prompt's tokens get label -100 (no loss)."""
    prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, return_dict=True)["input_ids"]
    ids = tokenizer.apply_chat_template(row["prompt"] + row["completion"], return_dict=True)["input_ids"][:max_length]
    return {"input_ids": ids, "labels": [-100] * min(len(prompt), len(ids)) + ids[len(prompt):]}


def _collate(examples: list[dict[str, list[int]]], pad_id: int, device: str) -> dict[str, Any]:
    """Right-pad to the longest example of the batch, as TRL's collator does."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)

    def padded(key: str, fill: int) -> torch.Tensor:
        return torch.tensor([e[key] + [fill] * (width - len(e[key])) for e in examples], device=device)

    mask = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in examples],
                        device=device)
    return {"input_ids": padded("input_ids", pad_id), "attention_mask": mask, "labels": padded("labels", -100)}


def run_plain(student: str, data: Path, steps: int) -> dict[str, Any]:
    """The minimal loop a user would write with transformers + peft + torch alone."""
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model

    from tomdistill.dataset import load_training_data
    from tomdistill.hardware import prefer_bf16
    from tomdistill.models.registry import local_model_path

    config = TrainConfig()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16 = config.bf16 if config.bf16 is not None else prefer_bf16(device)  # the rule `tomdistill train` applies
    torch.manual_seed(config.seed)
    path = local_model_path(student)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if bf16 else torch.float32)
    model = get_peft_model(model.to(device), LoraConfig(
        r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=config.lora_targets(),
        task_type="CAUSAL_LM",
    ))
    examples = [_tokenize(tokenizer, row, config.max_length) for row in load_training_data(data)]
    params = [p for p in model.parameters() if p.requires_grad]
    # The Trainer's recipe: AdamW without weight decay, linear decay to 0, gradient norm clipped at 1.
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.0, total_iters=steps + 1)
    rng = random.Random(config.seed)
    order: list[int] = []
    marks = StepMarks()
    loss_value = float("nan")
    model.train()
    for _ in range(steps + 1):
        if len(order) < config.batch_size:  # a new epoch, reshuffled
            order += rng.sample(range(len(examples)), len(examples))
        batch = _collate([examples[i] for i in order[:config.batch_size]], pad_id, device)
        del order[:config.batch_size]
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = loss.item()  # the Trainer logs the loss every step (logging_steps=1), which also waits for it
        marks.tokens += _real_tokens(batch)
        marks.mark()
    return marks.summary(steps) | {"final_loss": round(loss_value, 4), "dtype": "bf16" if bf16 else "fp32",
                                   "torch_threads": torch.get_num_threads()} | _rows_summary([e["labels"] for e in examples])


def child(name: str, student: str, data: Path, steps: int, work: Path, result: Path) -> None:
    overrides = VARIANTS[name].overrides
    if overrides is None:
        row = run_plain(student, data, steps)
    else:
        row = run_tomdistill(student, data, steps, overrides, work)
    result.write_text(json.dumps(row | {"peak_rss_gib": _peak_rss_gib()}))


# ---------------------------------------------------------------- parent side


def run_variant(name: str, student: str, data: Path, steps: int, work: Path) -> dict[str, Any]:
    """One variant in a fresh process; a failure becomes a row with the error instead of stopping the benchmark."""
    folder = work / name
    folder.mkdir()
    result = folder / "result.json"
    cmd = [sys.executable, __file__, "--child", name, "--student", student, "--data", str(data),
           "--steps", str(steps), "--work", str(folder), "--result", str(result)]
    print(f"running {name} ...", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0 or not result.is_file():
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        print("\n".join(lines[-20:]), file=sys.stderr)
        return {"error": lines[-1] if lines else f"exit status {proc.returncode}"}
    return json.loads(result.read_text())


def report(rows: dict[str, dict[str, Any]], examples: int) -> None:
    print("| variant | steps | s/step | tokens/s | peak RSS GiB | vs plain loop | final loss | loss tokens |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        label = VARIANTS[name].label
        if "error" in r:
            print(f"| {label} | failed: {r['error']} | | | | | | |")
            continue
        vs = f"{r['vs_plain']:.2f}x" if "vs_plain" in r else "-"
        print(f"| {label} [{r['dtype']}] | {r['steps']} | {r['s_per_step']:.2f} | {r['tokens_per_s']:.0f} | "
              f"{r['peak_rss_gib']:.2f} | {vs} | {r['final_loss']} | {r['loss_token_share']:.0%} |")
    print("\nvs plain loop: plain tokens/s / variant tokens/s (time per token; > 1 is slower). "
          "loss tokens: share of the training tokens that carry loss (completion-only loss: the replies' share).")
    if "train_rows" in (packed := rows.get("packing", {})):
        # Packing only pays when several examples fit in max_length; otherwise it just turns on padding-free batches.
        print(f"packing: {examples} examples in {packed['train_rows']} rows of {packed['mean_row_tokens']:.0f} tokens "
              f"on average (max_length {TrainConfig().max_length}).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="dataset folder from `tomdistill dataset` (default: built here)")
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps per variant")
    parser.add_argument("--student", default=DEFAULT_STUDENT)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--out", type=Path, default=RESULTS / "train_speed.json")
    # Internal: run one variant in this process (the parent starts one process per variant).
    parser.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.student, args.data, args.steps, args.work, args.result)
        return
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    if unknown := [n for n in names if n not in VARIANTS]:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    with tempfile.TemporaryDirectory(prefix="tomdistill-train-speed-") as tmp:
        work = Path(tmp)
        data = args.data or build_data(work / "data")
        manifest = load_manifest(data)
        rows = {name: run_variant(name, args.student, data, args.steps, work) for name in names}
    plain = rows.get("plain")
    for r in rows.values():
        if plain and "error" not in plain and "error" not in r:
            r["vs_plain"] = plain["tokens_per_s"] / r["tokens_per_s"]
    report(rows, manifest.examples)
    threads = next((r["torch_threads"] for r in rows.values() if "torch_threads" in r), None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "student": args.student, "steps": args.steps, "data": str(args.data) if args.data else "built-in (scripted teacher)",
        "examples": manifest.examples, "config": TrainConfig().model_dump(),
        "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "torch_threads": threads,
        "versions": package_versions(), "rows": {name: {"label": VARIANTS[name].label} | r for name, r in rows.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
