"""`tomdistill config show`: the run configuration as TOML, every field with its description."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config import config_toml, load_config


def config_show(
    config: Annotated[Path | None, typer.Argument(help="A config file to show with its defaults filled in.")] = None,
) -> None:
    """Print the configuration as TOML (the defaults, or CONFIG with defaults filled in), each field documented."""
    print(config_toml(load_config(config)))
