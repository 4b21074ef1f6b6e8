"""The paper's own in-sample counts (Lorè, Ilami & Heydari, arXiv 2408.05241), as reference data.

C answers out of 300 per cell, teacher (LLaMa2-70b) / base (LLaMa2-7b) / fine-tuned student.
Computed from these counts over 300, the mean paper improvement over the 20 cells is 46.3%
(the paper reports 46.6%, from per-cell rates whose valid-answer totals are not published).
Run `python -m tomdistill.evaluate.paper FILE.csv` to write them as a records file.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

SAMPLES_PER_CELL = 300
GAMES = ("prisoners_dilemma", "prisoners_delight", "stag_hunt", "snowdrift")
#: context -> one (teacher, base, student) count triple per game, in GAMES order.
PAPER_COUNTS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "IR": ((77, 254, 221), (106, 270, 225), (120, 262, 216), (109, 262, 214)),
    "biz": ((94, 252, 223), (137, 261, 221), (105, 257, 214), (104, 254, 223)),
    "friendsharing": ((246, 226, 225), (208, 237, 236), (196, 250, 214), (231, 244, 228)),
    "environment": ((125, 255, 190), (157, 263, 208), (139, 262, 196), (114, 245, 186)),
    "team": ((200, 220, 225), (230, 237, 223), (220, 225, 221), (202, 227, 209)),
}


def write_paper_records(path: Path | str) -> Path:
    """A records CSV with one row per sample: C for the first k of 300, D for the rest."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["role", "split", "context", "game", "answer"])
        for context, cells in PAPER_COUNTS.items():
            for game, counts in zip(GAMES, cells):
                for role, k in zip(("teacher", "base", "student"), counts):
                    writer.writerows([role, "train", context, game, "C" if i < k else "D"] for i in range(SAMPLES_PER_CELL))
    return path


if __name__ == "__main__":
    print(write_paper_records(sys.argv[1] if len(sys.argv) > 1 else "paper_counts.csv"))
