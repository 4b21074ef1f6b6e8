"""LoRA supervised fine-tuning of the student on teacher answers (TRL SFTTrainer + PEFT).

The dataset is in TRL's conversational prompt/completion form, so the loss covers the assistant
reply only (completion mask), whatever the chat template: SmolLM2's template has no generation
markers, which rules out `assistant_only_loss`. The output folder holds the adapter, the
tokenizer with its chat template, the exact config, the loss per step, a model card and the
checkpoints `--resume` continues from. The same code runs under `accelerate launch` (DDP,
DeepSpeed, FSDP): it never moves tensors to a device itself and writes files on rank 0 only.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .dataset import load_manifest, load_training_data, training_columns
from .errors import TomdistillError
from .jsonfiles import load_json_file
from .models.registry import local_model_path
from .outdirs import check_dir, claim_dir, holds_only
from .versions import package_versions

CHECKPOINTS = "checkpoints"
TRAIN_LOG = "training_log.jsonl"
TRAIN_CONFIG = "train_config.json"
MERGE_INFO = "tomdistill_merge.json"
ADAPTER_KIND, MERGED_KIND = "adapter", "merged"  # the kinds in the .tomdistill markers of the output folders


# The names training and merging write (tomdistill's, PEFT's, transformers' and the tokenizer's):
# an unmarked folder holding anything else has a file of the user's in it, and is not taken as ours.
_TOKENIZER_FILES = ("tokenizer*", "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json",
                    "chat_template.jinja")
ADAPTER_FILES = (TRAIN_CONFIG, TRAIN_LOG, CHECKPOINTS, "README.md", "adapter_config.json", "adapter_model.*",
                 "training_args.bin", *_TOKENIZER_FILES)
MERGED_FILES = (MERGE_INFO, "config.json", "generation_config.json", "model*.safetensors", "model.safetensors.index.json",
                "pytorch_model*.bin", "pytorch_model.bin.index.json", *_TOKENIZER_FILES)


def is_adapter_folder(folder: Path) -> bool:
    """An adapter folder written before markers existed (migration rule): it holds the files only
    tomdistill's training writes there, the config of a finished one or the loss log of a started
    one, and nothing but ADAPTER_FILES."""
    return ((folder / TRAIN_CONFIG).is_file() or (folder / TRAIN_LOG).is_file()) and holds_only(folder, ADAPTER_FILES)


def _is_merged_folder(folder: Path) -> bool:
    """A merged model written before markers existed: its tomdistill_merge.json, nothing but MERGED_FILES."""
    return (folder / MERGE_INFO).is_file() and holds_only(folder, MERGED_FILES)


@dataclass
class TrainResult:
    out: str
    student: str
    steps: int
    examples: int
    final_loss: float | None
    wall_s: float
    resumed_from: str | None


def _checkpointing_keyword() -> str:
    import dataclasses

    from trl import SFTConfig

    names = {f.name for f in dataclasses.fields(SFTConfig)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def _last_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return found[-1] if found else None


def _use_bf16(config: TrainConfig) -> bool:
    import torch

    from .hardware import prefer_bf16

    if config.bf16 is not None:
        return config.bf16
    return prefer_bf16("cuda" if torch.cuda.is_available() else "cpu")


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

    claim_dir(out, ADAPTER_KIND, legacy=is_adapter_folder)
    import datasets
    import transformers

    datasets.disable_progress_bars()  # TRL's per-map bars; our own bar follows the training
    path = local_model_path(student)
    data = load_training_data(data_dir)
    data = data.select_columns(training_columns(data.column_names, soft=config.decision_loss != "tokens"))
    bf16 = _use_bf16(config)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    trainer = _trainer(path, data, tokenizer, config, checkpoints, bf16, manifest, out, resume, progress)
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
        (out / "README.md").write_text(model_card(info, manifest))
    return result


def _sft_args(config: TrainConfig, checkpoints: Path, bf16: bool) -> Any:
    """TRL's SFTConfig for this recipe."""
    import torch
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # transformers 5 reads a float below 1 as a share of the steps
        lr_scheduler_type="linear",
        max_length=config.max_length,
        packing=config.packing,
        completion_only_loss=True,
        # TRL's default turns it on; on CPU it only costs time for a 135M model. (transformers 5
        # renamed the option; passing the name it knows avoids a deprecation warning.)
        **{_checkpointing_keyword(): config.gradient_checkpointing},
        bf16=bf16,
        # Needed for bf16 on CPU; on a GPU machine (also under accelerate launch) it stays off.
        use_cpu=not torch.cuda.is_available(),
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        report_to=[],
        disable_tqdm=True,  # our own progress bar shows the loss
        dataloader_num_workers=0,
        # The decision targets must reach our collator; TRL would drop a column the model does not take.
        remove_unused_columns=config.decision_loss == "tokens",
    )


