"""Progress for long work: done / total, rate, elapsed time and ETA, as the one display a command shows.

On a terminal it is a rich bar redrawn in place; anywhere else (a log file, a pipe, CI) it is plain
lines, one each time another tenth is done, so logs hold no carriage returns or half-drawn bars.
Other libraries' tqdm bars are switched off once at start-up (`silence_other_progress_bars`).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich import get_console
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

#: The switches of the libraries whose tqdm bars would interleave with ours: datasets' map and
#: save bars, huggingface_hub's (which transformers follows for its "Loading weights" bars), and
#: tqdm itself, for the bars no library switch reaches (transformers' GGUF conversion of the
#: default models, gguf's writer). Each library reads its variable once, when it is imported.
_QUIET = {"HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"}
#: For a library imported before the variables were set: (its variable, the package, the module and
#: function that switch its bars off). transformers copied huggingface_hub's switch when imported.
_SWITCHES = (
    ("HF_DATASETS_DISABLE_PROGRESS_BARS", "datasets", "datasets", "disable_progress_bars"),
    ("HF_HUB_DISABLE_PROGRESS_BARS", "huggingface_hub", "huggingface_hub.utils", "disable_progress_bars"),
    ("HF_HUB_DISABLE_PROGRESS_BARS", "transformers", "transformers.utils.logging", "disable_progress_bar"),
)
#: Lines a plain display prints over a whole task: one per tenth.
_LINES = 10


def silence_other_progress_bars() -> None:
    """Switch off other libraries' progress bars, so that ours is the one display.

    Called once, when the CLI starts and none of them is imported yet: the environment variables
    reach them at import, in this process and in those it starts. A variable the user set is left
    as it is (their choice wins). A library imported already (by a Python caller) is switched off
    through its own function where it has one; tqdm has none."""
    for name, value in _QUIET.items():
        os.environ.setdefault(name, value)
    for variable, package, module, switch in _SWITCHES:
        if os.environ[variable] == _QUIET[variable] and package in sys.modules:
            getattr(importlib.import_module(module), switch)()


class ProgressUpdate(Protocol):
    """The callback a display yields: `done` of `total` items, with an optional note (e.g. the loss)."""

    def __call__(self, done: int, total: int, note: str = "") -> None: ...


def _rate(done: int, initial: int | None, elapsed: float | None) -> float | None:
    """Items per second since the display started, not counting items already done before (a resume).

    rich's own speed looks at a short window, which batches that land together make jumpy."""
    if initial is None or not elapsed or done <= initial:
        return None
    return (done - initial) / elapsed


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _eta(done: int, total: int | None, rate: float | None) -> str:
    return "ETA " + (_clock((total - done) / rate) if rate and total is not None else "-:--:--")


def _task_rate(task) -> float | None:
    return _rate(int(task.completed), task.fields.get("initial"), task.elapsed)


class _RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        rate = _task_rate(task)
        return Text(f"{rate:.2f}/s" if rate else "   -/s")


class _EtaColumn(ProgressColumn):
    def render(self, task) -> Text:
        return Text(_eta(int(task.completed), task.total, _task_rate(task)))


def _live(console: Console) -> bool:
    """Whether the console can redraw a bar in place (a terminal that is not dumb, or a notebook)."""
    return (console.is_terminal and not console.is_dumb_terminal) or console.is_jupyter


@contextmanager
def progress_bar(description: str, console: Console | None = None) -> Iterator[ProgressUpdate]:
    """A display that lives for the `with` block: a bar on a terminal, plain lines elsewhere.

    Yields a `(done, total, note="")` callback to update it."""
    console = console or get_console()
    if not _live(console):
        yield _Lines(description, console).update
        return
    with Progress(
        TextColumn(description), BarColumn(), MofNCompleteColumn(), _RateColumn(), TimeElapsedColumn(),
        _EtaColumn(), TextColumn("{task.fields[note]}", markup=False), console=console,
    ) as bar:
        task = bar.add_task(description, total=None, initial=None, note="")

        def update(done: int, total: int, note: str = "") -> None:
            if bar.tasks[task].fields["initial"] is None:
                bar.update(task, initial=done)
            bar.update(task, completed=done, total=total, note=note)

        yield update


class _Lines:
    """Progress as plain lines, for logs: one at the first update, then one each time another tenth
    of the total is done (and so one at the end), each with the rate, elapsed time and ETA."""

    def __init__(self, description: str, console: Console) -> None:
        self.description, self.console = description, console
        self.initial: int | None = None
        self.started = 0.0
        self.printed = -1  # the last tenth a line was printed for

    def update(self, done: int, total: int, note: str = "") -> None:
        if self.initial is None:
            self.initial, self.started = done, time.monotonic()
        tenth = _LINES if total <= 0 else min(_LINES, done * _LINES // total)
        if tenth <= self.printed:
            return
        self.printed = tenth
        elapsed = time.monotonic() - self.started
        rate = _rate(done, self.initial, elapsed)
        share = f" ({100 * done // total}%)" if total > 0 else ""
        parts = [f"{self.description}: {done}/{total}{share}", f"{rate:.2f}/s" if rate else "-/s",
                 f"elapsed {_clock(elapsed)}", _eta(done, total, rate), note]
        # soft_wrap: a long line stays one line in the log instead of being folded at 80 columns.
        self.console.print(", ".join(p for p in parts if p), markup=False, emoji=False, highlight=False,
                           soft_wrap=True)
