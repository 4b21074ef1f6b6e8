"""tomdistill's own version, and those of Python and of the packages a result depends on, for
manifests and model cards. Modules read the version here, not from the package root: the root
re-exports the whole public API, so importing it from inside would tie every stage to all others."""

from __future__ import annotations

import platform
from importlib import metadata

__version__ = "0.1.0"  # the same as pyproject.toml's; a test keeps them equal

PACKAGES = ("tomdistill", "torch", "transformers", "peft", "trl", "datasets", "accelerate", "numpy", "scipy")


def package_versions() -> dict[str, str]:
    """{"python": ..., package: version} for the installed PACKAGES (missing ones are left out)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out
