"""`tomdistill dataset`, `tomdistill train` and `tomdistill merge`: from a teacher run to a model.

`train`'s recipe flags are not written here: train_flags.py generates one per TrainConfig field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import load_config, resolve_train_config
from ..signals import stop_exit_code, stop_word
from .shared import ConfigOption, LibraryOption, ProtocolChoice, StoreOption, console, print_stopped, scenario_library
from .train_flags import recipe_flags, recipe_overrides


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
    from ..dataset import build_dataset
    from ..store import Store

    lib = scenario_library(library, config)
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


@recipe_flags(before="resume")  # between --config and --resume, where the hand-written flags were
def train(
    *,
    student: Annotated[str, typer.Option("--student", help="Student spec with local weights: default:student or hf:FOLDER.")],
    data: Annotated[Path, typer.Option("--data", help="Dataset folder from `tomdistill dataset`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Adapter folder to write (adapter, tokenizer, config, log, card, checkpoints).")],
    config: ConfigOption = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in --out.")] = False,
    **recipe: Any,
) -> None:
    """LoRA fine-tune the student on a teacher dataset (TRL SFTTrainer + PEFT); resumable with --resume.

    Recipe flags (one per field of a config's train section) override the --config file's values, which override the --preset's; the defaults shown are the built-in ones.
    """
    from ..models.registry import parse_spec
    from ..train import train as run_train

    parse_spec(student)
    resolved = resolve_train_config(load_config(config).train, recipe_overrides(recipe))
    try:
        result = run_train(student, data, out, resolved, resume=resume)
    except KeyboardInterrupt as exc:
        print_stopped(f"[yellow]{stop_word(exc)}:[/] checkpoints are in {out}/checkpoints; re-run with --resume to continue.")
        raise typer.Exit(stop_exit_code(exc)) from None
    console.print(f"trained {result.steps} steps on {result.examples} examples in {result.wall_s} s; "
                  f"final loss {result.final_loss}; adapter in {result.out}")


def merge(
    adapter: Annotated[Path, typer.Argument(help="Adapter folder from `tomdistill train`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the merged full model.")],
    student: Annotated[str | None, typer.Option(help="Base model spec; default: the one the adapter was trained on.")] = None,
) -> None:
    """Fold a LoRA adapter into its base model and save a standalone model folder."""
    from ..train import merge as run_merge

    console.print(f"wrote {run_merge(adapter, out, student)}")
