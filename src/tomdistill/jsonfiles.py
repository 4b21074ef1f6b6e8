"""JSON that tomdistill reads back (pipeline.json, .tomdistill markers, agent.json, eval.json, records).

Any of these files may have been edited, damaged or replaced by someone else, so reading one
either gives the parsed value or raises one TomdistillError naming the file: unreadable, not
UTF-8, not JSON, or nested so deeply that the parser runs out of stack (`[[[[...` 100,000 deep
raises RecursionError, which is neither a ValueError nor an OSError). Callers that only ask
"is this tomdistill's file?" catch TomdistillError and answer no.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import TomdistillError

PairsHook = Callable[[list[tuple[str, Any]]], Any]


def parse_json(text: str | bytes, where: str, *, object_pairs_hook: PairsHook | None = None) -> Any:
    """`text` parsed as JSON; errors start with `where` (a file, a file and line)."""
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook)
    except RecursionError:
        raise TomdistillError(f"{where}: not valid JSON (lists or objects nested too deeply)") from None
    except UnicodeDecodeError:  # bytes: json detects UTF-8/16/32 itself
        raise TomdistillError(f"{where}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        at = f"line {exc.lineno} column {exc.colno}" if exc.lineno > 1 else f"column {exc.colno}"
        raise TomdistillError(f"{where}: not valid JSON ({exc.msg} at {at})") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise TomdistillError(f"{where}: not valid JSON ({exc})") from None


def load_json_file(path: Path, what: str) -> Any:
    """The JSON in `path`, `what` it is said to be (e.g. "agent.json", "pipeline state") in errors."""
    if path.exists() and not path.is_file():  # a folder, or a FIFO a read would wait on forever
        raise TomdistillError(f"{path}: is not a regular file, so not a {what}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TomdistillError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    return parse_json(data, str(path))
