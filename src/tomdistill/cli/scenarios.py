"""`tomdistill scenarios list` and `tomdistill scenarios show`: browse the scenario library."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from ..scenarios import PROTOCOLS, prompt_hash, render
from .shared import (
    ConfigOption,
    LibraryOption,
    ProtocolChoice,
    ProtocolOption,
    console,
    json_option,
    print_json,
    scenario_library,
)


def scenarios_list(
    split: Annotated[
        str | None,
        typer.Option("--split", "-s", help="Only this split: train, heldout_context, heldout_game, heldout_pgg, or your own."),
    ] = None,
    library: LibraryOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, json_option("id, split, context, game, players, answer (choice or number), prompt_hash "
                                         "({PROTOCOL: hash}).", shape="A list, one object per scenario.")] = False,
    ids_only: Annotated[bool, typer.Option("--ids", help="Print only the scenario ids, one per line.")] = False,
) -> None:
    """List scenarios (id = context/game) with their split and prompt hashes."""
    scenarios = scenario_library(library, config).scenarios(split)
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
        print_json(rows)
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


def scenarios_show(
    scenario_id: Annotated[str, typer.Argument(metavar="ID", help="Scenario id, e.g. business/prisoners_dilemma.")],
    protocol: ProtocolOption = ProtocolChoice("answer"),
    library: LibraryOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, json_option("id, protocol, prompt_hash, messages (role, content).")] = False,
) -> None:
    """Print the chat messages a model is sent for one scenario."""
    scenario = scenario_library(library, config).scenario(scenario_id)
    messages = render(scenario, protocol.value)
    digest = prompt_hash(messages)
    if as_json:
        print_json({"id": scenario.id, "protocol": protocol.value, "prompt_hash": digest, "messages": messages})
        return
    console.print(f"[bold]{scenario.id}[/] ({scenario.split}, {scenario.game.name}, {scenario.context.name}) "
                  f"protocol={protocol.value} prompt_hash={digest}")
    for message in messages:
        console.print(Panel(message["content"], title=message["role"], title_align="left", expand=False))
