"""Output folders: tomdistill never deletes or overwrites a folder or file it did not write (issue 13).

Each refusal is one line with exit code 2 and leaves the user's tree as it was (tests/badinput.py);
the positive cases show that re-running into tomdistill's own folders still works, also into
folders written before the `.tomdistill` marker existed.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tomdistill.cli import main
from tomdistill.errors import TomdistillError
from tomdistill.outdirs import MARKER, read_marker, write_marker
from tomdistill.pipeline import STAGES
from tomdistill.store import Store

from badinput import make_store, run_bad, tree_digest
from mockrun import mock_run_config

# pipeline.json as a run before markers left it (the teacher stage done).
OLD_STATE = {"teacher": {"key": "0123456789ab", "seconds": 1.0, "finished": "2025-01-01T00:00:00", "details": {}}}


@pytest.fixture()
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config" / "run.toml"
    path.parent.mkdir()
    path.write_text(mock_run_config(teacher="mock:rate=0.6", student="mock:rate=0.4", seed=3, bootstrap=50))
    return path


def _user_folder(path: Path) -> Path:
    """A folder of the user's: files tomdistill must neither delete nor overwrite."""
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text("my notes\n")
    (path / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return path


def _old_run(path: Path) -> Path:
    """A run folder written by tomdistill before markers existed: pipeline.json, no marker."""
    path.mkdir(parents=True)
    (path / "pipeline.json").write_text(json.dumps(OLD_STATE))
    return path


def _old_dataset(path: Path) -> Path:
    """A dataset folder written before markers existed: tomdistill's manifest.json, no marker."""
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"teacher_run": "t", "reply_format": "x", "parser_version": "1"}))
    return path


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return make_store(tmp_path / "store.db")


# --- tomdistill run ----------------------------------------------------------------------------

def test_run_refuses_a_users_folder(tmp_path, config_file, capsys) -> None:
    mine = _user_folder(tmp_path / "mine")
    line = run_bad(["run", str(config_file), "--out", str(mine)], "folder is not empty and tomdistill did not write it",
                   capsys, watch=mine)
    assert str(mine) in line and "--out" in line


def test_run_refuses_a_folder_tomdistill_wrote_as_something_else(tmp_path, config_file, db, capsys) -> None:
    ds = tmp_path / "ds"
    assert main(["dataset", "--from-run", "r0", "--out", str(ds), "--store", str(db)]) == 0
    run_bad(["run", str(config_file), "--out", str(ds)], "holds a tomdistill dataset, not a run", capsys, watch=ds)


@pytest.mark.parametrize("name", ["dataset", "adapter", "report"])
def test_run_refuses_a_users_folder_inside_a_run_folder(tmp_path, config_file, name, capsys) -> None:
    run = _old_run(tmp_path / "run")
    _user_folder(run / name)
    line = run_bad(["run", str(config_file), "--out", str(run)], "folder is not empty", capsys, watch=run)
    assert f"{run / name}:" in line


@pytest.mark.parametrize("link", ["dataset", "dataset/hf", "tomdistill.db"])
def test_run_never_follows_a_link_out_of_its_folder(tmp_path, config_file, link, capsys) -> None:
    area = tmp_path / "area"  # watched whole: the run folder and the folder the link leads to
    outside = _user_folder(area / "outside")
    run = _old_run(area / "run")
    if link.startswith("dataset/"):
        _old_dataset(run / "dataset")
    targets = {"dataset": outside, "dataset/hf": outside / "sub", "tomdistill.db": outside / "notes.txt"}
    (run / link).symlink_to(targets[link])
    line = run_bad(["run", str(config_file), "--out", str(run)], "symbolic link", capsys, watch=area)
    assert str(run / link) in line


def test_pipeline_refuses_before_any_stage(tmp_path) -> None:
    from tomdistill.config import load_config
    from tomdistill.errors import TomdistillError
    from tomdistill.pipeline import Pipeline

    mine = _user_folder(tmp_path / "mine")
    before = tree_digest(mine)
    with pytest.raises(TomdistillError, match="pick a new --out"):
        Pipeline(load_config(None), mine)
    assert tree_digest(mine) == before


def _as_before_markers(folder: Path) -> None:
    """What a folder written before markers looked like: no markers, and none of the dataset files
    added since (the legacy tests recognise only what those versions wrote)."""
    for marker in folder.rglob(MARKER):
        marker.unlink()
    for name in ("train.parquet", "README.md", "dataset_info.json"):
        for path in folder.rglob(name):
            if (path.parent / "manifest.json").is_file():  # a dataset folder's, not an adapter's card
                path.unlink()


def test_new_dataset_files_in_an_unmarked_folder_are_the_users(tmp_path, db) -> None:
    ds = tmp_path / "ds"
    assert main(["dataset", "--from-run", "r0", "--out", str(ds), "--store", str(db)]) == 0
    (ds / MARKER).unlink()  # unmarked, yet holding train.parquet: no version before markers wrote that
    before = tree_digest(ds)
    assert main(["dataset", "--from-run", "r0", "--out", str(ds), "--store", str(db)]) == 2
    assert tree_digest(ds) == before


