"""The `tomdistill` command line, one module per group of commands.

- shared.py: option types, the console and helpers every command uses (imports no CLI module);
- tables.py: terminal tables several commands print;
- scenarios.py, runs.py, elicit.py, training.py (with train_flags.py), evaluation.py,
  config_show.py, run.py, agents.py: the commands, as plain functions;
- app.py: the typer app, which registers every command, and `main`.

`tomdistill.cli:main` and `tomdistill.cli:entry_point` are the stable entry points.
"""

from __future__ import annotations

from .app import entry_point, main

__all__ = ["entry_point", "main"]
