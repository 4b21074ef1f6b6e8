"""The SQLite store: every run and every sample, with raw text, settings, seed and timing.

One file (default `./tomdistill.db`, or `--store PATH` / TOMDISTILL_STORE) in WAL mode, so
readers and a second writer never block each other for long. A sample's key (run, scenario,
prompt hash, sample index) is unique: re-running an interrupted elicitation inserts only what is
missing, never a duplicate. Parsing is stored beside the raw text and can be redone at any time
(`reparse`) without calling a model. Populations of agents (`tomdistill play`) keep one row per
move in `moves`, committed a round at a time, keyed by (play, match, round, slot).

Commands that only read (`runs`, `dataset`, `evaluate`) open the store with `readonly=True`: a
`mode=ro` connection that never migrates, never switches the journal mode and never creates a
missing file. Every opening refuses, before touching anything, a SQLite file that is not a
tomdistill store (someone else's database is never given our tables) and a damaged one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import TomdistillError, quoted

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
    # 2: populations of agents playing each other (`tomdistill play`): one row per move.
    """
    CREATE TABLE plays (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        scenario TEXT NOT NULL,
        agents TEXT NOT NULL,
        settings TEXT NOT NULL,
        seed INTEGER NOT NULL,
        created TEXT NOT NULL
    );
    CREATE TABLE moves (
        id INTEGER PRIMARY KEY,
        play_id INTEGER NOT NULL REFERENCES plays(id) ON DELETE CASCADE,
        match INTEGER NOT NULL,
        round INTEGER NOT NULL,
        slot INTEGER NOT NULL,
        agent TEXT NOT NULL,
        opponent TEXT NOT NULL,
        scenario TEXT NOT NULL,
        action TEXT NOT NULL,
        payoff REAL NOT NULL,
        raw_text TEXT,
        motivation TEXT,
        probs TEXT,
        invalid_reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 1,
        fallback INTEGER NOT NULL DEFAULT 0,
        seed INTEGER,
        prompt_hash TEXT,
        created TEXT NOT NULL,
        UNIQUE (play_id, match, round, slot)
    );
    CREATE INDEX moves_by_play ON moves (play_id, round);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
#: Tables every tomdistill store has (schema 1 on); a SQLite file without them is someone else's.
_MARKER_TABLES = frozenset({"meta", "runs", "prompts", "samples"})


class StoreError(TomdistillError):
    """The store file is unusable or a run does not match what was asked."""


class StoreFull(StoreError):
    """The disk (or the file's size limit) is full: the write in progress was rolled back."""


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
    return datetime.now(UTC).isoformat(timespec="seconds")


def default_store_path() -> Path:
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE)


def _check_path(path: Path, readonly: bool) -> None:
    """Refuse a folder, a missing store for a reader, and (for a writer) make the store's folder."""
    if path.is_dir():
        raise StoreError(f"{path}: is a folder; --store needs a file path such as tomdistill.db")
    if path.exists() and not path.is_file():  # SQLite would wait forever on a FIFO, or read a device
        raise StoreError(f"{path}: is not a regular file (a FIFO, device or socket); --store needs a file path "
                         "such as tomdistill.db")
    if readonly:
        if not path.exists():
            raise StoreError(f"no store at {path} (check --store or ${STORE_ENV}; `tomdistill elicit` creates one)")
        return
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise StoreError(f"{path}: {blocking} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create its folder {path.parent} ({exc.strerror})") from None


def is_store(path: Path) -> bool:
    """True when `path` is a tomdistill store this version can read. Opened read-only, so nothing
    is written, whatever the file is (someone else's database is refused as on every opening)."""
    try:
        with Store(path, readonly=True):
            return True
    except StoreError:
        return False


#: Longest name of a new run; names go into folder names (play-RUN) and one-line messages.
RUN_NAME_MAX = 100


