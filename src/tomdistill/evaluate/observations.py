"""Collect each role's answers per cell, from runs in the store or from a records file.

A records file (CSV or JSONL) has one row per sample with the columns `role` (teacher | base |
student), `split`, `context`, `game`, and either `answer` (C / D / an amount) or `text` (a raw
model reply, parsed here with tomdistill's parser for that game). Games must be known to the
library (for their actions and answer range); contexts may be any name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import quoted
from ..samples import current_samples, run_scenarios, sample_rate
from ..scenarios import Library
from ..scenarios.parse import Decision, game_answer_spec, parse_reply
from ..scenarios.spec import MatrixGame
from ..store import Run, Store
from .records import RecordsError, read_records
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


#: What an `answer` cell of a numeric game may hold: digits, one decimal point, an optional sign.
#: No "0_5" (Python's float() reads it as 5), no exponent, no words.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def _decision(path: Path, line: int, row: dict[str, str | None], game_id: str, game) -> Decision:
    """A row's decision: its `answer` (which must be valid) or else its parsed raw `text`.

    A row with both must not contradict itself: when the text reads as another decision than the
    answer, neither can be trusted, so the row is refused (a text the parser cannot read is left
    to the answer, which is what the column is for)."""
    answer, text = row.get("answer"), row.get("text")
    if answer in (None, ""):
        if text is None:
            raise RecordsError(path, line, "needs an 'answer' or a 'text' column")
        return parse_reply(text, game_answer_spec(game))
    decision = _answer(path, line, answer, game_id, game)
    said = parse_reply(text, game_answer_spec(game)) if text not in (None, "") else None
    if said is not None and said.valid and said.action != decision.action:
        read_as = f"{said.action:g}" if isinstance(said.action, float) else said.action
        raise RecordsError(path, line, f"answer {quoted(answer)} and text {quoted(text)} disagree (the text reads as "
                                       f"{read_as}); fix one of the two columns")
    return decision


def _answer(path: Path, line: int, answer: str, game_id: str, game) -> Decision:
    """The decision an `answer` cell states: exactly an action label or a plain number, valid in the game."""
    if _non_finite(answer):
        raise RecordsError(path, line, f"field 'answer' is {quoted(answer)}, not a finite number")
    decision = parse_reply(answer, game_answer_spec(game))
    if not decision.valid:
        raise RecordsError(path, line, f"answer {quoted(answer)} is not a valid answer in {game_id}: {decision.invalid_reason}")
    cell = answer.strip()
    if isinstance(game, MatrixGame):
        if cell.upper() not in {a.upper() for a in game.actions}:
            raise RecordsError(path, line, f"answer {quoted(answer)} must be just an action label of {game_id} "
                                           f"({', '.join(game.actions)}); a reply in words goes in the 'text' column")
    elif _PLAIN_NUMBER.fullmatch(cell) is None:
        raise RecordsError(path, line, f"answer {quoted(answer)} must be just a number such as 5 or 2.5; a reply in "
                                       "words goes in the 'text' column")
    return decision


def _non_finite(value: str) -> bool:
    try:
        return not math.isfinite(float(value))
    except ValueError:
        return False


def observations_from_records(path: Path, library: Library) -> RoleData:
    """Every role's observations from a CSV / JSONL records file; bad rows name their line."""
    games = {gid: src.entry for gid, src in library.games.items()}
    collected: dict[Role, dict[CellKey, list[float]]] = {r: {} for r in ROLES}
    invalid: dict[Role, dict[CellKey, int]] = {r: {} for r in ROLES}
    split_of: dict[tuple[str, str], str] = {}
    for number, row in read_records(path):
        role = (row.get("role") or "").strip()
        if role not in ROLES:
            raise RecordsError(path, number, f"unknown role {quoted(role)}; expected teacher, base or student")
        for column in ("split", "context", "game"):
            if not (row.get(column) or "").strip():
                raise RecordsError(path, number, f"'{column}' is empty")
        split, context, game_id = ((row[c] or "").strip() for c in ("split", "context", "game"))
        game = games.get(game_id)
        if game is None:
            raise RecordsError(path, number, f"unknown game {quoted(game_id)}; known: {', '.join(games)}")
        if split_of.setdefault((context, game_id), split) != split:
            raise RecordsError(path, number, f"cell {quoted(context, quote=False)}/{game_id} appears in splits "
                                             f"{quoted(split_of[(context, game_id)], quote=False)} and "
                                             f"{quoted(split, quote=False)}")
        decision = _decision(path, number, row, game_id, game)
        key = CellKey(split, context, game_id)
        values = collected[role].setdefault(key, [])
        if not decision.valid:
            invalid[role][key] = invalid[role].get(key, 0) + 1
            continue
        values.append(float(decision.action) if not isinstance(game, MatrixGame) else float(decision.action == game.cooperative_action))
    _check_comparable(path, collected)
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


def _check_comparable(path: Path, collected: dict[Role, dict[CellKey, list[float]]]) -> None:
    """Refuse a file that cannot give a single cell, rather than report nothing as if it were a result."""
    for role in ROLES:
        if not collected[role]:
            raise RecordsError(path, None, f"column 'role': no {role} rows; a records file needs teacher, base and student rows")
    shared = [k for k in collected["teacher"] if all(collected[r].get(k) for r in ROLES)]
    if not shared:
        raise RecordsError(path, None, "no cell (split, context, game) has valid answers from all of teacher, base and student")
