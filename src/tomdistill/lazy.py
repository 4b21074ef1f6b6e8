"""Names a package re-exports, imported on first use (PEP 562).

The package root and `agents` both re-export names from their submodules without importing
those at start-up: the root so that `import tomdistill` and the console script start light, and
`agents` because `ask` reads agent folders through `agents.manifest`, whose import runs
`agents/__init__`, which must then not import `agent` (which imports `ask`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str],
                 public: Sequence[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module `__getattr__` and `__dir__` of `package`: a name in `exports` (name -> module
    that defines it) is imported when first read, then kept in the package's namespace."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return list(public)

    return __getattr__, __dir__
