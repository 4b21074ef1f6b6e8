"""`tomdistill push`: a dataset, adapter or merged-model folder to the Hugging Face Hub or a local folder."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from .shared import console, json_option, print_json


def push(
    folder: Annotated[Path, typer.Argument(help="A folder tomdistill wrote: a dataset (`tomdistill dataset`), an adapter (`train`) or a merged model (`merge`).")],
    repo_id: Annotated[str | None, typer.Option("--repo-id", help="Hub repo to upload to, org/name (created when missing; log in with `hf auth login` or set HF_TOKEN).")] = None,
    to: Annotated[Path | None, typer.Option("--to", help="Instead of uploading: a local folder (new, or from an earlier push) that receives exactly the files an upload would send.")] = None,
    private: Annotated[bool, typer.Option(help="Create the Hub repo as private (when it does not exist yet).")] = False,
    as_json: Annotated[bool, json_option("folder, target, repo_type, files (the paths sent, relative to FOLDER), url "
                                         "(null for a local folder).")] = False,
) -> None:
    """Publish a dataset, adapter or merged model: its card and files, without checkpoints or internal copies.

    Example: tomdistill push data/ --repo-id me/tomdistill-data   (or --to ./to-upload/ to look first)
    """
    from ..publish import push as run_push

    pushed = run_push(folder, repo_id=repo_id, to=to, private=private)
    if as_json:
        print_json(asdict(pushed))
        return
    where = pushed.url or pushed.target
    console.print(f"pushed {len(pushed.files)} files of {folder} to {where} ({pushed.repo_type})")
