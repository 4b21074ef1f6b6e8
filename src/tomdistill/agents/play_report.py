"""A population run's report: payoffs per agent type, the payoff matrix between types, and
cooperation over rounds, as play.json, report.md, a self-contained report.html and PNG plots.

Intervals: a mean payoff's 95% t interval treats each player's match as one observation (its
rounds are not independent of each other); a cooperation share's Wilson interval counts moves,
so in repeated games it is narrower than it should be, and the report says so.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ..evaluate.figures import HEATMAP_CMAP, pyplot
from ..evaluate.formatting import format_value
from ..evaluate.pages import markdown_env, trusted, write_pages
from ..evaluate.stats import Observations
from ..outdirs import check_dir, claim_dir, holds_only
from ..scenarios.render import num
from ..store import Move
from .play import PlayResult

PLAY_JSON = "play.json"


def _mean_ci(values: list[float]) -> list[float] | None:
    if len(values) < 2:
        return None
    sem = float(stats.sem(values))
    mean = statistics.fmean(values)
    if sem == 0:
        return [mean, mean]
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=sem)
    return [float(low), float(high)]


def _share(moves: list[Move], cooperate: str) -> dict[str, Any]:
    """Share of cooperative moves in percent, with n and a Wilson interval over moves."""
    if not moves:
        return {"value": None, "n": 0, "low": None, "high": None}
    obs = Observations(numeric=False, values=np.array([float(m.action == cooperate) for m in moves]))
    low, high = obs.interval()
    return {"value": 100 * obs.rate(), "n": len(moves), "low": 100 * low, "high": 100 * high}


def summarize(result: PlayResult, store_path: str | None = None) -> dict[str, Any]:
    """Everything the report shows, as plain data (written as play.json)."""
    game = result.scenario.game
    cooperate = game.cooperative_action
    by_type: dict[str, list[Move]] = defaultdict(list)
    by_pair: dict[tuple[str, str], list[Move]] = defaultdict(list)
    for m in result.moves:
        by_type[m.agent].append(m)
        by_pair[(m.agent, m.opponent)].append(m)
    return {
        "run": result.play.name,
        "store": store_path,
        "scenario": result.scenario.id,
        "game": game.name,
        "context": result.scenario.context.name,
        "actions": list(game.actions),
        "cooperate": cooperate,
        "payoffs": {a: {b: list(game.payoffs[a][b]) for b in game.actions} for a in game.actions},
        "rounds": result.rounds,
        "pairs": result.pairs,
        "matches": len(result.matches),
        "seed": result.play.seed,
        "agents": result.play.agents,
        "moves": len(result.moves),
        "new_moves": result.new_moves,
        "elapsed_s": round(result.elapsed_s, 2),
        "types": {label: _type_summary(by_type.get(label, []), cooperate, result.rounds) for label in result.labels},
        "matrix": {row: {col: _pair_summary(by_pair.get((row, col), []), cooperate) for col in result.labels}
                   for row in result.labels},
    }


def _per_match_means(moves: list[Move]) -> list[float]:
    """Each player's mean payoff per round in each match: the independent units of a mean's interval."""
    units: dict[tuple[int, int], list[float]] = defaultdict(list)
    for m in moves:
        units[(m.match, m.slot)].append(m.payoff)
    return [statistics.fmean(v) for v in units.values()]


def _type_summary(moves: list[Move], cooperate: str, rounds: int) -> dict[str, Any]:
    """One agent type's row: its payoff (with an interval over matches), cooperation, and both per round."""
    units = _per_match_means(moves)
    return {
        "moves": len(moves),
        "player_matches": len(units),
        "mean_payoff": statistics.fmean(m.payoff for m in moves) if moves else None,
        "mean_payoff_ci": _mean_ci(units),
        "cooperation": _share(moves, cooperate),
        "cooperation_by_round": [
            _share([m for m in moves if m.round == r], cooperate)["value"] for r in range(1, rounds + 1)
        ],
        "payoff_by_round": [
            statistics.fmean(v) if (v := [m.payoff for m in moves if m.round == r]) else None
            for r in range(1, rounds + 1)
        ],
        "retried_moves": sum(m.attempts > 1 for m in moves),
        "fallback_moves": sum(m.fallback for m in moves),
    }


