"""Scenarios: games and social contexts as data, rendered into prompts and parsed back into decisions."""

from .custom import make_scenario
from .library import Library, load_library
from .protocols import PROTOCOLS, Protocol
from .render import ChatMessage, PastRound, prompt_hash, render
from .spec import Scenario

__all__ = [
    "PROTOCOLS", "ChatMessage", "Library", "PastRound", "Protocol", "Scenario", "load_library", "make_scenario",
    "prompt_hash", "render",
]
