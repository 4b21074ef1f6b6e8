"""The console-script entry point, kept free of heavy imports.

Importing the CLI pulls in typer, rich, pydantic and the scenario library (a few hundred
milliseconds); a Ctrl-C or SIGTERM in that window would otherwise end in a traceback. Handlers
first only remember a stop; once the imports are done, a remembered stop ends the process with
one line, and from then on Ctrl-C and SIGTERM raise (see tomdistill.signals).
"""

from __future__ import annotations

import sys


def entry_point() -> None:
    """Run `tomdistill` with the process's arguments and exit with its code."""
    from .signals import defer_stops, install_handlers, pending_stop, stop_exit_code, stop_word

    defer_stops()  # while importing, a stop is remembered (raising it there can be swallowed)
    stop: BaseException | None
    try:
        from .cli import main
    except KeyboardInterrupt as exc:  # Python's own Ctrl-C handler, before defer_stops took over
        stop = exc
    else:
        stop = pending_stop()
    if stop is not None:
        print(f"{stop_word(stop)} during start-up; nothing was written.", file=sys.stderr)
        sys.exit(stop_exit_code(stop))
    install_handlers()
    sys.exit(main())
