"""`tomdistill push`: send an adapter, merged model or dataset folder to the Hugging Face Hub, or
lay out exactly those files in a local folder (to check them, or to serve them from a mirror).

Only what another tool needs travels: a dataset without its `hf/` save_to_disk copy (train.parquet
holds the same rows, and the card points `load_dataset` at it), an adapter without its training
checkpoints and TensorBoard logs, and never tomdistill's folder marker. Uploading goes through `huggingface_hub`
(`HfApi.create_repo` + `upload_folder`) with its own login or `HF_TOKEN`; the repo type follows the
folder (datasets to dataset repos).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import TomdistillError
from .outdirs import MARKER, read_marker, replace_owned_dir

PUBLISHED_KIND = "published"
#: Per folder kind: the repo type on the Hub, and the entries that stay behind.
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dataset": ("dataset", ("hf",)),
    "adapter": ("model", ("checkpoints", "runs")),  # runs/: TensorBoard logs of the training
    "merged": ("model", ()),
}


@dataclass(frozen=True)
class Pushed:
    folder: str
    target: str
    repo_type: str
    files: list[str]
    url: str | None


def folder_kind(folder: Path) -> str:
    """What a tomdistill output folder holds, from its marker; a clear error for anything else."""
    if not folder.is_dir():
        raise TomdistillError(f"{folder}: no such folder")
    marker = read_marker(folder)
    kind = marker.get("kind") if marker else None
    if kind not in KINDS:
        raise TomdistillError(f"{folder}: not a dataset, adapter or merged-model folder written by tomdistill "
                              f"(its {MARKER} says {kind!r}); push one of those")
    return kind


def files_to_push(folder: Path, kind: str) -> list[str]:
    """The relative paths that go, in order: every file but the marker and the kind's left-behind entries."""
    skip = set(KINDS[kind][1])
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not path.is_symlink() and rel.parts[0] not in skip and not rel.name.startswith(MARKER):
            found.append(rel.as_posix())
    return found


def is_local_target(target: str) -> bool:
    """A path (absolute, relative or home-based) rather than a Hub repo id like `org/name`."""
    return target.startswith(("/", ".", "~")) or Path(target).exists() or target.count("/") != 1


def push(folder: Path, target: str, *, private: bool = False, api: Any = None) -> Pushed:
    """Copy `folder`'s publishable files to a local folder, or upload them to the Hub repo `target`."""
    kind = folder_kind(folder)
    repo_type, _ = KINDS[kind]
    files = files_to_push(folder, kind)
    if is_local_target(target):
        out = Path(target).expanduser()
        if out.resolve() == folder.resolve():
            raise TomdistillError(f"{target}: is the folder being pushed; choose another target")
        replace_owned_dir(out, PUBLISHED_KIND)  # a folder of the user's is never written into
        for rel in files:
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / rel, out / rel)
        return Pushed(str(folder), str(out), repo_type, files, None)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    repo = api.create_repo(target, repo_type=repo_type, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=target, repo_type=repo_type, allow_patterns=files,
                      commit_message=f"tomdistill push of a {kind} folder")
    return Pushed(str(folder), target, repo_type, files, str(getattr(repo, "url", repo)))