def check_run_name(name: str) -> None:
    """Refuse a name for a NEW run that is empty, too long, not printable text, or holds a path
    separator. Runs stored under other names before this check existed still load."""
    if not 1 <= len(name) <= RUN_NAME_MAX or not name.strip():
        raise StoreError(f"run name {quoted(name)}: must be 1 to {RUN_NAME_MAX} characters, not only spaces")
    if not name.isprintable() or "/" in name or "\\" in name:
        raise StoreError(f"run name {quoted(name)}: use printable text without line breaks, control characters "
                         "or path separators (/ \\)")


def _check_intact(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a damaged store before reading or writing it (a b-tree walk: about 0.1 s per 100 MB)."""
    problems = [" ".join(row[0].split()) for row in conn.execute("PRAGMA quick_check(3)")]
    if problems != ["ok"]:
        raise StoreError(f"{path}: not a usable tomdistill store: it is damaged ({'; '.join(problems)}); "
                         "restore it from a copy")


def _schema_version(conn: sqlite3.Connection, path: Path) -> int:
    """The store's schema version: 0 for an empty database (a new store). Refuses a SQLite file
    that is not a tomdistill store, a version that is not a whole number, and a newer one."""
    if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
        return 0
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    row = None
    if _MARKER_TABLES <= tables:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise StoreError(f"{path}: a SQLite database but not a tomdistill store (no tomdistill tables); "
                         "it is left untouched: give --store another file")
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        version = -1
    if version < 1:
        raise StoreError(f"{path}: schema version {row[0]!r} (table meta, key schema_version) is not a "
                         "whole number from 1 on; the store is damaged")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: written by a newer tomdistill (schema {version} > {SCHEMA_VERSION}); upgrade tomdistill"
        )
    return version


def _store_trouble(exc: sqlite3.DatabaseError) -> bool:
    """A problem of the file or the disk (not a bug in a query): damaged, full, locked, unwritable."""
    return type(exc) is sqlite3.DatabaseError or isinstance(exc, sqlite3.OperationalError)


def _describe(exc: sqlite3.DatabaseError, readonly: bool) -> str:
    text = str(exc)
    if ("readonly" in text or "read-only" in text) and readonly:
        return (f"cannot read this store ({text}): SQLite must write the -wal/-shm files beside it; "
                "copy it to a folder you may write")
    if "readonly" in text or "read-only" in text:
        return f"cannot write to this store ({text}); read-only commands (runs, dataset, evaluate) can still read it"
    if "unable to open" in text:
        return f"cannot open or create the store ({text}); check that its folder exists and is writable"
    if "full" in text:
        return f"the disk is full ({text}); nothing more was written"
    return f"not a usable tomdistill store ({text})"


class Store:
    """A connection to one store file. Use as a context manager, or call close().

    `readonly=True` opens an existing store without writing anything: a missing file is an error,
    an older schema is read as it is (migrations so far only add tables the readers do not use).
    """

    def __init__(self, path: Path | str | None = None, *, readonly: bool = False) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.readonly = readonly
        _check_path(self.path, readonly)
        self.conn: sqlite3.Connection | None = None
        try:
            self.conn = self._connect()
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA busy_timeout = 60000")
            _check_intact(self.conn, self.path)
            if readonly:
                if _schema_version(self.conn, self.path) == 0:
                    raise StoreError(f"{self.path}: an empty database, no tomdistill store yet")
                return
            # Migrate before switching to WAL: a foreign file is refused before anything changes.
            _when_unlocked(self._migrate)
            # Switching a new file to WAL takes an exclusive lock and, unlike writes, does not wait
            # for a busy one: two processes opening one new store at once would fail without this.
            _when_unlocked(lambda: self.conn.execute("PRAGMA journal_mode = WAL"))
            # In WAL mode NORMAL survives a killed process (only power loss may drop the last commits).
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
        except BaseException as exc:
            self.close()
            if isinstance(exc, sqlite3.DatabaseError) and _store_trouble(exc):
                raise StoreError(f"{self.path}: {_describe(exc, self.readonly)}") from None
            raise

    def _connect(self) -> sqlite3.Connection:
        """Autocommit mode (writes are grouped with `transaction()`); readers use a mode=ro URI."""
        if not self.readonly:
            return sqlite3.connect(self.path, timeout=60, isolation_level=None)
        uri = self.path.absolute().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None)
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
            return conn
        except sqlite3.OperationalError:
            conn.close()
            if any(Path(f"{self.path}-{end}").exists() for end in ("wal", "journal")):
                raise
        # A WAL store in a folder we may not write: SQLite cannot create the -shm index it reads
        # through. With no -wal file no writer has the store open (a writer keeps one), and with
        # no -journal no write was cut short, so the main file holds every commit: read it as immutable.
        return sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        self.close()
        # A store that turns out damaged, full or unwritable halfway through a command ends in one
        # line naming the file, not a traceback; bugs (ProgrammingError, IntegrityError) still show.
        if isinstance(exc, sqlite3.DatabaseError) and _store_trouble(exc):
            raise StoreError(f"{self.path}: {_describe(exc, self.readonly)}") from None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: all of it lands, or (on crash or error) none of it."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            # A failed COMMIT (disk full) leaves the transaction open; roll it back so the
            # connection stays usable, e.g. to count what is stored.
            if self.conn.in_transaction:
                with suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
                raise StoreFull(f"{self.path}: the disk is full ({exc}); the last write was rolled back") from None
            raise

    def _migrate(self) -> None:
        with self.transaction() as c:
            # Read again inside the write lock: another process may have created the store meanwhile.
            version = _schema_version(c, self.path)
            if version == SCHEMA_VERSION:
                return
            if version == 0:
                c.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
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
        return _schema_version(self.conn, self.path)

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
            # A backend whose answers are fixed by a file it names (planted:FILE.toml) reports the
            # file's hash; an edited file under the same spec is another model.
            stored_print = _fingerprint(existing.model_info)
            if stored_print is not None and stored_print != _fingerprint(model_info):
                have["model_fingerprint"], wanted["model_fingerprint"] = stored_print, _fingerprint(model_info)
                diff.append("model_fingerprint")
            if diff:
                shown = "; ".join(f"{k}: stored {have[k]!r}, asked {wanted[k]!r}" for k in diff)
                raise StoreError(f"run '{name}' already exists with other settings ({shown}); choose another --run name")
            return existing
        check_run_name(name)
        with self.transaction() as c:
            c.execute(
                "INSERT INTO runs (name, model, adapter, protocol, mode, settings, seed, model_info, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, model, adapter, protocol, mode, json.dumps(settings, sort_keys=True), seed,
                 json.dumps(model_info, sort_keys=True, default=str), _now()),
            )
        return self.require_run(name)

    def update_model_info(self, run_id: int, model_info: dict[str, Any]) -> None:
        """Replace a run's model details (what the server said answered is known only after replies)."""
        with self.transaction() as c:
            c.execute("UPDATE runs SET model_info = ? WHERE id = ?",
                      (json.dumps(model_info, sort_keys=True, default=str), run_id))

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


    # --- plays (populations of agents, `tomdistill play`) ------------------------------------------

    def get_play(self, name: str) -> Play | None:
        row = self.conn.execute("SELECT * FROM plays WHERE name = ?", (name,)).fetchone()
        return _play(row) if row else None

    def open_play(self, name: str, *, scenario: str, agents: list[dict[str, Any]], settings: dict[str, Any], seed: int) -> Play:
        """The play run called `name`: created, or reused when it was made with the same setup.

        Rounds and matches may grow between invocations (their seeds do not depend on how many
        there are); anything else differing is refused, so one run never mixes two setups.
        """
        wanted = {"scenario": scenario, "agents": agents, "settings": settings, "seed": seed}
        existing = self.get_play(name)
        if existing is not None:
            have = {"scenario": existing.scenario, "agents": existing.agents, "settings": existing.settings,
                    "seed": existing.seed}
            diff = [k for k in wanted if json.dumps(have[k], sort_keys=True) != json.dumps(wanted[k], sort_keys=True)]
            if diff:
                shown = "; ".join(f"{k}: stored {have[k]!r}, asked {wanted[k]!r}" for k in diff)
                raise StoreError(f"play run '{name}' already exists with another setup ({shown}); choose another --run name")
            return existing
        check_run_name(name)
        with self.transaction() as c:
            c.execute(
                "INSERT INTO plays (name, scenario, agents, settings, seed, created) VALUES (?, ?, ?, ?, ?, ?)",
                (name, scenario, json.dumps(agents, sort_keys=True), json.dumps(settings, sort_keys=True), seed, _now()),
            )
        return self.get_play(name)  # type: ignore[return-value]

    def add_moves(self, moves: Iterable[Move], prompts: Iterable[tuple[str, Sequence[dict[str, str]]]] = ()) -> int:
        """Insert one round's moves (and the prompts behind them) in one transaction; keys already
        stored are kept, never duplicated."""
        rows = [tuple(_encode(getattr(m, col)) for col in _MOVE_COLUMNS) + (_now(),) for m in moves]
        placeholders = ", ".join("?" * (len(_MOVE_COLUMNS) + 1))
        with self.transaction() as c:
            c.executemany("INSERT OR IGNORE INTO prompts (hash, messages) VALUES (?, ?)",
                          [(h, json.dumps(list(m), ensure_ascii=False)) for h, m in prompts])
            before = c.total_changes
            c.executemany(f"INSERT OR IGNORE INTO moves ({', '.join(_MOVE_COLUMNS)}, created) VALUES ({placeholders})", rows)
            return c.total_changes - before

    def moves(self, play_id: int) -> list[Move]:
        query = f"SELECT {', '.join(_MOVE_COLUMNS)} FROM moves WHERE play_id = ? ORDER BY round, match, slot"
        return [_move(r) for r in self.conn.execute(query, (play_id,))]


@dataclass(frozen=True)
class Play:
    """A population run: which agents played which scenario, with which settings."""

    id: int
    name: str
    scenario: str
    agents: list[dict[str, Any]]
    settings: dict[str, Any]
    seed: int
    created: str


@dataclass(frozen=True)
class Move:
    """One player's move in one round of one match, with what it earned and why it was made."""

    play_id: int
    match: int
    round: int
    slot: int
    agent: str
    opponent: str
    scenario: str
    action: str
    payoff: float
    raw_text: str | None = None
    motivation: str | None = None
    probs: dict[str, float] | None = None
    #: Why the last reply could not be read; with `fallback` set, `action` was drawn at random.
    invalid_reason: str | None = None
    attempts: int = 1
    fallback: bool = False
    seed: int | None = None
    prompt_hash: str | None = None


_MOVE_COLUMNS = (
    "play_id", "match", "round", "slot", "agent", "opponent", "scenario", "action", "payoff", "raw_text",
    "motivation", "probs", "invalid_reason", "attempts", "fallback", "seed", "prompt_hash",
)


def _play(row: sqlite3.Row) -> Play:
    return Play(id=row["id"], name=row["name"], scenario=row["scenario"], agents=json.loads(row["agents"]),
                settings=json.loads(row["settings"]), seed=row["seed"], created=row["created"])


def _move(row: sqlite3.Row) -> Move:
    values = dict(zip(_MOVE_COLUMNS, row))
    values["probs"] = json.loads(values["probs"]) if values["probs"] else None
    values["fallback"] = bool(values["fallback"])
    return Move(**values)


def _encode(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else value


def _fingerprint(model_info: Any) -> Any:
    """The hash of what fixes a model's answers, where its backend reports one (else None)."""
    return model_info.get("fingerprint") if isinstance(model_info, dict) else None


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
