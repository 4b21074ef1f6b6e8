"""agent.json: what an exported agent folder holds and how to run it, validated on load.

The file makes a folder self-describing: which weights (a LoRA adapter on a named base model, or
a merged standalone model), the chat template, the prompt protocol the agent was trained for
(with its exact texts), how it decides (sample or score mode, sampling settings), where it came
from (teacher run, training recipe) and the versions that made it.

An agent folder is data from elsewhere, so loading trusts none of it (`verify_folder`): every path
agent.json names must stay inside the folder, no symlink may lead out of it, and every weight file
must match the sha256 agent.json records for it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import TomdistillError, describe_validation_error
from ..jsonfiles import load_json_file
from ..models.base import Mode, SamplingSettings
from ..scenarios.protocols import Protocol

AGENT_FILE = "agent.json"
#: Bumped when agent.json changes incompatibly; a newer folder is refused with an upgrade hint.
FORMAT_VERSION = 1


class BaseRef(BaseModel):
    """The base model an adapter sits on (or a merged model was made from), pinned by hash."""

    model_config = ConfigDict(extra="forbid")
    spec: str = Field(description="Model spec, e.g. default:student or hf:/models/Llama-3.1-8B-Instruct.")
    gguf_sha256: str | None = Field(None, description="default: models: sha256 of the embedded GGUF the weights come from.")
    fingerprint: str | None = Field(
        None, description="hf: models: sha256 over config.json and the names and sizes of the weight files."
    )


class FileEntry(BaseModel):
    """One weight file: its size and sha256, both checked on every load."""

    model_config = ConfigDict(extra="forbid")
    size: int = Field(ge=0)
    # Optional only so that a folder without it gets a "re-export" message instead of a schema error.
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


class AgentManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: int = FORMAT_VERSION
    name: str
    kind: Literal["adapter", "merged"] = Field(description="adapter: LoRA weights on `base`; merged: a standalone model.")
    weights: str = Field(description="Folder (relative) with the adapter or the merged model, tokenizer and chat template.")
    base: BaseRef
    chat_template: str | None = Field(None, description="The chat template file (relative), when the tokenizer keeps one.")
    protocol: Protocol = Field(description="Prompt protocol the agent was trained with: answer or motivated.")
    protocol_texts: dict[str, str] = Field(description="The system and instruction texts of that protocol, as trained.")
    mode: Mode = Field(description="How decide() works by default: sample (generate + parse) or score (probabilities).")
    sampling: SamplingSettings
    games: str = Field("two-player matrix games told in tomdistill's prose templates; the donation game (numeric)")
    training: dict[str, Any] = Field(default_factory=dict, description="Teacher run, data and recipe (from train_config.json).")
    behaviour: str | None = Field(None, description="behaviour.json (relative), when an evaluation was given.")
    files: dict[str, FileEntry] = Field(default_factory=dict, description="Weight files (relative): size and sha256.")
    tomdistill_version: str
    versions: dict[str, str] = Field(default_factory=dict)
    created: str


def read_manifest(folder: Path) -> AgentManifest:
    """The validated agent.json of `folder`; errors name the folder and field."""
    path = folder / AGENT_FILE
    if not path.is_file():
        raise TomdistillError(f"{folder}: not an agent folder (no {AGENT_FILE}); make one with `tomdistill export`")
    data = load_json_file(path, AGENT_FILE)
    if isinstance(data, dict) and isinstance(data.get("format"), int) and data["format"] > FORMAT_VERSION:
        raise TomdistillError(f"{path}: written by a newer tomdistill (format {data['format']} > {FORMAT_VERSION}); upgrade tomdistill")
    try:
        return AgentManifest.model_validate(data)
    except ValidationError as exc:
        field, message = describe_validation_error(exc)
        raise TomdistillError(f"{path}: field '{field}': {message}") from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def resolved(path: Path) -> Path:
    """`path` with every symlink followed; a symlink loop is a user error naming the path."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError up to Python 3.12, OSError (ELOOP) after
        raise TomdistillError(f"{path}: a symlink loop") from None


