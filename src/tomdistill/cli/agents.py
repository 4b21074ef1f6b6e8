"""`tomdistill export` and `tomdistill play`: trained adapters as agents, and agents playing games."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ..errors import TomdistillError
from ..models.base import DEFAULT_MAX_NEW_TOKENS, SEED_MAX, SEED_MIN
from ..signals import stop_exit_code, stop_word
from .shared import (
    DEFAULT_SAMPLING,
    LibraryOption,
    ModeChoice,
    ProtocolChoice,
    StoreOption,
    console,
    json_option,
    print_json,
    print_stopped,
    scenario_library,
    stdout_to_stderr,
)

if TYPE_CHECKING:  # annotations only: the agents package loads when a command runs
    from ..agents.play import PlayResult
    from ..agents.strategies import Player
    from ..scenarios import Scenario
    from ..store import Store

#: The sampling an agent gets when none is given: agents.agent.default_sampling returns these
#: settings in either mode (a test checks it), so the help can quote them without importing agents.


def export(
    adapter: Annotated[Path, typer.Argument(metavar="ADAPTER_DIR", help="Adapter folder from `tomdistill train` or `tomdistill run` (its adapter/).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Agent folder to write: a new or empty folder, outside ADAPTER_DIR.")],
    merge: Annotated[bool, typer.Option("--merge", help="Fold the adapter into the base model: a standalone model folder that vLLM, llama.cpp (after GGUF conversion) and transformers load with nothing else.")] = False,
    eval_json: Annotated[Path | None, typer.Option("--eval", help="eval.json of this adapter, for the behaviour card (rates vs teacher and base). Default: the eval.json of the `tomdistill run` folder the adapter is in, if any.")] = None,
    student: Annotated[str | None, typer.Option(help="Base model spec; default: the one the adapter was trained on (train_config.json).")] = None,
    mode: Annotated[ModeChoice | None, typer.Option("--mode", help="How the agent decides by default: 'score' (exact action probabilities, the action drawn from them) or 'sample' (a generated reply, parsed; gives motivations). Default: the mode its evaluation used, else score.")] = None,
    protocol: Annotated[ProtocolChoice | None, typer.Option("--protocol", "-p", help="Prompt protocol; default: the one the training data used.")] = None,
    name: Annotated[str | None, typer.Option(help="Agent name (its label in populations); default: the folder name.")] = None,
) -> None:
    """Export a trained adapter as a self-describing agent folder (weights, chat template, protocol, behaviour card)."""
    from ..agents.export import export_agent

    with console.status("exporting" + (" (merging the adapter into its base model)" if merge else "")):
        result = export_agent(adapter, out, merge=merge, eval_json=eval_json, student=student,
                              mode=mode.value if mode else None, protocol=protocol.value if protocol else None, name=name)
    m = result.manifest
    size = sum(f.size for f in m.files.values()) / 1e6
    console.print(f"wrote agent '{m.name}' to {result.out} in {result.seconds:.1f} s: {m.kind} ({size:.1f} MB of weights) "
                  f"on {m.base.spec}; protocol {m.protocol}, {m.mode} mode", highlight=False)
    if result.behaviour:
        parts = [f"{k} {v['gap_closed']:.0f}%" for k, v in result.behaviour["splits"].items() if v["gap_closed"] is not None]
        console.print(f"behaviour card from {result.eval_json}: gap closed {', '.join(parts)}", highlight=False)
    else:
        console.print("no eval.json given or found: the agent has no behaviour card (--eval EVAL_JSON)")
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"load it with tomdistill.Agent.load({str(result.out)!r})", highlight=False, markup=False)


def play(
    scenario: Annotated[str, typer.Option("--scenario", "-s", help="Scenario id (a two-player matrix game), e.g. team/prisoners_dilemma; see `tomdistill scenarios list`.")],
    agents_arg: Annotated[list[str] | None, typer.Argument(metavar="AGENTS", help="More agents, as for --agents (so `--agents A B C` works).", show_default=False)] = None,
    agents: Annotated[list[str] | None, typer.Option("--agents", "-a", help="Agents, `--agents A B C`: an agent folder (`tomdistill export`), an adapter folder, a model spec (default:teacher, hf:..., openai:..., planted:default: the planted reference player), or a fixed strategy: always-C, always-D, tit-for-tat, random. Prefix LABEL= to name one (student=out/agent).", show_default=False)] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds per match; from round 2 on, each player is shown the earlier rounds of its match.")] = 1,
    pairs: Annotated[int, typer.Option(min=1, help="Matches per pair of agent types (self-play included).")] = 1,
    run: Annotated[str, typer.Option("--run", "-r", help="Play run name in the store; re-running the same command continues it.")] = "play",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Report folder (play.json, report.md, report.html, PNGs). Default: play-RUN.")] = None,
    seed: Annotated[int, typer.Option(min=SEED_MIN, max=SEED_MAX, help="Run seed; each move's seed derives from it, the match, the round and the seat.")] = 0,
    mode: Annotated[ModeChoice | None, typer.Option("--mode", help="Decision mode of agents given as model specs or adapter folders: 'sample' (generate + parse) or 'score' (probabilities, action drawn from them). Default: sample for specs, score for adapter folders. Exported agent folders decide as their agent.json says.")] = None,
    protocol: Annotated[ProtocolChoice | None, typer.Option("--protocol", "-p", help="Prompt protocol of agents given as model specs or adapter folders (default: answer). Exported agent folders use their own.")] = None,
    temperature: Annotated[float | None, typer.Option(min=0, help=f"Sampling temperature of agents given as model specs or adapter folders (score mode: 0 takes the likeliest action). Default: {DEFAULT_SAMPLING.temperature:g} in either mode.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(min=1, help="Longest reply in sample mode, for agents given as model specs or adapter folders. Default: " + ", ".join(f"{n} for {p}" for p, n in DEFAULT_MAX_NEW_TOKENS.items()) + ".")] = None,
    attempts: Annotated[int, typer.Option(min=1, help="Times an unreadable reply is asked again (new seed) before a random move is used and flagged.")] = 3,
    base_url: Annotated[list[str] | None, typer.Option(help="OpenAI-compatible server URL for openai: agents (key from $OPENAI_API_KEY); repeat it for several servers of one model.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Prompts per batch on local models.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, ... for local models. Default: cuda when available.")] = None,
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16 for local models.")] = "auto",
    store: StoreOption = None,
    library: LibraryOption = None,
    as_json: Annotated[bool, json_option(
        "run, store, scenario, game, context, actions, cooperate, payoffs, rounds, pairs, matches, seed, agents, moves, "
        "new_moves, elapsed_s, types, matrix, files (the report's paths by kind: json, markdown, html, one per plot).",
        shape="play.json's content, with the files written.")] = False,
) -> None:
    """Play agents and fixed strategies against each other: every pair of types, PAIRS matches of ROUNDS rounds.

    Every move is stored (resumable); the report gives the mean payoff per agent type, the payoff matrix between types and cooperation over rounds.

    Example: tomdistill play --agents out/agent default:teacher tit-for-tat --scenario team/prisoners_dilemma --rounds 5 --pairs 4
    """
    from ..agents.play import check_playable, load_players
    from ..agents.play_report import check_play_out, summarize
    from ..ask import model_options
    from ..store import Store

    refs = list(agents or []) + list(agents_arg or [])
    if not refs:
        raise TomdistillError("give the agents to play: --agents A B ... (agent folders, model specs or strategies)")
    chosen = scenario_library(library, None).scenario(scenario)
    check_playable(chosen)  # before any model loads
    out = out or Path(f"play-{run}")
    check_play_out(out)  # before the models load and the moves are played
    options = model_options(base_url=base_url, batch_size=batch_size, device=device, dtype=dtype)
    with stdout_to_stderr(as_json):  # the spinner and the progress bar
        with console.status(f"loading {len(refs)} agents"):
            players = load_players(refs, mode=mode.value if mode else None, protocol=protocol.value if protocol else None,
                                   temperature=temperature, max_new_tokens=max_new_tokens, options=options)
        try:
            with Store(store) as db:
                result = _play_rounds(db, players, chosen, run=run, rounds=rounds, pairs=pairs, seed=seed, attempts=attempts)
                summary = summarize(result, str(db.path))
        finally:
            for p in players.values():
                p.close()
    _write_play(summary, out, as_json=as_json)


def _write_play(summary: dict[str, Any], out: Path, *, as_json: bool) -> None:
    """Write the play report, then print its tables, or play.json's content with the files (--json)."""
    from ..agents.play_report import write_play_report

    paths = write_play_report(summary, out)
    if as_json:
        print_json(summary | {"files": {kind: str(path) for kind, path in paths.items()}})
        return
    _print_play(summary)
    console.print(f"{summary['new_moves']} new moves in {summary['elapsed_s']:.1f} s; report: {paths['html']}  "
                  f"data: {paths['json']}", highlight=False)


