"""Which weights a model spec stands for, written so other tools and machines can find them again.

An adapter trained on `default:student` sits on a dequantised GGUF that tomdistill unpacks into a
cache folder; that folder's path means nothing on another machine and nothing to the Hub. Model
cards and adapter configs therefore name the base by its Hub id (what `peft` and the Hub read),
and carry tomdistill's own block beside it: the spec, and for embedded weights their GGUF's
quantisation, sha256 and the pip package that holds it. Loading maps that block back: embedded
weights with the same sha256 when this install has them, else the Hub id, with a warning that
those are other weights than the adapter was trained on.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import TomdistillError, TomdistillWarning
from .registry import parse_spec

#: The key of tomdistill's block in model card metadata (README.md front matter).
CARD_KEY = "tomdistill"


class OtherWeightsWarning(TomdistillWarning):
    """An adapter is being put on other weights than the ones it was trained on."""


@dataclass(frozen=True)
class BaseWeights:
    """The base model of an adapter or merged model, as its card records it."""

    spec: str
    hub_id: str | None
    #: For embedded (default:) bases: what the weights are and where they come from.
    title: str | None = None
    quantisation: str | None = None
    gguf_sha256: str | None = None
    package: str | None = None

    def card_block(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _looks_like_path(text: str) -> bool:
    """A filesystem path (absolute, relative or home-based, any OS), not a Hub id like org/name."""
    return text.startswith((".", "/", "~", "\\")) or (len(text) > 1 and text[1] == ":") or "\\" in text


def _local_hub_id(folder: Path) -> str | None:
    """The Hub id of a folder inside the Hugging Face cache (`.../models--org--name/snapshots/REV`).
    Any other folder's id is unknown: its config.json's `_name_or_path` often names the model it
    was fine-tuned from, which would point a card at other weights."""
    for part in reversed(folder.resolve().parts):
        if part.startswith("models--") and part.count("--") >= 2:
            return part[len("models--"):].replace("--", "/", 1)
    return None


def base_weights(spec: str) -> BaseWeights:
    """What `spec` (default: or hf:) loads, with the Hub id where one is known."""
    provider, ident = parse_spec(spec)
    if provider == "default":
        from .embedded import default_weights

        w = default_weights(ident)
        return BaseWeights(spec, w.hub_id or None, w.title, w.quantisation or None, w.sha256, w.pip)
    if provider == "hf":
        folder = Path(ident)
        return BaseWeights(spec, _local_hub_id(folder) if folder.is_dir() else ident)
    return BaseWeights(spec, None)


def _embedded_with_hash(sha256: str, prefer: str | None = None) -> str | None:
    """The name of this install's embedded model whose GGUF has that hash (`prefer` first, so a
    card's own name is kept), whether or not its weight package is installed."""
    from .embedded import EMBEDDED

    names = ([prefer] if prefer in EMBEDDED else []) + list(EMBEDDED)
    return next((name for name in names if EMBEDDED[name].sha256 == sha256), None)


def resolve_base(block: dict[str, Any], where: Path, *, other_weights: bool = True) -> str:
    """The spec to load for a card's base block: its own spec when that names the same weights
    here; else this install's embedded model with the same GGUF sha256, whatever its name (an
    error naming the pip package when it is not installed). Weights this install does not know
    fall back to the Hub id with an OtherWeightsWarning, unless `other_weights` is False (export
    pins the base it records, so it must not guess)."""
    spec, sha, hub_id = block.get("spec"), block.get("gguf_sha256"), block.get("hub_id")
    if not isinstance(spec, str):
        raise TomdistillError(f"{where}: the model card's '{CARD_KEY}.base' block has no 'spec'")
    provider, ident = parse_spec(spec)
    if not sha:
        if provider == "hf" and other_weights and hub_id and _looks_like_path(ident) and not Path(ident).expanduser().is_dir():
            _warn(where, f"its base folder {ident} is not on this machine", hub_id)
            return f"hf:{hub_id}"
        return spec
    if not isinstance(sha, str):
        raise TomdistillError(f"{where}: the model card's '{CARD_KEY}.base.gguf_sha256' is not a hash")
    name = _embedded_with_hash(sha, prefer=ident if provider == "default" else None)
    if name is not None:
        from .embedded import EMBEDDED, part_paths

        part_paths(EMBEDDED[name])  # not installed: one line naming the pip package
        return f"default:{name}"
    if not hub_id or not other_weights:
        raise TomdistillError(f"{where}: trained on {block.get('title', 'embedded weights')} (GGUF sha256 {sha[:12]}...), "
                              f"which this install does not have; install them with: {block.get('package')}")
    _warn(where, f"it was trained on {block.get('title')} (GGUF sha256 {sha[:12]}...), which this install does not "
          f"have ({block.get('package')})", hub_id)
    return f"hf:{hub_id}"


def _warn(where: Path, why: str, hub_id: str) -> None:
    warnings.warn(f"{where}: {why}; loading hf:{hub_id} instead, other weights than the adapter was trained on "
                  "(not quantised like them), so its decisions may differ", OtherWeightsWarning, stacklevel=3)


def card_data(readme: Path) -> dict[str, Any] | None:
    """The front matter of a model card (README.md) as a dict; None without a readable card."""
    if not readme.is_file():
        return None
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(readme).data.to_dict()
    except Exception:  # noqa: BLE001  (a hand-edited card with broken YAML: treated as no card)
        return None


def card_block(folder: Path) -> dict[str, Any] | None:
    """tomdistill's block of a folder's README.md front matter; None without a card or block."""
    block = (card_data(folder / "README.md") or {}).get(CARD_KEY)
    return block if isinstance(block, dict) else None


def card_base(folder: Path) -> dict[str, Any] | None:
    """The base-weights block (`tomdistill.base`) of a folder's card; None without one."""
    block = card_block(folder)
    base = block.get("base") if block else None
    return base if isinstance(base, dict) else None
