"""`tomdistill train` and `tomdistill merge`: LoRA supervised fine-tuning of the student on
teacher answers (TRL SFTTrainer + PEFT), and folding an adapter into its student's weights.

The dataset is in TRL's conversational prompt/completion form, so the loss covers the assistant
reply only (completion mask), whatever the chat template: SmolLM2's template has no generation
markers, which rules out `assistant_only_loss`. The output folder holds the adapter, the
tokenizer with its chat template, the exact config, the loss per step, a model card and the
checkpoints `--resume` continues from. The same code runs under `accelerate launch` (DDP,
DeepSpeed, FSDP): it never moves tensors to a device itself and writes files on rank 0 only.
torch, transformers and PEFT are imported inside the functions, once the folders are checked.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..dataset import load_manifest, load_training_data, training_columns
from ..errors import TomdistillError
from ..models.base import check_adapter_dir
from ..models.provenance import base_weights, card_block
from ..models.registry import local_model_path
from ..outdirs import check_dir, claim_dir
from ..tracking import check_trackers
from ..versions import package_versions
from .build import build_trainer
from .card import write_adapter_card, write_merged_card
from .folders import (
    ADAPTER_KIND,
    CHECKPOINTS,
    MERGE_INFO,
    MERGED_KIND,
    TRAIN_CONFIG,
    is_adapter_folder,
    is_merged_folder,
    student_of,
)


@dataclass
class TrainResult:
    out: str
    student: str
    steps: int
    examples: int
    final_loss: float | None
    wall_s: float
    resumed_from: str | None


def _last_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return found[-1] if found else None


def _use_bf16(config: TrainConfig) -> bool:
    from ..hardware import default_device, prefer_bf16

    if config.bf16 is not None:
        return config.bf16
    return prefer_bf16(default_device())


def train(
    student: str,
    data_dir: Path,
    out: Path,
    config: TrainConfig,
    *,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Fine-tune `student` (an hf: or default: spec) with LoRA on the dataset in `data_dir`."""
    manifest = load_manifest(data_dir)
    check_dir(out, ADAPTER_KIND, legacy=is_adapter_folder)  # a folder of the user's is never written into
    checkpoints = out / CHECKPOINTS
    last = _last_checkpoint(checkpoints) if checkpoints.is_dir() else None
    if last is not None and not resume:
        raise TomdistillError(f"{out}: holds checkpoints of an earlier training; pass --resume to continue it, or choose another --out")
    if resume and last is None and (out / "adapter_config.json").is_file():
        raise TomdistillError(f"{out}: training already finished there (adapter present, no checkpoint to resume)")
    check_trackers(config.report_to)  # before anything is written or loaded

    claim_dir(out, ADAPTER_KIND, legacy=is_adapter_folder)
    import datasets
    import transformers

    datasets.disable_progress_bars()  # TRL's per-map bars, for Python callers too (the CLI silences them at start)

    path = local_model_path(student)
    data = load_training_data(data_dir)
    data = data.select_columns(training_columns(data.column_names, soft=config.decision_loss != "tokens"))
    bf16 = _use_bf16(config)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    trainer = build_trainer(path, data, tokenizer, config, checkpoints, bf16, manifest, out, resume, progress)
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(last) if resume and last else None)
    wall = time.perf_counter() - started
    result = TrainResult(
        out=str(out), student=student, steps=trainer.state.global_step, examples=len(data),
        final_loss=_last_loss(trainer.state.log_history), wall_s=round(wall, 1),
        resumed_from=str(last) if resume and last else None,
    )
    # Every rank calls save_model: under DeepSpeed / FSDP it gathers the sharded adapter first.
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out))
        info = {"student": student, "base_path": path, "dataset": str(data_dir), "teacher_run": manifest.teacher_run,
                "config": config.model_dump(), "bf16": bf16, "result": asdict(result), "train_output": output.metrics,
                "versions": package_versions()}
        (out / TRAIN_CONFIG).write_text(json.dumps(info, indent=2, default=str))
        write_adapter_card(out, info, manifest, base_weights(student))
    return result


def _last_loss(history: list[dict[str, Any]]) -> float | None:
    losses = [h["loss"] for h in history if "loss" in h]
    return round(float(losses[-1]), 4) if losses else None


def merge(adapter: Path, out: Path, student: str | None = None) -> Path:
    """Write the student with the adapter folded into its weights, as a standalone model folder."""
    check_adapter_dir(adapter)
    info_path = adapter / TRAIN_CONFIG
    student = student_of(adapter, student)
    check_dir(out, MERGED_KIND, legacy=is_merged_folder)
    import transformers
    from peft import PeftModel

    path = local_model_path(student)
    base = transformers.AutoModelForCausalLM.from_pretrained(path)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(claim_dir(out, MERGED_KIND, legacy=is_merged_folder)))
    transformers.AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(str(out))
    if info_path.is_file():
        (out / MERGE_INFO).write_text(json.dumps({"student": student, "adapter": str(adapter)}, indent=2))
    write_merged_card(out, student, adapter, base_weights(student), card_block(adapter))
    return out