def _play_rounds(db: Store, players: dict[str, Player], scenario: Scenario, *, run: str, rounds: int, pairs: int,
                 seed: int, attempts: int) -> PlayResult:
    """Play (or continue) the run with a progress bar; Ctrl-C or SIGTERM stops with one line, rounds kept."""
    from ..agents.play import play as run_play
    from ..progress import progress_bar

    try:
        with progress_bar(f"{run}: match rounds", console) as progress:
            return run_play(db, players, scenario, run=run, rounds=rounds, pairs=pairs, seed=seed,
                            max_attempts=attempts, progress=progress)
    except KeyboardInterrupt as exc:
        print_stopped(f"[yellow]{stop_word(exc)}:[/] finished rounds are stored in {db.path}; "
                      "re-run the same command to continue.")
        raise typer.Exit(stop_exit_code(exc)) from None


def _print_play(summary: dict[str, Any]) -> None:
    """The play report's two tables: per agent type, and the payoff matrix between types."""

    def fmt(v: float | None, digits: int = 2) -> str:
        return "-" if v is None else f"{v:.{digits}f}"

    table = Table(title=f"{summary['run']}: {summary['scenario']}, {summary['rounds']} rounds x {summary['matches']} matches",
                  title_justify="left")
    table.add_column("agent")
    for col in ("payoff/round", "95% CI", f"% {summary['cooperate']}", "moves", "fallback"):
        table.add_column(col, justify="right")
    for label, t in summary["types"].items():
        ci = t["mean_payoff_ci"]
        table.add_row(label, fmt(t["mean_payoff"]), "-" if not ci else f"[{ci[0]:.2f}, {ci[1]:.2f}]",
                      fmt(t["cooperation"]["value"], 0), str(t["moves"]), str(t["fallback_moves"]))
    console.print(table)
    matrix = Table(title="payoff matrix: mean payoff per round to the row agent against the column agent", title_justify="left")
    matrix.add_column("row \\ column")
    for col in summary["types"]:
        matrix.add_column(col, justify="right")
    for row in summary["types"]:
        matrix.add_row(row, *(fmt(summary["matrix"][row][col]["mean_payoff"]) for col in summary["types"]))
    console.print(matrix)


