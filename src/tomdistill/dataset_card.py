"""The files that let other tools read a dataset folder as it is: Parquet with every column, a
dataset card `datasets.load_dataset(folder)` follows, and LLaMA-Factory's `dataset_info.json`.

`load_dataset` on a folder without a card reads whatever data files it finds (train.jsonl: the
messages only). The card's `configs` front matter points it at train.parquet instead, which holds
every column (prompt, completion, messages, scenario, split, decision, decision_target, ...).
LLaMA-Factory registers datasets through a `dataset_info.json` beside the data; its sharegpt
formatting with OpenAI-style role/content tags reads train.jsonl as written.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

PARQUET = "train.parquet"
CARD = "README.md"
LLAMA_FACTORY = "dataset_info.json"
JSONL = "train.jsonl"

#: What each column holds, for the card (columns not listed here are described as "see manifest.json").
COLUMNS = {
    "prompt": "the chat messages the student is asked (system + user), as TRL's prompt",
    "completion": "the assistant reply it learns: the decision alone on its first line, then the motivation",
    "messages": "prompt + completion as one conversation (OpenAI fine-tuning / chat format)",
    "scenario": "scenario id, context/game",
    "split": "the scenario's split in the library (only training splits go in)",
    "decision": "the teacher's action label in this example",
    "teacher_sample_index": "which of the teacher's samples of the scenario this is",
    "decision_target": "the teacher's exact P(action) for the scenario as JSON ('' for amounts): the soft-label target",
    "augmented": "'' for the teacher's own answers, else the augmentation that made the example",
}


def llama_factory_entry(name: str) -> dict[str, Any]:
    """The dataset_info.json stanza that registers train.jsonl (OpenAI-style messages) in LLaMA-Factory."""
    return {name: {
        "file_name": JSONL,
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"},
    }}


def dataset_name(teacher_run: str) -> str:
    """A name for LLaMA-Factory's registry: letters, digits, '_' and '-' only."""
    return "tomdistill_" + "".join(c if c.isalnum() or c in "_-" else "_" for c in teacher_run)


def card_text(manifest: Any, columns: list[str], rows: int) -> str:
    """The dataset card: front matter that points `load_dataset` at the Parquet file, then what it is."""
    from huggingface_hub import DatasetCardData

    data = DatasetCardData(
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": PARQUET}]}],
        tags=["tomdistill", "distillation", "social-dilemmas", "theory-of-mind"], task_categories=["text-generation"],
        tomdistill={k: v for k, v in asdict(manifest).items() if k not in ("per_scenario", "store")},
    )
    table = "\n".join(f"| `{c}` | {COLUMNS.get(c, 'see manifest.json')} |" for c in columns)
    name = dataset_name(manifest.teacher_run)
    return f"""---
{data.to_yaml()}
---

# tomdistill distillation data: {manifest.teacher_model}

{rows} supervised fine-tuning examples: scenarios of one-shot social dilemmas asked with the
`{manifest.prompt_protocol}` protocol, answered by the teacher **{manifest.teacher_model}** (run
`{manifest.teacher_run}`). Splits {', '.join(manifest.splits)}; decisions
{', '.join(f'{k}: {v}' for k, v in sorted(manifest.decisions.items()))}.

| column | what it holds |
|---|---|
{table}

Load it:

```python
from datasets import load_dataset
data = load_dataset("THIS_FOLDER", split="train")      # every column, from {PARQUET}
```

LLaMA-Factory: copy the `{name}` entry of `{LLAMA_FACTORY}` into your data folder's registry with
`{JSONL}` beside it, and train with `dataset: {name}`. `manifest.json` holds the exact counts.
"""


def write_hub_files(out: Path, table: Any, manifest: Any) -> None:
    """train.parquet, README.md and dataset_info.json in the dataset folder `out`."""
    table.to_parquet(str(out / PARQUET))
    (out / CARD).write_text(card_text(manifest, list(table.column_names), len(table)))
    entry = llama_factory_entry(dataset_name(manifest.teacher_run))
    (out / LLAMA_FACTORY).write_text(json.dumps(entry, indent=2) + "\n")