def _trainer(path: str, data: Any, tokenizer: Any, config: TrainConfig, checkpoints: Path, bf16: bool,
             manifest: Any, out: Path, resume: bool, progress: bool) -> Any:
    """The SFT trainer on the student's weights with a LoRA adapter, our callbacks and, for a
    soft decision loss, the collator that hands it the targets."""
    import torch
    import transformers
    from peft import LoraConfig

    from .train_callbacks import LossLog, RichProgress
    from .train_decision import DecisionCollator
    from .train_trainer import TomdistillSFTTrainer

    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if bf16 else torch.float32)
    peft_config = LoraConfig(
        r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=config.lora_targets(),
        task_type="CAUSAL_LM",
    )
    callbacks = [LossLog(out / TRAIN_LOG, append=resume)]
    if progress:
        callbacks.append(RichProgress())
    trainer = TomdistillSFTTrainer(
        model=model, args=_sft_args(config, checkpoints, bf16), train_dataset=data, processing_class=tokenizer,
        peft_config=peft_config, callbacks=callbacks, decision_mode=config.decision_loss,
        decision_weight=config.decision_weight, decision_temperature=manifest.target_temperature or 1.0,
    )
    if config.decision_loss != "tokens":
        trainer.data_collator = DecisionCollator(
            trainer.data_collator, lambda text: tokenizer.encode(text, add_special_tokens=False), config.decision_loss)
    if progress:  # with tqdm off, transformers prints every log dict; our bar already shows the loss
        trainer.remove_callback(transformers.PrinterCallback)
    return trainer


def _last_loss(history: list[dict[str, Any]]) -> float | None:
    losses = [h["loss"] for h in history if "loss" in h]
    return round(float(losses[-1]), 4) if losses else None


def model_card(info: dict[str, Any], manifest) -> str:
    """The adapter folder's README.md: what it is, what it was trained on, and how."""
    c, r = info["config"], info["result"]
    per_split = ", ".join(f"{k}: {v}" for k, v in manifest.per_split.items())
    decisions = ", ".join(f"{k}: {v}" for k, v in sorted(manifest.decisions.items()))
    return f"""# tomdistill student adapter

A LoRA adapter that makes **{info['student']}** decide like the teacher **{manifest.teacher_model}**
in one-shot social dilemmas (tomdistill).

| | |
|---|---|
| base model | `{info['student']}` (weights: `{info['base_path']}`) |
| teacher run | `{manifest.teacher_run}` ({manifest.teacher_model}) |
| data | {manifest.examples} examples ({per_split}); decisions {decisions} |
| prompt protocol | `{manifest.prompt_protocol}`; reply format `{manifest.reply_format!r}` |
| recipe | preset {c['preset'] or 'cpu'}: LoRA r {c['r']}, alpha {c['alpha']}, dropout {c['dropout']}, modules {', '.join(c['target_modules'])}; lr {c['learning_rate']}, epochs {c['epochs']}, batch {c['batch_size']} x accumulation {c['grad_accum']}, max length {c['max_length']}, seed {c['seed']}, bf16 {info['bf16']} |
| training | {r['steps']} steps in {r['wall_s']} s; final loss {r['final_loss']} |
| versions | {', '.join(f'{k} {v}' for k, v in info['versions'].items())} |

Use it:

```bash
tomdistill elicit --model {info['student']} --adapter THIS_FOLDER --run student --split train --mode score
tomdistill merge THIS_FOLDER --out merged/      # a standalone model folder
```

Files: `adapter_model.safetensors` + `adapter_config.json` (PEFT), the tokenizer and chat
template, `{TRAIN_CONFIG}` (exact config and versions), `{TRAIN_LOG}` (loss per step).
"""


def adapter_student(adapter: Path) -> str | None:
    """The student spec an adapter folder's train_config.json names; None when there is no such file."""
    info_path = adapter / TRAIN_CONFIG
    if not info_path.is_file():
        return None
    info = load_json_file(info_path, TRAIN_CONFIG)
    student = info.get("student") if isinstance(info, dict) else None
    if not isinstance(student, str):
        raise TomdistillError(f"{info_path}: field 'student' is missing or not a model spec")
    return student


def merge(adapter: Path, out: Path, student: str | None = None) -> Path:
    """Write the student with the adapter folded into its weights, as a standalone model folder."""
    from .models.registry import check_adapter_dir

    check_adapter_dir(adapter)
    info_path = adapter / TRAIN_CONFIG
    if student is None:
        student = adapter_student(adapter)
        if student is None:
            raise TomdistillError(f"{adapter}: no {TRAIN_CONFIG} saying which student it belongs to; pass --student")
    check_dir(out, MERGED_KIND, legacy=_is_merged_folder)
    import transformers
    from peft import PeftModel

    path = local_model_path(student)
    base = transformers.AutoModelForCausalLM.from_pretrained(path)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(claim_dir(out, MERGED_KIND, legacy=_is_merged_folder)))
    transformers.AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(str(out))
    if info_path.is_file():
        (out / MERGE_INFO).write_text(json.dumps({"student": student, "adapter": str(adapter)}, indent=2))
    return out
