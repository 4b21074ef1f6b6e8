"""Load the scenario library: built-in data files plus the user's own, validated into scenarios.

Every scenario is one context paired with one game, identified as `context/game`. Any problem in
a file is raised as a single LibraryError naming the file, the entry and the field. Paraphrases
(`[[paraphrase]]`) are other wordings of training contexts' framings for training data only; they
never form scenarios.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import LibraryError, describe_validation_error
from ..tomlfiles import load_toml_file
from .builtin import builtin_library_dir
from .protocols import PROTOCOLS
from .render import TemplateRenderError, render, render_text
from .spec import (
    BUILTIN_SPLITS,
    GAME_KINDS,
    Context,
    Game,
    MatrixGame,
    Paraphrase,
    Scenario,
    Template,
    Variant,
)

#: Top-level array names a library file may hold, and the model that validates each entry.
_ENTRY_MODELS: dict[str, type[BaseModel]] = {
    "template": Template, "context": Context, "variant": Variant, "paraphrase": Paraphrase,
}
_SECTIONS = ("template", "game", "variant", "context", "paraphrase")
#: Built-in files, loaded in this order (templates first so games can refer to them).
_BUILTIN_FILES = ("templates.toml", "games.toml", "contexts.toml", "paraphrases.toml")
#: The only split whose contexts may be paraphrased: paraphrases feed training data alone.
_PARAPHRASE_SPLIT = "train"


@dataclass
class _Sourced:
    """An entry with the file it came from, so later cross-reference errors can name it."""

    entry: Any
    file: str


@dataclass(frozen=True)
class _Framing:
    """One paraphrase text with where it came from: its file and its place in its entry's `framings`."""

    text: str
    file: str
    number: int


