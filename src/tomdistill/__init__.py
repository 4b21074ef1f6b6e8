"""tomdistill: distil a large LLM's strategic, theory-of-mind behaviour in social dilemmas into a
small LLM, and measure how far the transfer got.

The public API is re-exported here; see the README for the command line.
"""

from .agents import Agent, AgentDecision
from .config import Config, load_config
from .errors import ConfigError, LibraryError, TomdistillError
from .scenarios import (
    PROTOCOLS,
    Library,
    PastRound,
    Scenario,
    load_library,
    make_scenario,
    prompt_hash,
    render,
)
from .scenarios.parse import PARSER_VERSION, Decision, parse_decision, parse_reply

__version__ = "0.1.0"

__all__ = [
    "PARSER_VERSION",
    "PROTOCOLS",
    "Agent",
    "AgentDecision",
    "Config",
    "ConfigError",
    "Decision",
    "Library",
    "LibraryError",
    "PastRound",
    "Scenario",
    "TomdistillError",
    "__version__",
    "load_config",
    "load_library",
    "make_scenario",
    "parse_decision",
    "parse_reply",
    "prompt_hash",
    "render",
]
