"""Benchmark 13: decisions per second for a simulation, three ways (issue 20).

- **one at a time**: `Agent.decide` per decision, the LoRA student in score mode (one forward pass
  per call);
- **batched**: `Agent.decide_many` over the whole population's decisions of a step;
- **policy table**: `PolicyTable.decide_many` (the same draws, no model) and `PolicyTable.sample`
  (numpy draws for a whole population of one scenario).

The agent is a trained adapter folder (default: the adapter of a `tomdistill run`); the scenarios
are the 20 train scenarios. Building the table is timed too: it is one batched score call.

    python benchmarks/agent_throughput.py --agent tomdistill-run/adapter
    python benchmarks/agent_throughput.py --agent planted:default      # no model: the planted player

Prints a Markdown table and writes benchmarks/results/agent_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tomdistill.agents import Agent
from tomdistill.agents.policy import build_policy_table
from tomdistill.scenarios import load_library

RESULTS = Path(__file__).parent / "results" / "agent_throughput.json"


def timed(work) -> tuple[float, object]:
    started = time.perf_counter()
    out = work()
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="tomdistill-run/adapter", help="adapter or agent folder, or a model spec")
    parser.add_argument("--one-at-a-time", type=int, default=20, help="decisions made with Agent.decide")
    parser.add_argument("--batch", type=int, default=200, help="decisions in one Agent.decide_many call")
    parser.add_argument("--table", type=int, default=100_000, help="decisions with PolicyTable.decide_many")
    parser.add_argument("--population", type=int, default=1_000_000, help="draws with PolicyTable.sample")
    args = parser.parse_args()
    scenarios = [s.id for s in load_library().scenarios("train")]
    load_s, agent = timed(lambda: Agent.load(args.agent, mode="score"))
    rows = []
    seconds, _ = timed(lambda: [agent.decide(scenarios[i % len(scenarios)], seed=i) for i in range(args.one_at_a_time)])
    rows.append(("Agent.decide, one at a time", args.one_at_a_time, seconds))
    batch = [scenarios[i % len(scenarios)] for i in range(args.batch)]
    seconds, _ = timed(lambda: agent.decide_many(batch, seeds=list(range(args.batch))))
    rows.append((f"Agent.decide_many, {args.batch} per call", args.batch, seconds))
    build_s, table = timed(lambda: build_policy_table(agent, scenarios))
    agent.close()
    many = [scenarios[i % len(scenarios)] for i in range(args.table)]
    seconds, _ = timed(lambda: table.decide_many(many, seeds=list(range(args.table))))
    rows.append(("PolicyTable.decide_many (same draws as the agent)", args.table, seconds))
    rng = np.random.default_rng(0)
    seconds, _ = timed(lambda: table.sample(scenarios[0], args.population, rng))
    rows.append(("PolicyTable.sample (one scenario, a population at once)", args.population, seconds))
    print(f"agent {args.agent}: load {load_s:.1f} s; table of {len(table)} rows built in {build_s:.1f} s\n")
    print("| way | decisions | seconds | decisions/s |\n|---|---|---|---|")
    for way, n, s in rows:
        print(f"| {way} | {n:,} | {s:.2f} | {n / s:,.0f} |")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"agent": args.agent, "load_s": load_s, "table_rows": len(table), "build_s": build_s,
                                   "rows": [{"way": w, "decisions": n, "seconds": s, "per_s": n / s} for w, n, s in rows]},
                                  indent=2))


if __name__ == "__main__":
    main()
