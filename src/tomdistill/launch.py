"""The console-script entry point, kept free of heavy imports.

Importing the CLI pulls in typer, rich, pydantic and the scenario library (a few hundred
milliseconds); a Ctrl-C or SIGTERM in that window would otherwise end in a traceback. Handlers
are installed first, and the import happens inside the same try as the command.
"""

from __future__ import annotations

import sys


def entry_point() -> None:
    """Run `tomdistill` with the process's arguments and exit with its code."""
    from .signals import install_handlers, stop_exit_code, stop_word

    try:
        install_handlers()
        from .cli import main

        code = main()
    except KeyboardInterrupt as exc:  # only reachable during start-up: main() handles it after
        print(f"{stop_word(exc)} during start-up; nothing was written.", file=sys.stderr)
        code = stop_exit_code(exc)
    sys.exit(code)
