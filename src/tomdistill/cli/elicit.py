"""`tomdistill elicit`: ask a model for decisions on scenarios and store every reply (resumable)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..config import RaySettings
from ..errors import TomdistillError
from ..models.base import DEFAULT_MAX_NEW_TOKENS, SEED_MAX, SEED_MIN, BackendError, ModelOptions, SamplingSettings
from ..models.registry import PROVIDER_TABLE
from ..progress import progress_bar
from ..signals import stop_exit_code, stop_word
from .shared import (
    DEFAULT_SAMPLING,
    PROTOCOL_HELP,
    ConfigOption,
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
from .tables import RUN_KEYS, print_summary, run_json

if TYPE_CHECKING:  # annotations only: these load the backends and the store when the command runs
    from ..elicit import ElicitSummary
    from ..models.base import Model
    from ..scenarios import Scenario
    from ..store import Store

_OPTIONS = ModelOptions()  # the backend defaults the flags below show
_RAY = RaySettings.model_fields  # the Ray flags' help and defaults, from the config's one description
MODEL_HELP = ("Model: a spec, " + "; ".join(p.usage for p in PROVIDER_TABLE if p.name != "mock")
              + "; or a folder: an adapter from `tomdistill train` (put on the student it was trained on) "
              "or an agent from `tomdistill export`. The planted teacher is a positive control, not a real teacher.")


def elicit(
    model: Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)],
    run: Annotated[str, typer.Option("--run", "-r", help="Run name; re-running the same command continues it.")],
    split: Annotated[list[str] | None, typer.Option("--split", "-s", help="Scenarios of this split (repeatable). Default: train.")] = None,
    scenario: Annotated[list[str] | None, typer.Option("--scenario", help="One scenario id (repeatable); with --split, both are asked. Each scenario is asked once however often it is named.")] = None,
    protocol: Annotated[ProtocolChoice | None, typer.Option("--protocol", "-p", help=PROTOCOL_HELP + " Default: answer, or an agent folder's own.", show_default=False)] = None,
    mode: Annotated[ModeChoice | None, typer.Option("--mode", help="'sample': N sampled replies per scenario; 'score': exact action probabilities from one forward pass (hf backends, or servers with top_logprobs). Default: sample for a spec, score for an adapter folder, an agent folder's own mode.", show_default=False)] = None,
    samples: Annotated[int, typer.Option("--samples", "-n", min=1, help="Replies per scenario in sample mode (the paper used 300); sampled motivations per scenario in score mode with --protocol reasoned.")] = 10,
    temperature: Annotated[float, typer.Option(min=0, help="Sampling temperature; 0 is greedy.")] = DEFAULT_SAMPLING.temperature,
    top_p: Annotated[float, typer.Option("--top-p", min=0, max=1, help="Nucleus sampling threshold.")] = DEFAULT_SAMPLING.top_p,
    max_new_tokens: Annotated[int | None, typer.Option(min=1, help="Longest reply in tokens. Default: " + ", ".join(f"{n} for {p}" for p, n in DEFAULT_MAX_NEW_TOKENS.items()) + ".")] = None,
    seed: Annotated[int, typer.Option(min=SEED_MIN, max=SEED_MAX, help="Run seed; each sample's seed derives from it, the scenario and the index.")] = 0,
    adapter: Annotated[Path | None, typer.Option(help="PEFT LoRA adapter folder to put on an hf/default model.")] = None,
    base_url: Annotated[list[str] | None, typer.Option(help="OpenAI-compatible server URL (openai: models); repeat it for several servers of the same model, which share the requests (--concurrency each). Default: $OPENAI_BASE_URL. The key is read from $OPENAI_API_KEY only.")] = None,
    # No number in this help: the hf backend picks the size from the device and the model's size
    # (models/hf.py default_batch_size), and a number copied here went stale once already.
    batch_size: Annotated[int | None, typer.Option(min=1, help="Prompts per batch on hf backends. Default: chosen by the backend from the device and the model's size.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at once, per server (openai: models).")] = _OPTIONS.concurrency,
    max_retries: Annotated[int, typer.Option(min=0, help="Retries per request on 429/5xx/timeouts/garbled replies before the run stops (openai: models).")] = _OPTIONS.max_retries,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds before one request times out (openai: models).")] = _OPTIONS.timeout_s,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... Default: cuda when available.")] = None,
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16 (hf backends). auto: float32 in score mode (exact to 0.005); in sample mode bfloat16 where the hardware runs it natively (GPUs that support it, CPUs with AVX512-BF16 or AMX), else float16 on GPUs and float32 on CPUs.")] = "auto",
    replicas: Annotated[int, typer.Option(min=1, help=_RAY["replicas"].description)] = _RAY["replicas"].default,
    ray_address: Annotated[str | None, typer.Option(help=_RAY["ray_address"].description)] = None,
    cpus_per_replica: Annotated[float, typer.Option(min=0.01, help=_RAY["cpus_per_replica"].description)] = _RAY["cpus_per_replica"].default,
    gpus_per_replica: Annotated[float, typer.Option(min=0, help=_RAY["gpus_per_replica"].description)] = _RAY["gpus_per_replica"].default,
    store: StoreOption = None,
    library: LibraryOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, json_option(f"run ({RUN_KEYS}), scenarios (as `runs show --json`), requested, new, "
                                         "elapsed_s, retries, retry_reasons.")] = False,
) -> None:
    """Ask a model for decisions on scenarios and store every reply (resumable)."""
    from ..ask import model_options, open_model, source_kind

    source_kind(model)  # a bad spec or folder fails before anything is loaded or written
    lib = scenario_library(library, config)
    chosen = lib.select(scenario or (), split or (() if scenario else ["train"]))
    settings = SamplingSettings(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens)
    options = model_options(adapter=adapter, base_url=base_url, device=device, batch_size=batch_size,
                            concurrency=concurrency, timeout_s=timeout, max_retries=max_retries, dtype=dtype,
                            replicas=replicas, ray_address=ray_address, cpus_per_replica=cpus_per_replica,
                            gpus_per_replica=gpus_per_replica)
    with stdout_to_stderr(as_json):
        with console.status(f"loading {model}" + (f" + {adapter}" if adapter else "")):
            opened = open_model(model, mode=mode.value if mode else None, options=options)  # type: ignore[arg-type]
        # A folder says how it is asked (an adapter: score mode; an agent: its agent.json); flags win.
        summary = _elicit_into(store, opened.model, chosen, run=run, mode=mode.value if mode else opened.mode or "sample",
                               protocol=protocol.value if protocol else opened.protocol or "answer", samples=samples,
                               settings=settings, seed=seed, adapter=str(opened.adapter) if opened.adapter else None)
    if as_json:
        print_json(run_json(summary.run, chosen, summary.scenarios)
                   | {k: getattr(summary, k) for k in ("requested", "new", "elapsed_s", "retries", "retry_reasons")})
    else:
        print_summary(summary)


def _elicit_into(store: Path | None, backend: Model, scenarios: list[Scenario], *, run: str, mode: str,
                 **elicit_args: Any) -> ElicitSummary:
    """Run (or continue) the elicitation with a progress bar; a stop or a backend failure ends in one
    line and an exit code, a full disk in a TomdistillError; the backend is closed either way."""
    from ..elicit import elicit as run_elicit
    from ..store import Store, StoreFull

    with Store(store) as db:
        try:
            with progress_bar(f"{run} ({mode})", console) as progress:
                return run_elicit(db, backend, scenarios, run_name=run, mode=mode, progress=progress, **elicit_args)
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


def _stored(db: Store, run: str) -> int:
    """Samples of run `run` in the store (0 when the run was not created yet)."""
    return db.count(db.require_run(run).id) if db.get_run(run) else 0


def _stopped(db: Store, run: str, why: str) -> None:
    stored = _stored(db, run)
    from rich.markup import escape

    print_stopped(  # one line; user text (run, path, server message) escaped
        "[yellow]stopped:[/] " + escape(f"{' '.join(why.split())}; {stored} samples of run '{run}' are stored in "
                                        f"{db.path}; re-run the same command to continue where it stopped."),
        highlight=False,
    )
