"""Collect each role's answers per cell, from runs in the store or from a records file.

A records file (CSV or JSONL) has one row per sample with the columns `role` (teacher | base |
student), `split`, `context`, `game`, and either `answer` (C / D / an amount) or `text` (a raw
model reply, parsed here with tomdistill's parser for that game). Games must be known to the
library (for their actions and answer range); contexts may be any name.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TomdistillError
from ..runs import current_samples, run_scenarios, sample_rate
from ..scenarios import Library
from ..scenarios.parse import game_answer_spec, parse_reply
from ..scenarios.spec import MatrixGame
from ..store import Run, Store
from .schema import ROLES, Role
from .stats import Observations


@dataclass(frozen=True)
class CellKey:
    """Where a cell sits in the report: its split, context and game."""

    split: str
    context: str
    game: str

    @property
    def scenario(self) -> str:
        return f"{self.context}/{self.game}"


#: role -> cell -> observations
RoleData = dict[Role, dict[CellKey, Observations]]


class RecordsError(TomdistillError):
    def __init__(self, path: Path, line: int | None, message: str) -> None:
        super().__init__(f"{path}{f': line {line}' if line else ''}: {message}")


def _scale(game) -> float:
    return 1.0 if isinstance(game, MatrixGame) else float(game.endowment)


def observations_from_run(store: Store, run: Run, library: Library) -> dict[CellKey, Observations]:
    """One role's observations from a stored run (sample or score mode), current wordings only."""
    out: dict[CellKey, Observations] = {}
    for scenario in run_scenarios(store, run, library):
        game = scenario.game
        samples = current_samples(store, run, scenario)
        obs = Observations(numeric=scenario.numeric, scale=_scale(game))
        if run.mode == "score":
            scored = [s for s in samples if s.valid and s.probs]
            if not scored:
                continue
            obs.distribution = scored[0].probs
            obs.score = sample_rate(scenario, scored[0])
        else:
            valid = [s for s in samples if s.valid]
            obs.invalid = len(samples) - len(valid)
            obs.values = np.array([sample_rate(scenario, s) for s in valid], dtype=float)
        out[CellKey(scenario.split, scenario.context.id, game.id)] = obs
    return out


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise RecordsError(path, None, "file not found")
    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise RecordsError(path, None, "the records file is empty")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordsError(path, number, f"not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise RecordsError(path, number, "each line must be a JSON object")
            rows.append((number, row))
        return rows
    if path.suffix.lower() != ".csv":
        raise RecordsError(path, None, "records must be a .csv or .jsonl file")
    reader = csv.DictReader(text.splitlines())
    missing = {"role", "split", "context", "game"} - set(reader.fieldnames or [])
    if missing:
        raise RecordsError(path, 1, f"missing columns: {', '.join(sorted(missing))}")
    return [(number, row) for number, row in enumerate(reader, start=2)]


def observations_from_records(path: Path, library: Library) -> RoleData:
    """Every role's observations from a CSV / JSONL records file; bad rows name their line."""
    games = {gid: src.entry for gid, src in library.games.items()}
    collected: dict[Role, dict[CellKey, list[float]]] = {r: {} for r in ROLES}
    invalid: dict[Role, dict[CellKey, int]] = {r: {} for r in ROLES}
    split_of: dict[tuple[str, str], str] = {}
    for number, row in _rows(path):
        role = str(row.get("role", "")).strip()
        if role not in ROLES:
            raise RecordsError(path, number, f"unknown role {role!r}; expected teacher, base or student")
        for column in ("split", "context", "game"):
            if not str(row.get(column) or "").strip():
                raise RecordsError(path, number, f"'{column}' is empty")
        split, context, game_id = (str(row[c]).strip() for c in ("split", "context", "game"))
        game = games.get(game_id)
        if game is None:
            raise RecordsError(path, number, f"unknown game {game_id!r}; known: {', '.join(games)}")
        if split_of.setdefault((context, game_id), split) != split:
            raise RecordsError(path, number, f"cell {context}/{game_id} appears in splits {split_of[(context, game_id)]} and {split}")
        answer, text = row.get("answer"), row.get("text")
        if answer not in (None, ""):
            decision = parse_reply(str(answer), game_answer_spec(game))
            if not decision.valid:
                raise RecordsError(path, number, f"answer {answer!r} is not a valid answer in {game_id}: {decision.invalid_reason}")
        elif text is not None:
            decision = parse_reply(str(text), game_answer_spec(game))
        else:
            raise RecordsError(path, number, "needs an 'answer' or a 'text' column")
        key = CellKey(split, context, game_id)
        if not decision.valid:
            invalid[role][key] = invalid[role].get(key, 0) + 1
            collected[role].setdefault(key, [])
            continue
        value = float(decision.action) if not isinstance(game, MatrixGame) else float(decision.action == game.cooperative_action)
        collected[role].setdefault(key, []).append(value)
    data: RoleData = {}
    for role in ROLES:
        data[role] = {}
        for key, values in collected[role].items():
            game = games[key.game]
            data[role][key] = Observations(
                numeric=not isinstance(game, MatrixGame), scale=_scale(game), values=np.array(values, dtype=float),
                invalid=invalid[role].get(key, 0),
            )
    return data
