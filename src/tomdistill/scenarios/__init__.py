"""Scenarios: games and social contexts as data, rendered into prompts and parsed back into decisions."""

from .library import Library, Scenario, load_library
from .render import PROTOCOLS, ChatMessage, Protocol, prompt_hash, render

__all__ = ["PROTOCOLS", "ChatMessage", "Library", "Protocol", "Scenario", "load_library", "prompt_hash", "render"]
