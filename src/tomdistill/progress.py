"""Progress bars for long work: done / total, rate, elapsed time and ETA (rich)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


def _average_rate(task) -> float | None:
    """Items per second since the bar started, not counting items already done before (a resume).

    rich's own speed looks at a short window, which batches that land together make jumpy."""
    initial = task.fields.get("initial")
    if initial is None or not task.elapsed or task.completed <= initial:
        return None
    return (task.completed - initial) / task.elapsed


class _RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        rate = _average_rate(task)
        return Text(f"{rate:.2f}/s" if rate else "   -/s")


class _EtaColumn(ProgressColumn):
    def render(self, task) -> Text:
        rate = _average_rate(task)
        if not rate or task.total is None:
            return Text("ETA -:--:--")
        seconds = int((task.total - task.completed) / rate)
        return Text(f"ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}")


@contextmanager
def progress_bar(description: str, console: Console | None = None) -> Iterator[Callable[[int, int], None]]:
    """A bar that lives for the `with` block; yields a `(done, total)` callback to update it."""
    with Progress(
        TextColumn(description), BarColumn(), MofNCompleteColumn(), _RateColumn(), TimeElapsedColumn(),
        _EtaColumn(), console=console,
    ) as bar:
        task = bar.add_task(description, total=None, initial=None)

        def update(done: int, total: int) -> None:
            if bar.tasks[task].fields["initial"] is None:
                bar.update(task, initial=done)
            bar.update(task, completed=done, total=total)

        yield update