def test_pipeline_reruns_into_its_own_folder(tmp_path, config_file, stub_train, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()  # an empty folder is fine
    assert main(["run", str(config_file), "--out", str(run)]) == 0
    first = capsys.readouterr().out
    assert all(f"[{stage}] running" in first for stage in STAGES)
    state = json.loads((run / "pipeline.json").read_text())
    kinds = {name: read_marker(run / name) for name in (".", "dataset", "adapter", "report")}
    assert {n: m["kind"] for n, m in kinds.items()} == {".": "run", "dataset": "dataset", "adapter": "adapter",
                                                        "report": "report"}
    assert kinds["dataset"]["key"] == state["dataset"]["key"] and kinds["adapter"]["key"] == state["train"]["key"]

    assert main(["run", str(config_file), "--out", str(run)]) == 0
    second = capsys.readouterr().out
    assert all(f"[{stage}] up to date" in second for stage in STAGES) and len(stub_train) == 1

    # A folder from before the markers: the same run continues, and is marked again.
    _as_before_markers(run)
    assert main(["run", str(config_file), "--out", str(run), "--force", "dataset"]) == 0
    out = capsys.readouterr().out
    assert "[teacher] up to date" in out and "[dataset] running" in out and "[train] running" in out
    assert len(stub_train) == 2 and (run / "dataset" / "train.jsonl").is_file()
    assert all(read_marker(run / name) for name in (".", "dataset", "adapter", "report"))


DEEP_JSON = "[" * 100_000 + "]" * 100_000  # the JSON parser runs out of stack on it (RecursionError)


def _with_notes(folder: Path) -> Path:
    (folder / "notes.txt").write_text("my notes\n")
    return folder


def _old_play(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "play.json").write_text("{}")
    return path


#: An unmarked folder that passes its kind's old test but also holds a file of the user's:
#: name -> (make the folder under root, the command's arguments after the folder's flag, what the line says).
LEGACY_WITH_USER_FILES = {
    "dataset": (lambda root: _with_notes(_old_dataset(root / "ds")), "dataset", "tomdistill did not write it"),
    "run": (lambda root: _with_notes(_old_run(root / "run")), "run", "tomdistill did not write it"),
    "run-dataset": (lambda root: _with_notes(_old_dataset(_old_run(root / "run") / "dataset")).parent, "run",
                    "dataset: folder is not empty and tomdistill did not write it"),
    "run-report": (lambda root: _old_run(root / "run"), "run-report-html", "report: folder is not empty"),
    "play": (lambda root: _with_notes(_old_play(root / "pl")), "play", "tomdistill did not write it"),
}


@pytest.mark.parametrize("name", sorted(LEGACY_WITH_USER_FILES))
def test_an_old_folder_holding_a_users_file_is_refused_not_replaced(name, tmp_path, config_file, db, capsys) -> None:
    make, command, message = LEGACY_WITH_USER_FILES[name]
    area = tmp_path / "area"
    folder = make(area)
    if command == "run-report-html":  # a report/ with only a report.html is not a report tomdistill wrote
        (folder / "report").mkdir()
        (folder / "report" / "report.html").write_text("<p>my page</p>")
    args = {"dataset": ["dataset", "--from-run", "r0", "--store", str(db), "--out"],
            "play": ["play", "--agents", "always-C", "always-D", "-s", "team/prisoners_dilemma", "--store", str(db),
                     "--out"]}.get(command, ["run", str(config_file), "--out"])
    run_bad([*args, str(folder)], message, capsys, watch=area)


def test_a_users_sqlite_file_named_like_the_store_does_not_make_a_run_folder(tmp_path, config_file, capsys) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    con = sqlite3.connect(mine / "tomdistill.db")
    con.execute("CREATE TABLE notes (text TEXT)")
    con.commit()
    con.close()
    run_bad(["run", str(config_file), "--out", str(mine)], "tomdistill did not write it", capsys, watch=mine)


#: Files tomdistill reads back to tell its folders, broken: name -> (path in an old run folder, bytes, message).
BROKEN_STATE = {
    "deep-pipeline-json": ("pipeline.json", DEEP_JSON, "pipeline.json: not a valid tomdistill pipeline state"),
    "deep-marker": (MARKER, DEEP_JSON, "tomdistill did not write it"),
    "deep-dataset-manifest": ("dataset/manifest.json", DEEP_JSON, "dataset: folder is not empty"),
}


@pytest.mark.parametrize("name", sorted(BROKEN_STATE))
def test_deeply_nested_json_in_a_run_folder_is_one_line(name, tmp_path, config_file, capsys) -> None:
    rel, text, message = BROKEN_STATE[name]
    run = _old_run(tmp_path / "run")
    if rel == "pipeline.json":
        write_marker(run, "run")  # a marked run: its state is read, not just tested
    (run / rel).parent.mkdir(exist_ok=True)
    (run / rel).write_text(text)
    run_bad(["run", str(config_file), "--out", str(run)], message, capsys, watch=tmp_path)


def test_a_marker_that_is_a_folder_is_refused_and_leaves_no_temporary_file(tmp_path, config_file, capsys) -> None:
    run = _old_run(tmp_path / "run")
    (run / MARKER).mkdir()
    run_bad(["run", str(config_file), "--out", str(run)], f"{run / MARKER}: is not a plain file", capsys,
            watch=tmp_path)
    with pytest.raises(TomdistillError, match="cannot write tomdistill's marker"):
        write_marker(run, "run")  # called directly: one clear error, the temporary file removed
    assert sorted(p.name for p in run.iterdir()) == [MARKER, "pipeline.json"]


# --- tomdistill dataset, train, merge ---------------------------------------------------------

@pytest.mark.parametrize("kind", ["folder", "file"])
def test_dataset_refuses_a_users_folder_or_file(tmp_path, db, kind, capsys) -> None:
    area = tmp_path / "area"
    mine = _user_folder(area / "mine")
    out = mine if kind == "folder" else mine / "notes.txt"
    message = "folder is not empty" if kind == "folder" else "is a file"
    run_bad(["dataset", "--from-run", "r0", "--out", str(out), "--store", str(db)], message, capsys, store=db, watch=area)


def test_dataset_rebuild_replaces_its_own_folder(tmp_path, db) -> None:
    ds = tmp_path / "ds"
    assert main(["dataset", "--from-run", "r0", "--out", str(ds), "--store", str(db)]) == 0
    assert read_marker(ds)["kind"] == "dataset"
    _as_before_markers(ds)
    assert main(["dataset", "--from-run", "r0", "--out", str(ds), "--store", str(db),
                 "--prompt-protocol", "motivated"]) == 0
    assert json.loads((ds / "manifest.json").read_text())["prompt_protocol"] == "motivated"
    assert read_marker(ds)["kind"] == "dataset"


def test_train_refuses_a_users_folder(tmp_path, db, capsys) -> None:
    ds = tmp_path / "ds"
    assert main(["dataset", "--from-run", "r0", "--out", str(ds), "--store", str(db)]) == 0
    mine = _user_folder(tmp_path / "mine")
    run_bad(["train", "--student", "default:student", "--data", str(ds), "--out", str(mine)], "folder is not empty",
            capsys, watch=mine)


def test_merge_refuses_a_users_folder(tmp_path, capsys) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "train_config.json").write_text(json.dumps({"student": "default:student"}))
    mine = _user_folder(tmp_path / "mine")
    run_bad(["merge", str(adapter), "--out", str(mine)], "folder is not empty", capsys, watch=mine)


