"""The folders training and merging write: the names of their files, how an older unmarked one is
recognised, and what an adapter folder's train_config.json says about how it was made.

Everything that reads an adapter folder back (merge, export, Agent.load) asks here, so the file
name and the rule "which student does this adapter belong to" exist once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import TomdistillError
from ..jsonfiles import load_json_file
from ..outdirs import holds_only

CHECKPOINTS = "checkpoints"
TRAIN_LOG = "training_log.jsonl"
#: The adapter folder's record of its training: student, dataset, recipe, result, versions.
TRAIN_CONFIG = "train_config.json"
MERGE_INFO = "tomdistill_merge.json"
ADAPTER_KIND, MERGED_KIND = "adapter", "merged"  # the kinds in the .tomdistill markers of the output folders


# The names training and merging write (tomdistill's, PEFT's, transformers' and the tokenizer's):
# an unmarked folder holding anything else has a file of the user's in it, and is not taken as ours.
_TOKENIZER_FILES = ("tokenizer*", "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json",
                    "chat_template.jinja")
# What folders written before markers existed held: the legacy tests below recognise those only
# (a file added since, in an unmarked folder, can only be the user's). Frozen: do not add to them.
ADAPTER_FILES = (TRAIN_CONFIG, TRAIN_LOG, CHECKPOINTS, "README.md", "adapter_config.json",
                 "adapter_model.*", "training_args.bin", *_TOKENIZER_FILES)
MERGED_FILES = (MERGE_INFO, "config.json", "generation_config.json", "model*.safetensors", "model.safetensors.index.json",
                "pytorch_model*.bin", "pytorch_model.bin.index.json", *_TOKENIZER_FILES)


def is_adapter_folder(folder: Path) -> bool:
    """An adapter folder written before markers existed (migration rule): it holds the files only
    tomdistill's training writes there, the config of a finished one or the loss log of a started
    one, and nothing but ADAPTER_FILES."""
    return ((folder / TRAIN_CONFIG).is_file() or (folder / TRAIN_LOG).is_file()) and holds_only(folder, ADAPTER_FILES)


def is_merged_folder(folder: Path) -> bool:
    """A merged model written before markers existed: its tomdistill_merge.json, nothing but MERGED_FILES."""
    return (folder / MERGE_INFO).is_file() and holds_only(folder, MERGED_FILES)


def training_info(adapter: Path) -> Any:
    """The parsed train_config.json of an adapter folder; {} when there is none.

    The file may have been edited by hand: a damaged one raises one TomdistillError naming it."""
    path = adapter / TRAIN_CONFIG
    if not path.is_file():
        return {}
    return load_json_file(path, "training config")  # one line also for odd encodings and deep nesting


def adapter_student(adapter: Path, *, other_weights: bool = True) -> str | None:
    """The student spec to load an adapter folder on: from its model card's base block (the same
    weights, found by hash, even on another machine; see models/provenance.py), else the spec its
    train_config.json names (folders written before cards had it); None when neither exists."""
    from ..models.provenance import card_base, resolve_base

    base = card_base(adapter)
    if base is not None:
        return resolve_base(base, adapter / "README.md", other_weights=other_weights)
    info_path = adapter / TRAIN_CONFIG
    if not info_path.is_file():
        return None
    info = training_info(adapter)
    student = info.get("student") if isinstance(info, dict) else None
    if not isinstance(student, str):
        raise TomdistillError(f"{info_path}: field 'student' is missing or not a model spec")
    return student


def student_of(adapter: Path, student: str | None = None, *, other_weights: bool = True) -> str:
    """`student` when given, else the one the adapter's train_config.json names; raises when neither says."""
    if student:
        return student
    found = adapter_student(adapter, other_weights=other_weights)
    if found is None:
        raise TomdistillError(f"{adapter}: no {TRAIN_CONFIG} saying which student it belongs to; pass --student")
    return found
