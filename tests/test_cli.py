"""The command line: listing, showing, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tomdistill.cli import main

EXAMPLE = str(Path(__file__).parent.parent / "examples" / "my_library.toml")


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_ids_per_split(capsys) -> None:
    for split, n in {"train": 20, "heldout_context": 12, "heldout_game": 20, "heldout_pgg": 1}.items():
        code, out, _ = run(capsys, "scenarios", "list", "--split", split, "--ids")
        assert code == 0
        assert len(out.split()) == n


def test_list_json_has_hashes(capsys) -> None:
    code, out, _ = run(capsys, "scenarios", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 53
    assert set(rows[0]["prompt_hash"]) == {"answer", "motivated", "reasoned"}


def test_list_with_user_library_and_config(capsys, tmp_path) -> None:
    code, out, _ = run(capsys, "scenarios", "list", "--library", EXAMPLE, "--ids")
    assert code == 0 and "fishing/chicken_high_stakes" in out.split()
    config = tmp_path / "tomdistill.toml"
    config.write_text(f'[scenarios]\nlibraries = ["{EXAMPLE}"]\n')
    code, out, _ = run(capsys, "scenarios", "list", "--config", str(config), "--ids")
    assert code == 0 and "fishing/chicken_high_stakes" in out.split()


def test_show_prints_messages(capsys) -> None:
    code, out, _ = run(capsys, "scenarios", "show", "team/stag_hunt", "--protocol", "motivated", "--json")
    shown = json.loads(out)
    assert code == 0
    assert [m["role"] for m in shown["messages"]] == ["system", "user"]
    assert "Motivation:" in shown["messages"][1]["content"]


def test_user_errors_are_one_line_with_exit_code_2(capsys, tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[game]]\nid = "g"\nname = "G"\ntemplate = "two_player_matrix"\nactions = ["C", "D"]\n'
                   'payoffs.C = { C = [1, 1], D = [0, 2] }\n')
    for args, needle in [
        (["scenarios", "list", "--library", str(bad)], "field 'payoffs'"),
        (["scenarios", "show", "nowhere/nothing"], "unknown scenario"),
        (["scenarios", "list", "--split", "nope"], "unknown split"),
        (["scenarios", "list", "--config", str(tmp_path / "missing.toml")], "file not found"),
    ]:
        code, out, err = run(capsys, *args)
        assert code == 2, args
        assert needle in err
        assert len(err.strip().splitlines()) == 1
        assert "Traceback" not in err


def test_bad_config_field(capsys, tmp_path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[scenarios]\nlibrary = []\n")
    code, _, err = run(capsys, "scenarios", "list", "--config", str(config))
    assert code == 2 and "field 'scenarios.library'" in err and "unknown field" in err


def test_console_script_exit_code_and_help() -> None:
    exe = [sys.executable, "-m", "tomdistill"]
    done = subprocess.run([*exe, "scenarios", "show", "x/y"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("error: ")
    helped = subprocess.run([*exe, "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "scenarios" in helped.stdout
