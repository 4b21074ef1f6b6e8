"""Errors caused by user input, which the CLI prints as one line (exit code 2) instead of a traceback."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


class TomdistillError(Exception):
    """A problem the user can fix: bad file, unknown id, missing folder. Never a bug in tomdistill."""


class TomdistillWarning(UserWarning):
    """Something the user should know that does not stop the work; the CLI prints it as one line."""


class LibraryError(TomdistillError):
    """A scenario library file is unreadable or one of its entries is invalid.

    The message names the file, the entry and the field, so a user can find the line to fix.
    """

    def __init__(
        self,
        file: Path | str,
        message: str,
        *,
        entry: str | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file)
        self.entry = entry
        self.field = field
        self.reason = message
        where = self.file
        if entry:
            where += f": {entry}"
        if field:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


class ConfigError(TomdistillError):
    """A configuration file is unreadable or has an invalid field."""

    def __init__(self, file: Path | str, message: str, *, field: str | None = None) -> None:
        self.file = str(file)
        self.field = field
        where = str(file) + (f": field '{field}'" if field else "")
        super().__init__(f"{where}: {message}")


def describe_validation_error(exc: ValidationError) -> tuple[str | None, str]:
    """The first pydantic error as (dotted field path, plain message)."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or None
    kind = err["type"]
    if kind == "missing":
        msg = "required field is missing"
    elif kind == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    else:
        msg = err["msg"].removeprefix("Value error, ")
    more = len(exc.errors()) - 1
    if more:
        msg += f" (and {more} more problem{'s' if more > 1 else ''} in this entry)"
    return loc, msg


#: Longest user value an error message quotes in full: a pasted 5,000-character cell must not make
#: a 5 KB error line, and 60 characters are enough to find the value in the file.
QUOTE_LIMIT = 60


def quoted(value: object, limit: int = QUOTE_LIMIT, *, quote: bool = True) -> str:
    """`value` for an error message, cut to `limit` characters, as Python's repr writes it (a line
    break shows as \\n, so the message stays one line); `quote=False` leaves out the quotes."""
    text = str(value)
    shown = repr(text[:limit]) if quote else repr(text[:limit])[1:-1]
    return shown if len(text) <= limit else f"{shown}... ({len(text):,} characters)"
