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

import json
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


def _local_hub_id(folder: Path) -> str | None:
    """The Hub id a local transformers folder was downloaded as, when its config still says one."""
    try:
        name = json.loads((folder / "config.json").read_text()).get("_name_or_path")
    except (OSError, ValueError, AttributeError):
        return None
    # A path (absolute, relative or home-based) is where it was saved, not what it is.
    if isinstance(name, str) and name.count("/") == 1 and not name.startswith((".", "/", "~")):
        return name
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


def _installed_embedded(sha256: str, prefer: str | None = None) -> str | None:
    """The name of this install's embedded model with that GGUF hash (`prefer` first, so a card's
    own name is kept), if its weight package is installed."""
    from .embedded import EMBEDDED, part_paths

    names = ([prefer] if prefer in EMBEDDED else []) + list(EMBEDDED)
    for name in names:
        w = EMBEDDED[name]
        if w.sha256 == sha256:
            try:
                part_paths(w)
            except TomdistillError:  # known, but its weight package is not installed here
                return None
            return name
    return None


def resolve_base(block: dict[str, Any], where: Path) -> str:
    """The spec to load for a card's base block: its own spec when that names the same weights
    here; else this install's embedded model with the same GGUF sha256, whatever its name; else
    the Hub id, with an OtherWeightsWarning (other weights than the adapter was trained on)."""
    spec, sha, hub_id = block.get("spec"), block.get("gguf_sha256"), block.get("hub_id")
    if not isinstance(spec, str):
        raise TomdistillError(f"{where}: the model card's '{CARD_KEY}.base' block has no 'spec'")
    provider, ident = parse_spec(spec)
    if not sha:
        if provider == "hf" and ident.startswith(("/", ".", "~")) and not Path(ident).expanduser().is_dir() and hub_id:
            _warn(where, f"its base folder {ident} is not on this machine", hub_id)
            return f"hf:{hub_id}"
        return spec
    name = _installed_embedded(sha, prefer=ident if provider == "default" else None)
    if name is not None:
        return f"default:{name}"
    if not hub_id:
        raise TomdistillError(f"{where}: trained on {block.get('title', 'embedded weights')} (GGUF sha256 {sha[:12]}...), "
                              f"which this install does not have; install them with: {block.get('package')}")
    _warn(where, f"it was trained on {block.get('title')} (GGUF sha256 {sha[:12]}...), which this install does not "
          f"have ({block.get('package')})", hub_id)
    return f"hf:{hub_id}"


def _warn(where: Path, why: str, hub_id: str) -> None:
    warnings.warn(f"{where}: {why}; loading hf:{hub_id} instead, other weights than the adapter was trained on "
                  "(not quantised like them), so its decisions may differ", OtherWeightsWarning, stacklevel=3)


def card_block(folder: Path) -> dict[str, Any] | None:
    """tomdistill's block of a folder's README.md front matter; None without a card or block."""
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    from huggingface_hub import ModelCard

    try:
        data = ModelCard.load(readme).data.to_dict()
    except Exception:  # noqa: BLE001  (a hand-edited card with broken YAML: fall back to train_config.json)
        return None
    block = data.get(CARD_KEY)
    return block if isinstance(block, dict) else None


def card_base(folder: Path) -> dict[str, Any] | None:
    """The base-weights block (`tomdistill.base`) of a folder's card; None without one."""
    block = card_block(folder)
    base = block.get("base") if block else None
    return base if isinstance(base, dict) else None
