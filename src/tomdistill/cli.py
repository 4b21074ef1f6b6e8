"""The `tomdistill` command line: thin commands that parse options and call one library function.

User mistakes (a bad file, an unknown id) end in one line on stderr and exit code 2, never a
traceback; see `main`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from enum import Enum
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from . import __version__
from .config import load_config
from .errors import TomdistillError
from .scenarios import PROTOCOLS, Library, load_library, prompt_hash, render

app = typer.Typer(
    name="tomdistill",
    help="Distil a large LLM's strategic, theory-of-mind behaviour in social dilemmas into a small "
    "LLM, and measure how far the transfer got.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
scenarios_app = typer.Typer(
    help="Browse the scenario library: games x social contexts, grouped in splits.",
    no_args_is_help=True,
)
app.add_typer(scenarios_app, name="scenarios")

console = Console()

LibraryOption = Annotated[
    Optional[list[Path]],
    typer.Option(
        "--library",
        "-l",
        help="Extra library file (TOML) with your own games and contexts. Repeatable.",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="Config file (TOML); the library files it lists under scenarios.libraries are loaded too."),
]
ProtocolChoice = Enum("ProtocolChoice", {p: p for p in PROTOCOLS}, type=str)  # type: ignore[misc]
ProtocolOption = Annotated[
    ProtocolChoice,
    typer.Option(
        "--protocol",
        "-p",
        help="'answer': the decision alone; 'motivated': the decision, then a motivation.",
    ),
]


def _version(value: bool) -> None:
    if value:
        console.print(f"tomdistill {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Distil a large LLM's social-dilemma behaviour into a small LLM, and measure the transfer."""


def _library(library: list[Path] | None, config: Path | None) -> Library:
    files = list(load_config(config).scenarios.libraries) + list(library or [])
    return load_library(files)


@scenarios_app.command("list")
def scenarios_list(
    split: Annotated[
        Optional[str],
        typer.Option("--split", "-s", help="Only this split: train, heldout_context, heldout_game, heldout_pgg, or your own."),
    ] = None,
    library: LibraryOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one object per scenario).")] = False,
    ids_only: Annotated[bool, typer.Option("--ids", help="Print only the scenario ids, one per line.")] = False,
) -> None:
    """List scenarios (id = context/game) with their split and prompt hashes."""
    scenarios = _library(library, config).scenarios(split)
    if as_json:
        rows = [
            {
                "id": s.id,
                "split": s.split,
                "context": s.context.id,
                "game": s.game.id,
                "players": s.game.players,
                "answer": "number" if s.numeric else "choice",
                "prompt_hash": {p: prompt_hash(render(s, p)) for p in PROTOCOLS},
            }
            for s in scenarios
        ]
        print(json.dumps(rows, indent=2))
        return
    if ids_only:
        print("\n".join(s.id for s in scenarios))
        return
    table = Table(title=f"{len(scenarios)} scenarios", title_justify="left")
    table.add_column("id", no_wrap=True)
    for col in ("split", "game", "context", "answer"):
        table.add_column(col)
    for s in scenarios:
        table.add_row(s.id, s.split, s.game.name, s.context.name, "number" if s.numeric else "/".join(s.game.actions))
    console.print(table)


@scenarios_app.command("show")
def scenarios_show(
    scenario_id: Annotated[str, typer.Argument(metavar="ID", help="Scenario id, e.g. business/prisoners_dilemma.")],
    protocol: ProtocolOption = ProtocolChoice("answer"),
    library: LibraryOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the messages as JSON.")] = False,
) -> None:
    """Print the chat messages a model is sent for one scenario."""
    scenario = _library(library, config).scenario(scenario_id)
    messages = render(scenario, protocol.value)
    digest = prompt_hash(messages)
    if as_json:
        print(json.dumps({"id": scenario.id, "protocol": protocol.value, "prompt_hash": digest, "messages": messages}, indent=2))
        return
    console.print(f"[bold]{scenario.id}[/] ({scenario.split}, {scenario.game.name}, {scenario.context.name}) "
                  f"protocol={protocol.value} prompt_hash={digest}")
    for message in messages:
        console.print(Panel(message["content"], title=message["role"], title_align="left", expand=False))


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: runs the CLI, turning user errors into one line and exit code 2."""
    try:
        app(args=argv, prog_name="tomdistill")  # standalone: usage errors and --help exit by themselves
    except TomdistillError as exc:
        # One line, no markup parsing: messages quote user text that may hold [brackets].
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def entry_point() -> None:
    sys.exit(main())
