"""The SQLite store: every run and every sample, with raw text, settings, seed and timing.

One file (default `./tomdistill.db`, or `--store PATH` / TOMDISTILL_STORE) in WAL mode, so
readers and a second writer never block each other for long. A sample's key (run, scenario,
prompt hash, sample index) is unique: re-running an interrupted elicitation inserts only what is
missing, never a duplicate. Parsing is stored beside the raw text and can be redone at any time
(`reparse`) without calling a model.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import TomdistillError

DEFAULT_STORE = "tomdistill.db"
STORE_ENV = "TOMDISTILL_STORE"

#: Ordered migrations; the schema version is the number applied. Never edit an applied one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        model TEXT NOT NULL,
        adapter TEXT,
        protocol TEXT NOT NULL,
        mode TEXT NOT NULL,
        settings TEXT NOT NULL,
        seed INTEGER NOT NULL,
        model_info TEXT NOT NULL DEFAULT '{}',
        created TEXT NOT NULL
    );
    CREATE TABLE prompts (
        hash TEXT PRIMARY KEY,
        messages TEXT NOT NULL
    );
    CREATE TABLE samples (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        scenario TEXT NOT NULL,
        split TEXT NOT NULL,
        prompt_hash TEXT NOT NULL REFERENCES prompts(hash),
        sample_index INTEGER NOT NULL,
        seed INTEGER,
        raw_text TEXT,
        action TEXT,
        value REAL,
        motivation TEXT,
        invalid_reason TEXT,
        probs TEXT,
        valid_mass REAL,
        parser_version TEXT,
        latency_s REAL,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        error TEXT,
        created TEXT NOT NULL,
        UNIQUE (run_id, scenario, prompt_hash, sample_index)
    );
    CREATE INDEX samples_by_run ON samples (run_id, scenario);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(TomdistillError):
    """The store file is unusable or a run does not match what was asked."""


@dataclass(frozen=True)
class Run:
    id: int
    name: str
    model: str
    adapter: str | None
    protocol: str
    mode: str
    settings: dict[str, Any]
    seed: int
    model_info: dict[str, Any]
    created: str


@dataclass(frozen=True)
class Sample:
    """One stored answer. In score mode `probs` holds the action probabilities and `raw_text` is empty."""

    run_id: int
    scenario: str
    split: str
    prompt_hash: str
    sample_index: int
    seed: int | None
    raw_text: str | None
    action: str | None
    value: float | None
    motivation: str | None
    invalid_reason: str | None
    probs: dict[str, float] | None
    valid_mass: float | None
    parser_version: str | None
    latency_s: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.invalid_reason is None and (self.action is not None or self.probs is not None)


_SAMPLE_COLUMNS = (
    "run_id", "scenario", "split", "prompt_hash", "sample_index", "seed", "raw_text", "action", "value",
    "motivation", "invalid_reason", "probs", "valid_mass", "parser_version", "latency_s", "prompt_tokens",
    "completion_tokens", "error",
)


def _when_unlocked(action, patience_s: float = 60.0):
    """Run `action`, retrying while another process holds the database lock (up to `patience_s`)."""
    deadline = time.monotonic() + patience_s
    pause = 0.02
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_store_path() -> Path:
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE)


class Store:
    """A connection to one store file. Use as a context manager, or call close()."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a folder; --store needs a file path such as tomdistill.db")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Autocommit mode; writes are grouped explicitly with `transaction()`.
            self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA busy_timeout = 60000")
            # Switching a new file to WAL takes an exclusive lock and, unlike writes, does not wait
            # for a busy one: two processes opening one new store at once would fail without this.
            _when_unlocked(lambda: self.conn.execute("PRAGMA journal_mode = WAL"))
            # In WAL mode NORMAL survives a killed process (only power loss may drop the last commits).
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            _when_unlocked(self._migrate)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable tomdistill store ({exc})") from None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: all of it lands, or (on crash or error) none of it."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self.transaction() as c:
            c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row["value"]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: written by a newer tomdistill (schema {version} > {SCHEMA_VERSION}); upgrade tomdistill"
                )
            for script in MIGRATIONS[version:]:
                for statement in filter(str.strip, script.split(";")):
                    c.execute(statement)
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    # --- runs ----------------------------------------------------------------------------------

    def get_run(self, name: str) -> Run | None:
        row = self.conn.execute("SELECT * FROM runs WHERE name = ?", (name,)).fetchone()
        return _run(row) if row else None

    def require_run(self, name: str) -> Run:
        run = self.get_run(name)
        if run is None:
            known = ", ".join(r.name for r in self.runs()) or "none yet"
            raise StoreError(f"{self.path}: no run named '{name}' (runs: {known})")
        return run

    def runs(self) -> list[Run]:
        return [_run(r) for r in self.conn.execute("SELECT * FROM runs ORDER BY id")]

    def open_run(
        self,
        name: str,
        *,
        model: str,
        adapter: str | None,
        protocol: str,
        mode: str,
        settings: dict[str, Any],
        seed: int,
        model_info: dict[str, Any],
    ) -> Run:
        """The run called `name`: created, or reused when it was made with the same settings.

        Reusing a name with different settings is refused, so one run never mixes two setups.
        """
        wanted = {"model": model, "adapter": adapter, "protocol": protocol, "mode": mode, "settings": settings, "seed": seed}
        existing = self.get_run(name)
        if existing is not None:
            have = {
                "model": existing.model, "adapter": existing.adapter, "protocol": existing.protocol,
                "mode": existing.mode, "settings": existing.settings, "seed": existing.seed,
            }
            diff = [k for k in wanted if have[k] != wanted[k]]
            if diff:
                shown = "; ".join(f"{k}: stored {have[k]!r}, asked {wanted[k]!r}" for k in diff)
                raise StoreError(f"run '{name}' already exists with other settings ({shown}); choose another --run name")
            return existing
        with self.transaction() as c:
            c.execute(
                "INSERT INTO runs (name, model, adapter, protocol, mode, settings, seed, model_info, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, model, adapter, protocol, mode, json.dumps(settings, sort_keys=True), seed,
                 json.dumps(model_info, sort_keys=True, default=str), _now()),
            )
        return self.require_run(name)

    def delete_run(self, name: str) -> int:
        """Remove a run and its samples (to redo it from scratch); returns the samples removed."""
        run = self.get_run(name)
        if run is None:
            return 0
        with self.transaction() as c:
            removed = c.execute("DELETE FROM samples WHERE run_id = ?", (run.id,)).rowcount
            c.execute("DELETE FROM runs WHERE id = ?", (run.id,))
        return removed

    # --- samples -------------------------------------------------------------------------------

    def add_prompt(self, prompt_hash: str, messages: Sequence[dict[str, str]]) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT OR IGNORE INTO prompts (hash, messages) VALUES (?, ?)",
                (prompt_hash, json.dumps(list(messages), ensure_ascii=False)),
            )

    def prompt(self, prompt_hash: str) -> list[dict[str, str]]:
        row = self.conn.execute("SELECT messages FROM prompts WHERE hash = ?", (prompt_hash,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no prompt with hash {prompt_hash}")
        return json.loads(row["messages"])

    def done_indexes(self, run_id: int, scenario: str, prompt_hash: str) -> set[int]:
        rows = self.conn.execute(
            "SELECT sample_index FROM samples WHERE run_id = ? AND scenario = ? AND prompt_hash = ?",
            (run_id, scenario, prompt_hash),
        )
        return {r[0] for r in rows}

    def add_samples(self, samples: Iterable[Sample]) -> int:
        """Insert samples in one transaction; a key already stored is kept, never duplicated."""
        rows = [tuple(_encode(getattr(s, col)) for col in _SAMPLE_COLUMNS) + (_now(),) for s in samples]
        if not rows:
            return 0
        placeholders = ", ".join("?" * (len(_SAMPLE_COLUMNS) + 1))
        with self.transaction() as c:
            before = c.total_changes
            c.executemany(
                f"INSERT OR IGNORE INTO samples ({', '.join(_SAMPLE_COLUMNS)}, created) VALUES ({placeholders})", rows
            )
            return c.total_changes - before

    def samples(self, run_id: int, scenario: str | None = None) -> list[Sample]:
        query = f"SELECT {', '.join(_SAMPLE_COLUMNS)} FROM samples WHERE run_id = ?"
        args: list[Any] = [run_id]
        if scenario is not None:
            query += " AND scenario = ?"
            args.append(scenario)
        query += " ORDER BY id"
        return [_sample(r) for r in self.conn.execute(query, args)]

    def update_parses(self, updates: Iterable[tuple[int, str, str, int, dict[str, Any]]]) -> int:
        """Write new parse results: (run_id, scenario, prompt_hash, sample_index, fields)."""
        count = 0
        with self.transaction() as c:
            for run_id, scenario, prompt_hash, index, fields in updates:
                sets = ", ".join(f"{k} = ?" for k in fields)
                c.execute(
                    f"UPDATE samples SET {sets} WHERE run_id = ? AND scenario = ? AND prompt_hash = ? AND sample_index = ?",
                    [*map(_encode, fields.values()), run_id, scenario, prompt_hash, index],
                )
                count += 1
        return count

    def count(self, run_id: int) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM samples WHERE run_id = ?", (run_id,)).fetchone()[0]


def _encode(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else value


def _run(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"], name=row["name"], model=row["model"], adapter=row["adapter"], protocol=row["protocol"],
        mode=row["mode"], settings=json.loads(row["settings"]), seed=row["seed"],
        model_info=json.loads(row["model_info"]), created=row["created"],
    )


def _sample(row: sqlite3.Row) -> Sample:
    values = dict(zip(_SAMPLE_COLUMNS, row))
    values["probs"] = json.loads(values["probs"]) if values["probs"] else None
    return Sample(**values)
