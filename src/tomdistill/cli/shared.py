"""What every command of the CLI shares: option types, the console, and small helpers.

This module imports no other module of the CLI, so any command module can import it without an
import circle. It also imports nothing heavy: every command of the CLI loads it at start-up.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..config import load_config
from ..models.base import MODES, SamplingSettings
from ..scenarios import PROTOCOLS, Library, load_library
from ..store import DEFAULT_STORE, STORE_ENV

console = Console()

LibraryOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--library",
        "-l",
        help="Extra library file (TOML) with your own games and contexts. Repeatable.",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (TOML); the library files it lists under scenarios.libraries are loaded too."),
]
ProtocolChoice = Enum("ProtocolChoice", {p: p for p in PROTOCOLS}, type=str)  # type: ignore[misc]
ModeChoice = Enum("ModeChoice", {m: m for m in MODES}, type=str)  # type: ignore[misc]
PROTOCOL_HELP = ("'answer': the decision alone; 'motivated': the decision, then a motivation; 'reasoned': a motivation "
                 "first, then the decision (with --mode score: the decision's exact distribution after each of "
                 "--samples sampled motivations, averaged per scenario).")
ProtocolOption = Annotated[ProtocolChoice, typer.Option("--protocol", "-p", help=PROTOCOL_HELP)]
#: The sampling defaults the help texts quote (one object, so they cannot drift from the code's).
DEFAULT_SAMPLING = SamplingSettings()
StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help=f"SQLite store file. Default: ${STORE_ENV}, else ./{DEFAULT_STORE}.", show_default=False),
]


def scenario_library(library: list[Path] | None, config: Path | None) -> Library:
    """The built-in library plus the config's library files, then the --library files."""
    files = list(load_config(config).scenarios.libraries) + list(library or [])
    return load_library(files)


def print_stopped(message: str, *, highlight: bool = True) -> None:
    """One line on stderr after a Ctrl-C, a SIGTERM or a backend failure, saying what was kept.

    soft_wrap: the line is never cut or folded into a box, so logs keep it whole."""
    Console(stderr=True, soft_wrap=True).print(message, highlight=highlight)


def json_option(keys: str, *, shape: str = "One object.") -> Any:
    """The `--json` flag of a command. Its help names the JSON's `keys` (kept stable: scripts rely
    on them) after its `shape`, so every command documents its JSON the same way."""
    return typer.Option("--json", help="Print JSON on stdout instead of the usual output; progress and notes go to "
                                       f"stderr. {shape} Keys: {keys}")


def print_json(data: Any) -> None:
    """Print `data` as one JSON document on stdout: the one format every `--json` uses."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


@contextmanager
def stdout_to_stderr(enabled: bool) -> Iterator[None]:
    """While a `--json` command works (`enabled`), what would go to stdout goes to stderr instead:
    progress bars, spinners, stage logs, library chatter. stdout then holds the JSON alone, which
    `print_json` writes after this block. The console here and rich's own look up sys.stdout at
    each write, so they follow; output written by native code to file descriptor 1 does not."""
    if not enabled:
        yield
        return
    with redirect_stdout(sys.stderr):
        yield
