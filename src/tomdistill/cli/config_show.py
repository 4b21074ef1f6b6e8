"""`tomdistill config show`: the run configuration as TOML, every field with its description."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..config import config_toml, load_config


def config_show(
    config: Annotated[Path | None, typer.Argument(help="A config file to show with its defaults filled in.")] = None,
) -> None:
    """Print the configuration as TOML (the defaults, or CONFIG with defaults filled in), each field documented."""
    # Written as it is (no extra newline), so that `tomdistill config show > examples/default.toml`
    # gives a file equal to config_toml(), which a test checks.
    sys.stdout.write(config_toml(load_config(config)))
