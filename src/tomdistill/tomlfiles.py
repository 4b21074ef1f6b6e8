"""Read a user's TOML file (config, scenario library, planted parameters) with one set of rules.

A TOML file from a user may be missing, a folder, a FIFO (a read would wait forever), not UTF-8,
invalid, or nested so deeply that the parser's recursion gives out (RecursionError, which is
neither a ValueError nor an OSError). Each case becomes one error line naming the file, in the
error type the caller uses (ConfigError, LibraryError: both take the file and a message).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Builds the caller's one-line error from (file, message).
ErrorFactory = Callable[[Path, str], Exception]


def load_toml_file(path: Path, error: ErrorFactory, *, example: str = "a .toml file",
                   max_bytes: int | None = None) -> dict[str, Any]:
    """The parsed table of `path`, or `error(path, message)` raised for anything unreadable.

    `example` names what was expected in the folder / not-a-file messages; `max_bytes` refuses a
    larger file before it is parsed."""
    return load_toml_bytes(path, error, example=example, max_bytes=max_bytes)[1]


def load_toml_bytes(path: Path, error: ErrorFactory, *, example: str = "a .toml file",
                    max_bytes: int | None = None) -> tuple[bytes, dict[str, Any]]:
    """(the file's bytes, their parsed table): for callers that hash exactly what they parsed."""
    data = _read_bytes(path, error, example, max_bytes)
    try:
        return data, tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(path, f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                          "save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(path, f"not valid TOML: {exc}") from None
    except RecursionError:
        raise error(path, "not valid TOML: arrays or tables nested too deeply") from None


def _read_bytes(path: Path, error: ErrorFactory, example: str, max_bytes: int | None) -> bytes:
    if path.is_dir():
        raise error(path, f"is a folder, expected {example}")
    if path.exists() and not path.is_file():
        raise error(path, f"is not a regular file, expected {example}")
    try:
        with path.open("rb") as fh:
            data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise error(path, "file not found") from None
    except OSError as exc:
        raise error(path, f"cannot read it ({exc.strerror or exc})") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise error(path, f"larger than {max_bytes:,} bytes; is it the right file?")
    return data
