"""Where the built-in library lives: the data files shipped inside the package (library/).

Its own module because both the library loader (games, contexts ...) and the protocol texts read
files from there, and neither should import the other to find them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def builtin_library_dir() -> Path:
    """Folder of the data files shipped inside the package."""
    return Path(str(resources.files("tomdistill.scenarios") / "library"))
