"""Agent folders are data from elsewhere: Agent.load checks paths, symlinks and weight hashes, and
`tomdistill export` copies real files only and writes only a new or empty folder outside the adapter."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tomdistill import Agent
from tomdistill.agents.export import export_agent
from tomdistill.cli import main
from tomdistill.errors import TomdistillError

from badinput import run_bad
from fakeagent import fake_adapter

WEIGHTS = "adapter/adapter_model.safetensors"


@pytest.fixture()
def agent_dir(tmp_path: Path) -> Path:
    """A freshly exported agent folder on the mock backend."""
    export_agent(fake_adapter(tmp_path / "adapter", "mock:rate=1"), tmp_path / "agent")
    return tmp_path / "agent"


def edit_manifest(folder: Path, change: Callable[[dict], None]) -> None:
    path = folder / "agent.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def load_error(folder: Path) -> str:
    with pytest.raises(TomdistillError) as caught:
        Agent.load(folder)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- Agent.load -----------------------------------------------------------------------------------


def test_a_good_export_loads_and_its_hashes_are_the_files(agent_dir) -> None:
    files = json.loads((agent_dir / "agent.json").read_text())["files"]
    assert files == {WEIGHTS: {"size": 64, "sha256": hashlib.sha256(b"\0" * 64).hexdigest()}}
    agent = Agent.load(agent_dir)
    assert agent.info()["weights"] == {WEIGHTS: files[WEIGHTS]["sha256"]}
    assert not any(p.is_symlink() for p in agent_dir.rglob("*"))


def test_a_wrong_sha256_in_agent_json_is_refused(agent_dir) -> None:
    edit_manifest(agent_dir, lambda d: d["files"][WEIGHTS].update(sha256="ab" * 32))
    message = load_error(agent_dir)
    assert str(agent_dir / WEIGHTS) in message and f"field 'files.{WEIGHTS}.sha256'" in message


def test_a_malformed_sha256_names_the_field(agent_dir) -> None:
    edit_manifest(agent_dir, lambda d: d["files"][WEIGHTS].update(sha256="not-a-hash"))
    message = load_error(agent_dir)
    assert str(agent_dir / "agent.json") in message and f"field 'files.{WEIGHTS}.sha256'" in message


def test_a_tampered_weight_file_of_the_same_size_is_refused(agent_dir) -> None:
    (agent_dir / WEIGHTS).write_bytes(b"\1" * 64)
    message = load_error(agent_dir)
    assert message.startswith(str(agent_dir / WEIGHTS)) and "sha256 differs" in message


def test_weights_without_a_hash_are_refused_with_a_re_export_hint(agent_dir) -> None:
    edit_manifest(agent_dir, lambda d: d["files"][WEIGHTS].pop("sha256"))
    message = load_error(agent_dir)
    assert f"field 'files.{WEIGHTS}.sha256': missing" in message and "re-export" in message


def test_a_weight_file_agent_json_does_not_list_is_refused(agent_dir) -> None:
    (agent_dir / "adapter" / "extra.safetensors").write_bytes(b"\2" * 8)
    message = load_error(agent_dir)
    assert message.startswith(str(agent_dir / "adapter" / "extra.safetensors")) and "does not list" in message


@pytest.mark.parametrize(("field", "change"), [
    ("files.../../etc/passwd", lambda d: d["files"].update({"../../etc/passwd": {"size": 1, "sha256": "0" * 64}})),
    ("files./etc/passwd", lambda d: d["files"].update({"/etc/passwd": {"size": 1, "sha256": "0" * 64}})),
    ("weights", lambda d: d.update(weights="../../etc")),
    ("weights", lambda d: d.update(weights="/etc")),
    ("chat_template", lambda d: d.update(chat_template="../secret.txt")),
    ("behaviour", lambda d: d.update(behaviour="/etc/passwd")),
])
def test_paths_leaving_the_folder_are_refused(agent_dir, field, change) -> None:
    edit_manifest(agent_dir, change)
    message = load_error(agent_dir)
    assert message.startswith(str(agent_dir / "agent.json")) and f"field '{field}'" in message
    assert "inside the agent folder" in message


def test_a_listed_weight_file_linked_outside_is_refused_even_with_the_right_hash(agent_dir, tmp_path) -> None:
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes((agent_dir / WEIGHTS).read_bytes())
    (agent_dir / WEIGHTS).unlink()
    (agent_dir / WEIGHTS).symlink_to(outside)
    message = load_error(agent_dir)
    assert f"field 'files.{WEIGHTS}'" in message and str(outside) in message and "outside the agent folder" in message


def test_a_symlink_inside_the_folder_pointing_outside_is_refused(agent_dir, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    link = agent_dir / "adapter" / "tokenizer.json"
    link.symlink_to(secret)
    message = load_error(agent_dir)
    assert message.startswith(str(link)) and "outside the agent folder" in message


def test_a_symlink_loop_inside_the_folder_is_refused(agent_dir) -> None:
    (agent_dir / "adapter" / "a").symlink_to(agent_dir / "adapter" / "b")
    (agent_dir / "adapter" / "b").symlink_to(agent_dir / "adapter" / "a")
    assert "a symlink loop" in load_error(agent_dir)


def test_a_symlink_within_the_folder_is_accepted(agent_dir) -> None:
    (agent_dir / "adapter" / "template.jinja").symlink_to("chat_template.jinja")
    assert Agent.load(agent_dir).manifest.name == "agent"


def test_play_refuses_a_tampered_agent_with_one_line(agent_dir, tmp_path, capsys) -> None:
    (agent_dir / WEIGHTS).write_bytes(b"\1" * 64)
    run_bad(["play", "--agents", str(agent_dir), "always-C", "--scenario", "team/stag_hunt",
             "--store", str(tmp_path / "s.db"), "--out", str(tmp_path / "rep")],
            f"{agent_dir / WEIGHTS}: weight file changed since export", capsys, watch=tmp_path)


@pytest.mark.parametrize("kind", ["agent", "adapter"])
def test_deeply_nested_json_in_an_agent_or_adapter_folder_is_one_line(kind, agent_dir, tmp_path, capsys) -> None:
    # agent.json of an exported agent, train_config.json of an adapter folder given as an agent
    folder, name = (agent_dir, "agent.json") if kind == "agent" else (tmp_path / "adapter", "train_config.json")
    (folder / name).write_text("[" * 100_000 + "]" * 100_000)
    run_bad(["play", "--agents", str(folder), "always-C", "--scenario", "team/stag_hunt",
             "--store", str(tmp_path / "s.db"), "--out", str(tmp_path / "rep")],
            f"{folder / name}: not valid JSON (lists or objects nested too deeply)", capsys, watch=tmp_path)


# --- export ---------------------------------------------------------------------------------------


def _linked_secret(adapter: Path, tmp: Path) -> Path:
    (tmp / "secrets").mkdir()
    (tmp / "secrets" / "key.txt").write_text("TOP-SECRET")
    (adapter / "extra").symlink_to(tmp / "secrets")
    return adapter / "extra"


def _loop(adapter: Path, tmp: Path) -> Path:
    (adapter / "loop").symlink_to(adapter / "loop")
    return adapter / "loop"


@pytest.mark.parametrize("make_link", [_linked_secret, _loop])
def test_export_refuses_a_symlink_in_the_adapter(make_link, tmp_path, capsys) -> None:
    adapter = fake_adapter(tmp_path / "adapter", "mock:rate=1")
    link = make_link(adapter, tmp_path)
    out = tmp_path / "agent"
    line = run_bad(["export", str(adapter), "--out", str(out)], f"{link}: a symbolic link in the adapter folder",
                   capsys, watch=tmp_path)
    assert "TOP-SECRET" not in line
    assert not out.exists()


def test_a_symlink_in_skipped_checkpoints_is_not_copied(tmp_path) -> None:
    adapter = fake_adapter(tmp_path / "adapter", "mock:rate=1")
    _linked_secret(adapter / "checkpoints", tmp_path)
    export_agent(adapter, tmp_path / "agent")
    assert not any("TOP-SECRET" in p.read_text(errors="replace") for p in (tmp_path / "agent").rglob("*") if p.is_file())


def _file(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("mine")
    return tmp / "notes.txt"


def _below_file(tmp: Path) -> Path:
    return _file(tmp) / "agent"


def _user_folder(tmp: Path) -> Path:
    (tmp / "mine").mkdir()
    (tmp / "mine" / "notes.txt").write_text("keep me")
    return tmp / "mine"


def _earlier_agent(tmp: Path) -> Path:
    export_agent(tmp / "adapter", tmp / "old")
    return tmp / "old"


def _link_to_empty(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    (tmp / "link").symlink_to(tmp / "empty")
    return tmp / "link"


def _looping_out(tmp: Path) -> Path:
    (tmp / "loop").symlink_to(tmp / "loop")
    return tmp / "loop"


@pytest.mark.parametrize(("make_out", "message"), [
    (lambda tmp: tmp / "adapter" / "agent", "is inside the adapter folder"),
    (lambda tmp: tmp / "adapter", "is inside the adapter folder"),
    (_file, "is a file, and tomdistill's export folder would go there"),
    (_below_file, "notes.txt: is a file, so the folder"),
    (_user_folder, "folder is not empty and tomdistill did not write it"),
    (_earlier_agent, "already exists and is not empty"),
    (_link_to_empty, "is a symbolic link"),
    (_looping_out, "a symlink loop"),
])
def test_export_refuses_a_bad_out_and_touches_nothing(make_out, message, tmp_path, capsys) -> None:
    adapter = fake_adapter(tmp_path / "adapter", "mock:rate=1")
    out = make_out(tmp_path)
    run_bad(["export", str(adapter), "--out", str(out)], message, capsys, watch=tmp_path)


def test_export_cli_into_an_empty_folder_gives_a_loadable_agent(tmp_path, capsys) -> None:
    adapter = fake_adapter(tmp_path / "adapter", "mock:rate=1")
    (tmp_path / "agent").mkdir()
    assert main(["export", str(adapter), "--out", str(tmp_path / "agent")]) == 0, capsys.readouterr().err
    agent = Agent.load(tmp_path / "agent")
    digest = hashlib.sha256((tmp_path / "agent" / WEIGHTS).read_bytes()).hexdigest()
    assert agent.manifest.files[WEIGHTS].sha256 == digest
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    assert not any(os.path.islink(p) for p in (tmp_path / "agent").rglob("*"))
