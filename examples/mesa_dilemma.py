"""A Mesa model (`pip install 'tomdistill[mesa]'`): a grid of tomdistill agents playing a social
dilemma with their neighbours, every decision of a step asked in one batch.

Each cell holds one agent. In every step each agent chooses one action, which all its eight
neighbours (a torus) meet; its payoff is the sum over those neighbours. What an agent is shown
before deciding is the previous step as one earlier round: its own move and the move most of its
neighbours made (ties count as cooperation). All decisions of a step go to the player in one
`decide_many` call, so a LoRA student scores the whole grid in one batched forward pass, and a
policy table (`tomdistill policy ... --rounds 2`) answers without any model.

    python examples/mesa_dilemma.py --agent planted:default --size 10 --steps 20 --out mesa-grid.png
    python examples/mesa_dilemma.py --agent policy/ --scenario team/prisoners_dilemma

Writes a PNG: cooperation over the steps, and the grid's last moves.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import mesa
from mesa.discrete_space import CellAgent, OrthogonalMooreGrid

from tomdistill.agents import Agent
from tomdistill.agents.play import load_players
from tomdistill.errors import TomdistillError
from tomdistill.outdirs import check_new_file
from tomdistill.scenarios.custom import resolve_scenario
from tomdistill.scenarios.render import PastRound


class DilemmaAgent(CellAgent):
    """One cell's player: its last move and its payoff so far; the model asks for its decisions."""

    def __init__(self, model: DilemmaGrid, cell: Any) -> None:
        super().__init__(model)
        self.cell = cell
        self.move: str | None = None
        self.score = 0.0

    def neighbour_majority(self) -> str:
        moves = Counter(a.move for a in self.cell.neighborhood.agents)
        coop = self.model.cooperate
        other = next(x for x in self.model.game.actions if x != coop)
        return coop if moves[coop] >= moves[other] else other

    def history(self) -> list[PastRound] | None:
        if self.move is None:
            return None
        theirs = self.neighbour_majority()
        return [PastRound(self.move, theirs, float(self.model.game.payoffs[self.move][theirs][0]))]


class DilemmaGrid(mesa.Model):
    """`size` x `size` agents of one tomdistill player (an Agent, a policy table, a strategy)."""

    def __init__(self, player: Any, scenario: str, size: int = 10, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.player, self.scenario = player, resolve_scenario(scenario)
        self.game = self.scenario.game
        self.cooperate = self.game.cooperate or self.game.actions[0]
        self.grid = OrthogonalMooreGrid((size, size), torus=True, random=self.random)
        for cell in self.grid.all_cells.cells:
            DilemmaAgent(self, cell)
        self.decision_calls = 0
        self.datacollector = mesa.DataCollector({"cooperation": lambda m: m.cooperation()})

    def cooperation(self) -> float:
        moves = [a.move for a in self.agents if a.move is not None]
        return sum(m == self.cooperate for m in moves) / len(moves) if moves else float("nan")

    def step(self) -> None:
        agents = list(self.agents)
        seeds = [self.random.randrange(2**31) for _ in agents]
        decisions = self.player.decide_many([self.scenario] * len(agents), seeds=seeds,
                                            histories=[a.history() for a in agents])
        self.decision_calls += 1
        for agent, decision in zip(agents, decisions):
            # An unreadable reply (sample mode) keeps the agent's last move, else cooperation.
            agent.move = decision.action if decision.valid else (agent.move or self.cooperate)
        for agent in agents:
            agent.score += sum(self.game.payoffs[agent.move][n.move][0] for n in agent.cell.neighborhood.agents)
        self.datacollector.collect(self)


def run(player: Any, scenario: str, size: int, steps: int, seed: int) -> DilemmaGrid:
    model = DilemmaGrid(player, scenario, size=size, seed=seed)
    for _ in range(steps):
        model.step()
    return model


def plot(model: DilemmaGrid, out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = model.datacollector.get_model_vars_dataframe()["cooperation"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [1.6, 1]})
    left.plot(range(1, len(series) + 1), series * 100, marker="o", ms=3)
    left.set(xlabel="step", ylabel=f"% choosing {model.cooperate}", ylim=(0, 100), title="cooperation over time")
    size = model.grid.dimensions[0]
    image = [[0.0] * size for _ in range(size)]
    for agent in model.agents:
        x, y = agent.cell.coordinate
        image[y][x] = 1.0 if agent.move == model.cooperate else 0.0
    right.imshow(image, cmap="RdYlGn", vmin=0, vmax=1)
    right.set(title=f"last step ({model.cooperate} green)", xticks=[], yticks=[])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="planted:default",
                        help="policy table folder, agent/adapter folder, model spec or strategy (as for tomdistill play)")
    parser.add_argument("--scenario", default="team/prisoners_dilemma")
    parser.add_argument("--size", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", default="score", help="for model specs and adapter folders: score or sample")
    parser.add_argument("--out", type=Path, default=Path("mesa-grid.png"))
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    args = parser.parse_args(argv)
    try:  # checked before the run, so an existing picture is refused rather than overwritten
        check_new_file(args.out, force=args.force)
    except TomdistillError as exc:
        raise SystemExit(str(exc)) from None
    (player,) = load_players([args.agent], mode=args.mode).values()
    model = run(player, args.scenario, args.size, args.steps, args.seed)
    kind = "agent" if isinstance(player, Agent) else type(player).__name__
    plot(model, args.out, f"{args.agent} ({kind}) on a {args.size}x{args.size} torus, {args.scenario}")
    series = model.datacollector.get_model_vars_dataframe()["cooperation"]
    print(f"cooperation by step: {' '.join(f'{v:.2f}' for v in series)}; {model.decision_calls} decide_many calls; "
          f"plot: {args.out}")
    player.close()


if __name__ == "__main__":
    main()
