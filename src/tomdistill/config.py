"""Typed configuration, read from TOML: the one place defaults live.

Every field carries a description, which `--help` texts and the documentation reuse. Later
stages (elicitation, training, evaluation, the end-to-end run) add their sections here.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError, describe_validation_error


class ScenariosConfig(BaseModel):
    """Which scenario data to use besides the built-in library."""

    model_config = ConfigDict(extra="forbid")
    libraries: list[Path] = Field(
        default_factory=list,
        description="Extra library files (TOML) with your own games and contexts; "
        "relative paths are read from the config file's folder.",
    )


class Config(BaseModel):
    """The whole tomdistill configuration."""

    model_config = ConfigDict(extra="forbid")
    scenarios: ScenariosConfig = Field(default_factory=ScenariosConfig)


def load_config(path: Path | str | None) -> Config:
    """The config in `path` (defaults where it is silent), or the defaults when `path` is None."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, f"not valid TOML: {exc}") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        field, message = describe_validation_error(exc)
        raise ConfigError(path, message, field=field) from None
    base = path.parent
    config.scenarios.libraries = [p if p.is_absolute() else base / p for p in config.scenarios.libraries]
    return config
