"""Store safety (issue 13, items 9-11): read-only commands never write; a foreign, damaged or
unreadable store, an unusable path and a full disk end in one line; `reparse` leaves answers to
an older wording alone.

Tests run as root here, and root ignores permission bits: `chmod 444` alone proves nothing, since
root could still write the file. So "never writes" is checked on what a write would leave (the
file's bytes and mtime, -wal/-shm/-journal files, the journal mode), and "works on a read-only
file in a read-only folder" runs the command in a forked child that drops to user `nobody`,
for whom the kernel enforces the bits (a read-only bind mount would need privileges we lack).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

import pytest

from tomdistill.cli import main
from tomdistill.store import Store, StoreError

from badinput import make_store, run_bad

NOBODY = 65534
READ_ONLY = ("runs-list", "runs-show", "runs-export", "evaluate", "dataset")
WRITERS = ("elicit", "reparse", "play")


def _args(command: str, db: Path, out: Path) -> list[str]:
    """CLI arguments of `command` on store `db`, writing any output under `out`."""
    table = {
        "runs-list": ["runs", "list"],
        "runs-show": ["runs", "show", "r0"],
        "runs-export": ["runs", "export", "r0", "--out", str(out / "x.jsonl")],
        "evaluate": ["evaluate", "--teacher", "r0", "--base", "sc", "--student", "r0", "--bootstrap", "0",
                     "--out", str(out / "eval.json")],
        "dataset": ["dataset", "--from-run", "r0", "--out", str(out / "ds")],
        "elicit": ["elicit", "--model", "mock:rate=0.5", "--run", "r0", "--samples", "5"],
        "reparse": ["reparse", "r0"],
        "play": ["play", "--agents", "always-C", "always-D", "--scenario", "team/prisoners_dilemma",
                 "--out", str(out / "play")],
    }
    return [*table[command], "--store", str(db)]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """One store with runs r0 (sampled) and sc (score), copied by each test."""
    return make_store(tmp_path_factory.mktemp("template") / "s.db")


def _copy(template: Path, folder: Path, journal: str = "delete") -> Path:
    """A copy of the template alone in `folder`, in journal mode `journal`.

    Rollback-journal ("delete") copies by default: a reader of a WAL store needs SQLite's -shm
    index beside it, which would show up in folder comparisons."""
    folder.mkdir(parents=True, exist_ok=True)
    db = Path(shutil.copy(template, folder / "s.db"))
    _sql(db, f"PRAGMA journal_mode = {journal}")
    return db


def _sql(db: Path, statement: str) -> list[tuple]:
    con = sqlite3.connect(db, isolation_level=None)
    try:
        return con.execute(statement).fetchall()
    finally:
        con.close()


def _state(db: Path) -> tuple[str, int, list[str]]:
    """What any write would change: the file's bytes, its mtime, and the files beside it."""
    return (hashlib.sha256(db.read_bytes()).hexdigest(), db.stat().st_mtime_ns,
            sorted(p.name for p in db.parent.iterdir()))


# --- item 9: read-only commands --------------------------------------------------------------


@pytest.mark.parametrize("command", READ_ONLY)
def test_read_only_commands_leave_a_store_untouched(command, template, tmp_path, capsys) -> None:
    db = _copy(template, tmp_path / "store")
    before = _state(db)
    assert main(_args(command, db, tmp_path)) == 0, capsys.readouterr().err
    # Same bytes and mtime, no -wal/-shm/-journal beside it, and still a rollback-journal store.
    assert _state(db) == before
    assert _sql(db, "PRAGMA journal_mode") == [("delete",)]


