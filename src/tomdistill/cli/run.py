"""`tomdistill run`: the whole pipeline from one config file (pipeline.py does the work)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from ..config import Config, load_config
from ..pipeline import STAGES
from ..signals import stop_exit_code, stop_word
from .shared import console, json_option, print_json, print_stopped, stdout_to_stderr
from .tables import eval_summary, print_eval

_DEFAULT_OUT = Config.model_fields["out"].default


def run(
    config: Annotated[Path | None, typer.Argument(help="Run config (TOML); default: the built-in CPU config (`tomdistill config show`).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help=f"Output folder (default: the config's `out`, {_DEFAULT_OUT}).")] = None,
    force: Annotated[list[str] | None, typer.Option("--force", help=f"Redo this stage and those after it: {', '.join(STAGES)}. Repeatable.")] = None,
    as_json: Annotated[bool, json_option("out, eval_json, report (report.html), peak_rss_mb, stages ({STAGE: key, "
                                         "seconds, finished, skipped, details}, as pipeline.json), evaluation (as "
                                         "`evaluate --json`, without eval_json).")] = False,
) -> None:
    """Run the whole pipeline: teacher -> dataset -> LoRA training -> base/student evaluation -> eval.json -> report.

    Finished stages are skipped on a re-run (keyed by their settings), so an interrupted run continues where it stopped.
    """
    from ..pipeline import run_pipeline

    cfg = load_config(config)
    try:
        with stdout_to_stderr(as_json):  # the stage log and progress bars
            result = run_pipeline(cfg, out, force=set(force or []),
                                  log=lambda line: console.print(line, highlight=False, markup=False))
    except KeyboardInterrupt as exc:
        print_stopped(f"[yellow]{stop_word(exc)}:[/] finished stages and samples are kept; "
                      "re-run the same command to continue.")
        raise typer.Exit(stop_exit_code(exc)) from None
    from ..evaluate import load_report

    report = load_report(result.eval_json)
    if as_json:
        print_json({"out": str(result.out), "eval_json": str(result.eval_json),
                    "report": str(result.report_dir / "report.html"), "peak_rss_mb": result.peak_rss_mb,
                    "stages": {name: asdict(record) for name, record in result.stages.items()},
                    "evaluation": eval_summary(report)})
        return
    print_eval(report)
    total = sum(r.seconds for r in result.stages.values() if not r.skipped)
    console.print(f"report: {result.report_dir / 'report.html'}   eval: {result.eval_json}   "
                  f"stages run now: {total:.0f} s, peak RSS {result.peak_rss_mb / 1024:.1f} GB")
