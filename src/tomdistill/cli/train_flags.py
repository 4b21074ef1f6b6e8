"""The `train` command's recipe flags, generated from the TrainConfig model: one flag per field.

Typer builds a command's options from its function signature, so the flags are added as extra
keyword parameters to that signature (`__signature__`, which typer reads through
`inspect.signature`), each annotated with a typer.Option built from the field: its type, its
`description` as the help, its bounds, and its real default as the shown default. This stays with
typer's own machinery (help panels, choices, ranges, one-line usage errors) instead of patching
click objects after typer built them, and a field added to TrainConfig gets its flag without
anyone copying it here.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic.fields import FieldInfo
from rich.markup import escape

from ..config import DEFAULT_PRESET, TRAIN_PRESETS, TrainConfig
from ..tracking import NO_TRACKER

#: Flag names that differ from the field's own (`--field-name`): kept as they were before the flags
#: were generated, so existing commands keep working. `--target-module` is singular because it is
#: repeated once per module.
FLAG_NAMES: dict[str, tuple[str, ...]] = {
    "r": ("--r",),
    "learning_rate": ("--lr", "--learning-rate"),
    "target_modules": ("--target-module",),
}

Command = TypeVar("Command", bound=Callable[..., Any])


def recipe_parameters() -> list[inspect.Parameter]:
    """One keyword parameter per TrainConfig field, defaulting to None ("not given on the command
    line"), so that the config file's [train] table and the preset still apply to the rest."""
    return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_annotation(name, field))
            for name, field in TrainConfig.model_fields.items()]


def recipe_flags(*, before: str) -> Callable[[Command], Command]:
    """Decorator: the command's `**recipe` catch-all replaced, in the signature typer reads, by the
    generated flags, placed before its parameter `before` (so help lists them in that place)."""

    def add_flags(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)  # typer needs the real types, not strings
        params: list[inspect.Parameter] = []
        for param in signature.parameters.values():
            if param.name == before:
                params.extend(recipe_parameters())
            if param.kind is not inspect.Parameter.VAR_KEYWORD:
                params.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY))
        command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return command

    return add_flags


def recipe_overrides(recipe: dict[str, Any]) -> dict[str, Any]:
    """The flag values as resolve_train_config takes them: choices as their plain strings."""
    return {name: value.value if isinstance(value, Enum) else value for name, value in recipe.items()}


def _annotation(name: str, field: FieldInfo) -> Any:
    """`Annotated[type | None, typer.Option(...)]` for one TrainConfig field."""
    kind = _flag_type(name, field.annotation)
    decls = _flag_names(name)
    if kind is bool:  # an on/off pair: leaving both out keeps the config's (or the automatic) choice
        decls = tuple(f"{d}/--no-{d.removeprefix('--')}" for d in decls)
    # pydantic keeps Field(ge=..., le=...) as metadata objects with a `ge` / `le` attribute.
    bounds: dict[str, Any] = {}
    for constraint in field.metadata:
        if getattr(constraint, "ge", None) is not None:
            bounds["min"] = constraint.ge
        if getattr(constraint, "le", None) is not None:
            bounds["max"] = constraint.le
    # gt / lt bounds have no typer equivalent: TrainConfig refuses those values, naming the field.
    help_text = field.description or ""
    if name == "preset":
        help_text += " " + _describe_presets()
    if kind == list[str]:
        help_text += " Repeatable."
    # The app renders help as rich markup; descriptions are plain text written for the TOML file
    # and may hold brackets ("[train] table").
    help_text = escape(help_text)
    shown = _shown_default(name, field)
    option = typer.Option(*decls, help=help_text, show_default=shown if shown is not None else False, **bounds)
    return Annotated[kind | None, option]  # type: ignore[valid-type]


def _flag_type(name: str, annotation: Any) -> Any:
    """The type of a field's flag: the annotation without None, a Literal as a choice (Enum)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        if len(args) != 1:
            raise TypeError(f"TrainConfig.{name}: no command-line flag for the union {annotation}")
        return _flag_type(name, args[0])
    if typing.get_origin(annotation) is Literal:
        return Enum(f"{name.title().replace('_', '')}Choice", {str(a): str(a) for a in args}, type=str)
    if annotation in (bool, int, float, str) or annotation == list[str]:
        return annotation
    raise TypeError(f"TrainConfig.{name}: no command-line flag for the type {annotation}")


def _shown_default(name: str, field: FieldInfo) -> str | None:
    """The built-in default as the help shows it, with what a preset sets instead; None: not shown
    (a field whose default is "decide automatically" says so in its description)."""
    if name == "preset":
        return DEFAULT_PRESET
    # What a run without --preset gets: the default preset's value, else the field's default.
    default = TRAIN_PRESETS[DEFAULT_PRESET].get(name, field.get_default(call_default_factory=True))
    if default is None:
        return None
    shown = _format(default, flag=_flag_names(name)[0])
    others = [f"{preset} preset: {_format(values[name], flag=_flag_names(name)[0])}"
              for preset, values in TRAIN_PRESETS.items() if preset != DEFAULT_PRESET and name in values]
    return "; ".join([shown, *others])


def _flag_names(name: str) -> tuple[str, ...]:
    """The field's flag names: `--field-name`, unless FLAG_NAMES keeps an older one."""
    return FLAG_NAMES.get(name, (f"--{name.replace('_', '-')}",))


def _format(value: Any, *, flag: str = "") -> str:
    if isinstance(value, bool):  # as typer shows an on/off pair's default: the flag that is in effect
        return flag.removeprefix("--") if value else "no-" + flag.removeprefix("--")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):  # an empty list (no tracker) shows as the word that asks for it
        return ", ".join(map(str, value)) or NO_TRACKER
    return str(value)


def _describe_presets() -> str:
    """What each named preset changes, from TRAIN_PRESETS itself."""
    parts = [f"{preset}: " + (", ".join(f"{k} {_format(v)}" for k, v in values.items()) or "the defaults shown")
             for preset, values in TRAIN_PRESETS.items()]
    return "Presets: " + "; ".join(parts) + "."
