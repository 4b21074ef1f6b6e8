"""The command line: listing, showing, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def _command(*path: str):
    """The click command behind `tomdistill PATH...`, for looking at its options."""
    import typer.main

    from tomdistill.cli.app import app

    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def test_every_train_config_field_has_a_train_flag() -> None:
    from tomdistill.config import TrainConfig

    flags = {p.name: p.opts for p in _command("train").params}
    for name in TrainConfig.model_fields:
        assert flags.get(name), f"TrainConfig.{name} has no `tomdistill train` flag"


def test_train_flags_override_the_config_which_overrides_the_preset(monkeypatch, tmp_path, capsys) -> None:
    from tomdistill import train as train_module

    seen = []

    def fake_train(student, data_dir, out, config, *, resume=False):
        seen.append(config)
        return train_module.TrainResult(str(out), student, 1, 1, 0.5, 0.0, None)

    monkeypatch.setattr(train_module, "train", fake_train)
    config = tmp_path / "c.toml"
    config.write_text('[train]\npreset = "paper"\nalpha = 4\nr = 2\n')
    common = ["train", "--student", "default:student", "--data", str(tmp_path), "--out", str(tmp_path / "a"),
              "--config", str(config)]
    assert main([*common, "--r", "3", "--lr", "0.002", "--target-module", "q_proj", "--target-module", "k_proj",
                 "--no-bf16", "--decision-loss", "soft", "--warmup-ratio", "0.1", "--gradient-checkpointing",
                 "--logging-steps", "5"]) == 0
    assert main([*common, "--learning-rate", "0.003", "--packing", "--decision-loss", "tokens"]) == 0
    flags, other = seen
    assert (flags.r, flags.alpha, flags.epochs, flags.preset) == (3, 4, 3, "paper")  # flag, config, preset
    assert flags.learning_rate == 0.002 and flags.target_modules == ["q_proj", "k_proj"] and flags.bf16 is False
    assert flags.decision_loss == "soft" and flags.warmup_ratio == 0.1 and flags.gradient_checkpointing
    assert flags.logging_steps == 5 and not flags.packing
    assert other.r == 2 and other.learning_rate == 0.003 and other.packing and other.target_modules == ["q_proj", "v_proj"]


def test_help_texts_state_the_code_defaults() -> None:
    from tomdistill.agents.agent import default_sampling
    from tomdistill.config import TRAIN_PRESETS, TrainConfig
    from tomdistill.models.base import DEFAULT_MAX_NEW_TOKENS

    play = {p.name: p.help for p in _command("play").params}
    temperatures = {default_sampling(mode).temperature for mode in ("sample", "score")}
    assert len(temperatures) == 1 and f"Default: {temperatures.pop():g} in either mode." in play["temperature"]
    for protocol, tokens in DEFAULT_MAX_NEW_TOKENS.items():
        assert f"{tokens} for {protocol}" in play["max_new_tokens"]
    train = {p.name: p for p in _command("train").params}
    assert train["r"].show_default.startswith(f"{TrainConfig().r};")
    assert f"paper preset: {TRAIN_PRESETS['paper']['r']}" in train["r"].show_default
    assert train["batch_size"].help == TrainConfig.model_fields["batch_size"].description


def test_show_completion_prints_a_bash_script_for_tomdistill(monkeypatch, capsys) -> None:
    # Name the shell instead of detecting it (typer's own switch), so the test runs under any shell.
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    with pytest.raises(SystemExit) as done:  # typer's completion options exit once they printed
        main(["--show-completion", "bash"])
    assert done.value.code == 0
    script = capsys.readouterr().out
    assert "_TOMDISTILL_COMPLETE=complete_bash" in script
    assert "complete -o default -F _tomdistill_completion tomdistill" in script


def test_console_script_completes_commands_and_options() -> None:
    """The completion a shell asks the console script for (bash's protocol: COMP_WORDS, COMP_CWORD)."""
    def complete(words: str) -> list[str]:
        env = os.environ | {"_TOMDISTILL_COMPLETE": "complete_bash", "COMP_WORDS": words,
                            "COMP_CWORD": str(len(words.split()) - 1)}
        done = subprocess.run([sys.executable, "-m", "tomdistill"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("tomdistill runs de") == ["delete"]
    assert "--json" in complete("tomdistill runs list --")
