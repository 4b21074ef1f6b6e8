"""`tomdistill runs export`: a stored run's samples as JSONL, Parquet or a `datasets` folder."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .errors import TomdistillError
from .outdirs import check_dir, check_new_file, replace_owned_dir, replacing_file
from .store import Run, Store

EXPORT_KIND = "export"  # the kind in the marker of an exported datasets folder


def run_rows(store: Store, run: Run) -> list[dict[str, Any]]:
    """Every sample of a run as a flat dict, with the run's settings alongside."""
    rows = []
    for sample in store.samples(run.id):
        row = asdict(sample)
        row.pop("run_id")
        row["probs"] = dict(sample.probs) if sample.probs else None
        row |= {"run": run.name, "model": run.model, "adapter": run.adapter, "protocol": run.protocol, "mode": run.mode}
        rows.append(row)
    return rows


#: Suffixes of file formats export does not write: `--out x.json` is a file the user expects, and
#: making a datasets folder named x.json instead would surprise them.
OTHER_FILE_SUFFIXES = frozenset((".json", ".ndjson", ".csv", ".tsv", ".txt", ".xlsx", ".xls", ".ods", ".arrow",
                                 ".feather", ".pkl", ".pickle", ".h5", ".hdf5", ".npy", ".npz", ".db", ".sqlite",
                                 ".sqlite3", ".gz", ".zip", ".tar", ".bz2", ".xz", ".zst", ".yaml", ".yml",
                                 ".toml", ".xml", ".html", ".md"))


def export_run(store: Store, run: Run, out: Path, *, force: bool = False) -> Path:
    """Write a run's samples as JSONL (`.jsonl`), Parquet (`.parquet`), or a `datasets` folder (other).

    An existing file is replaced only with `force`: a single file carries no mark saying tomdistill
    wrote it. A folder is replaced only when it is an earlier export (its `.tomdistill` marker);
    folders exported before markers existed are refused like any folder of the user's.
    """
    suffix = out.suffix.lower()  # x.JSONL is a JSONL file, not a folder of that name
    if suffix in OTHER_FILE_SUFFIXES:
        raise TomdistillError(f"{out}: tomdistill does not write {out.suffix} files; use .jsonl or .parquet, or a "
                              "folder name without a suffix for a datasets folder")
    folder = suffix not in (".jsonl", ".parquet")
    if folder:
        check_dir(out, EXPORT_KIND)
    else:
        check_new_file(out, force=force)
    rows = run_rows(store, run)
    if suffix == ".jsonl":
        with replacing_file(out) as tmp, tmp.open("w") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        return out
    try:
        import datasets
    except ModuleNotFoundError:
        raise TomdistillError("exporting to Parquet or a datasets folder needs: pip install 'tomdistill[data]'") from None
    # probs is a dict with varying keys per game; keep it as JSON text so all rows share one schema.
    table = datasets.Dataset.from_list([r | {"probs": json.dumps(r["probs"]) if r["probs"] else None} for r in rows])
    if folder:
        table.save_to_disk(str(replace_owned_dir(out, EXPORT_KIND, key=run.name)))
    else:
        with replacing_file(out) as tmp:
            table.to_parquet(str(tmp))
    return out
