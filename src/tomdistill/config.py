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


class TrainConfig(BaseModel):
    """LoRA supervised fine-tuning of the student. Defaults: measured for the 135M default student
    on 2 CPU cores (see the README); `preset = "paper"` gives the paper's recipe."""

    model_config = ConfigDict(extra="forbid")
    preset: str | None = Field(None, description="Start from a named preset (cpu, paper); fields set here override it.")
    r: int = Field(8, ge=1, description="LoRA rank.")
    alpha: int = Field(16, ge=1, description="LoRA alpha (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout.")
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"], description="Modules that get LoRA weights.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate (LoRA wants more than full fine-tuning).")
    epochs: float = Field(2.0, gt=0, description="Passes over the data.")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: run all epochs).")
    batch_size: int = Field(
        4, ge=1, description="Examples per device per step (4 was fastest per example on 2 CPU cores; 8 used twice the memory)."
    )
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps (effective batch = batch_size x this x devices).")
    max_length: int = Field(512, ge=16, description="Longest tokenised example (prompt + reply); longer ones are cut.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of steps with a linear learning-rate warm-up.")
    seed: int = Field(0, description="Seed for LoRA initialisation and data order.")
    bf16: bool | None = Field(
        None,
        description="bfloat16 weights and compute. Default: on for GPUs that support it, and on CPU (measured 1.5x "
        "faster than fp32 at batch 4 on 2 cores, 4.3 vs 5.8 GB); off on older GPUs.",
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory (slower; useful for big students on GPU).")
    packing: bool = Field(False, description="Pack several short examples into one sequence.")
    save_steps: int = Field(10, ge=1, description="Write a resumable checkpoint every this many steps.")
    logging_steps: int = Field(1, ge=1, description="Log the loss every this many steps.")


#: Named training recipes. `paper`: Lorè et al. (r 8, alpha 16, q/v, lr 5e-5, 3 epochs, batch 64).
TRAIN_PRESETS: dict[str, dict[str, object]] = {
    "cpu": {},
    "paper": {"r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"], "learning_rate": 5e-5, "epochs": 3,
              "batch_size": 8, "grad_accum": 8},
}


def resolve_train_config(config: TrainConfig, overrides: dict[str, object] | None = None) -> TrainConfig:
    """Preset values, then the fields the config sets, then command-line overrides."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    preset = overrides.get("preset", config.preset)
    if preset is not None and preset not in TRAIN_PRESETS:
        raise ConfigError("train config", f"unknown preset '{preset}'; known: {', '.join(TRAIN_PRESETS)}", field="preset")
    values = dict(TRAIN_PRESETS.get(preset or "cpu", {}))
    values |= config.model_dump(exclude_unset=True) | overrides
    values["preset"] = preset
    return TrainConfig.model_validate(values)


class Config(BaseModel):
    """The whole tomdistill configuration."""

    model_config = ConfigDict(extra="forbid")
    scenarios: ScenariosConfig = Field(default_factory=ScenariosConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)


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
