"""Training the student: `train` (LoRA fine-tuning on a dataset folder), `merge` (an adapter
folded into its student's weights) and the adapter folders they write.

    entry.py      train() and merge(), the commands' work
    build.py      TRL's SFTConfig and the trainer one training runs
    trainer.py    the SFTTrainer subclass (cheaper loss off GPU, the decision loss)
    decision.py   the soft-label decision loss and the collator that feeds it
    callbacks.py  the loss log file and the progress bar
    card.py       the model cards (README.md) of adapter and merged folders, with Hub metadata
    folders.py    the output folders' file names, and reading an adapter's train_config.json

trainer.py, decision.py and callbacks.py import torch, transformers and TRL at their top, so
nothing here imports them: importing this package (and starting the CLI) stays light.
"""

from .card import write_adapter_card, write_merged_card
from .entry import TrainResult, merge, train
from .folders import (
    ADAPTER_FILES,
    ADAPTER_KIND,
    CHECKPOINTS,
    MERGE_INFO,
    MERGED_FILES,
    MERGED_KIND,
    TRAIN_CONFIG,
    TRAIN_LOG,
    adapter_student,
    is_adapter_folder,
    is_merged_folder,
    student_of,
    training_info,
)

__all__ = [
    "ADAPTER_FILES", "ADAPTER_KIND", "CHECKPOINTS", "MERGED_FILES", "MERGED_KIND", "MERGE_INFO", "TRAIN_CONFIG",
    "TRAIN_LOG", "TrainResult", "adapter_student", "is_adapter_folder", "is_merged_folder", "merge",
    "write_adapter_card", "write_merged_card",
    "student_of", "train", "training_info",
]
