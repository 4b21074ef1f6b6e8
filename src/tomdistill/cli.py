"""The `tomdistill` command line: thin commands that parse options and call one library function.

User mistakes (a bad file, an unknown id) end in one line on stderr and exit code 2, never a
traceback; see `main`.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from .config import DECISION_LOSSES, load_config
from .elicit import MODES
from .errors import TomdistillError
from .models.base import DEFAULT_MAX_NEW_TOKENS, SEED_MAX, SEED_MIN, BackendError, SamplingSettings
from .pipeline import STAGES
from .progress import progress_bar
from .scenarios import PROTOCOLS, Library, load_library, prompt_hash, render
from .signals import stop_exit_code, stop_word
from .versions import __version__

app = typer.Typer(
    name="tomdistill",
    help="Distil a large LLM's strategic, theory-of-mind behaviour in social dilemmas into a small "
    "LLM, and measure how far the transfer got.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
scenarios_app = typer.Typer(
    help="Browse the scenario library: games x social contexts, grouped in splits.",
    no_args_is_help=True,
)
app.add_typer(scenarios_app, name="scenarios")
runs_app = typer.Typer(help="Look at stored runs and export their samples.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

console = Console()

LibraryOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--library",
        "-l",
        help="Extra library file (TOML) with your own games and contexts. Repeatable.",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (TOML); the library files it lists under scenarios.libraries are loaded too."),
]
ProtocolChoice = Enum("ProtocolChoice", {p: p for p in PROTOCOLS}, type=str)  # type: ignore[misc]
DecisionLossChoice = Enum("DecisionLossChoice", {d: d for d in DECISION_LOSSES}, type=str)  # type: ignore[misc]
ProtocolOption = Annotated[
    ProtocolChoice,
    typer.Option(
        "--protocol",
        "-p",
        help="'answer': the decision alone; 'motivated': the decision, then a motivation; 'reasoned': a motivation "
             "first, then the decision (with --mode score: the decision's exact distribution after each of "
             "--samples sampled motivations, averaged per scenario).",
    ),
]


def _version(value: bool) -> None:
    if value:
        console.print(f"tomdistill {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Distil a large LLM's social-dilemma behaviour into a small LLM, and measure the transfer."""


def _library(library: list[Path] | None, config: Path | None) -> Library:
    files = list(load_config(config).scenarios.libraries) + list(library or [])
    return load_library(files)


@scenarios_app.command("list")
def scenarios_list(
    split: Annotated[
        str | None,
        typer.Option("--split", "-s", help="Only this split: train, heldout_context, heldout_game, heldout_pgg, or your own."),
    ] = None,
    library: LibraryOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one object per scenario).")] = False,
    ids_only: Annotated[bool, typer.Option("--ids", help="Print only the scenario ids, one per line.")] = False,
) -> None:
    """List scenarios (id = context/game) with their split and prompt hashes."""
    scenarios = _library(library, config).scenarios(split)
    if as_json:
        rows = [
            {
                "id": s.id,
                "split": s.split,
                "context": s.context.id,
                "game": s.game.id,
                "players": s.game.players,
                "answer": "number" if s.numeric else "choice",
                "prompt_hash": {p: prompt_hash(render(s, p)) for p in PROTOCOLS},
            }
            for s in scenarios
        ]
        print(json.dumps(rows, indent=2))
        return
    if ids_only:
        print("\n".join(s.id for s in scenarios))
        return
    table = Table(title=f"{len(scenarios)} scenarios", title_justify="left")
    table.add_column("id", no_wrap=True)
    for col in ("split", "game", "context", "answer"):
        table.add_column(col)
    for s in scenarios:
        table.add_row(s.id, s.split, s.game.name, s.context.name, "number" if s.numeric else "/".join(s.game.actions))
    console.print(table)


@scenarios_app.command("show")
def scenarios_show(
    scenario_id: Annotated[str, typer.Argument(metavar="ID", help="Scenario id, e.g. business/prisoners_dilemma.")],
    protocol: ProtocolOption = ProtocolChoice("answer"),
    library: LibraryOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the messages as JSON.")] = False,
) -> None:
    """Print the chat messages a model is sent for one scenario."""
    scenario = _library(library, config).scenario(scenario_id)
    messages = render(scenario, protocol.value)
    digest = prompt_hash(messages)
    if as_json:
        print(json.dumps({"id": scenario.id, "protocol": protocol.value, "prompt_hash": digest, "messages": messages}, indent=2))
        return
    console.print(f"[bold]{scenario.id}[/] ({scenario.split}, {scenario.game.name}, {scenario.context.name}) "
                  f"protocol={protocol.value} prompt_hash={digest}")
    for message in messages:
        console.print(Panel(message["content"], title=message["role"], title_align="left", expand=False))


StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="SQLite store file. Default: $TOMDISTILL_STORE, else ./tomdistill.db.", show_default=False),
]
ModeChoice = Enum("ModeChoice", {m: m for m in MODES}, type=str)  # type: ignore[misc]
_DEFAULT_SAMPLING = SamplingSettings()


@app.command()
def elicit(
    model: Annotated[str, typer.Option("--model", "-m", help="Model spec: default:teacher, default:student, hf:FOLDER_OR_ID, openai:MODEL, or planted:default (the planted reference teacher: a known, game-aware behaviour used as a positive control, not a real teacher).")],
    run: Annotated[str, typer.Option("--run", "-r", help="Run name; re-running the same command continues it.")],
    split: Annotated[list[str] | None, typer.Option("--split", "-s", help="Scenarios of this split (repeatable). Default: train.")] = None,
    scenario: Annotated[list[str] | None, typer.Option("--scenario", help="One scenario id (repeatable); with --split, both are asked. Each scenario is asked once however often it is named.")] = None,
    protocol: ProtocolOption = ProtocolChoice("answer"),
    mode: Annotated[ModeChoice, typer.Option("--mode", help="'sample': N sampled replies per scenario; 'score': exact action probabilities from one forward pass (hf backends, or servers with top_logprobs).")] = ModeChoice("sample"),
    samples: Annotated[int, typer.Option("--samples", "-n", min=1, help="Replies per scenario in sample mode (the paper used 300); sampled motivations per scenario in score mode with --protocol reasoned.")] = 10,
    temperature: Annotated[float, typer.Option(min=0, help="Sampling temperature; 0 is greedy.")] = _DEFAULT_SAMPLING.temperature,
    top_p: Annotated[float, typer.Option("--top-p", min=0, max=1, help="Nucleus sampling threshold.")] = _DEFAULT_SAMPLING.top_p,
    max_new_tokens: Annotated[int | None, typer.Option(min=1, help="Longest reply in tokens. Default: " + ", ".join(f"{n} for {p}" for p, n in DEFAULT_MAX_NEW_TOKENS.items()) + ".")] = None,
    seed: Annotated[int, typer.Option(min=SEED_MIN, max=SEED_MAX, help="Run seed; each sample's seed derives from it, the scenario and the index.")] = 0,
    adapter: Annotated[Path | None, typer.Option(help="PEFT LoRA adapter folder to put on an hf/default model.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL (openai: models). Default: $OPENAI_BASE_URL. The key is read from $OPENAI_API_KEY only.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Prompts per batch on hf backends (default 16 on CPU, 32 on GPU).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at once (openai: models).")] = 8,
    max_retries: Annotated[int, typer.Option(min=0, help="Retries per request on 429/5xx/timeouts/garbled replies before the run stops (openai: models).")] = 6,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds before one request times out (openai: models).")] = 120.0,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... Default: cuda when available.")] = None,
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16 (hf backends). auto: float32 in score mode (exact to 0.005); in sample mode bf16 on GPUs and on CPUs with AVX512-BF16/AMX, else fp32.")] = "auto",
    store: StoreOption = None,
    library: LibraryOption = None,
    config: ConfigOption = None,
) -> None:
    """Ask a model for decisions on scenarios and store every reply (resumable)."""
    from .elicit import elicit as run_elicit
    from .models.registry import ModelOptions, load_model, parse_spec
    from .store import Store, StoreFull

    parse_spec(model)  # a bad spec fails before anything is loaded or written
    lib = _library(library, config)
    chosen = lib.select(scenario or (), split or (() if scenario else ["train"]))
    settings = SamplingSettings(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens)
    options = ModelOptions(adapter=adapter, base_url=base_url, device=device, batch_size=batch_size,
                           concurrency=concurrency, timeout_s=timeout, max_retries=max_retries, dtype=dtype)
    with console.status(f"loading {model}" + (f" + {adapter}" if adapter else "")):
        backend = load_model(model, options.for_mode(mode.value))
    with Store(store) as db:
        try:
            with progress_bar(f"{run} ({mode.value})", console) as progress:
                summary = run_elicit(
                    db, backend, chosen, run_name=run, protocol=protocol.value, mode=mode.value, samples=samples,
                    settings=settings, seed=seed, adapter=str(adapter) if adapter else None, progress=progress,
                )
        except KeyboardInterrupt as exc:
            _stopped(db, run, stop_word(exc))
            raise typer.Exit(stop_exit_code(exc)) from None
        except BackendError as exc:
            _stopped(db, run, str(exc))
            raise typer.Exit(1) from None
        except StoreFull as exc:  # one line, exit 2: freeing space is the user's fix
            raise TomdistillError(f"{exc}; {_stored(db, run)} samples of run '{run}' are stored in it; "
                                  "free some space and re-run the same command to continue") from None
        finally:
            backend.close()
    _print_summary(summary)


