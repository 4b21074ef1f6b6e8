"""Shared checks for bad-input tests: one line on stderr, exit code 2, no traceback, nothing changed.

Every safety test module (tests/test_safety_*.py) and test_bad_input.py use these, so "one clear
line and nothing lost" means the same thing everywhere.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from tomdistill.cli import main
from tomdistill.elicit import elicit
from tomdistill.models.registry import load_model
from tomdistill.store import Store


def make_store(path: Path) -> Path:
    """A store with a sampled run `r0` and a score run `sc` (mock backend, 2 train scenarios)."""
    from tomdistill.scenarios import load_library

    library = load_library()
    with Store(path) as store:
        elicit(store, load_model("mock:rate=0.5"), library.scenarios("train")[:2], run_name="r0", samples=3)
        elicit(store, load_model("mock:rate=0.5"), library.scenarios("train")[:2], run_name="sc", mode="score")
    return path


def store_dump(path: Path) -> list[str]:
    """The store's SQL dump, without the schema-version row (the one thing opening may touch)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [line for line in con.iterdump() if "schema_version" not in line]
    finally:
        con.close()


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 (or '->target' for a symlink, 'dir' for a folder) of everything under root."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "->" + str(p.readlink())
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_one_line_error(code: int, err: str, message: str) -> str:
    """Exit code 2 and exactly one `error: ...` line on stderr containing `message`; returns the line."""
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0], lines[0]
    return lines[0]


def run_bad(args: list[str], message: str, capsys, *, store: Path | None = None, watch: Path | None = None) -> str:
    """Run the CLI with `args`; check the one-line error, and that `store` and the `watch` tree are unchanged."""
    before_store = store_dump(store) if store is not None else None
    before_tree = tree_digest(watch) if watch is not None else None
    code = main(args)
    err = capsys.readouterr().err
    line = assert_one_line_error(code, err, message)
    if store is not None:
        assert store_dump(store) == before_store
    if watch is not None:
        assert tree_digest(watch) == before_tree
    return line
