"""Stopping: SIGTERM is handled like Ctrl-C, so every command stops the same way on either.

`Terminated` subclasses KeyboardInterrupt, so each place that keeps finished work on Ctrl-C
(elicitation, training, the pipeline, play) does the same on SIGTERM without a second handler.
The handlers also remember the signal: typer turns a KeyboardInterrupt that no command caught
into a silent exit 130, and `tomdistill.cli.main` uses `unreported_stop` to still print one line.
"""

from __future__ import annotations

import signal
from types import FrameType


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM."""


_state: dict[str, int | bool | None] = {"signal": None, "reported": False}


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    _state["signal"] = signum
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def install_handlers() -> None:
    """Ctrl-C raises KeyboardInterrupt and SIGTERM raises Terminated, each remembered."""
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)


def _record_stop(signum: int, frame: FrameType | None) -> None:
    _state["signal"] = signum


def defer_stops() -> None:
    """Ctrl-C and SIGTERM are only remembered, not raised (see `pending_stop`).

    For start-up: an exception raised while Python holds an import lock can land in one of
    importlib's callbacks, which prints it as "Exception ignored ... Traceback" and drops it."""
    signal.signal(signal.SIGINT, _record_stop)
    signal.signal(signal.SIGTERM, _record_stop)


def pending_stop() -> BaseException | None:
    """The stop that arrived while stops were deferred, as the exception it stands for."""
    if _state["signal"] is None:
        return None
    return Terminated() if _state["signal"] == signal.SIGTERM else KeyboardInterrupt()


def stop_word(exc: BaseException) -> str:
    """'terminated' for SIGTERM, 'interrupted' for Ctrl-C: the first word of a stop message.

    Calling it means the stop is being reported, so `unreported_stop` stays quiet after."""
    _state["reported"] = True
    return "terminated" if isinstance(exc, Terminated) else "interrupted"


def stop_exit_code(exc: BaseException) -> int:
    """The shell's convention: 128 + the signal number (143 for SIGTERM, 130 for Ctrl-C)."""
    return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


def unreported_stop() -> BaseException | None:
    """The stop that a signal caused and no command reported, as the exception it raised."""
    return None if _state["reported"] else pending_stop()
