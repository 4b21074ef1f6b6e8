"""`tomdistill runs delete`: one run and its samples go, every other row stays, a run name is
free again, and `tomdistill run` elicits again a stage whose run was deleted."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from tomdistill.cli import main
from tomdistill.cli.app import app
from tomdistill.store import Store

from badinput import make_store, run_bad, store_dump
from mockrun import mock_run_config


def rows(db: Path, run: str) -> list[tuple]:
    """Every stored column of every sample of `run`, its row ids included."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT samples.* FROM samples JOIN runs ON runs.id = samples.run_id "
                           "WHERE runs.name = ? ORDER BY samples.id", (run,)).fetchall()
    finally:
        con.close()


def test_delete_removes_one_run_and_leaves_the_other_as_it_was(tmp_path, capsys) -> None:
    db = make_store(tmp_path / "t.db")
    kept = rows(db, "sc")
    with Store(db, readonly=True) as store:
        run_id = store.require_run("r0").id
    assert len(kept) == 2 and len(rows(db, "r0")) == 6
    assert main(["runs", "delete", "r0", "--store", str(db), "--yes", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["store"] == str(db)
    assert [(d["name"], d["model"], d["mode"], d["samples"]) for d in shown["deleted"]] == \
        [("r0", "mock:rate=0.5", "sample", 6)]
    assert rows(db, "sc") == kept  # the other run's samples, column for column
    with Store(db, readonly=True) as store:
        assert [r.name for r in store.runs()] == ["sc"] and store.get_run("r0") is None
        assert store.conn.execute("SELECT count(*) FROM samples WHERE run_id = ?", (run_id,)).fetchone()[0] == 0


def test_delete_asks_first_and_a_no_deletes_nothing(tmp_path) -> None:
    db = make_store(tmp_path / "t.db")
    before = store_dump(db)
    runner = CliRunner()
    refused = runner.invoke(app, ["runs", "delete", "r0", "sc", "--store", str(db)], input="n\n")
    assert refused.exit_code == 1
    assert "'r0' (model mock:rate=0.5, 6 samples)" in refused.output and "'sc' (model mock:rate=0.5, 2 samples)" \
        in refused.output and "nothing deleted" in refused.output
    assert store_dump(db) == before
    no_answer = runner.invoke(app, ["runs", "delete", "r0", "--store", str(db)], input="")  # end of input: a no
    assert no_answer.exit_code == 1 and store_dump(db) == before
    confirmed = runner.invoke(app, ["runs", "delete", "r0", "--store", str(db)], input="y\n")
    assert confirmed.exit_code == 0 and "deleted run 'r0'" in confirmed.output
    assert rows(db, "r0") == [] and len(rows(db, "sc")) == 2


def test_an_unknown_name_is_one_line_and_deletes_nothing(tmp_path, capsys) -> None:
    db = make_store(tmp_path / "t.db")
    # r0 is named first: nothing is deleted until every name is known.
    run_bad(["runs", "delete", "r0", "nope", "--store", str(db), "--yes"], "no run named 'nope'", capsys, store=db)
    run_bad(["runs", "delete", "r0", "--store", str(tmp_path / "none.db"), "--yes"], "no store at", capsys)
    assert not (tmp_path / "none.db").exists()


def test_a_deleted_name_takes_a_run_with_other_settings(tmp_path, capsys) -> None:
    db = make_store(tmp_path / "t.db")
    other = ["elicit", "-m", "mock:rate=0.9", "-r", "r0", "--scenario", "team/stag_hunt", "-n", "2", "--store", str(db)]
    run_bad(other, "already exists with other settings", capsys, store=db)
    assert main(["runs", "delete", "r0", "--store", str(db), "--yes"]) == 0
    assert main(other) == 0
    with Store(db, readonly=True) as store:
        run = store.require_run("r0")
        assert run.model == "mock:rate=0.9" and store.count(run.id) == 2

def test_run_elicits_again_a_stage_whose_run_was_deleted(tmp_path, stub_train, capsys) -> None:
    config, out = tmp_path / "c.toml", tmp_path / "run"
    config.write_text(mock_run_config(bootstrap=20))
    assert main(["run", str(config), "--out", str(out)]) == 0, capsys.readouterr().err
    base = json.loads((out / "pipeline.json").read_text())["base"]["details"]["run"]
    db = out / "tomdistill.db"
    assert main(["runs", "delete", base, "--store", str(db), "--yes"]) == 0
    capsys.readouterr()
    # A changed evaluation reads the base run: without it, evaluate would fail on the missing run.
    config.write_text(mock_run_config(bootstrap=30))
    assert main(["run", str(config), "--out", str(out)]) == 0, capsys.readouterr().err
    log = capsys.readouterr().out
    assert "[base] running" in log and "[teacher] up to date" in log
    with Store(db, readonly=True) as store:
        assert store.count(store.require_run(base).id) > 0
