"""`tomdistill push`: a dataset, adapter or merged-model folder to the Hugging Face Hub or a local folder."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from .shared import console, json_option, print_json


def push(
    folder: Annotated[Path, typer.Argument(help="A folder tomdistill wrote: a dataset (`tomdistill dataset`), an adapter (`train`) or a merged model (`merge`).")],
    target: Annotated[str, typer.Argument(help="A Hub repo id (org/name; login with `hf auth login` or set HF_TOKEN), or a local folder path (./x, /x, ~/x) that receives exactly the files an upload would send.")],
    private: Annotated[bool, typer.Option(help="Create the Hub repo as private (when it does not exist yet).")] = False,
    as_json: Annotated[bool, json_option("folder, target, repo_type, files (the paths sent, relative to FOLDER), url "
                                         "(null for a local folder).")] = False,
) -> None:
    """Publish a dataset, adapter or merged model: its card and files, without checkpoints or internal copies."""
    from ..publish import push as run_push

    pushed = run_push(folder, target, private=private)
    if as_json:
        print_json(asdict(pushed))
        return
    where = pushed.url or pushed.target
    console.print(f"pushed {len(pushed.files)} files of {folder} to {where} ({pushed.repo_type})")
