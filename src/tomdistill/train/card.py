"""The model cards (README.md) of adapter and merged-model folders: Hub metadata in the front
matter, what the weights are, what they were trained on and how, and how to use them.

The front matter is what the Hub and `peft` read: `base_model` is the Hub id of the model the
student's weights come from (never a local cache path), `library_name` says how to load the
folder, and a `tomdistill` block pins the exact base weights (see models/provenance.py) so that
tomdistill on another machine loads the same ones. PEFT writes a card of its own when the adapter
is saved; its metadata is kept and ours is laid over it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import DEFAULT_PRESET
from ..dataset import DatasetManifest
from ..errors import TomdistillError
from ..models.provenance import CARD_KEY, BaseWeights, card_data
from .folders import TRAIN_CONFIG, TRAIN_LOG

CARD = "README.md"
TAGS = ("tomdistill", "lora", "distillation", "social-dilemmas", "theory-of-mind")


def card_metadata(folder: Path, base: BaseWeights, library: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The front matter for `folder`'s card: what is there already (PEFT's), with the base model,
    library, tags and tomdistill's block set."""
    data: dict[str, Any] = card_data(folder / CARD) or {}  # an unreadable earlier card is replaced, not merged
    data.pop("base_model", None)  # PEFT's is the local path the weights were loaded from
    if base.hub_id:
        data["base_model"] = base.hub_id
    data["library_name"] = library
    data["pipeline_tag"] = "text-generation"
    # PEFT tags the adapter "base_model:adapter:<what it loaded>", a cache path here: named anew.
    tags = {t for t in data.get("tags") or [] if not str(t).startswith("base_model:")} | set(TAGS)
    if base.hub_id and library == "peft":
        tags.add(f"base_model:adapter:{base.hub_id}")
    data["tags"] = sorted(tags)
    data[CARD_KEY] = {"base": base.card_block(), **extra}
    return data


def render_card(metadata: dict[str, Any], body: str) -> str:
    from huggingface_hub import ModelCardData

    return f"---\n{ModelCardData(**metadata).to_yaml()}\n---\n\n{body}"


def _base_line(base: BaseWeights, info: dict[str, Any]) -> str:
    hub = f"[{base.hub_id}](https://huggingface.co/{base.hub_id})" if base.hub_id else "no Hub id known"
    exact = f"; exact weights: {base.title}, GGUF sha256 `{base.gguf_sha256}` ({base.package})" if base.gguf_sha256 else ""
    return f"`{info['student']}`: {hub}{exact}"


def adapter_body(info: dict[str, Any], manifest: DatasetManifest, base: BaseWeights, behaviour: list[str]) -> str:
    """The adapter card's text: what it is, what it was trained on, and how to use it."""
    c, r = info["config"], info["result"]
    per_split = ", ".join(f"{k}: {v}" for k, v in manifest.per_split.items())
    decisions = ", ".join(f"{k}: {v}" for k, v in sorted(manifest.decisions.items()))
    summary = ["", "## Behaviour", "", *behaviour] if behaviour else []
    return f"""# tomdistill student adapter

A LoRA adapter that makes **{info['student']}** decide like the teacher **{manifest.teacher_model}**
in one-shot social dilemmas (tomdistill).

| | |
|---|---|
| base model | {_base_line(base, info)} |
| teacher run | `{manifest.teacher_run}` ({manifest.teacher_model}) |
| data | {manifest.examples} examples ({per_split}); decisions {decisions} |
| prompt protocol | `{manifest.prompt_protocol}`; reply format `{manifest.reply_format!r}` |
| recipe | preset {c['preset'] or DEFAULT_PRESET}: LoRA r {c['r']}, alpha {c['alpha']}, dropout {c['dropout']}, modules {', '.join(c['target_modules'])}; lr {c['learning_rate']}, epochs {c['epochs']}, batch {c['batch_size']} x accumulation {c['grad_accum']}, max length {c['max_length']}, seed {c['seed']}, bf16 {info['bf16']} |
| training | {r['steps']} steps in {r['wall_s']} s; final loss {r['final_loss']} |
| versions | {', '.join(f'{k} {v}' for k, v in info['versions'].items())} |
{chr(10).join(summary)}

Use it with tomdistill (the base weights are found from this card's metadata):

```bash
tomdistill elicit --model THIS_FOLDER --run student --split train --mode score
tomdistill merge THIS_FOLDER --out merged/      # a standalone model folder
```

or with PEFT alone, on the Hub model named as `base_model` above (not quantised like the weights
it was trained on, so its decisions can differ a little):

```python
from peft import AutoPeftModelForCausalLM
model = AutoPeftModelForCausalLM.from_pretrained("THIS_FOLDER")
```

Files: `adapter_model.safetensors` + `adapter_config.json` (PEFT), the tokenizer and chat
template, `{TRAIN_CONFIG}` (exact config and versions), `{TRAIN_LOG}` (loss per step).
"""


