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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

from ..errors import TomdistillError
from ..models.base import GenRequest, Model, SamplingSettings, ScoreRequest, draw_index
from ..models.registry import PROVIDERS, ModelOptions, load_model
from ..scenarios import Scenario, prompt_hash, render
from ..scenarios.custom import resolve_scenario
from ..scenarios.parse import parse_decision
from ..scenarios.render import PROTOCOLS, ChatMessage, PastRound, reason_first, reply_prefix
from ..scenarios.situate import situation
from .manifest import AGENT_FILE, check_base, read_manifest, verify_folder

MODES: tuple[str, ...] = ("sample", "score")


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
    keys, weights = list(probabilities), list(probabilities.values())
    return keys[draw_index(weights, random.Random(seed).random() * sum(weights))]


def _fresh_seed() -> int:
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
        **model_options: Any,
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
        if options is not None and model_options:
            raise TypeError("pass backend options either as options=ModelOptions(...) or as keywords, not both")
        options = options or ModelOptions(**model_options)
        path = Path(source)
        if path.is_dir():
            if (path / AGENT_FILE).is_file():
                return cls._from_agent_dir(path, mode, protocol, sampling, label, options)
            if (path / "adapter_config.json").is_file():
                return cls._from_adapter_dir(path, mode, protocol, sampling, label, options)
            raise TomdistillError(f"{path}: not an agent folder (no {AGENT_FILE}) nor an adapter folder "
                                  "(no adapter_config.json); make an agent with `tomdistill export`")
        text = str(source)
        provider, sep, _ = text.partition(":")
        if not sep or provider not in PROVIDERS:
            raise TomdistillError(f"{text}: no such agent folder, and not a model spec "
                                  f"(provider:id with provider one of {', '.join(PROVIDERS)})")
        model = load_model(text, options.for_mode(mode or "sample"))
        return cls(model, protocol=protocol or "answer", mode=mode or "sample", sampling=sampling,
                   label=label, source=text)

    @classmethod
    def _from_agent_dir(cls, folder: Path, mode, protocol, sampling, label, options: ModelOptions) -> Agent:
        manifest = read_manifest(folder)
        weights = verify_folder(folder, manifest)  # paths, symlinks and weight hashes, before any model loads
        chosen_mode = mode or manifest.mode
        options = options.for_mode(chosen_mode)
        if manifest.kind == "adapter":
            check_base(folder, manifest.base)
            model = load_model(manifest.base.spec, replace(options, adapter=weights))
        else:
            model = load_model(f"hf:{weights}", replace(options, adapter=None))
        if sampling is None:
            sampling = manifest.sampling if chosen_mode == manifest.mode else default_sampling(chosen_mode)
        return cls(model, protocol=protocol or manifest.protocol, mode=chosen_mode, sampling=sampling,
                   label=label or manifest.name, source=str(folder), manifest=manifest)

    @classmethod
    def _from_adapter_dir(cls, folder: Path, mode, protocol, sampling, label, options: ModelOptions) -> Agent:
        from ..train import adapter_student

        student = adapter_student(folder)
        if student is None:
            raise TomdistillError(f"{folder}: adapter folder without train_config.json, so its base model is unknown; "
                                  "export it with `tomdistill export --student SPEC`")
        model = load_model(student, replace(options.for_mode(mode or "score"), adapter=folder))
        return cls(model, protocol=protocol or "answer", mode=mode or "score", sampling=sampling,
                   label=label or folder.name, source=str(folder))

    # --- deciding --------------------------------------------------------------------------------

    def prompt(self, scenario: Scenario | str, history: Sequence[PastRound] | None = None) -> list[ChatMessage]:
        """The chat messages this agent is sent for `scenario` (and the earlier rounds, if any)."""
        return render(resolve_scenario(scenario), self.protocol, history)  # type: ignore[arg-type]

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
        resolved = [resolve_scenario(s) for s in scenarios]
        seeds_ = [(_fresh_seed() if s is None else int(s)) for s in (seeds or [None] * n)]
        rounds = histories or [None] * n
        prompts = [render(s, self.protocol, h) for s, h in zip(resolved, rounds)]  # type: ignore[arg-type]
        games = [situation(s, self.protocol, h) for s, h in zip(resolved, rounds)]
        hashes = [prompt_hash(m) for m in prompts]
        if self.mode == "sample":
            return self._sample(resolved, prompts, games, hashes, seeds_)
        return self._score(resolved, prompts, games, hashes, seeds_)

    def _sample(self, scenarios, prompts, games, hashes, seeds) -> list[AgentDecision]:
        requests = [GenRequest(key=i, messages=m, seed=s, situation=g)
                    for i, (m, g, s) in enumerate(zip(prompts, games, seeds))]
        out: list[AgentDecision | None] = [None] * len(requests)
        for result in self.model.generate(requests, self.sampling):
            i = result.key
            d = parse_decision(result.text, scenarios[i])
            out[i] = AgentDecision(action=d.action, motivation=d.motivation, raw=result.text,
                                   invalid_reason=d.invalid_reason, seed=seeds[i], prompt_hash=hashes[i])
        return out  # type: ignore[return-value]

    def _score(self, scenarios, prompts, games, hashes, seeds) -> list[AgentDecision]:
        from ..elicit import score_candidates

        prefix = reply_prefix(self.protocol)  # type: ignore[arg-type]
        requests = [ScoreRequest(key=i, messages=m, candidates=score_candidates(s), prefix=prefix,
                                 temperature=self.sampling.temperature, situation=g)
                    for i, (m, s, g) in enumerate(zip(prompts, scenarios, games))]
        out: list[AgentDecision | None] = [None] * len(requests)
        for result in self.model.score(requests):
            i = result.key
            picked = draw(result.probs, seeds[i]) if result.valid_mass > 0 else None
            action: str | float | None = picked
            if picked is not None and scenarios[i].numeric:
                action = float(picked)
            out[i] = AgentDecision(
                action=action, probabilities=dict(result.probs), seed=seeds[i], prompt_hash=hashes[i],
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