def _pair_summary(moves: list[Move], cooperate: str) -> dict[str, Any]:
    """One cell of the payoff matrix: the row type's moves against the column type."""
    return {
        "mean_payoff": statistics.fmean(m.payoff for m in moves) if moves else None,
        "cooperation": _share(moves, cooperate)["value"],
        "player_matches": len({(m.match, m.slot) for m in moves}),
    }


def payoff_matrix_plot(summary: dict[str, Any], path: Path) -> Path:
    plt = pyplot()
    labels = list(summary["types"])
    grid = np.array([[summary["matrix"][r][c]["mean_payoff"] if summary["matrix"][r][c]["mean_payoff"] is not None
                      else np.nan for c in labels] for r in labels], dtype=float)
    size = 1.1 * len(labels) + 2.2
    fig, ax = plt.subplots(figsize=(size + 1, size))
    values = [v for row in summary["payoffs"].values() for pair in row.values() for v in pair]
    image = ax.imshow(grid, cmap=HEATMAP_CMAP, vmin=min(values), vmax=max(values))
    for i in range(len(labels)):
        for j in range(len(labels)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=9,
                        color="white" if grid[i, j] < (min(values) + max(values)) / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("against (column)")
    ax.set_ylabel("payoff to (row)")
    fig.colorbar(image, ax=ax, shrink=0.8, label="mean payoff per round")
    ax.set_title(f"{summary['scenario']}: mean payoff per round", fontsize=10)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


_MARKERS = "osD^v"
_DASHES = ("-", "--", "-.", ":")


def cooperation_plot(summary: dict[str, Any], path: Path) -> Path:
    plt = pyplot()
    rounds = np.arange(1, summary["rounds"] + 1)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.5 * len(rounds) + 3), 3.2))
    # Types that play alike draw the same line (tit-for-tat and always-C against cooperators): each
    # later one gets another dash and a smaller marker, so the one drawn first still shows around it.
    for i, (label, t) in enumerate(summary["types"].items()):
        ys = np.array([np.nan if v is None else v for v in t["cooperation_by_round"]], dtype=float)
        ax.plot(rounds, ys, marker=_MARKERS[i % len(_MARKERS)], markersize=max(3.0, 9.0 - 1.5 * i),
                linestyle=_DASHES[i % len(_DASHES)], label=label)
    ax.set_ylim(-5, 105)
    ax.set_xticks(rounds)
    ax.set_xlabel("round")
    ax.set_ylabel(f"% {summary['cooperate']} (cooperate)")
    ax.set_title(f"{summary['scenario']}: cooperation over rounds, all opponents", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


_TEMPLATE = """# tomdistill population: {{ s.run }}

Scenario {{ s.scenario }} ({{ s.game }}, {{ s.context }}); {{ s.rounds }} round{{ 's' if s.rounds != 1 }} per match,
{{ s.pairs }} match{{ 'es' if s.pairs != 1 }} per pair of agent types (self-play included), {{ s.matches }} matches,
{{ s.moves }} moves; seed {{ s.seed }}.{% if s.store %} Every move is in {{ s.store }} (play run {{ s.run }}).{% endif %}


{% if s.rounds > 1 %}
From round 2 on, each player is told the earlier rounds of its match: its moves, the coplayer's, and its points.

{% endif %}

Points per round (you, coplayer):

| you \\ coplayer | {% for b in s.actions %}{{ b }} | {% endfor %}

|---|{% for b in s.actions %}---|{% endfor %}

{% for a in s.actions -%}
| {{ a }} | {% for b in s.actions %}{{ num(s.payoffs[a][b][0]) }}, {{ num(s.payoffs[a][b][1]) }} | {% endfor %}

{% endfor %}

## Agents

| agent | kind | source | decides by |
|---|:---|:---|:---|
{% for a in s.agents -%}
| {{ a.label }} | {{ a.kind }} | {{ a.source }} | {{ (a.mode ~ ' mode, ' ~ a.protocol ~ ' protocol, temperature ' ~ a.sampling.temperature) if a.kind == 'agent' else 'fixed rule' }} |
{% endfor %}

## Payoff per agent type

| agent | mean payoff per round | 95% CI (over matches) | % {{ s.cooperate }} | 95% CI | moves | asked again | random fallback |
|---|---|---|---|---|---|---|---|
{% for label, t in s.types.items() -%}
| {{ label }} | {{ fmt(t.mean_payoff, 2) }} | {{ ci(t.mean_payoff_ci, 2) }} | {{ fmt(t.cooperation.value, 1) }} | {{ ci([t.cooperation.low, t.cooperation.high] if t.cooperation.low is not none else none, 1) }} | {{ t.moves }} | {{ t.retried_moves }} | {{ t.fallback_moves }} |
{% endfor %}

"Asked again": moves whose first reply could not be read; "random fallback": moves still unreadable
after every attempt, drawn at random instead.{% if s.rounds > 1 %} The cooperation interval counts moves as if independent; within a match they are not, so it is too narrow.{% endif %}


## Payoff matrix

Mean payoff per round to the row agent when it meets the column agent (the diagonal is self-play).

| row \\ column | {% for c in s.types %}{{ c }} | {% endfor %}

|---|{% for c in s.types %}---|{% endfor %}

{% for r in s.types -%}
| **{{ r }}** | {% for c in s.types %}{{ fmt(s.matrix[r][c].mean_payoff, 2) }} ({{ fmt(s.matrix[r][c].cooperation, 0) }}% {{ s.cooperate }}) | {% endfor %}

{% endfor %}

![payoff matrix]({{ images.payoff_matrix }})

## Cooperation over rounds

% {{ s.cooperate }} per round, against all opponents.

| agent | {% for r in range(1, s.rounds + 1) %}round {{ r }} | {% endfor %}

|---|{% for r in range(1, s.rounds + 1) %}---|{% endfor %}

{% for label, t in s.types.items() -%}
| {{ label }} | {% for v in t.cooperation_by_round %}{{ fmt(v, 0) }} | {% endfor %}

{% endfor %}

![cooperation over rounds]({{ images.cooperation }})
"""


def _ci(ci: list[float] | None, digits: int) -> str:
    return "–" if not ci else f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def render_markdown(summary: dict[str, Any], images: dict[str, str]) -> str:
    # Labels, run names and sources are user text: markdown_env escapes every insertion but numbers.
    return markdown_env().from_string(_TEMPLATE).render(s=summary, images=images, fmt=trusted(format_value),
                                                        ci=trusted(_ci), num=trusted(num))


PLAY_KIND = "play"  # the kind in the .tomdistill marker of a play report folder


#: What write_play_report writes: an unmarked folder holding anything else is not taken as a report.
PLAY_FILES = (PLAY_JSON, "report.md", "report.html", "payoff_matrix.png", "cooperation_by_round.png")


def _is_play_folder(folder: Path) -> bool:
    """A play report written before markers existed: tomdistill's play.json and nothing but PLAY_FILES."""
    return (folder / PLAY_JSON).is_file() and holds_only(folder, PLAY_FILES)


def check_play_out(out: Path) -> None:
    """Refuse, before any model loads, a --out that is not new, empty or an earlier play report."""
    check_dir(out, PLAY_KIND, legacy=_is_play_folder)


def write_play_report(summary: dict[str, Any], out: Path) -> dict[str, Path]:
    """play.json, report.md, report.html and the PNGs in `out`; returns their paths.

    `out` must be new, empty, or an earlier play report (see check_play_out)."""
    claim_dir(out, PLAY_KIND, legacy=_is_play_folder)
    (out / PLAY_JSON).write_text(json.dumps(summary, indent=2))
    pngs = {"payoff_matrix": payoff_matrix_plot(summary, out / "payoff_matrix.png"),
            "cooperation": cooperation_plot(summary, out / "cooperation_by_round.png")}
    write_pages(out, lambda images: render_markdown(summary, images), pngs, title=f"tomdistill population {summary['run']}")
    return {"json": out / PLAY_JSON, "markdown": out / "report.md", "html": out / "report.html", **pngs}
