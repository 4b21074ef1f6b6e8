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
    # runs/: TensorBoard logs; training_args.bin: a pickle (the Hub flags those), its settings are in train_config.json
    "adapter": ("model", ("checkpoints", "runs", "training_args.bin")),
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


def _nested(a: Path, b: Path) -> bool:
    """Whether one folder is, or lies inside, the other (a copy would then delete or copy itself)."""
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents


def check_publishable(folder: Path, kind: str) -> None:
    """Refuse folders written before tomdistill wrote what other tools read (cards, Parquet)."""
    from .models.provenance import card_block

    if kind == "dataset" and not (folder / "train.parquet").is_file():
        raise TomdistillError(f"{folder}: built by an older tomdistill (no train.parquet or dataset card); "
                              "build it again with `tomdistill dataset` before pushing")
    if kind in ("adapter", "merged") and card_block(folder) is None:
        raise TomdistillError(f"{folder}: its README.md has no tomdistill model-card metadata (an older "
                              "tomdistill wrote it); train or merge it again before pushing")


def copy_out(folder: Path, files: list[str], out: Path) -> None:
    """The files into `out`: a new folder or one an earlier push wrote, never a folder of the user's."""
    if _nested(folder, out):
        raise TomdistillError(f"{out}: is or contains (or lies inside) {folder}; choose a folder outside it")
    replace_owned_dir(out, PUBLISHED_KIND)
    for rel in files:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / rel, out / rel)


def upload(folder: Path, files: list[str], repo_id: str, repo_type: str, kind: str, private: bool, api: Any) -> str:
    """The files to the Hub repo `repo_id` (created when missing); its URL. Hub and network errors are one line."""
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    try:
        repo = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type, allow_patterns=files,
                          commit_message=f"tomdistill push of a {kind} folder")
    except (HfHubHTTPError, HFValidationError, OSError) as exc:
        raise TomdistillError(f"push to {repo_id}: {' '.join(str(exc).split())[:300]} (log in with "
                              "`hf auth login` or set HF_TOKEN; check the repo id)") from None
    except Exception as exc:  # noqa: BLE001  (the HTTP client's own errors: httpx or requests, by hub version)
        if type(exc).__module__.split(".")[0] not in ("httpx", "requests", "urllib3"):
            raise
        raise TomdistillError(f"push to {repo_id}: cannot reach the Hub ({type(exc).__name__})") from None
    return str(getattr(repo, "url", repo))


def push(folder: Path, *, repo_id: str | None = None, to: Path | None = None, private: bool = False,
         api: Any = None) -> Pushed:
    """`folder`'s publishable files to the Hub repo `repo_id`, or copied into the local folder `to`."""
    if (repo_id is None) == (to is None):
        raise TomdistillError("give either a Hub repo id (--repo-id org/name) or a local folder (--to DIR)")
    kind = folder_kind(folder)
    check_publishable(folder, kind)
    repo_type, _ = KINDS[kind]
    files = files_to_push(folder, kind)
    if to is not None:
        copy_out(folder, files, to.expanduser())
        return Pushed(str(folder), str(to), repo_type, files, None)
    url = upload(folder, files, repo_id, repo_type, kind, private, api)  # type: ignore[arg-type]
    return Pushed(str(folder), repo_id, repo_type, files, url)  # type: ignore[arg-type]