def _stored(db, run: str) -> int:
    """Samples of run `run` in the store (0 when the run was not created yet)."""
    return db.count(db.require_run(run).id) if db.get_run(run) else 0


def _stopped(db, run: str, why: str) -> None:
    stored = _stored(db, run)
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(  # one line; user text (run, path, server message) escaped
        "[yellow]stopped:[/] " + escape(f"{' '.join(why.split())}; {stored} samples of run '{run}' are stored in "
                                        f"{db.path}; re-run the same command to continue where it stopped."),
        highlight=False,
    )


def _print_summary(summary) -> None:
    table = Table(title=f"run {summary.run.name}: {summary.run.model} ({summary.run.protocol}, {summary.run.mode})",
                  title_justify="left")
    score = summary.run.mode == "score"
    for col, just in (("scenario", "left"), ("split", "left"), ("n", "right"),
                      ("mass on answers" if score else "valid", "right"), ("rate", "right")):
        table.add_column(col, justify=just)
    for s in summary.scenarios:
        rate = "-" if s.rate is None else (f"${s.rate:.2f}" if s.numeric else f"{s.rate:.3f}")
        valid = f"{s.valid_mass:.3f}" if score and s.valid_mass is not None else f"{100 * s.valid_share:.0f}%"
        table.add_row(s.scenario, s.split, str(s.n), valid, rate)
    console.print(table)
    console.print(
        f"{summary.new} new of {summary.requested} requested in {summary.elapsed_s:.1f} s; "
        f"rate = share of C (P(C) in score mode), or mean amount for the donation game"
        + (f"; {summary.retries} retries ({', '.join(f'{k}: {v}' for k, v in summary.retry_reasons.items())})"
           if summary.retries else "")
    )


@runs_app.command("list")
def runs_list(store: StoreOption = None) -> None:
    """List the runs in the store with their model, protocol, mode and sample count."""
    from .store import Store

    with Store(store, readonly=True) as db:
        table = Table(title=f"runs in {db.path}", title_justify="left")
        for col in ("name", "model", "adapter", "protocol", "mode", "samples", "created"):
            table.add_column(col)
        for r in db.runs():
            table.add_row(r.name, r.model, r.adapter or "", r.protocol, r.mode, str(db.count(r.id)), r.created)
        console.print(table)


@runs_app.command("show")
def runs_show(
    name: Annotated[str, typer.Argument(help="Run name.")],
    store: StoreOption = None,
    library: LibraryOption = None,
    config: ConfigOption = None,
    plot: Annotated[Path | None, typer.Option("--plot", metavar="FILE.png", help="Also draw the rates as context x game heatmaps, one panel per split (numeric scenarios left out).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --plot file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: the run's settings and one object per scenario.")] = False,
) -> None:
    """Per-scenario counts, valid share and rates of one run, plus its settings."""
    from dataclasses import asdict

    from .elicit import ElicitSummary, summarize
    from .samples import run_scenarios
    from .store import Store

    if plot is not None:  # the plotting modules load scipy and matplotlib: only when asked to draw
        from .run_plots import check_plot_file

        check_plot_file(plot, force=force)  # before any work: never overwrite a file tomdistill did not write
    lib = _library(library, config)
    with Store(store, readonly=True) as db:
        run = db.require_run(name)
        scenarios = run_scenarios(db, run, lib)
        rows = summarize(db, run, scenarios)
    if plot is not None:
        from .run_plots import plot_run_rates

        plot_run_rates(run, scenarios, rows, plot)  # first: a run with nothing to draw fails before any output
    if as_json:
        ids = {s.id: s for s in scenarios}
        print(json.dumps({
            "run": {k: v for k, v in asdict(run).items() if k != "id"},  # id: the store's row number, not the run's
            "scenarios": [asdict(r) | {"context": ids[r.scenario].context.id, "game": ids[r.scenario].game.id,
                                       "valid_share": r.valid_share} for r in rows],
        }, indent=2))
    else:
        console.print(f"model {run.model}  adapter {run.adapter or '-'}  settings {json.dumps(run.settings)}  seed {run.seed}")
        if served := run.model_info.get("served_models"):  # names a server sent: shown as plain text
            console.print(f"served by {', '.join(map(str, served))}", markup=False, highlight=False)
        _print_summary(ElicitSummary(run, sum(r.n for r in rows), 0, 0.0, rows))
    if plot is not None:
        from .run_plots import numeric_rows

        note = Console(stderr=True, soft_wrap=True) if as_json else console  # stdout holds only the JSON
        note.print(f"wrote {plot}", markup=False, highlight=False)
        if left := numeric_rows(rows):
            note.print(f"left out of the plot (a mean amount, not a share of C): {', '.join(r.scenario for r in left)}",
                       markup=False, highlight=False)


