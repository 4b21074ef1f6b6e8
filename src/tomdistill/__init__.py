"""tomdistill: distil a large LLM's strategic, theory-of-mind behaviour in social dilemmas into a
small LLM, and measure how far the transfer got.

The public API is re-exported here; see the README for the command line.
"""

from .config import Config, load_config
from .errors import ConfigError, LibraryError, TomdistillError
from .scenarios import PROTOCOLS, Library, Scenario, load_library, prompt_hash, render
from .scenarios.parse import PARSER_VERSION, Decision, parse_decision, parse_reply

__version__ = "0.1.0"

__all__ = [
    "PARSER_VERSION",
    "PROTOCOLS",
    "Config",
    "ConfigError",
    "Decision",
    "Library",
    "LibraryError",
    "Scenario",
    "TomdistillError",
    "__version__",
    "load_config",
    "load_library",
    "parse_decision",
    "parse_reply",
    "prompt_hash",
    "render",
]