def walk(folder: Path, skip: frozenset[str] = frozenset()) -> Iterator[Path]:
    """Everything under `folder`, without following symlinks; names in `skip` are left out at every level."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in dirs + files:
            if name not in skip:
                yield Path(root) / name


def inside(folder: Path, rel: str, field: str) -> Path:
    """`folder / rel` for a path agent.json names in `field`, refused when it leads out of the folder."""
    where = folder / AGENT_FILE
    if not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise TomdistillError(f"{where}: field '{field}': '{rel}' is not a relative path inside the agent folder "
                              "(absolute paths and '..' are refused)")
    path = folder / rel
    target = resolved(path)
    if not target.is_relative_to(resolved(folder)):
        raise TomdistillError(f"{where}: field '{field}': '{rel}' leads (through a symlink) to {target}, "
                              "outside the agent folder")
    return path


def _check_links(folder: Path) -> None:
    """Refuse a symlink anywhere in the agent folder that leads out of it (export never writes one)."""
    root = resolved(folder)
    for path in walk(folder):
        if path.is_symlink() and not resolved(path).is_relative_to(root):
            raise TomdistillError(f"{path}: a symlink to {resolved(path)}, outside the agent folder; "
                                  "an agent folder must hold its own files")


def _check_file(folder: Path, path: Path, field: str, entry: FileEntry) -> None:
    if entry.sha256 is None:
        raise TomdistillError(f"{folder / AGENT_FILE}: field '{field}.sha256': missing, so the weights cannot be "
                              "checked; re-export the agent with this tomdistill")
    if not path.is_file():
        raise TomdistillError(f"{path}: weight file is missing (agent.json field '{field}')")
    if path.stat().st_size != entry.size:
        raise TomdistillError(f"{path}: weight file changed since export: {path.stat().st_size} bytes, "
                              f"agent.json field '{field}.size' says {entry.size}")
    if file_sha256(path) != entry.sha256:
        raise TomdistillError(f"{path}: weight file changed since export: its sha256 differs from "
                              f"agent.json field '{field}.sha256'")


def verify_folder(folder: Path, manifest: AgentManifest) -> Path:
    """Check an agent folder against its agent.json before anything loads from it; returns the weights folder.

    Paths must stay inside the folder, and every weight file in the weights folder must be listed
    with a matching size and sha256 (hashed in chunks, so memory stays flat for large models).
    """
    # Paths agent.json names first, so that an error names the field; then any other link in the folder.
    weights = inside(folder, manifest.weights, "weights")
    for field in ("chat_template", "behaviour"):
        if (rel := getattr(manifest, field)) is not None:
            inside(folder, rel, field)
    files = {f"files.{name}": (inside(folder, name, f"files.{name}"), entry) for name, entry in manifest.files.items()}
    _check_links(folder)
    if not weights.is_dir():
        raise TomdistillError(f"{folder}: agent.json names the folder '{manifest.weights}', which is missing")
    listed = {resolved(path) for path, _ in files.values()}
    for path in weight_files(weights):
        if resolved(path) not in listed:
            raise TomdistillError(f"{path}: a weight file that agent.json does not list (field 'files'); "
                                  "re-export the agent")
    for field, (path, entry) in files.items():
        _check_file(folder, path, field, entry)
    return weights


def weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in {".safetensors", ".bin"} and p.name != "training_args.bin")


def folder_fingerprint(folder: Path) -> str:
    """A cheap identity of a transformers model folder: config.json and its weight files' names
    and sizes (hashing the weights themselves would take minutes for an 8B model on every load)."""
    digest = hashlib.sha256((folder / "config.json").read_bytes() if (folder / "config.json").is_file() else b"")
    for path in weight_files(folder):
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
    return digest.hexdigest()


def base_ref(spec: str) -> BaseRef:
    """The base model's spec with what pins its weights: the embedded GGUF hash or a folder fingerprint."""
    from ..models.registry import parse_spec

    provider, ident = parse_spec(spec)
    if provider == "default":
        from ..models.embedded import EMBEDDED

        if ident not in EMBEDDED:
            raise TomdistillError(f"{spec}: unknown default model; choose one of: {', '.join('default:' + n for n in EMBEDDED)}")
        return BaseRef(spec=spec, gguf_sha256=EMBEDDED[ident].sha256)
    if provider == "hf" and Path(ident).is_dir():
        return BaseRef(spec=spec, fingerprint=folder_fingerprint(Path(ident)))
    return BaseRef(spec=spec)


def check_base(agent_dir: Path, base: BaseRef) -> None:
    """Refuse to put an adapter on other weights than it was trained on."""
    from ..models.registry import parse_spec

    provider, ident = parse_spec(base.spec)
    if provider == "default" and base.gguf_sha256:
        from ..models.embedded import EMBEDDED

        have = EMBEDDED.get(ident)
        if have is None or have.sha256 != base.gguf_sha256:
            raise TomdistillError(
                f"{agent_dir}: its adapter was trained on {base.spec} with weights sha256 {base.gguf_sha256[:12]}..., "
                f"but this tomdistill's {base.spec} is {'unknown' if have is None else have.sha256[:12] + '...'}; "
                "use the tomdistill version that exported it, or export a merged agent (--merge)"
            )
    if provider == "hf" and base.fingerprint and Path(ident).is_dir() and folder_fingerprint(Path(ident)) != base.fingerprint:
        raise TomdistillError(f"{agent_dir}: the base model folder {ident} has changed since the agent was exported "
                              "(config or weight files differ)")