def policy(
    source: Annotated[str, typer.Argument(metavar="AGENT", help="An agent folder (`tomdistill export`), an adapter folder, or a model spec (default:student, hf:..., planted:default, ...).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for policy.json and its card (new, or one tomdistill wrote).")],
    scenario: Annotated[list[str] | None, typer.Option("--scenario", "-s", help="Scenario id to cover (repeatable).")] = None,
    split: Annotated[list[str] | None, typer.Option("--split", help="Cover every scenario of this split (repeatable). Default: train, when no --scenario is given.")] = None,
    rounds: Annotated[int, typer.Option(min=1, max=6, help="Also cover every history before rounds 1..ROUNDS of the matrix games (4^(ROUNDS-1) histories at the last round), for repeated play.")] = 1,
    protocol: Annotated[ProtocolChoice | None, typer.Option("--protocol", "-p", help="Prompt protocol of model specs and adapter folders (default: answer); agent folders use their own.")] = None,
    temperature: Annotated[float | None, typer.Option(min=0, help=f"Temperature of the distributions, for model specs and adapter folders. Default: {DEFAULT_SAMPLING.temperature:g}.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, ... for local models.")] = None,
    library: LibraryOption = None,
    as_json: Annotated[bool, json_option("out, label, rows, scenarios, rounds, temperature, elapsed_s.")] = False,
) -> None:
    """Export an agent's exact decision distributions as a policy table: decisions without a model.

    Example: tomdistill policy out/agent --split train --rounds 3 --out policy/   (then play it, or PolicyTable.load)
    """
    import time

    from ..agents import Agent
    from ..agents.policy import build_policy_table, write_policy_table
    from ..ask import model_options

    lib = scenario_library(library, None)
    chosen = lib.select(scenario or (), split or (() if scenario else ["train"]))
    started = time.perf_counter()
    with stdout_to_stderr(as_json):
        agent = Agent.load(source, mode="score", protocol=protocol.value if protocol else None,
                           options=model_options(device=device))
        if temperature is not None:
            agent.sampling = agent.sampling.model_copy(update={"temperature": temperature})
        table = build_policy_table(agent, chosen, rounds=rounds)
        agent.close()
        write_policy_table(table, out)
    summary = {"out": str(out), "label": table.label, "rows": len(table), "scenarios": len(table.meta["scenarios"]),
               "rounds": rounds, "temperature": table.meta["temperature"], "elapsed_s": round(time.perf_counter() - started, 2)}
    if as_json:
        print_json(summary)
    else:
        console.print(f"wrote {summary['rows']} rows ({summary['scenarios']} scenarios) to {out}; "
                      f"load it with tomdistill.agents.policy.PolicyTable.load({str(out)!r})", highlight=False, markup=False)