@runs_app.command("export")
def runs_export(
    name: Annotated[str, typer.Argument(help="Run name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="FILE.jsonl, FILE.parquet, or a folder for a datasets.Dataset.")],
    store: StoreOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing FILE.jsonl / FILE.parquet (never a folder).")] = False,
) -> None:
    """Export every sample of a run (raw text, parse, seed, timing) to JSONL, Parquet or a datasets folder."""
    from .run_export import export_run
    from .store import Store

    with Store(store, readonly=True) as db:
        path = export_run(db, db.require_run(name), out, force=force)
    console.print(f"wrote {path}")


@app.command()
def reparse(
    name: Annotated[str, typer.Argument(metavar="RUN", help="Run name.")],
    store: StoreOption = None,
    library: LibraryOption = None,
    config: ConfigOption = None,
) -> None:
    """Parse a run's stored raw replies again with the current parser; no model is called."""
    from .run_reparse import reparse_run
    from .store import Store

    lib = _library(library, config)
    with Store(store) as db:
        result = reparse_run(db, db.require_run(name), lib)
    console.print(
        f"run {result.run}: {result.samples} samples re-parsed with parser v{result.parser_version}; "
        f"{result.changed} changed; valid {result.valid_before} -> {result.valid_after}"
    )
    if result.stale:
        console.print(f"{result.stale} samples answer an older wording of {result.stale_scenarios} scenarios; "
                      "left as they are")


@app.command()
def dataset(
    from_run: Annotated[str, typer.Option("--from-run", help="Teacher run (sample mode, ideally --protocol motivated).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for train.jsonl, the datasets folder and manifest.json.")],
    split: Annotated[list[str] | None, typer.Option("--split", "-s", help="Splits whose scenarios go in (repeatable). Default: train only.")] = None,
    prompt_protocol: Annotated[ProtocolChoice, typer.Option("--prompt-protocol", help="Protocol of the prompts in the examples: 'answer' (default), as the student is evaluated.")] = ProtocolChoice("answer"),
    require_motivation: Annotated[bool, typer.Option(help="Leave out teacher answers without a motivation.")] = False,
    targets: Annotated[str | None, typer.Option("--targets", help="Score run of the same teacher (elicit --mode score): its exact P(action) per scenario become the soft-label targets. Default: the --from-run answers per scenario, smoothed.")] = None,
    store: StoreOption = None,
    library: LibraryOption = None,
    config: ConfigOption = None,
) -> None:
    """Build the SFT dataset from a teacher run: prompt as the student sees it -> 'C\\nMotivation: ...'."""
    from .dataset import build_dataset
    from .store import Store

    lib = _library(library, config)
    with Store(store, readonly=True) as db:
        manifest = build_dataset(db, db.require_run(from_run), lib, out, splits=tuple(split or ["train"]),
                                 prompt_protocol=prompt_protocol.value, require_motivation=require_motivation,
                                 targets_run=db.require_run(targets) if targets else None)
    console.print(
        f"wrote {manifest.examples} examples from {len(manifest.per_scenario)} scenarios to {out} "
        f"(decisions {manifest.decisions}); left out: {manifest.dropped_invalid} invalid, "
        f"{manifest.dropped_other_split} from other splits, {manifest.dropped_without_motivation} without motivation; "
        f"decision targets on {manifest.with_target} examples ({manifest.decision_targets})"
    )


@app.command()
def train(
    student: Annotated[str, typer.Option("--student", help="Student spec with local weights: default:student or hf:FOLDER.")],
    data: Annotated[Path, typer.Option("--data", help="Dataset folder from `tomdistill dataset`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Adapter folder to write (adapter, tokenizer, config, log, card, checkpoints).")],
    config: ConfigOption = None,
    preset: Annotated[str | None, typer.Option(help="Named recipe: cpu (default) or paper (r 8, alpha 16, q/v, lr 5e-5, 3 epochs, batch 64).")] = None,
    r: Annotated[int | None, typer.Option("--r", help="LoRA rank.")] = None,
    alpha: Annotated[int | None, typer.Option(help="LoRA alpha.")] = None,
    dropout: Annotated[float | None, typer.Option(help="LoRA dropout.")] = None,
    target_modules: Annotated[list[str] | None, typer.Option("--target-module", help="Module to adapt (repeatable); 'all-linear' (the default) for every linear layer of the blocks.")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")] = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the data.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps (-1: all epochs).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Examples per device per step.")] = None,
    grad_accum: Annotated[int | None, typer.Option(help="Gradient accumulation steps.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Longest tokenised example.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, max=2**32 - 1, help="Training seed (0 to 2**32 - 1, as numpy takes it).")] = None,
    bf16: Annotated[bool | None, typer.Option("--bf16/--no-bf16", help="bfloat16 training (default: on for bf16-capable GPUs and on CPU).")] = None,
    save_steps: Annotated[int | None, typer.Option(help="Checkpoint every N steps.")] = None,
    decision_loss: Annotated[DecisionLossChoice | None, typer.Option(help="tokens: the reply's tokens (paper); soft: the student's P(action) against the teacher's exact distribution (the dataset's decision targets); soft+tokens: both.")] = None,
    decision_weight: Annotated[float | None, typer.Option(min=0, help="Weight of the soft decision loss beside the token loss (soft+tokens).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in --out.")] = False,
) -> None:
    """LoRA fine-tune the student on a teacher dataset (TRL SFTTrainer + PEFT); resumable with --resume."""
    from .config import resolve_train_config
    from .models.registry import parse_spec
    from .train import train as run_train

    parse_spec(student)
    overrides = dict(preset=preset, r=r, alpha=alpha, dropout=dropout, target_modules=target_modules,
                     learning_rate=learning_rate, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                     grad_accum=grad_accum, max_length=max_length, seed=seed, bf16=bf16, save_steps=save_steps,
                     decision_loss=decision_loss.value if decision_loss else None, decision_weight=decision_weight)
    recipe = resolve_train_config(load_config(config).train, overrides)
    try:
        result = run_train(student, data, out, recipe, resume=resume)
    except KeyboardInterrupt as exc:
        Console(stderr=True, soft_wrap=True).print(f"[yellow]{stop_word(exc)}:[/] checkpoints are in {out}/checkpoints; "
                                   "re-run with --resume to continue.")
        raise typer.Exit(stop_exit_code(exc)) from None
    console.print(f"trained {result.steps} steps on {result.examples} examples in {result.wall_s} s; "
                  f"final loss {result.final_loss}; adapter in {result.out}")


@app.command()
def merge(
    adapter: Annotated[Path, typer.Argument(help="Adapter folder from `tomdistill train`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the merged full model.")],
    student: Annotated[str | None, typer.Option(help="Base model spec; default: the one the adapter was trained on.")] = None,
) -> None:
    """Fold a LoRA adapter into its base model and save a standalone model folder."""
    from .train import merge as run_merge

    console.print(f"wrote {run_merge(adapter, out, student)}")


def _print_eval(report) -> None:
    """Compact terminal summary of an evaluation: one row per split ("–" where a value is null)."""
    from rich import box
    from rich.markup import escape

    from .evaluate.cluster import MIN_TRUSTED_SAMPLES
    from .evaluate.formatting import format_value, format_verdict, temperature_line

    def ci(interval):  # whole percent: fits 80 columns; report.md has the decimals and KL closed's interval
        return "–" if not interval else f"[{interval[0]:.0f}, {interval[1]:.0f}]"

    def samples(s):
        if report.schema_version < 2:
            return "–"
        return "exact" if s.samples_min is None else f"{s.samples_min}" + (
            f"<{report.min_trusted_samples}" if s.interval_trusted is False else "")

    table = Table(title="alignment: how far the student moved from its base toward the teacher", title_justify="left",
                  box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)
    for col in ("split", "cells", "gap", "95% CI", "baseline", "beats", "KL", "r game", "paper", "n"):
        table.add_column(col, justify="left" if col == "split" else "right", no_wrap=True)
    for name, s in report.splits.items():  # split names come from records files: shown as text, not markup
        table.add_row(escape(name), str(len(s.cells)), format_value(s.gap_closed, 0), ci(s.gap_closed_ci),
                      format_value(s.gap_closed_baseline, 0), format_verdict(s.beats_baseline),
                      format_value(s.kl_closed, 0),
                      f"{format_value(s.game_profile_correlation_student, 2)}/{format_value(s.game_profile_correlation_base, 2)}",
                      format_value(s.paper_improvement_mean, 0), samples(s))
    # Piped into a log, rich assumes 80 columns and would cut cells to "…": logs have no width limit.
    (console if console.is_terminal else Console(width=max(console.width, 120))).print(table)
    console.print(temperature_line(report), markup=False, highlight=False)
    console.print("gap (closed, %) = 1 - sum (S-T)^2 / sum (B-T)^2 over a split's cells, less sampling noise (95% "
                  "cell bootstrap CI); baseline = the same for a constant student at T's mean train rate; beats = S above "
                  "the baseline (95%); KL (closed, %) = share of KL(T||B) removed; r game = correlation of S's / B's "
                  "within-context game differences with T's; paper = the paper metric (%), mean of (B-S)/(B-T) over "
                  "this run's cells; n = "
                  f"fewest samples per cell (exact = scored; 4<{MIN_TRUSTED_SAMPLES}: too few for a trusted interval, "
                  "nothing called significant). S student, B base, T teacher", markup=False, highlight=False)
    if report.schema_version < 2:
        console.print("schema version 1 eval.json (older tomdistill): older definitions, newer measures missing; "
                      "run evaluate again", markup=False, highlight=False)
    if report.skipped:
        console.print(f"left out (a role had no data): {', '.join(report.skipped)}", markup=False, highlight=False)


@app.command()
def evaluate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write eval.json (new, or an earlier eval.json to replace).")] = Path("eval.json"),
    teacher: Annotated[str | None, typer.Option(help="Teacher run name.")] = None,
    base: Annotated[str | None, typer.Option(help="Base (not fine-tuned) student run name.")] = None,
    student: Annotated[str | None, typer.Option(help="Fine-tuned student run name.")] = None,
    records: Annotated[Path | None, typer.Option(help="CSV/JSONL with one row per sample: role, split, context, game, answer or text. Instead of runs.")] = None,
    bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap resamples for the gap-closed interval.")] = 2000,
    seed: Annotated[int, typer.Option(min=SEED_MIN, max=SEED_MAX, help="Bootstrap seed.")] = 0,
    store: StoreOption = None,
    library: LibraryOption = None,
    config: ConfigOption = None,
) -> None:
    """Compare teacher, base and fine-tuned student per cell and split; write eval.json."""
    from .evaluate import evaluate_records, evaluate_runs, save_report
    from .evaluate.report import check_eval_out
    from .outdirs import replacing_file
    from .store import Store

    check_eval_out(out)  # before any work: never overwrite a file that is not an eval.json
    lib = _library(library, config)
    runs = {"teacher": teacher, "base": base, "student": student}
    if records is not None:
        if any(runs.values()):
            raise TomdistillError("give either --records or the three runs (--teacher, --base, --student), not both")
        report = evaluate_records(records, lib, bootstrap=bootstrap, seed=seed)
    else:
        missing = [f"--{k}" for k, v in runs.items() if not v]
        if missing:
            raise TomdistillError(f"missing {', '.join(missing)} (or give --records FILE)")
        with Store(store, readonly=True) as db:
            report = evaluate_runs(db, runs, lib, bootstrap=bootstrap, seed=seed)  # type: ignore[arg-type]
    with replacing_file(out) as tmp:
        save_report(report, tmp)
    _print_eval(report)
    console.print(f"wrote {out}", markup=False, highlight=False)


@app.command()
def report(
    eval_json: Annotated[Path, typer.Argument(metavar="EVAL_JSON", help="eval.json from `tomdistill evaluate`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.md, report.html and the PNG plots: new, empty, or an earlier report.")] = Path("report"),
) -> None:
    """Write report.md, a self-contained report.html and PNG plots from an eval.json."""
    from .evaluate import load_report
    from .evaluate.report import write_report

    loaded = load_report(eval_json)
    paths = write_report(loaded, out)
    _print_eval(loaded)
    console.print(f"wrote {paths['markdown']}, {paths['html']} and {len(paths) - 2} plots", markup=False, highlight=False)


config_app = typer.Typer(help="Show the run configuration and its defaults.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    config: Annotated[Path | None, typer.Argument(help="A config file to show with its defaults filled in.")] = None,
) -> None:
    """Print the configuration as TOML (the defaults, or CONFIG with defaults filled in), each field documented."""
    from .config import config_toml

    print(config_toml(load_config(config)))


@app.command()
def run(
    config: Annotated[Path | None, typer.Argument(help="Run config (TOML); default: the built-in CPU config (`tomdistill config show`).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: the config's `out`, tomdistill-run).")] = None,
    force: Annotated[list[str] | None, typer.Option("--force", help=f"Redo this stage and those after it: {', '.join(STAGES)}. Repeatable.")] = None,
) -> None:
    """Run the whole pipeline: teacher -> dataset -> LoRA training -> base/student evaluation -> eval.json -> report.

    Finished stages are skipped on a re-run (keyed by their settings), so an interrupted run continues where it stopped.
    """
    from .pipeline import run_pipeline

    cfg = load_config(config)
    try:
        result = run_pipeline(cfg, out, force=set(force or []), log=lambda line: console.print(line, highlight=False, markup=False))
    except KeyboardInterrupt as exc:
        Console(stderr=True, soft_wrap=True).print(f"[yellow]{stop_word(exc)}:[/] finished stages and samples are kept; "
                                   "re-run the same command to continue.")
        raise typer.Exit(stop_exit_code(exc)) from None
    from .evaluate import load_report

    _print_eval(load_report(result.eval_json))
    total = sum(r.seconds for r in result.stages.values() if not r.skipped)
    console.print(f"report: {result.report_dir / 'report.html'}   eval: {result.eval_json}   "
                  f"stages run now: {total:.0f} s, peak RSS {result.peak_rss_mb / 1024:.1f} GB")


from . import cli_agents  # noqa: E402, F401  (registers `export` and `play` on app)


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI, turning user errors, usage errors and stops into one line and an exit code.

    Click runs in non-standalone mode so that a usage error (an unknown flag, `-n 0`) is one line
    like every other bad input instead of a boxed panel, and Ctrl-C / SIGTERM outside the
    commands' own handlers is one line instead of "Aborted!"."""
    from pydantic import ValidationError

    from .errors import describe_validation_error
    from .signals import unreported_stop

    click = _click_exceptions()
    try:
        code = app(args=argv, prog_name="tomdistill", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else str(exc))
        return 2
    except click.UsageError as exc:
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        return _one_line(" ".join(exc.format_message().split()) + where)
    except TomdistillError as exc:
        return _one_line(str(exc))
    except ValidationError as exc:  # a flag value that a settings model refuses (e.g. --seed 2**70)
        field, message = describe_validation_error(exc)
        return _one_line(f"invalid value for {field!r}: {message}" if field else message)
    except KeyboardInterrupt as exc:
        code = stop_exit_code(exc)
    # typer turns a Ctrl-C (or SIGTERM) that no command caught into a silent exit 130.
    if (stop := unreported_stop()) is not None:
        print(f"{stop_word(stop)}: what was finished is kept; re-run the same command to continue.", file=sys.stderr)
        return stop_exit_code(stop)
    return code if isinstance(code, int) else 0


def _click_exceptions():
    """The exceptions module of the click that typer runs on: recent typer vendors its own copy."""
    try:
        from typer._click import exceptions
    except ImportError:  # typer releases that use the click package
        from click import exceptions
    return exceptions


def _one_line(message: str) -> int:
    # One line, no markup parsing: messages quote user text that may hold [brackets].
    print("error: " + " ".join(str(message).splitlines()), file=sys.stderr)
    return 2


def entry_point() -> None:
    """Kept for `tomdistill.cli:entry_point` callers; the console script uses tomdistill.launch."""
    from .launch import entry_point as launch

    launch()
