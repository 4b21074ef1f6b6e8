"""The README's test command is exactly what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"Install and run the tests.*?```bash\n(.+?)\n```", readme, re.DOTALL)
    assert block, "README lost its test command block"
    command = block.group(1).strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines


def test_readme_run_command_installs_then_runs_the_pipeline() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"Run the whole pipeline.*?```bash\n(.+?)\n```", readme, re.DOTALL)
    assert block, "README lost its run command block"
    command = block.group(1).strip()
    assert command.startswith("python3 -m venv .venv") and "pip install torch==2.13.0" in command
    assert command.endswith("tomdistill run")
