"""Numbers as the pages and tables print them: a value, a percentage with its interval, a rate
with its sample size, a yes/no verdict, the temperature line.

Shared by the evaluation report (report.py), the console table of `tomdistill evaluate`, an
agent's behaviour card and the population report (agents/), so each prints a number one way.
Every function returns plain text without Markdown or HTML: callers in templates wrap them in
`pages.trusted`.
"""

from __future__ import annotations

from .schema import EvalReport, Rate


def format_value(value: float | None, digits: int = 1, suffix: str = "") -> str:
    """`value` with `digits` decimals and `suffix`, "–" for null."""
    return "–" if value is None else f"{value:.{digits}f}{suffix}"


def format_rate(rate: Rate) -> str:
    """A rate with its interval and sample size, or "(exact)" for a score-mode probability."""
    if rate.value is None:
        return "–"
    text = f"{rate.value:.1f}"
    if rate.low is not None and rate.high is not None:
        text += f" [{rate.low:.1f}, {rate.high:.1f}]"
    return text + (" (exact)" if rate.source == "score" else f" (n={rate.n})")


def format_estimate(value: float | None, ci: list[float] | None, suffix: str = "%") -> str:
    """A percentage with its interval: "41.7% [30.1, 52.3]", "41.7%" without one, "–" for null."""
    if value is None:
        return "–"
    return f"{value:.1f}{suffix}" + ("" if not ci else f" [{ci[0]:.1f}, {ci[1]:.1f}]")


def format_verdict(beats: bool | None) -> str:
    """"yes" / "no", or "–" when undecided or not decidable."""
    return "–" if beats is None else "yes" if beats else "no"


def temperature_line(report: EvalReport) -> str:
    """Which temperature the compared distributions are at."""
    if report.temperature is None:
        return "Temperature: – (not recorded: a records file, or an older eval.json)."
    return f"Temperature: {report.temperature:g} (every role sampled, or scored, at it)."
