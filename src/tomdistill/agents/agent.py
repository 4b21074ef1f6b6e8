"""Agent: a model that decides in scenarios, for simulations. `decide()` one, `decide_many()` a batch.

An agent is a model (any spec, an exported agent folder, or a training adapter folder) plus how it
is asked (protocol) and how it decides (mode):

- sample mode generates a reply and reads it with the project's parser, giving the action and,
  for agents that write one, the motivation;
- score mode reads the exact probability of each action from one forward pass and draws the
  action from them with the decision's seed (argmax at temperature 0).

Scenarios go through the same rendering as elicitation, so an agent is asked exactly what it was
trained and evaluated on; repeated games add the earlier rounds to the prompt (`history`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from ..ask import Opened, Question, model_options, open_model, sample_answers, score_answers
from ..errors import TomdistillError
from ..models.base import MODES, Model, ModelOptions, SamplingSettings, seeded_index
from ..scenarios import Scenario
from ..scenarios.custom import resolve_scenario
from ..scenarios.protocols import PROTOCOLS, reason_first
from ..scenarios.render import PastRound
from ..situations import ChatMessage


@dataclass(frozen=True)
class AgentDecision:
    """What an agent decided in one scenario.

    `action` is an action label (or an amount in the donation game), None when the reply could not
    be read (`invalid_reason` says why). `probabilities` are the exact action probabilities in
    score mode (None in sample mode); `raw` is the reply text in sample mode.
    """

    action: str | float | None
    motivation: str | None = None
    probabilities: dict[str, float] | None = None
    raw: str | None = None
    invalid_reason: str | None = None
    seed: int | None = None
    prompt_hash: str | None = None

    @property
    def valid(self) -> bool:
        return self.invalid_reason is None and self.action is not None


def default_sampling(mode: str) -> SamplingSettings:
    """The paper's temperature 0.8 in both modes: in score mode the backend returns the action
    distribution at that temperature (the one `tomdistill run` evaluates at), and the decision is
    drawn from it. An exported agent keeps the temperature its behaviour card was measured at."""
    return SamplingSettings()


def draw(probabilities: dict[str, float], seed: int) -> str | None:
    """An action drawn from score-mode probabilities, which are already at the agent's temperature
    (the backend applies it: one place); at temperature 0 they put 1 on the likeliest action."""
    if not probabilities or sum(probabilities.values()) <= 0:
        return None
    return list(probabilities)[seeded_index(list(probabilities.values()), seed)]


def fresh_seed() -> int:
    return random.SystemRandom().randrange(2**31)


class Agent:
    """A model that decides in social-dilemma scenarios. Build one with `Agent.load(...)`."""

    def __init__(
        self,
        model: Model,
        *,
        protocol: str = "answer",
        mode: str = "sample",
        sampling: SamplingSettings | None = None,
        label: str | None = None,
        source: str | None = None,
        manifest: Any = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise TomdistillError(f"unknown protocol '{protocol}'; choose one of: {', '.join(PROTOCOLS)}")
        if mode not in MODES:
            raise TomdistillError(f"unknown decision mode '{mode}'; choose sample or score")
        if mode == "score" and reason_first(protocol):  # type: ignore[arg-type]
            raise TomdistillError(f"protocol '{protocol}' gives its decision after a sampled motivation; "
                                  "an agent plays it in sample mode only")
        self.model = model
        self.protocol = protocol
        self.mode = mode
        self.sampling = (sampling or default_sampling(mode)).for_protocol(protocol)
        self.label = label or model.spec
        self.source = source or model.spec
        #: The agent folder's AgentManifest (agent.json), when loaded from one.
        self.manifest = manifest

    # --- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        source: str | Path,
        *,
        mode: str | None = None,
        protocol: str | None = None,
        sampling: SamplingSettings | None = None,
        label: str | None = None,
        options: ModelOptions | None = None,
        **backend_options: Any,
    ) -> Agent:
        """An agent from an exported agent folder, a training adapter folder, or any model spec.

        - agent folder (`tomdistill export`): its weights, protocol, mode and sampling settings;
        - adapter folder (`tomdistill train`): the adapter on the student it was trained on;
        - model spec: `default:student`, `hf:FOLDER_OR_ID`, `openai:MODEL` (pass `base_url=...`),
          `planted:default` (the planted reference player, a positive control), ...

        `mode`, `protocol` and `sampling` override what the folder says (for specs the defaults
        are sample mode and the `answer` protocol). Other keywords (`base_url`, `device`, `dtype`,
        `batch_size`, ...) are backend options, as in ModelOptions.
        """
        if options is not None and backend_options:
            raise TypeError("pass backend options either as options=ModelOptions(...) or as keywords, not both")
        opened = open_model(source, mode=mode, options=options or model_options(**backend_options))  # type: ignore[arg-type]
        return cls.from_opened(opened, mode=mode, protocol=protocol, sampling=sampling, label=label)

    @classmethod
    def from_opened(cls, opened: Opened, *, mode: str | None = None, protocol: str | None = None,
                    sampling: SamplingSettings | None = None, label: str | None = None) -> Agent:
        """An agent around a model `open_model` loaded; arguments override what its source says.
        An exported agent keeps the sampling settings its behaviour card was measured with, unless
        it is asked in another mode than it was exported for."""
        chosen = mode or opened.mode or "sample"
        if sampling is None and opened.sampling is not None and chosen == opened.mode:
            sampling = opened.sampling
        return cls(opened.model, protocol=protocol or opened.protocol or "answer", mode=chosen, sampling=sampling,
                   label=label or opened.label, source=opened.source, manifest=opened.manifest)

    # --- deciding --------------------------------------------------------------------------------

    def prompt(self, scenario: Scenario | str, history: Sequence[PastRound] | None = None) -> list[ChatMessage]:
        """The chat messages this agent is sent for `scenario` (and the earlier rounds, if any)."""
        return Question.of(resolve_scenario(scenario), self.protocol, history).messages  # type: ignore[arg-type]

    def decide(self, scenario: Scenario | str, *, seed: int | None = None,
               history: Sequence[PastRound] | None = None) -> AgentDecision:
        """One decision. `scenario`: a Scenario (e.g. from make_scenario) or a built-in id.
        `seed` makes it reproducible (a fresh one is drawn and returned when None)."""
        return self.decide_many([scenario], seeds=None if seed is None else [seed],
                                histories=None if history is None else [history])[0]

    def decide_many(
        self,
        scenarios: Sequence[Scenario | str],
        *,
        seeds: Sequence[int | None] | None = None,
        histories: Sequence[Sequence[PastRound] | None] | None = None,
    ) -> list[AgentDecision]:
        """Decisions for many scenarios (or the same one many times), in order, through one
        batched generate() or score() call."""
        n = len(scenarios)
        for name, given in (("seeds", seeds), ("histories", histories)):
            if given is not None and len(given) != n:
                raise ValueError(f"{name} has {len(given)} entries for {n} scenarios")
        seeds_ = [(fresh_seed() if s is None else int(s)) for s in (seeds or [None] * n)]
        questions = [Question.of(resolve_scenario(s), self.protocol, h, seed)  # type: ignore[arg-type]
                     for s, h, seed in zip(scenarios, histories or [None] * n, seeds_)]
        if self.mode == "sample":
            return self._sample(questions)
        return self._score(questions)

    def _sample(self, questions: list[Question]) -> list[AgentDecision]:
        out: list[AgentDecision | None] = [None] * len(questions)
        for i, result, d in sample_answers(self.model, questions, self.sampling):
            out[i] = AgentDecision(action=d.action, motivation=d.motivation, raw=result.text,
                                   invalid_reason=d.invalid_reason, seed=questions[i].seed,
                                   prompt_hash=questions[i].prompt_hash)
        return out  # type: ignore[return-value]

    def _score(self, questions: list[Question]) -> list[AgentDecision]:
        out: list[AgentDecision | None] = [None] * len(questions)
        for i, result in score_answers(self.model, questions, self.sampling.temperature):
            q = questions[i]
            picked = draw(result.probs, q.seed) if result.valid_mass > 0 else None  # type: ignore[arg-type]
            action: str | float | None = picked
            if picked is not None and q.scenario.numeric:
                action = float(picked)
            out[i] = AgentDecision(
                action=action, probabilities=dict(result.probs), seed=q.seed, prompt_hash=q.prompt_hash,
                invalid_reason=None if picked is not None else "no probability on any action",
            )
        return out  # type: ignore[return-value]

    # --- bookkeeping -----------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """What identifies this agent in a population run's record."""
        out: dict[str, Any] = {"label": self.label, "kind": "agent", "source": self.source, "model": self.model.spec,
                               "protocol": self.protocol, "mode": self.mode,
                               "sampling": self.sampling.model_dump()}
        if self.manifest is not None:
            out["weights"] = {k: v.sha256 for k, v in self.manifest.files.items()}
        return out

    def close(self) -> None:
        self.model.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Agent({self.label!r}, mode={self.mode!r}, protocol={self.protocol!r})"

