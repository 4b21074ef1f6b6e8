"""The versions of Python and of the packages a result depends on, for manifests and model cards."""

from __future__ import annotations

import platform
from importlib import metadata

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
