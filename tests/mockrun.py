"""The run config of a `tomdistill run` on mock models: every stage in seconds (tests stub training)."""

from __future__ import annotations


def mock_run_config(*, teacher: str = "mock:rate=0.3", student: str = "mock:rate=0.9", samples: int = 2,
                    bootstrap: int = 20, seed: int = 1) -> str:
    """TOML for three contexts' scenarios, a mock teacher and student, and a small bootstrap."""
    return f"""
seed = {seed}
[scenarios]
include = ["team/*", "sports/*", "community/*"]
[teacher]
model = "{teacher}"
samples = {samples}
[student]
model = "{student}"
[evaluate]
bootstrap = {bootstrap}
"""
