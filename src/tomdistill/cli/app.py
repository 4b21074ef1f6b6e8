"""The `tomdistill` command line: the typer app, every command registered on it, and `main`.

This is the one module that knows all the commands; the command modules define plain functions
and import only shared.py, tables.py and train_flags.py, so the CLI has no import circle. User
mistakes (a bad file, an unknown id) end in one line on stderr and exit code 2, never a
traceback; see `main`.
"""

from __future__ import annotations

import sys
import warnings
from typing import Annotated, Any

import typer

from ..errors import TomdistillError, TomdistillWarning
from ..signals import stop_exit_code, stop_word
from ..versions import __version__
from . import agents, config_show, elicit, evaluation, publish, run, runs, scenarios, training
from .shared import console

app = typer.Typer(
    name="tomdistill",
    help="Distil a large LLM's strategic, theory-of-mind behaviour in social dilemmas into a small "
    "LLM, and measure how far the transfer got.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


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


# Registered in the order `tomdistill --help` lists them.
scenarios_app = typer.Typer(
    help="Browse the scenario library: games x social contexts, grouped in splits.",
    no_args_is_help=True,
)
scenarios_app.command("list")(scenarios.scenarios_list)
scenarios_app.command("show")(scenarios.scenarios_show)
app.add_typer(scenarios_app, name="scenarios")

runs_app = typer.Typer(help="Look at stored runs, export their samples, delete them.", no_args_is_help=True)
runs_app.command("list")(runs.runs_list)
runs_app.command("show")(runs.runs_show)
runs_app.command("export")(runs.runs_export)
runs_app.command("delete")(runs.runs_delete)
app.add_typer(runs_app, name="runs")

app.command()(elicit.elicit)
app.command()(runs.reparse)
app.command()(training.dataset)
app.command()(training.train)
app.command()(training.merge)
app.command()(publish.push)
app.command()(evaluation.evaluate)
app.command()(evaluation.report)

config_app = typer.Typer(help="Show the run configuration and its defaults.", no_args_is_help=True)
config_app.command("show")(config_show.config_show)
app.add_typer(config_app, name="config")

app.command()(run.run)
app.command()(agents.export)
app.command()(agents.play)
app.command()(agents.policy)
app.command()(agents.fidelity)


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI, turning user errors, usage errors and stops into one line and an exit code.

    Click runs in non-standalone mode so that a usage error (an unknown flag, `-n 0`) is one line
    like every other bad input instead of a boxed panel, and Ctrl-C / SIGTERM outside the
    commands' own handlers is one line instead of "Aborted!"."""
    from pydantic import ValidationError

    from ..errors import describe_validation_error
    from ..progress import silence_other_progress_bars
    from ..signals import unreported_stop

    # Before any command imports datasets, transformers or tqdm: their bars would interleave with
    # ours and fill logs with carriage returns (progress.py).
    silence_other_progress_bars()
    warnings.showwarning = _show_warning
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


def _click_exceptions() -> Any:
    """The exceptions module of the click that typer runs on: recent typer vendors its own copy."""
    try:
        from typer._click import exceptions
    except ImportError:  # typer releases that use the click package
        from click import exceptions
    return exceptions


_python_showwarning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """tomdistill's own warnings as one line on stderr, like its errors; other libraries' as Python prints them."""
    if issubclass(category, TomdistillWarning):
        print("warning: " + " ".join(str(message).split()), file=sys.stderr)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def _one_line(message: str) -> int:
    # One line, no markup parsing: messages quote user text that may hold [brackets].
    print("error: " + " ".join(str(message).splitlines()), file=sys.stderr)
    return 2
