"""The README's test command is exactly what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def readme_command(heading: str) -> str:
    """The command in the first bash block after `heading` in the README."""
    block = re.search(rf"{heading}.*?```bash\n(.+?)\n```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert block, f"README lost its command block after {heading!r}"
    return block.group(1).strip()


def test_ci_runs_the_readme_test_command() -> None:
    command = readme_command("Install and run the tests")
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines


def test_readme_test_command_installs_chromium_where_missing() -> None:
    # tests/test_report_browser.py needs a browser; Debian's package, only where none is on the PATH.
    install, _, rest = readme_command("Install and run the tests").partition("; } && ")
    assert install.startswith("{ command -v chromium || $(command -v sudo >/dev/null && echo sudo -n) sh -c 'apt-get update")
    assert "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium'" in install
    assert rest.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && ")
    assert rest.endswith(" && pytest")


def test_readme_run_command_installs_then_runs_the_pipeline() -> None:
    command = readme_command("Run the whole pipeline")
    assert command.startswith("python3 -m venv .venv") and "pip install torch==2.13.0" in command
    assert command.endswith("tomdistill run")
