"""Simulation-ready agents: load a distilled student (or any model), decide() in scenarios, export
agent folders, and play populations of agents and fixed strategies against each other.

Only the light parts are imported here; `export`, `play` and `play_report` load on use.
"""

from .agent import Agent, AgentDecision
from .strategies import STRATEGIES, Player, Strategy, strategy

__all__ = ["STRATEGIES", "Agent", "AgentDecision", "Player", "Strategy", "strategy"]
