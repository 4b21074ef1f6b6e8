"""Policy tables: an agent's exact decision distribution per scenario (and per earlier-rounds
history of short repeated games), exported once so that a simulation draws decisions without any
model: one dictionary lookup and one uniform draw per decision. This is how a million agents run.

A table is built from an agent in score mode (`Agent.decide_many`, one batched forward pass per
scenario and history), so its probabilities are the ones the agent itself would draw from: with
the same seed, `PolicyTable.decide` returns the same action as `Agent.decide` (both use
`agent.draw`). It covers only what it was built for; a scenario or history outside it raises an
error that says the model is needed there. A table is also a `Player` for `tomdistill play`.

Folder layout: `policy.json` (format, agent, temperature, one row per scenario x history) and a
README.md card saying what it covers.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TomdistillError
from ..outdirs import replace_owned_dir
from ..scenarios import Scenario
from ..scenarios.custom import resolve_scenario
from ..scenarios.render import PastRound
from ..scenarios.spec import MatrixGame
from .agent import Agent, AgentDecision, draw, fresh_seed

FORMAT = 1
POLICY_FILE = "policy.json"
CARD = "README.md"
POLICY_KIND = "policy"  # the kind in the folder's .tomdistill marker (outdirs.py)


def history_key(history: Sequence[PastRound] | None) -> str:
    """'' for a first round; 'C/D,D/D' for (mine/theirs) in each earlier round. Payoffs follow
    from the game and the actions, so they are not part of the key."""
    return ",".join(f"{r.mine}/{r.theirs}" for r in history or ())


def histories_up_to(game: MatrixGame, rounds: int) -> list[list[PastRound]]:
    """Every history a player can have seen before rounds 1..`rounds` of a repeated matrix game."""
    out: list[list[PastRound]] = []
    profiles = [(mine, theirs) for mine in game.actions for theirs in game.actions]
    for length in range(rounds):
        for seq in itertools.product(profiles, repeat=length):
            out.append([PastRound(m, t, float(game.payoffs[m][t][0])) for m, t in seq])
    return out


@dataclass(frozen=True)
class PolicyRow:
    scenario: str
    history: str
    probabilities: dict[str, float]
    numeric: bool


class PolicyTable:
    """Exact decision distributions by (scenario id, history key), drawn from without a model."""

    def __init__(self, rows: Sequence[PolicyRow], meta: dict[str, Any]) -> None:
        self.meta = meta
        self.label = str(meta.get("label") or "policy")
        self._rows = {(r.scenario, r.history): r for r in rows}
        # Per row, once: the actions and their cumulative weights, for vectorised draws.
        self._cumulative = {k: (list(r.probabilities), np.cumsum(list(r.probabilities.values())))
                            for k, r in self._rows.items()}

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def rows(self) -> tuple[PolicyRow, ...]:
        return tuple(self._rows.values())

    def covers(self, scenario: str, history: Sequence[PastRound] | None = None) -> bool:
        return (scenario, history_key(history)) in self._rows

    def row(self, scenario: Scenario | str, history: Sequence[PastRound] | None = None) -> PolicyRow:
        sid = scenario if isinstance(scenario, str) else scenario.id
        found = self._rows.get((sid, history_key(history)))
        if found is None:
            where = f" after history '{history_key(history)}'" if history else ""
            raise TomdistillError(f"policy table '{self.label}' does not cover {sid}{where}; "
                                  "that decision needs the model (Agent.load)")
        return found

    def decide(self, scenario: Scenario | str, *, seed: int | None = None,
               history: Sequence[PastRound] | None = None) -> AgentDecision:
        return self.decide_many([scenario], seeds=[seed], histories=[history])[0]

    def decide_many(self, scenarios: Sequence[Scenario | str], *, seeds: Sequence[int | None] | None = None,
                    histories: Sequence[Sequence[PastRound] | None] | None = None) -> list[AgentDecision]:
        """The Agent interface: each decision drawn with its seed exactly as Agent.decide would."""
        n = len(scenarios)
        seeds_ = [fresh_seed() if s is None else int(s) for s in (seeds or [None] * n)]
        out = []
        for scenario, seed, history in zip(scenarios, seeds_, histories or [None] * n):
            row = self.row(scenario, history)
            picked = draw(row.probabilities, seed)
            action: str | float | None = float(picked) if picked is not None and row.numeric else picked
            out.append(AgentDecision(action=action, probabilities=dict(row.probabilities), seed=seed,
                                     invalid_reason=None if picked is not None else "no probability on any action"))
        return out

    def sample(self, scenario: str, n: int, rng: np.random.Generator,
               history: Sequence[PastRound] | None = None) -> list[str]:
        """`n` decisions at once for a population (numpy draws, no per-decision Python work but the list)."""
        self.row(scenario, history)  # the error for what the table does not cover
        actions, cumulative = self._cumulative[(scenario, history_key(history))]
        picks = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
        return [actions[i] for i in np.minimum(picks, len(actions) - 1)]

    def info(self) -> dict[str, Any]:
        return {"label": self.label, "kind": "policy", **{k: self.meta[k] for k in ("agent", "temperature") if k in self.meta}}

    def close(self) -> None:
        """Nothing to release: the Player interface asks for it."""

    @classmethod
    def load(cls, path: Path | str) -> PolicyTable:
        """A table from its folder (or its policy.json)."""
        from ..jsonfiles import load_json_file

        file = Path(path) / POLICY_FILE if Path(path).is_dir() else Path(path)
        data = load_json_file(file, "policy table")
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("rows"), list):
            raise TomdistillError(f"{file}: not a tomdistill policy table (format {FORMAT}); write one with "
                                  "`tomdistill policy`")
        try:
            rows = [PolicyRow(r["scenario"], r["history"], {str(k): float(v) for k, v in r["probabilities"].items()},
                              bool(r["numeric"])) for r in data["rows"]]
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise TomdistillError(f"{file}: a row is malformed ({exc}); write the table again") from None
        return cls(rows, {k: v for k, v in data.items() if k != "rows"})


def build_policy_table(agent: Agent, scenarios: Sequence[Scenario | str], *, rounds: int = 1) -> PolicyTable:
    """The agent's exact distribution for each scenario, and for each history before rounds
    1..`rounds` of matrix games (amount games are one-shot only), in one batched score call."""
    if agent.mode != "score":
        raise TomdistillError(f"{agent.label}: a policy table needs exact probabilities; load the agent in score mode")
    asked: list[tuple[Scenario, list[PastRound]]] = []
    for s in (resolve_scenario(x) for x in scenarios):
        for history in (histories_up_to(s.game, rounds) if isinstance(s.game, MatrixGame) else [[]]):
            asked.append((s, history))
    decisions = agent.decide_many([s for s, _ in asked], seeds=[0] * len(asked), histories=[h or None for _, h in asked])
    rows = [PolicyRow(s.id, history_key(h), d.probabilities or {}, s.numeric) for (s, h), d in zip(asked, decisions)]
    meta = {"format": FORMAT, "label": agent.label, "agent": agent.info(), "temperature": agent.sampling.temperature,
            "rounds": rounds, "scenarios": sorted({s.id for s, _ in asked})}
    return PolicyTable(rows, meta)


def write_policy_table(table: PolicyTable, out: Path) -> Path:
    """policy.json and its card in `out` (a folder tomdistill owns or a new one)."""
    replace_owned_dir(out, POLICY_KIND)
    rows = [{"scenario": r.scenario, "history": r.history, "probabilities": r.probabilities, "numeric": r.numeric}
            for r in table.rows]
    (out / POLICY_FILE).write_text(json.dumps({**table.meta, "rows": rows}, indent=1) + "\n")
    (out / CARD).write_text(_card(table))
    return out


def _card(table: PolicyTable) -> str:
    m = table.meta
    scenarios = m.get("scenarios", [])
    return f"""# Policy table: {table.label}

The exact decision distribution of `{m.get('agent', {}).get('source', table.label)}` (score mode,
temperature {m.get('temperature')}) for {len(scenarios)} scenarios, {len(table)} rows in all
({'one-shot only' if m.get('rounds', 1) <= 1 else f"every history before rounds 1-{m['rounds']} of the matrix games"}).

```python
from tomdistill.agents.policy import PolicyTable
table = PolicyTable.load("THIS_FOLDER")
table.decide("team/stag_hunt", seed=1)                       # like Agent.decide, without a model
table.sample("team/stag_hunt", 1_000_000, numpy.random.default_rng(0))   # a population at once
```

**What it covers:** exactly these scenarios as rendered by the tomdistill version that built it,
and (for repeated games) the histories above. Any other scenario, wording or longer history
needs the model: the table raises an error rather than guess. Scenarios:
{', '.join(scenarios)}.
"""