def training_block(info: dict[str, Any], manifest: DatasetManifest) -> dict[str, Any]:
    """The card's record of the training, beside the base: enough to find the run and recipe."""
    return {"teacher": {"run": manifest.teacher_run, "model": manifest.teacher_model},
            "protocol": manifest.prompt_protocol, "preset": info["config"].get("preset") or DEFAULT_PRESET,
            "steps": info["result"]["steps"], "versions": info["versions"]}


def write_adapter_card(folder: Path, info: dict[str, Any], manifest: DatasetManifest, base: BaseWeights,
                       behaviour: list[str] | None = None) -> None:
    """(Re)write the adapter folder's README.md, and point adapter_config.json at the Hub id."""
    metadata = card_metadata(folder, base, "peft", training_block(info, manifest))
    (folder / CARD).write_text(render_card(metadata, adapter_body(info, manifest, base, behaviour or [])))
    set_peft_base(folder, base)


def refresh_adapter_card(folder: Path, dataset: Path, behaviour: list[str]) -> None:
    """Rewrite a trained adapter's card with a behaviour summary (after `tomdistill run` evaluated it)."""
    from ..dataset import load_manifest
    from ..models.provenance import base_weights
    from .folders import TRAIN_CONFIG, training_info

    if not (folder / TRAIN_CONFIG).is_file():  # not trained by tomdistill: its card is not ours to write
        return
    try:
        info = training_info(folder)
        write_adapter_card(folder, info, load_manifest(dataset), base_weights(info["student"]), behaviour)
    except (TomdistillError, KeyError, TypeError, ValueError, AttributeError, OSError):
        # A train_config.json or adapter_config.json from an older tomdistill, or edited by hand:
        # the card stays as it is rather than failing an evaluation that was saved already.
        return


def set_peft_base(folder: Path, base: BaseWeights) -> None:
    """adapter_config.json's base_model_name_or_path: the Hub id instead of a local cache path, so
    PEFT's AutoPeftModel finds the base anywhere (tomdistill itself reads the card's block)."""
    path = folder / "adapter_config.json"
    if not base.hub_id or not path.is_file():
        return
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = base.hub_id
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def merged_body(student: str, adapter: Path, base: BaseWeights) -> str:
    return f"""# tomdistill merged student

The student **{student}** with the tomdistill LoRA adapter `{adapter.name}` folded into its
weights: a standalone transformers model folder.

- base model: {_base_line(base, {'student': student})}
- adapter: `{adapter}` (its README.md has the teacher, data, recipe and behaviour)

```bash
tomdistill elicit --model hf:THIS_FOLDER --run merged --split train --mode score
```
"""


def write_merged_card(folder: Path, student: str, adapter: Path, base: BaseWeights,
                      adapter_card: dict[str, Any] | None) -> None:
    """The merged folder's README.md: transformers metadata, the adapter's training block kept."""
    extra = {k: v for k, v in (adapter_card or {}).items() if k != "base"}
    metadata = card_metadata(folder, base, "transformers", {**extra, "merged_from": str(adapter.name)})
    metadata["base_model_relation"] = "merge"
    (folder / CARD).write_text(render_card(metadata, merged_body(student, adapter, base)))
