"""tomdistill: distil a large LLM's strategic, theory-of-mind behaviour in social dilemmas into a
small LLM, and measure how far the transfer got.

The public API is re-exported here; see the README for the command line. Names are imported on
first use (PEP 562), so `import tomdistill` and the console script start without loading
pydantic, the scenario library or the agent code: a Ctrl-C during start-up then meets the
command's own handler instead of a half-imported package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports
from .versions import __version__

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "Agent": "tomdistill.agents",
    "AgentDecision": "tomdistill.agents",
    "Config": "tomdistill.config",
    "load_config": "tomdistill.config",
    "ConfigError": "tomdistill.errors",
    "LibraryError": "tomdistill.errors",
    "TomdistillError": "tomdistill.errors",
    "PROTOCOLS": "tomdistill.scenarios",
    "Library": "tomdistill.scenarios",
    "PastRound": "tomdistill.scenarios",
    "Scenario": "tomdistill.scenarios",
    "load_library": "tomdistill.scenarios",
    "make_scenario": "tomdistill.scenarios",
    "prompt_hash": "tomdistill.scenarios",
    "render": "tomdistill.scenarios",
    "PARSER_VERSION": "tomdistill.scenarios.parse",
    "Decision": "tomdistill.scenarios.parse",
    "parse_decision": "tomdistill.scenarios.parse",
    "parse_reply": "tomdistill.scenarios.parse",
}

__all__ = [  # written out (not derived from _EXPORTS) so linters and IDEs read it; a test keeps both equal
    "PARSER_VERSION", "PROTOCOLS", "Agent", "AgentDecision", "Config", "ConfigError", "Decision", "Library",
    "LibraryError", "PastRound", "Scenario", "TomdistillError", "__version__", "load_config", "load_library",
    "make_scenario", "parse_decision", "parse_reply", "prompt_hash", "render",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .agents import Agent, AgentDecision
    from .config import Config, load_config
    from .errors import ConfigError, LibraryError, TomdistillError
    from .scenarios import PROTOCOLS, Library, PastRound, Scenario, load_library, make_scenario, prompt_hash, render
    from .scenarios.parse import PARSER_VERSION, Decision, parse_decision, parse_reply
