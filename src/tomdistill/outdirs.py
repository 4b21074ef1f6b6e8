"""Whether tomdistill may write into, or replace, an output path: never what it did not write.

Every folder tomdistill creates for its output gets a marker file, `.tomdistill` (JSON: the tool,
its version, the kind of folder - run, dataset, adapter, merged, report, export - and a key such
as the stage key). A folder may then be written into when it is absent, empty, or marked with the
same kind; a folder may be deleted and rewritten only when it carries that marker. Anything else
(a non-empty folder of the user's, a file where a folder belongs, a symbolic link at or inside
the folder) is refused with one line naming the path. tomdistill never creates links, so a link
inside one of its folders was put there by someone else and would lead writes (or a delete)
outside the output folder.

Folders written before markers existed are recognised by a `legacy` test of the caller: the
files tomdistill always writes there (e.g. a dataset's manifest.json), and nothing else - each
kind lists the names it writes next to its test (`holds_only`), so a folder where the user added
a file of their own is refused, not replaced. Claiming such a folder writes the marker, so the
test is needed once per folder.

Single output files cannot carry a marker: an existing file is replaced only when the caller
was told to (`--force`), and then through a temporary file and a rename, which replaces a link
itself and never writes through it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from .errors import TomdistillError
from .jsonfiles import load_json_file
from .versions import __version__

MARKER = ".tomdistill"
HINT = "move it away or pick another --out"

#: Says whether a folder without a marker is one tomdistill wrote before markers existed.
Legacy = Callable[[Path], bool]


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of `folder` when it holds a valid one (a plain file, tomdistill's JSON), else None."""
    path = folder / MARKER
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = load_json_file(path, "tomdistill marker")
    except TomdistillError:
        return None
    return data if isinstance(data, dict) and data.get("tool") == "tomdistill" else None


def write_marker(folder: Path, kind: str, key: str | None = None) -> None:
    """Mark `folder` as tomdistill's `kind` output (atomically, so a parallel reader never sees half a marker)."""
    data = {"tool": "tomdistill", "version": __version__, "kind": kind, "key": key,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S")}
    tmp = folder / f"{MARKER}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, folder / MARKER)
    except OSError as exc:  # e.g. a folder named .tomdistill: no marker, and no temporary file left behind
        with suppress(OSError):
            tmp.unlink()
        raise TomdistillError(f"{folder / MARKER}: cannot write tomdistill's marker ({exc.strerror or exc}); "
                              f"{HINT}") from None


def _contents(folder: Path) -> list[str]:
    # A half-written marker of another process (several training ranks claim the same folder) is no content.
    return [n for n in os.listdir(folder) if not (n.startswith(MARKER + ".") and n.endswith(".tmp"))]


def holds_only(folder: Path, names: Iterable[str]) -> bool:
    """True when every entry of `folder` matches one of `names` (shell patterns such as cells_*.png):
    the part of a legacy test that keeps a folder holding a file of the user's from being replaced."""
    patterns = list(names)
    return all(any(fnmatch.fnmatchcase(name, p) for p in patterns) for name in _contents(folder))


def _first_link(folder: Path) -> Path | None:
    for parent, dirs, files in os.walk(folder):  # os.walk does not descend into linked folders
        for name in sorted(dirs + files):
            if os.path.islink(os.path.join(parent, name)):
                return Path(parent, name)
    return None


def owned(folder: Path, kind: str, legacy: Legacy | None = None) -> bool:
    """True when `folder` is tomdistill's output of this kind (its marker, or the `legacy` test without one)."""
    marker = read_marker(folder)
    if marker is not None:
        return marker.get("kind") == kind
    return legacy is not None and legacy(folder)


def check_dir(path: Path, kind: str, *, legacy: Legacy | None = None, hint: str = HINT) -> bool:
    """Raise unless tomdistill may write `kind` output into `path`; True when the folder exists already."""
    if path.is_symlink():
        raise TomdistillError(f"{path}: is a symbolic link; tomdistill does not write through links ({hint})")
    if not path.exists():
        return False
    if not path.is_dir():
        raise TomdistillError(f"{path}: is a file, and tomdistill's {kind} folder would go there; {hint}")
    marker = path / MARKER
    if not marker.is_symlink() and marker.exists() and not marker.is_file():  # a link: refused below
        raise TomdistillError(f"{marker}: is not a plain file, so not tomdistill's marker; {hint}")
    if _contents(path) and not owned(path, kind, legacy):
        marker = read_marker(path)
        what = f"it holds a tomdistill {marker.get('kind')}, not a {kind}" if marker else "tomdistill did not write it"
        raise TomdistillError(f"{path}: folder is not empty and {what}; {hint}")
    link = _first_link(path)
    if link is not None:
        raise TomdistillError(f"{link}: a symbolic link inside an output folder; tomdistill does not write "
                              f"through links (remove it, or pick another --out)")
    return True


def claim_dir(path: Path, kind: str, *, key: str | None = None, legacy: Legacy | None = None,
              hint: str = HINT) -> Path:
    """Create `path` (or accept it when empty or ours) and mark it as tomdistill's `kind` output.

    Without a `key`, a marker already there is kept as it is (a stage's claim keeps its stage key)."""
    check_dir(path, kind, legacy=legacy, hint=hint)
    path.mkdir(parents=True, exist_ok=True)
    marker = read_marker(path)
    if marker is None or (key is not None and marker.get("key") != key):
        write_marker(path, kind, key)
    return path


def replace_owned_dir(path: Path, kind: str, *, key: str | None = None, legacy: Legacy | None = None,
                      hint: str = HINT) -> Path:
    """Start `path` afresh: delete it only when it is ours (marker or legacy test), then claim it."""
    if check_dir(path, kind, legacy=legacy, hint=hint) and _contents(path):
        shutil.rmtree(path)  # checked above: our folder, with no link inside for rmtree to meet
    return claim_dir(path, kind, key=key, legacy=legacy, hint=hint)


def check_new_file(path: Path, *, force: bool = False, flag: str = "--force", out_flag: str = "--out") -> None:
    """Raise unless a single output file may be written at `path`: absent, or an existing file with `force`.
    `flag` and `out_flag` are the caller's flags for replacing the file and for choosing it."""
    if path.is_dir() and not path.is_symlink():
        raise TomdistillError(f"{path}: is a folder, and a file would go there; pick another {out_flag}")
    if (path.exists() or path.is_symlink()) and not force:
        raise TomdistillError(f"{path}: file exists and tomdistill does not overwrite files; pass {flag} to "
                              f"replace it, or pick another {out_flag}")


@contextmanager
def replacing_file(path: Path) -> Iterator[Path]:
    """A temporary path next to `path`; on success it replaces `path` (a link itself, never the link's target)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates a new name (never an existing file of the user's), private until renamed.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # the permissions a plain open() would have given
        os.replace(tmp, path)
    finally:
        if tmp.is_file() and not tmp.is_symlink():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
