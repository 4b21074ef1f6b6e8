"""Simulation-ready agents: load a distilled student (or any model), decide() in scenarios, export
agent folders, and play populations of agents and fixed strategies against each other.

Names are imported on first use (PEP 562), as in the package root: `ask` reads agent folders with
`agents.manifest`, and importing that submodule runs this file, which must then not import
`agent` (which imports `ask`) eagerly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "Agent": "tomdistill.agents.agent",
    "AgentDecision": "tomdistill.agents.agent",
    "STRATEGIES": "tomdistill.agents.strategies",
    "Player": "tomdistill.agents.strategies",
    "Strategy": "tomdistill.agents.strategies",
    "strategy": "tomdistill.agents.strategies",
}

__all__ = ["STRATEGIES", "Agent", "AgentDecision", "Player", "Strategy", "strategy"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .agent import Agent, AgentDecision
    from .strategies import STRATEGIES, Player, Strategy, strategy
