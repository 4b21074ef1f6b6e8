"""`tomdistill config show`: the run configuration as TOML, every field with its description (or as JSON)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..config import Config, config_toml, load_config
from .shared import json_option, print_json


def config_show(
    config: Annotated[Path | None, typer.Argument(help="A config file to show with its defaults filled in.")] = None,
    as_json: Annotated[bool, json_option(f"{', '.join(Config.model_fields)} (each TOML table an object, under its "
                                         "TOML names; a field that is not set is null).",
                                         shape="The configuration the TOML shows.")] = False,
) -> None:
    """Print the configuration as TOML (the defaults, or CONFIG with defaults filled in), each field documented."""
    cfg = load_config(config)
    if as_json:
        print_json(cfg.model_dump(mode="json"))
        return
    # Written as it is (no extra newline), so that `tomdistill config show > examples/default.toml`
    # gives a file equal to config_toml(), which a test checks.
    sys.stdout.write(config_toml(cfg))
