"""The `tomdistill` command line, one module per group of commands.

- shared.py: option types, the console and helpers every command uses (imports no CLI module);
- tables.py: terminal tables several commands print;
- scenarios.py, runs.py, elicit.py, training.py (with train_flags.py), evaluation.py,
  config_show.py, run.py, agents.py: the commands, as plain functions;
- app.py: the typer app, which registers every command, and `main`.

`tomdistill.cli:main` runs the command line in-process (tests, scripts); the console script is
`tomdistill.launch:entry_point`, which imports this package only once its signal handling is set.
"""

from __future__ import annotations

from .app import main

__all__ = ["main"]
