"""How much work one command may ask for: checked before anything is allocated.

A typo such as `-n 3000000000` or `--pairs 100000000` would otherwise build a to-do list in memory
until the process is killed; refusing it up front is one line naming the numbers that multiplied.
"""

from __future__ import annotations

from .errors import TomdistillError

#: Most items (samples, moves) one elicit or play call may ask for (the paper asked 300 x 53 samples).
MAX_ITEMS_PER_CALL = 10_000_000


def check_size(total: int, breakdown: str, unit: str, hint: str = "") -> None:
    """Raise unless `total` items fit; `breakdown` says what was multiplied, in the caller's own terms
    (its flags or config fields), e.g. "teacher.samples 4 x 53 scenarios"."""
    if total > MAX_ITEMS_PER_CALL:
        raise TomdistillError(f"{breakdown} = {total:,} {unit}; one run asks for at most "
                              f"{MAX_ITEMS_PER_CALL:,} {unit}{f' ({hint})' if hint else ''}")