# --- tomdistill runs export --------------------------------------------------------------------

@pytest.mark.parametrize(("target", "message"), [
    ("notes.jsonl", "file exists"), ("notes.parquet", "file exists"), ("sub", "folder is not empty"),
    ("sub.jsonl", "is a folder"),
])
def test_runs_export_refuses_a_users_file_or_folder(tmp_path, db, target, message, capsys) -> None:
    mine = _user_folder(tmp_path / "mine")
    (mine / "notes.jsonl").write_text('{"mine": 1}\n')
    (mine / "notes.parquet").write_bytes(b"PAR1 mine")
    (mine / "sub.jsonl").mkdir()
    (mine / "sub.jsonl" / "x").write_text("x")
    line = run_bad(["runs", "export", "r0", "--out", str(mine / target), "--store", str(db)], message, capsys,
                   store=db, watch=mine)
    assert str(mine / target) in line


@pytest.mark.parametrize("name", ["x.json", "x.csv", "x.txt", "x.JSON"])
def test_runs_export_refuses_a_file_format_it_does_not_write(tmp_path, db, name, capsys) -> None:
    line = run_bad(["runs", "export", "r0", "--out", str(tmp_path / name), "--store", str(db)],
                   "files; use .jsonl or .parquet, or a folder name without a suffix", capsys, store=db, watch=tmp_path)
    assert f"{tmp_path / name}: tomdistill does not write" in line


def test_runs_export_replaces_its_own_folder_and_forced_files(tmp_path, db) -> None:
    folder = tmp_path / "exp"
    for _ in range(2):  # the second export replaces the first, which carries the marker
        assert main(["runs", "export", "r0", "--out", str(folder), "--store", str(db)]) == 0
    marker = read_marker(folder)
    assert (marker["kind"], marker["key"]) == ("export", "r0")

    outside = tmp_path / "outside.jsonl"
    outside.write_text("keep\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(outside)
    assert main(["runs", "export", "r0", "--out", str(link), "--store", str(db), "--force"]) == 0
    assert outside.read_text() == "keep\n"  # the link was replaced, its target left alone
    with Store(db) as store:
        samples = store.count(store.require_run("r0").id)
    assert not link.is_symlink() and len(link.read_text().splitlines()) == samples > 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []
