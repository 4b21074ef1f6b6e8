"""The SQLite store: schema versioning, unique sample keys, run identity."""

from __future__ import annotations

import sqlite3

import pytest

from tomdistill.store import SCHEMA_VERSION, Sample, Store, StoreError


def _sample(run_id: int, index: int, text: str = "C") -> Sample:
    return Sample(run_id=run_id, scenario="team/stag_hunt", split="train", prompt_hash="abc", sample_index=index,
                  seed=index, raw_text=text, action="C", value=None, motivation=None, invalid_reason=None,
                  probs=None, valid_mass=None, parser_version="1", latency_s=0.1, prompt_tokens=10, completion_tokens=1)


def _run(store: Store, name: str = "r", **over):
    args = dict(model="mock:x", adapter=None, protocol="answer", mode="sample", settings={"temperature": 0.8},
                seed=0, model_info={})
    args.update(over)
    return store.open_run(name, **args)


def test_new_store_has_current_schema(store) -> None:
    assert store.schema_version == SCHEMA_VERSION
    mode = store.conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_samples_are_unique_per_key(store) -> None:
    run = _run(store)
    store.add_prompt("abc", [{"role": "user", "content": "hi"}])
    assert store.add_samples([_sample(run.id, 0), _sample(run.id, 1)]) == 2
    # The same key again (e.g. a re-run after a crash) is ignored, the first answer kept.
    assert store.add_samples([_sample(run.id, 1, "D"), _sample(run.id, 2)]) == 1
    samples = store.samples(run.id)
    assert [s.sample_index for s in samples] == [0, 1, 2]
    assert samples[1].raw_text == "C"
    assert store.done_indexes(run.id, "team/stag_hunt", "abc") == {0, 1, 2}


def test_run_reuse_requires_same_settings(store) -> None:
    first = _run(store)
    assert _run(store).id == first.id
    with pytest.raises(StoreError, match="already exists with other settings.*temperature"):
        _run(store, settings={"temperature": 0.2})
    with pytest.raises(StoreError, match="model"):
        _run(store, model="mock:y")


def test_unknown_run_lists_known_ones(store) -> None:
    _run(store, "alpha")
    with pytest.raises(StoreError, match="no run named 'beta'.*alpha"):
        store.require_run("beta")


def test_store_from_newer_version_is_refused(tmp_path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer tomdistill"):
        Store(path)


def test_non_database_file_is_refused(tmp_path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("this is not sqlite " * 100)
    with pytest.raises(StoreError, match="not a usable tomdistill store"):
        Store(path)


def test_reopen_keeps_data(tmp_path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as db:
        run = _run(db)
        db.add_prompt("abc", [])
        db.add_samples([_sample(run.id, 0)])
    with Store(path) as db:
        assert db.count(db.require_run("r").id) == 1
