"""Read a records file (CSV or JSONL) into rows of text, each with the file line it starts on.

Records come from spreadsheets and other people's scripts, so everything that would make a row
read differently from what the file says is an error naming the file and line: another encoding
than UTF-8 (a UTF-8 byte-order mark, as Excel writes, is fine), a repeated column or key, a CSV
quote that never closes, extra cells, a JSON object or list where text belongs, NaN or infinity.
Quoted CSV cells may span lines; line numbers are the file's own, where the record starts.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import TomdistillError, quoted
from ..jsonfiles import parse_json

#: The columns / keys a record may use; anything else in the file is not read.
COLUMNS = ("role", "split", "context", "game", "answer", "text")
REQUIRED = ("role", "split", "context", "game")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")

#: Row = (line where the record starts, column -> cell text or None).
Row = tuple[int, dict[str, str | None]]

# UTF-32 first: its little-endian mark begins with UTF-16's.
_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


class RecordsError(TomdistillError):
    def __init__(self, path: Path, line: int | None, message: str) -> None:
        super().__init__(f"{path}{f': line {line}' if line else ''}: {message}")


def read_records(path: Path) -> list[Row]:
    """The file's records in order, each cell as text (None where a row leaves it out)."""
    suffix = path.suffix.lower()
    if suffix not in (*JSON_SUFFIXES, ".csv"):
        raise RecordsError(path, None, "records must be a .csv or .jsonl file")
    text = _decode(path)
    rows = _json_rows(path, text) if suffix in JSON_SUFFIXES else _csv_rows(path, text)
    if not rows:
        raise RecordsError(path, None, "holds no records, only a header")
    return rows


def _decode(path: Path) -> str:
    if not path.is_file():
        raise RecordsError(path, None, "file not found")
    data = path.read_bytes()
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise RecordsError(path, None, f"the file is {name} text; save it as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RecordsError(path, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8") from None
    if "\x00" in text:
        # UTF-16 without a byte-order mark decodes as UTF-8 with a NUL after every ASCII letter.
        line = text[: text.index("\x00")].count("\n") + 1
        raise RecordsError(path, line, "NUL bytes in the file (UTF-16 text?); save it as UTF-8")
    if not text.strip():
        raise RecordsError(path, None, "the records file is empty")
    return text


# --- CSV ---------------------------------------------------------------------------------------


def _csv_rows(path: Path, text: str) -> list[Row]:
    # newline="" hands line breaks inside quoted cells to the csv module untouched.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[Row] = []
    end = 0  # the line the previous record ended on
    try:
        for cells in reader:
            start, end = end + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue  # blank lines and spreadsheets' trailing ",,,," rows hold nothing
            if header is None:
                header = _header(path, start, cells)
                continue
            if any(c.strip() for c in cells[len(header):]):
                raise RecordsError(path, start, f"{len(cells)} cells, but the header names {len(header)} columns")
            rows.append((start, {k: v for k, v in zip(header, cells) if k in COLUMNS}))
    except csv.Error as exc:
        raise RecordsError(path, end + 1, f"not valid CSV ({exc}; a quote opened here may never close)") from None
    return rows


def _header(path: Path, line: int, cells: list[str]) -> list[str]:
    names = [c.strip() for c in cells]
    for i, name in enumerate(names):
        if name and name in names[:i]:
            raise RecordsError(path, line, f"column {quoted(name)} appears twice in the header")
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise RecordsError(path, line, f"missing columns: {', '.join(missing)}")
    return names


# --- JSONL -------------------------------------------------------------------------------------


def _json_rows(path: Path, text: str) -> list[Row]:
    rows: list[Row] = []
    # Split on "\n" only: JSON strings may hold U+2028 and the like, which splitlines() breaks on.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = parse_json(line, f"{path}: line {number}", object_pairs_hook=_unique_keys)
        except _DuplicateKey as exc:
            raise RecordsError(path, number, f"key {quoted(exc.args[0])} appears twice") from None
        if not isinstance(obj, dict):
            raise RecordsError(path, number, "each line must be a JSON object")
        rows.append((number, {k: _json_text(path, number, k, v) for k, v in obj.items() if k in COLUMNS}))
    return rows


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _json_text(path: Path, line: int, key: str, value: Any) -> str | None:
    """A JSON value as the text a CSV cell would hold; objects, lists, booleans and NaN are refused."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = {dict: "an object", list: "a list", bool: "true/false"}.get(type(value), type(value).__name__)
        raise RecordsError(path, line, f"field {quoted(key)} holds {kind}; expected a string or a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordsError(path, line, f"field {quoted(key)} is {value}, not a finite number")
        return format(Decimal(repr(value)), "f")  # 1e-7 -> "0.0000001", not "1e-07"
    return str(value)