@pytest.mark.parametrize("command", READ_ONLY)
def test_read_only_commands_leave_a_wal_store_file_unchanged(command, template, tmp_path, capsys) -> None:
    db = _copy(template, tmp_path / "store", journal="wal")
    digest, mtime, _ = _state(db)
    assert main(_args(command, db, tmp_path)) == 0, capsys.readouterr().err
    # SQLite may leave its -shm index (and an empty -wal) after a reader of a WAL store; the
    # store file itself is not written.
    assert _state(db)[:2] == (digest, mtime)
    wal = db.with_name("s.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0


@pytest.fixture()
def locked_folder():
    """A folder `nobody` can reach: tmp_path's parents are private to root."""
    root = Path(tempfile.mkdtemp(prefix="tomdistill-ro-"))
    root.chmod(0o755)
    yield root
    for p in [root, *root.rglob("*")]:
        if not p.is_symlink():
            p.chmod(0o777 if p.is_dir() else 0o666)
    shutil.rmtree(root)


def _run_unprivileged(args: list[str]) -> tuple[int, str]:
    """Run the CLI in a forked child that, when we are root, becomes `nobody` first.

    Returns the exit code and stderr. Root ignores permission bits; `nobody` does not."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        result = [99, "child failed"]
        try:
            os.close(read_end)
            if os.geteuid() == 0:
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
            result = [main(args), sys.stderr.getvalue()]
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
            result = [98, repr(exc)]
        finally:
            os.write(write_end, json.dumps(result).encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    code, err = json.loads(data)
    return code, err


@pytest.mark.parametrize("journal", ["wal", "delete"])
@pytest.mark.parametrize("command", READ_ONLY)
def test_read_only_commands_read_a_read_only_file_in_a_read_only_folder(command, journal, template,
                                                                         locked_folder) -> None:
    db = _copy(template, locked_folder / "store", journal=journal)
    out = locked_folder / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    db.chmod(0o444)
    db.parent.chmod(0o555)
    before = _state(db)
    code, err = _run_unprivileged(_args(command, db, out))
    assert code == 0, err
    assert _state(db) == before


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_writer_on_a_read_only_store_says_so(journal, template, locked_folder) -> None:
    db = _copy(template, locked_folder / "store", journal=journal)
    db.chmod(0o444)
    db.parent.chmod(0o555)
    before = _state(db)
    code, err = _run_unprivileged(_args("elicit", db, locked_folder))
    assert (code, err.count("\n"), "Traceback" in err) == (2, 1, False), err
    assert err.startswith(f"error: {db}: cannot write to this store")
    assert _state(db) == before


def test_a_new_store_in_an_unwritable_folder_is_one_line(locked_folder) -> None:
    folder = locked_folder / "locked"
    folder.mkdir(mode=0o555)
    folder.chmod(0o555)
    for target, message in ((folder / "s.db", "cannot open or create the store"),
                            (folder / "sub" / "s.db", "cannot create its folder")):
        code, err = _run_unprivileged(["elicit", "--model", "mock:rate=0.5", "--run", "r", "--store", str(target)])
        assert (code, err.count("\n"), "Traceback" in err) == (2, 1, False), err
        assert message in err
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("command", READ_ONLY)
def test_mistyped_store_path_on_a_read_only_command_creates_nothing(command, tmp_path, capsys) -> None:
    (tmp_path / "out").mkdir()
    typo = tmp_path / "nowhere" / "tomdistil.db"
    run_bad(_args(command, typo, tmp_path / "out"), f"no store at {typo}", capsys, watch=tmp_path)


def test_an_empty_database_is_no_store_to_read(tmp_path, capsys) -> None:
    (tmp_path / "empty.db").touch()
    run_bad(["runs", "list", "--store", str(tmp_path / "empty.db")], "no tomdistill store yet", capsys,
            watch=tmp_path)


def test_an_older_schema_is_read_as_it_is(tmp_path, capsys) -> None:
    """Read-only commands read a schema-1 store (migrations only add tables) without migrating it."""
    from tomdistill.store import MIGRATIONS

    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(MIGRATIONS[0])
    con.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                      "INSERT INTO meta VALUES ('schema_version', '1');"
                      "INSERT INTO runs (name, model, protocol, mode, settings, seed, created) "
                      "VALUES ('legacy', 'm', 'answer', 'sample', '{}', 0, 'now')")
    con.close()
    before = _state(db)
    assert main(["runs", "list", "--store", str(db)]) == 0
    assert "legacy" in capsys.readouterr().out
    assert _state(db) == before
    assert _sql(db, "SELECT name FROM sqlite_master WHERE name = 'plays'") == []


# --- foreign and damaged files -----------------------------------------------------------------


@pytest.mark.parametrize("command", READ_ONLY + WRITERS)
def test_a_foreign_sqlite_file_is_refused_by_every_command(command, tmp_path, capsys) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir()
    db = folder / "notes.db"
    _sql(db, "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    _sql(db, "INSERT INTO notes (text) VALUES ('mine, not yours')")
    before = _state(db)
    (tmp_path / "out").mkdir()
    run_bad(_args(command, db, tmp_path / "out"), "a SQLite database but not a tomdistill store", capsys,
            store=db, watch=folder)
    assert _state(db) == before


def _corrupt(db: Path, where: str) -> None:
    """Garbage over the page in the middle of the file, or over the file header."""
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    start = (len(data) // page // 2) * page if where == "middle" else 0
    data[start:start + page] = b"\xde\xad\xbe\xef" * (page // 4)
    db.write_bytes(bytes(data))


def _damaged(db: Path) -> bool:
    try:
        return _sql(db, "PRAGMA quick_check") != [("ok",)]
    except sqlite3.DatabaseError:
        return True


@pytest.mark.parametrize("where", ["middle", "header"])
@pytest.mark.parametrize("command", READ_ONLY + ("elicit", "reparse"))
def test_a_damaged_store_is_one_line_and_left_as_it_is(command, where, template, tmp_path, capsys) -> None:
    db = _copy(template, tmp_path / "store")
    _corrupt(db, where)
    assert _damaged(db)  # the damage is real: SQLite itself finds it
    (tmp_path / "out").mkdir()
    run_bad(_args(command, db, tmp_path / "out"), "not a usable tomdistill store", capsys, watch=tmp_path / "store")


def _damage_found_late(*args, **kwargs):
    raise sqlite3.DatabaseError("database disk image is malformed")


@pytest.mark.parametrize("command", READ_ONLY + ("elicit", "reparse"))
def test_damage_met_halfway_through_a_command_is_one_line(command, template, tmp_path, capsys, monkeypatch) -> None:
    """Damage the opening check could not see (it appeared later, or hides in a record) is met by
    the first query that reads it: still one line naming the store, and nothing is written."""
    db = _copy(template, tmp_path / "store")
    monkeypatch.setattr(Store, "get_run", _damage_found_late)
    monkeypatch.setattr(Store, "runs", _damage_found_late)
    (tmp_path / "out").mkdir()
    run_bad(_args(command, db, tmp_path / "out"), f"{db}: not a usable tomdistill store (database disk image",
            capsys, store=db)


def test_a_bug_in_a_query_is_not_dressed_as_a_store_problem(template, tmp_path, monkeypatch) -> None:
    db = _copy(template, tmp_path / "store")

    def wrong_query(self, *args):
        return self.conn.execute("SELECT ?", ())

    monkeypatch.setattr(Store, "runs", wrong_query)
    with pytest.raises(sqlite3.ProgrammingError):
        main(_args("runs-list", db, tmp_path))


@pytest.mark.parametrize("value", ["x", "1.5", "0", ""])
@pytest.mark.parametrize("command", ["runs-list", "elicit"])
def test_a_schema_version_that_is_no_whole_number_is_refused(command, value, template, tmp_path, capsys) -> None:
    db = _copy(template, tmp_path / "store")
    _sql(db, f"UPDATE meta SET value = '{value}' WHERE key = 'schema_version'")
    run_bad(_args(command, db, tmp_path), f"schema version '{value}'", capsys, store=db, watch=tmp_path / "store")
    assert _sql(db, "SELECT value FROM meta WHERE key = 'schema_version'") == [(value,)]


@pytest.mark.parametrize("command", ["elicit", "reparse", "play"])
def test_a_store_path_under_a_regular_file_is_one_line(command, tmp_path, capsys) -> None:
    (tmp_path / "somefile.txt").write_text("notes")
    target = tmp_path / "somefile.txt" / "x.db"
    run_bad(_args(command, target, tmp_path), "somefile.txt is a file, not a folder", capsys, watch=tmp_path)


@contextmanager
def _fed(fifo: Path) -> Iterator[None]:
    """Garbage for whoever opens `fifo`, so that a command reading it fails here instead of waiting forever."""
    stop = threading.Event()

    def feed() -> None:
        while not stop.wait(0.05):
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO while nobody reads
            except OSError:
                continue
            with suppress(OSError):
                os.write(fd, b"not a database " * 300)
            os.close(fd)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("command", ["runs-list", "elicit"])
def test_a_store_path_that_is_no_regular_file_is_one_line(command, kind, tmp_path, capsys) -> None:
    # SQLite would wait forever for a writer on a FIFO; a device is no store either. (Only `out` is
    # watched: reading the FIFO to compare it would wait just the same.)
    if kind == "fifo":
        target = tmp_path / "fifo"
        os.mkfifo(target)
    else:
        target = Path("/dev/null")
    (tmp_path / "out").mkdir()
    with _fed(target) if kind == "fifo" else nullcontext():
        run_bad(_args(command, target, tmp_path / "out"), f"{target}: is not a regular file", capsys,
                watch=tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out"] + (["fifo"] if kind == "fifo" else []))


# --- run names ---------------------------------------------------------------------------------

BAD_NAMES = {"empty": "", "spaces": "   ", "newline": "a\nb", "control": "a\x1bb", "slash": "a/b",
             "backslash": "a\\b", "too-long": "x" * 101}


@pytest.mark.parametrize("command", ["elicit", "play"])
@pytest.mark.parametrize("name", sorted(BAD_NAMES))
def test_a_new_run_needs_a_printable_name_without_separators(command, name, template, tmp_path, capsys) -> None:
    db = _copy(template, tmp_path / "store")
    out = tmp_path / "out"
    out.mkdir()
    args = _args(command, db, out)
    if "--run" in args:
        args[args.index("--run") + 1] = BAD_NAMES[name]
    else:  # play: its default run name
        args += ["--run", BAD_NAMES[name]]
    run_bad(args, "run name", capsys, store=db, watch=out)


def test_a_run_stored_under_an_odd_name_still_loads_and_continues(template, tmp_path, capsys) -> None:
    db = _copy(template, tmp_path / "store")
    odd = "old\nname"  # accepted before names were checked
    _sql(db, f"UPDATE runs SET name = '{odd}' WHERE name = 'r0'")
    args = _args("elicit", db, tmp_path)
    args[args.index("--run") + 1] = odd
    assert main(args) == 0, capsys.readouterr().err
    with Store(db, readonly=True) as store:
        assert store.count(store.require_run(odd).id) > 0
    with Store(db) as store, pytest.raises(StoreError, match="run name"):
        store.open_run("new\tname", model="mock:rate=0.5", adapter=None, protocol="answer", mode="sample",
                       settings={}, seed=0, model_info={})


# --- item 11: a full disk during elicit ---------------------------------------------------------


class _FullAtCommit(sqlite3.Connection):
    """A connection whose COMMIT fails as on a full disk, after `allowed` successful ones."""

    allowed = 0

    def execute(self, sql, *args):  # type: ignore[override]
        if sql == "COMMIT":
            if _FullAtCommit.allowed <= 0:
                raise sqlite3.OperationalError("database or disk is full")
            _FullAtCommit.allowed -= 1
        return super().execute(sql, *args)


def _fill_disk(monkeypatch, how: str, allowed: int) -> None:
    """Make the store's disk full for the CLI's connections: a page limit, or a failing COMMIT."""
    real_connect = sqlite3.connect

    def connect(*args, **kwargs):
        if how == "commit":
            _FullAtCommit.allowed = allowed
            return real_connect(*args, **kwargs, factory=_FullAtCommit)
        con = real_connect(*args, **kwargs)
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        con.execute(f"PRAGMA max_page_count = {pages + allowed}")
        return con

    monkeypatch.setattr(sqlite3, "connect", connect)


@pytest.mark.parametrize(("how", "allowed"), [("page-limit", 2), ("commit", 30)])
def test_a_full_disk_stops_elicit_in_one_line_saying_what_is_stored(how, allowed, template, library, tmp_path,
                                                                    capsys, monkeypatch) -> None:
    db = _copy(template, tmp_path / "store")
    args = ["elicit", "--model", "mock:rate=0.5", "--run", "r0", "--samples", "20", "--store", str(db)]
    with monkeypatch.context() as patch:
        _fill_disk(patch, how, allowed)
        code = main(args)
    err = capsys.readouterr().err
    assert (code, err.count("\n"), "Traceback" in err) == (2, 1, False), err
    with Store(db, readonly=True) as store:
        stored = store.count(store.require_run("r0").id)
    wanted = 20 * len(library.scenarios("train"))
    assert 6 <= stored < wanted  # the 6 from before are kept; the run stopped before the end
    assert "the disk is full" in err and f"{stored} samples of run 'r0' are stored" in err
    assert "re-run the same command" in err
    assert _sql(db, "PRAGMA integrity_check") == [("ok",)]
    # With space again, the same command continues to the whole run.
    assert main(args) == 0
    with Store(db, readonly=True) as store:
        assert store.count(store.require_run("r0").id) == wanted


# --- item 10: reparse after a library edit ------------------------------------------------------

LIBRARY = """
[[game]]
id = "g"
name = "G"
template = "two_player_matrix"
actions = {actions}
payoffs.{a} = {{ {a} = [3, 3], {b} = [0, 5] }}
payoffs.{b} = {{ {a} = [5, 0], {b} = [1, 1] }}
"""


def _library(tmp_path: Path, a: str, b: str) -> Path:
    path = tmp_path / f"lib-{a}{b}.toml"
    path.write_text(LIBRARY.format(actions=json.dumps([a, b]), a=a, b=b))
    return path


def test_reparse_leaves_answers_to_an_older_wording_alone(tmp_path, capsys) -> None:
    db = tmp_path / "s.db"
    old, new = _library(tmp_path, "C", "D"), _library(tmp_path, "X", "Y")
    assert main(["elicit", "--model", "mock:rate=0.5", "--run", "r", "--samples", "3", "--scenario", "team/g",
                 "--scenario", "team/stag_hunt", "--library", str(old), "--store", str(db)]) == 0
    # Forget every parse, then edit game g: its actions become X / Y (a new wording, a new hash).
    _sql(db, "UPDATE samples SET action = NULL, invalid_reason = 'old parser'")
    capsys.readouterr()
    assert main(["reparse", "r", "--library", str(new), "--store", str(db)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "3 samples re-parsed" in out
    assert "3 samples answer an older wording of 1 scenarios; left as they are" in out
    rows = _sql(db, "SELECT scenario, action, invalid_reason FROM samples ORDER BY id")
    assert {r for r in rows if r[0] == "team/g"} == {("team/g", None, "old parser")}
    assert all(action in ("C", "D") and reason is None for scenario, action, reason in rows
               if scenario == "team/stag_hunt")
