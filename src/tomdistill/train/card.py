"""The model card (README.md) `tomdistill train` writes into an adapter folder: what the adapter
is, what it was trained on and how, and how to use it."""

from __future__ import annotations

from typing import Any

from ..config import DEFAULT_PRESET
from ..dataset import DatasetManifest
from .folders import TRAIN_CONFIG, TRAIN_LOG


def model_card(info: dict[str, Any], manifest: DatasetManifest) -> str:
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
| recipe | preset {c['preset'] or DEFAULT_PRESET}: LoRA r {c['r']}, alpha {c['alpha']}, dropout {c['dropout']}, modules {', '.join(c['target_modules'])}; lr {c['learning_rate']}, epochs {c['epochs']}, batch {c['batch_size']} x accumulation {c['grad_accum']}, max length {c['max_length']}, seed {c['seed']}, bf16 {info['bf16']} |
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