@dataclass
class Library:
    """All games, contexts and templates, the scenarios they form, and training-only paraphrases."""

    templates: dict[str, _Sourced] = field(default_factory=dict)
    games: dict[str, _Sourced] = field(default_factory=dict)
    contexts: dict[str, _Sourced] = field(default_factory=dict)
    variants: list[_Sourced] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    _scenarios: list[Scenario] = field(default_factory=list)
    #: [[paraphrase]] entries as read; merged per context once every file is read.
    _paraphrase_entries: list[_Sourced] = field(default_factory=list)
    _paraphrases: dict[str, list[_Framing]] = field(default_factory=dict)

    def scenarios(self, split: str | None = None) -> list[Scenario]:
        """Scenarios in a stable order (split, context, game), optionally of one split only."""
        if split is not None and split not in self.splits():
            raise LibraryError(
                "scenario library",
                f"unknown split '{split}'; known splits: {', '.join(self.splits())}",
            )
        return [s for s in self._scenarios if split is None or s.split == split]

    def scenario(self, scenario_id: str) -> Scenario:
        """The scenario with this id (`context/game`), or an error suggesting close ids."""
        for s in self._scenarios:
            if s.id == scenario_id:
                return s
        ids = [s.id for s in self._scenarios]
        close = difflib.get_close_matches(scenario_id, ids, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `tomdistill scenarios list`"
        raise LibraryError("scenario library", f"unknown scenario '{scenario_id}'{hint}")

    def select(self, ids: Iterable[str] = (), splits: Iterable[str] = ()) -> list[Scenario]:
        """The scenarios named by id, then those of each split, each once in first-named order.

        A repeated `--scenario` or `--split` (or an id that is also in a named split) would
        otherwise ask, and pay for, the same scenario twice."""
        chosen: dict[str, Scenario] = {}
        for s in [self.scenario(i) for i in ids] + [s for split in splits for s in self.scenarios(split)]:
            chosen.setdefault(s.id, s)
        return list(chosen.values())

    def splits(self) -> list[str]:
        """Split names in use: built-in ones first, then user ones alphabetically."""
        used = {s.split for s in self._scenarios}
        return [s for s in BUILTIN_SPLITS if s in used] + sorted(used - set(BUILTIN_SPLITS))

    def paraphrases(self, context_id: str) -> list[str]:
        """Other wordings (Jinja2 texts, like `framing`) of a training context's framing, in file
        order; [] for a context without any. For training data only: never an evaluated prompt."""
        return [f.text for f in self._paraphrases.get(context_id, [])]


def id_matches(scenario_id: str, patterns: Iterable[str]) -> bool:
    """Whether a scenario id matches one of these shell-style patterns ('team/*', '*/stag_hunt')."""
    return any(fnmatch.fnmatchcase(scenario_id, p) for p in patterns)


def load_library(extra_files: Iterable[Path | str] = ()) -> Library:
    """The built-in library plus `extra_files` (user TOML files), validated and paired."""
    lib = Library()
    builtin = builtin_library_dir()
    for name in _BUILTIN_FILES:
        _add_file(lib, builtin / name)
    for path in extra_files:
        _add_file(lib, Path(path))
    _expand_variants(lib)
    _check_references(lib)
    _merge_paraphrases(lib)
    lib._scenarios = _pair(lib)
    _check_rendering(lib)
    _check_paraphrase_rendering(lib)
    return lib


def _entry_label(section: str, raw: Any, index: int) -> str:
    # A paraphrase has no id of its own; the context it rewords names it.
    key = "context" if section == "paraphrase" else "id"
    if isinstance(raw, dict) and isinstance(raw.get(key), str):
        return f"{section} '{raw[key]}'"
    return f"{section} #{index + 1}"


def _add_file(lib: Library, path: Path) -> None:
    data = load_toml_file(path, LibraryError)
    file = str(path)
    lib.files.append(file)
    if not data:
        raise LibraryError(path, "holds no entries; expected arrays like [[game]] or [[context]]")
    for section, entries in data.items():
        if section not in _SECTIONS:
            raise LibraryError(
                path, f"unknown section '{section}'; expected {', '.join(f'[[{s}]]' for s in _SECTIONS)}"
            )
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise LibraryError(path, f"'{section}' must be an array of tables, written [[{section}]]")
        for index, raw in enumerate(entries):
            label = _entry_label(section, raw, index)
            entry = _validate_entry(path, section, raw, label)
            if section == "variant":  # expanded once all files are read: it may name a later file's game
                lib.variants.append(_Sourced(entry, file))
                continue
            if section == "paraphrase":  # checked once all files are read: it may name a later file's context
                lib._paraphrase_entries.append(_Sourced(entry, file))
                continue
            registry = {"template": lib.templates, "game": lib.games, "context": lib.contexts}[section]
            if entry.id in registry:
                raise LibraryError(
                    path,
                    f"duplicate id; {section} '{entry.id}' is already defined in {registry[entry.id].file}",
                    entry=label,
                    field="id",
                )
            registry[entry.id] = _Sourced(entry, file)


def _validate_entry(path: Path, section: str, raw: dict[str, Any], label: str) -> BaseModel:
    if section == "game":
        kind = raw.get("kind", "matrix")
        model = GAME_KINDS.get(kind) if isinstance(kind, str) else None
        if model is None:
            raise LibraryError(
                path, f"unknown game kind {kind!r}; expected one of {sorted(GAME_KINDS)}", entry=label, field="kind"
            )
    else:
        model = _ENTRY_MODELS[section]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        loc, msg = describe_validation_error(exc)
        raise LibraryError(path, msg, entry=label, field=loc) from None


def _expand_variants(lib: Library) -> None:
    """Turn each variant into derived games (payoffs transformed), e.g. `prisoners_dilemma_x2`."""
    for src in lib.variants:
        variant: Variant = src.entry
        label = f"variant '{variant.id}'"
        for game_id in variant.games:
            base = lib.games.get(game_id)
            if base is None:
                raise LibraryError(src.file, f"unknown game '{game_id}'", entry=label, field="games")
            if not isinstance(base.entry, MatrixGame):
                raise LibraryError(
                    src.file, f"game '{game_id}' is not a matrix game; only payoffs of matrix games can be scaled",
                    entry=label, field="games",
                )
            new_id = f"{game_id}_{variant.id}"
            if new_id in lib.games:
                raise LibraryError(
                    src.file, f"derived game '{new_id}' clashes with a game in {lib.games[new_id].file}",
                    entry=label, field="id",
                )
            derived = base.entry.scaled(
                variant.scale,
                id=new_id,
                name=f"{base.entry.name} {variant.name}",
                split=variant.split,
                contexts=variant.contexts,
            )
            if not all(math.isfinite(v) for row in derived.payoffs.values() for pair in row.values() for v in pair):
                raise LibraryError(src.file, f"scaling game '{game_id}' by {variant.scale:g} gives payoffs too large "
                                   "to represent", entry=label, field="scale")
            lib.games[new_id] = _Sourced(derived, src.file)


def _check_references(lib: Library) -> None:
    for gid, src in lib.games.items():
        game = src.entry
        if game.template not in lib.templates:
            raise LibraryError(
                src.file, f"unknown template '{game.template}'; known: {', '.join(lib.templates)}",
                entry=f"game '{gid}'", field="template",
            )


def _merge_paraphrases(lib: Library) -> None:
    """Gather every [[paraphrase]] under its context, in file order, refusing unknown and
    non-training contexts and texts already given (or equal to the context's own framing)."""
    for src in lib._paraphrase_entries:
        para: Paraphrase = src.entry
        label = f"paraphrase '{para.context}'"
        ctx = lib.contexts.get(para.context)
        if ctx is None:
            raise LibraryError(src.file, f"unknown context '{para.context}'; known: {', '.join(lib.contexts)}",
                               entry=label, field="context")
        if ctx.entry.split != _PARAPHRASE_SPLIT:
            raise LibraryError(
                src.file, f"context '{para.context}' has split '{ctx.entry.split}'; paraphrases are for training "
                "contexts only: a paraphrase of a held-out context would leak it into training",
                entry=label, field="context",
            )
        merged = lib._paraphrases.setdefault(para.context, [])
        # Compared as rendered (stripped): a text written as a block string renders as the inline one.
        seen = {f.text.strip(): f for f in merged}
        for number, text in enumerate(para.framings, 1):
            key = text.strip()
            if key == ctx.entry.framing.strip():
                raise LibraryError(src.file, f"framing #{number} is the context's own framing, not a paraphrase",
                                   entry=label, field="framings")
            if key in seen:
                raise LibraryError(
                    src.file, f"framing #{number} repeats framing #{seen[key].number} of context '{para.context}' "
                    f"in {seen[key].file}", entry=label, field="framings",
                )
            seen[key] = _Framing(text, src.file, number)
            merged.append(seen[key])


def _contexts_for(lib: Library, game: Game, file: str) -> list[Context]:
    """Contexts a game pairs with: its own list or selectors, else every context with its player count."""
    all_contexts = [s.entry for s in lib.contexts.values()]
    if game.contexts is None:
        return [c for c in all_contexts if c.players == game.players]
    chosen: list[Context] = []
    for ref in game.contexts:
        if ref.startswith("split:"):
            found = [c for c in all_contexts if c.split == ref.removeprefix("split:")]
            if not found:
                raise LibraryError(file, f"no context has split '{ref[6:]}'", entry=f"game '{game.id}'", field="contexts")
        elif ref in lib.contexts:
            found = [lib.contexts[ref].entry]
        else:
            raise LibraryError(file, f"unknown context '{ref}'", entry=f"game '{game.id}'", field="contexts")
        for ctx in found:
            if ctx.players != game.players:
                raise LibraryError(
                    file,
                    f"context '{ctx.id}' is written for {ctx.players} players, the game has {game.players}",
                    entry=f"game '{game.id}'", field="contexts",
                )
            if ctx not in chosen:
                chosen.append(ctx)
    return chosen


def _pair(lib: Library) -> list[Scenario]:
    scenarios: list[Scenario] = []
    for src in lib.games.values():
        game = src.entry
        for ctx in _contexts_for(lib, game, src.file):
            split = ctx.split if game.split == "train" else game.split
            template = lib.templates[game.template].entry
            scenarios.append(Scenario(f"{ctx.id}/{game.id}", split, ctx, game, template))
    context_order = {cid: i for i, cid in enumerate(lib.contexts)}
    game_order = {gid: i for i, gid in enumerate(lib.games)}
    split_rank = {s: i for i, s in enumerate(BUILTIN_SPLITS)}
    scenarios.sort(
        key=lambda s: (split_rank.get(s.split, len(BUILTIN_SPLITS)), s.split, context_order[s.context.id], game_order[s.game.id])
    )
    return scenarios


def _check_rendering(lib: Library) -> None:
    """Render every scenario once so a template error surfaces at load time, naming the text at fault.

    Library texts are untrusted (files are shared): rendering runs in Jinja2's sandbox, and a
    refused construct is reported here like any other error in the file."""
    for scenario in lib._scenarios:
        for protocol in PROTOCOLS:
            try:
                render(scenario, protocol)
            except TemplateRenderError as exc:
                file, entry, field = _failing_text(lib, scenario, exc.part)
                raise LibraryError(
                    file, f"{exc} (while rendering scenario '{scenario.id}')", entry=entry, field=field,
                ) from None


def _check_paraphrase_rendering(lib: Library) -> None:
    """Render every paraphrase with the fields of each game its context pairs with, as the
    context's own framing is, so a bad text stops loading instead of a later training run."""
    for scenario in lib._scenarios:
        for framing in lib._paraphrases.get(scenario.context.id, []):
            try:
                render_text(framing.text, scenario.game.model_dump())
            except TemplateRenderError as exc:
                raise LibraryError(
                    framing.file, f"framing #{framing.number}: {exc} (while rendering scenario '{scenario.id}')",
                    entry=f"paraphrase '{scenario.context.id}'", field="framings",
                ) from None


def _failing_text(lib: Library, scenario: Scenario, part: str | None) -> tuple[str, str, str]:
    """(file, entry, field) of the text whose rendering failed."""
    if part == "framing":
        return lib.contexts[scenario.context.id].file, f"context '{scenario.context.id}'", "framing"
    if part == "text":
        return lib.templates[scenario.template.id].file, f"template '{scenario.template.id}'", "text"
    # A built-in protocol text failed on this game's fields (e.g. a game without `actions`).
    return lib.games[scenario.game.id].file, f"game '{scenario.game.id}'", "template"