def fidelity(
    teacher: Annotated[str, typer.Option("--teacher", "-t", help="The teacher: an agent or adapter folder, a policy table folder, or a model spec (planted:default: the planted reference player).")],
    candidates: Annotated[list[str], typer.Option("--candidate", "-c", help="A population to compare, LABEL=SOURCE (repeatable), e.g. student=out/adapter base=default:student.")],
    scenario: Annotated[str, typer.Option("--scenario", "-s", help="Scenario id of a two-player matrix game.")],
    opponents: Annotated[list[str] | None, typer.Option("--opponent", "-o", help="Opponent types every population meets (repeatable). Default: tit-for-tat, always-C, always-D, random.")] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds per match.")] = 5,
    pairs: Annotated[int, typer.Option(min=1, help="Matches per pair of types: the independent units of the intervals.")] = 10,
    run: Annotated[str, typer.Option("--run", "-r", help="Prefix of the play runs in the store (resumable).")] = "fidelity",
    seed: Annotated[int, typer.Option(min=SEED_MIN, max=SEED_MAX, help="Run seed: the same match seeds for every population.")] = 0,
    bootstrap: Annotated[int, typer.Option(min=100, help="Resamples of matches for the intervals.")] = 2000,
    mode: Annotated[ModeChoice | None, typer.Option("--mode", help="Decision mode of model specs and adapter folders (default: score for adapters, sample for specs).")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw the differences with their intervals to this PNG (a forest plot).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --plot file.")] = False,
    store: StoreOption = None,
    library: LibraryOption = None,
    as_json: Annotated[bool, json_option("scenario, rounds, pairs, seed, opponents, players, candidates (per label: "
                                         "quantities {name: teacher, candidate, difference, ci}, "
                                         "cross_play_payoff_vs_teacher, summary), plot (with --plot).")] = False,
) -> None:
    """Compare populations: each candidate in the teacher's place against the same opponents, quantity by quantity.

    Example: tomdistill fidelity --teacher planted:default -c student=run/adapter -c base=default:student --scenario team/prisoners_dilemma
    """
    from ..agents.fidelity import population_fidelity
    from ..agents.play import load_players
    from ..store import Store

    lib = scenario_library(library, None)
    chosen = lib.scenario(scenario)
    if plot is not None:
        from ..run_plots import check_plot_file

        check_plot_file(plot, force=force)  # before the tournaments, not after them
    with stdout_to_stderr(as_json):
        refs = opponents or ["tit-for-tat", "always-C", "always-D", "random"]
        mode_value = mode.value if mode else None
        teacher_player = next(iter(load_players([f"teacher={teacher}"], mode=mode_value).values()))
        population = load_players(candidates, mode=mode_value)
        rivals = load_players(refs)
        with Store(store) as db:
            report = population_fidelity(db, teacher_player, population, rivals, chosen, run=run, rounds=rounds,
                                         pairs=pairs, seed=seed, resamples=bootstrap)
        if plot is not None:
            from ..agents.fidelity_plot import plot_fidelity

            report["plot"] = str(plot_fidelity(report, plot))
    if as_json:
        print_json(report)
        return
    _print_fidelity(report)


def _print_fidelity(report: dict[str, Any]) -> None:
    for name, found in report["candidates"].items():
        table = Table(title=f"{name} vs teacher: {report['scenario']}, {report['rounds']} rounds, {report['pairs']} matches per pair")
        for column in ("quantity", "teacher", name, "difference [95% CI]"):
            table.add_column(column, justify="left" if column == "quantity" else "right")
        for quantity, q in found["quantities"].items():
            table.add_row(quantity, f"{q['teacher']:.3f}", f"{q['candidate']:.3f}" if q["candidate"] is not None else "-",
                          f"{q['difference']:+.3f} [{q['ci'][0]:+.3f}, {q['ci'][1]:+.3f}]")
        console.print(table)
        console.print(found["summary"], highlight=False, markup=False)
    if report.get("plot"):
        console.print(f"plot: {report['plot']}", highlight=False, markup=False)
