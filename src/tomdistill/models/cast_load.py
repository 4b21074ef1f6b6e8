"""Load a causal LM in a narrower dtype than its checkpoint without holding the checkpoint in memory.

`from_pretrained(path, dtype=bf16)` on a float32 safetensors file maps the whole file and reads
every page of it while it casts: the pages count in the process's resident set until the load
ends. For the 1.5B Qwen teacher that was a 10.3 GiB peak (6.9 GiB of mapped file beside the
3.8 GiB bf16 model) for a model that then runs in 3.8 GiB. Here the model is built empty in the
target dtype and filled one tensor at a time, each from its own short-lived mapping: the peak is
the model plus one float32 tensor (3.9 GiB for that teacher, logits equal to the library's load).

Only the plain case takes this path: a local folder of safetensors files whose names match the
model's parameters one to one, stored wider than the requested dtype. Anything else (a hub id,
renamed keys, quantised or sharded-without-index checkpoints, same-dtype loads, which map the
file without copying) goes through `from_pretrained` unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import transformers
from safetensors import safe_open

# Bytes per element of the safetensors dtype names this path handles.
_STORED_BYTES = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2}


def checkpoint_files(folder: Path) -> list[Path]:
    """The safetensors files of a model folder: those its index names, else `model.safetensors`,
    else none (then the caller leaves the load to transformers)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / name for name in names]
    single = folder / "model.safetensors"
    return [single] if single.is_file() else []


def stored_tensors(files: list[Path]) -> dict[str, tuple[Path, str]]:
    """Each tensor's name -> (file, stored dtype name), read from the files' headers only."""
    found: dict[str, tuple[Path, str]] = {}
    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():
                found[name] = (path, handle.get_slice(name).get_dtype())
    return found


def _wider(stored: dict[str, tuple[Path, str]], dtype: torch.dtype) -> bool:
    """Whether every stored tensor is a float wider than `dtype` (so a cast, not a view, is needed)."""
    target = torch.finfo(dtype).bits // 8
    return bool(stored) and all(_STORED_BYTES.get(kind, 0) > target for _, kind in stored.values())


def _empty_model(folder: Path, dtype: torch.dtype) -> Any:
    """The model in `dtype` with uninitialised weights: they are all overwritten next."""
    from transformers.initialization import no_init_weights

    config = transformers.AutoConfig.from_pretrained(str(folder))
    with no_init_weights():
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.tie_weights()  # before counting parameters: a tied head is then one parameter, filled once
    return model


def _fill(model: Any, stored: dict[str, tuple[Path, str]]) -> None:
    """Copy each stored tensor into its parameter, one open file mapping per tensor so that no
    more than one tensor's pages are resident at a time."""
    targets = dict(model.named_parameters())
    targets.update(model.named_buffers())
    with torch.no_grad():
        for name, (path, _) in stored.items():
            with safe_open(str(path), framework="pt") as handle:
                source = handle.get_tensor(name)
            targets[name].copy_(source)
            del source


def load_causal_lm(ident: str, dtype: torch.dtype) -> Any:
    """`AutoModelForCausalLM.from_pretrained(ident, dtype=dtype)`, reading a wider local
    checkpoint tensor by tensor (see the module docstring) when its names match the model's."""
    folder = Path(ident)
    files = checkpoint_files(folder) if folder.is_dir() else []
    stored = stored_tensors(files) if files else {}
    if not _wider(stored, dtype):
        return transformers.AutoModelForCausalLM.from_pretrained(ident, dtype=dtype)
    model = _empty_model(folder, dtype)
    # Tied weights appear once in named_parameters (deduplicated); every parameter and
    # persistent buffer must come from the file, and nothing in the file may go unused.
    needed = {name for name, _ in model.named_parameters()}
    needed |= {name for name in model.state_dict() if name in dict(model.named_buffers())}
    if not needed <= stored.keys() or not stored.keys() <= set(model.state_dict()):
        del model
        return transformers.AutoModelForCausalLM.from_pretrained(ident, dtype=dtype)
    _fill(model, stored)
    if (folder / "generation_config.json").is_file():  # as from_pretrained would: stop tokens live here
        model.generation_config = transformers.GenerationConfig.from_pretrained(str(folder))
    model.eval()
    return model
