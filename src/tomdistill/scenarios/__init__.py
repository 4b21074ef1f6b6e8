"""Scenarios: games and social contexts as data, rendered into prompts and parsed back into decisions."""

from .custom import make_scenario
from .library import Library, Scenario, load_library
from .render import PROTOCOLS, ChatMessage, PastRound, Protocol, prompt_hash, render

__all__ = [
    "PROTOCOLS", "ChatMessage", "Library", "PastRound", "Protocol", "Scenario", "load_library", "make_scenario",
    "prompt_hash", "render",
]
