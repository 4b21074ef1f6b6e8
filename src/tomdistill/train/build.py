"""The SFT trainer one `tomdistill train` runs: TRL's SFTConfig for the recipe, the student's
weights with a LoRA adapter, our callbacks and, for a soft decision loss, the collator that
hands the loss its targets.

torch, transformers, TRL and PEFT are imported inside the functions: importing tomdistill (and
starting the CLI) never loads them. The trainer class is looked up in trainer.py at call time,
so a benchmark may swap in a timed subclass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..dataset import DatasetManifest
from ..tracking import TRACKING_LOGS, TRACKING_PROJECT
from .folders import TRAIN_LOG


def _checkpointing_keyword() -> str:
    import dataclasses

    from trl import SFTConfig

    names = {f.name for f in dataclasses.fields(SFTConfig)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def run_name(out: Path) -> str:
    """The name trackers show for a training: the adapter folder and the folder it is in (a
    `tomdistill run` folder's adapter/ is named by its run)."""
    path = out.resolve()
    return f"{path.parent.name}/{path.name}"


def sft_args(config: TrainConfig, checkpoints: Path, bf16: bool) -> Any:
    """TRL's SFTConfig for this recipe; `checkpoints` is the checkpoints folder inside the adapter folder."""
    from trl import SFTConfig

    from ..hardware import default_device

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
        use_cpu=default_device() == "cpu",  # transformers picks cuda or mps itself otherwise
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        report_to=list(config.report_to),  # empty: none (the default); checked by tracking.py before any work
        run_name=run_name(checkpoints.parent),
        project=TRACKING_PROJECT,
        disable_tqdm=True,  # our own progress bar shows the loss
        dataloader_num_workers=0,
        # The decision targets must reach our collator; TRL would drop a column the model does not take.
        remove_unused_columns=config.decision_loss == "tokens",
    )


def build_trainer(path: str, data: Any, tokenizer: Any, config: TrainConfig, checkpoints: Path, bf16: bool,
                  manifest: DatasetManifest, out: Path, resume: bool, progress: bool) -> Any:
    """The SFT trainer on the student's weights with a LoRA adapter, our callbacks and, for a
    soft decision loss, the collator that hands it the targets."""
    import torch
    import transformers
    from peft import LoraConfig

    from ..models.cast_load import load_causal_lm
    from .callbacks import LossLog, RichProgress
    from .decision import DecisionCollator
    from .trainer import TomdistillSFTTrainer

    model = load_causal_lm(path, torch.bfloat16 if bf16 else torch.float32)
    peft_config = LoraConfig(
        r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=config.lora_targets(),
        task_type="CAUSAL_LM",
    )
    callbacks = [LossLog(out / TRAIN_LOG, append=resume)]
    if progress:
        callbacks.append(RichProgress())
    trainer = TomdistillSFTTrainer(
        model=model, args=sft_args(config, checkpoints, bf16), train_dataset=data, processing_class=tokenizer,
        peft_config=peft_config, callbacks=callbacks, decision_mode=config.decision_loss,
        decision_weight=config.decision_weight, decision_temperature=manifest.target_temperature or 1.0,
    )
    if config.decision_loss != "tokens":
        trainer.data_collator = DecisionCollator(
            trainer.data_collator, lambda text: tokenizer.encode(text, add_special_tokens=False), config.decision_loss)
    if progress:  # with tqdm off, transformers prints every log dict; our bar already shows the loss
        trainer.remove_callback(transformers.PrinterCallback)
    _log_next_to_adapter(trainer, out)
    return trainer


def _log_next_to_adapter(trainer: Any, out: Path) -> None:
    """TensorBoard's event files go to the adapter folder's runs/, beside the adapter they describe.

    transformers' default is output_dir/runs/<date>_<host>, here inside checkpoints/, which is the
    resumable state, not a result. One folder for all starts of a training: a resumed one is the
    same run in TensorBoard. A TENSORBOARD_LOGGING_DIR of the user's (already read) is kept."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback) and callback.logging_dir is None:
            callback.logging_dir = str(out / TRACKING_LOGS)
