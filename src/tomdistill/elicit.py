"""Ask a model about scenarios and keep every answer: scenarios x model x n -> the store.

This module decides which samples are missing and stores what comes back; asking the model and
reading its replies go through `tomdistill.ask`, the same road agents take.
Each finished sample is committed as soon as it arrives, keyed by (run, scenario, prompt hash,
sample index), so a crash or Ctrl-C loses nothing finished and re-running the same command asks
only for what is missing. Sample seeds derive from the run seed, the scenario and the index, so
a sample is reproducible whatever batch it lands in.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .ask import Question, reason_then_score, sample_answers, score_answers
from .limits import check_size
from .models.base import (
    MODES,
    SCORING_VERSION,
    GenResult,
    Mode,
    Model,
    SamplingSettings,
    ScoreResult,
    check_seed,
)
from .samples import current_samples, decision_fields, sample_rate
from .scenarios import Scenario
from .scenarios.parse import PARSER_VERSION, Decision, parse_decision
from .scenarios.protocols import Protocol, decision_prefix, reason_first, reply_prefix
from .store import Run, Sample, Store


def sample_seed(run_seed: int, scenario_id: str, index: int) -> int:
    """A 31-bit seed for one sample, independent of batching and of the other scenarios."""
    digest = hashlib.sha256(f"{run_seed}|{scenario_id}|{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def score_settings(temperature: float, protocol: Protocol, sampling: SamplingSettings | None = None) -> dict[str, Any]:
    """What a score run records: the scoring version, the temperature the distribution is at,
    and the reply prefix it conditions on; for a reason-first protocol also the decision prefix
    and the settings its motivations are sampled with. Runs that differ in any of them are not
    comparable."""
    out: dict[str, Any] = {"scoring": SCORING_VERSION, "temperature": temperature, "reply_prefix": reply_prefix(protocol)}
    if reason_first(protocol):
        # The parser version: its answer-line rule decides where a motivation is cut for scoring.
        out["reasoned"] = {"decision_prefix": decision_prefix(protocol), "parser": PARSER_VERSION,
                           "sampling": (sampling or SamplingSettings()).model_dump()}
    return out


def records_per_scenario(protocol: Protocol, mode: Mode, samples: int) -> int:
    """Stored records per scenario: every sample; in score mode one distribution, or one per
    sampled motivation for a reason-first protocol (the cell's distribution is their mean)."""
    return samples if mode == "sample" or reason_first(protocol) else 1


@dataclass
class ScenarioSummary:
    """Per scenario: how many samples, how many parsed, and the share of C (or mean amount)."""

    scenario: str
    split: str
    n: int
    valid: int
    rate: float | None
    numeric: bool = False
    #: Score mode: mean probability mass the model put on valid answers (1.0 = all of it).
    valid_mass: float | None = None

    @property
    def valid_share(self) -> float:
        return self.valid / self.n if self.n else 0.0


@dataclass
class ElicitSummary:
    run: Run
    requested: int
    new: int
    elapsed_s: float
    scenarios: list[ScenarioSummary] = field(default_factory=list)
    retries: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class _Todo:
    """One missing sample: the question (seeded for its index) and where it is stored."""

    question: Question
    prompt_hash: str
    index: int

    @property
    def scenario(self) -> Scenario:
        return self.question.scenario


def cooperation_rate(scenario: Scenario, samples: Sequence[Sample]) -> float | None:
    """Share of the cooperative action among valid samples, or the mean amount; score-mode samples
    contribute their probability (or expected amount) instead of a single draw."""
    values = [sample_rate(scenario, s) for s in samples if s.valid]
    return statistics.fmean(values) if values else None


def summarize(store: Store, run: Run, scenarios: Sequence[Scenario]) -> list[ScenarioSummary]:
    """Per-scenario counts and rates for the current wording of each scenario."""
    out = []
    for scenario in scenarios:
        samples = current_samples(store, run, scenario)
        out.append(
            ScenarioSummary(scenario.id, scenario.split, len(samples), sum(s.valid for s in samples),
                            cooperation_rate(scenario, samples), scenario.numeric,
                            statistics.fmean(masses) if (masses := [s.valid_mass for s in samples if s.valid_mass is not None]) else None)
        )
    return out


def elicit(
    store: Store,
    model: Model,
    scenarios: Sequence[Scenario],
    *,
    run_name: str,
    protocol: Protocol = "answer",
    mode: Mode = "sample",
    samples: int = 1,
    settings: SamplingSettings | None = None,
    seed: int = 0,
    adapter: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ElicitSummary:
    """Fill run `run_name` with `samples` answers per scenario (1 probability record in score mode;
    `samples` sampled motivations, each with the distribution of the decision after it, in score
    mode with a reason-first protocol).

    `progress(done, total)` is called after each stored sample. Raises BackendError when the
    backend gives up; everything finished before that is already stored.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if not scenarios:
        raise ValueError("no scenarios to ask about")
    check_seed(seed)
    per_scenario = records_per_scenario(protocol, mode, samples)
    _check_size(per_scenario, len(scenarios))
    settings = (settings or SamplingSettings()).for_protocol(protocol)
    run = _open_run(store, model, run_name, protocol, mode, settings, seed, adapter)
    todo = _missing(store, run, scenarios, protocol, per_scenario)
    total = per_scenario * len(scenarios)
    done = total - len(todo)
    started = time.perf_counter()
    if progress:
        progress(done, total)
    # The whole to-do list goes to the backend as one stream: a finished request frees its slot
    # for the next at once (openai: a fixed number in flight; hf: the continuous-batching loop),
    # so one slow reply delays only itself, and each sample is stored as it arrives.
    ask = _sample_stream if mode == "sample" else _reasoned_stream if reason_first(protocol) else _score_stream
    new = 0
    try:
        for stored in ask(store, model, run, todo, settings):
            new += stored
            done += stored
            if progress:
                progress(done, total)
    finally:  # also when the backend gives up: the samples stored so far came from these models
        _record_served_models(store, run, model)
    return ElicitSummary(
        run=run,
        requested=total,
        new=new,
        elapsed_s=time.perf_counter() - started,
        scenarios=summarize(store, run, scenarios),
        retries=getattr(model, "retries", 0),
        retry_reasons=dict(getattr(model, "retry_reasons", {})),
    )


def _open_run(store: Store, model: Model, name: str, protocol: Protocol, mode: Mode, settings: SamplingSettings,
              seed: int, adapter: str | None) -> Run:
    """The run row: created, or reused when its settings match (what a score run records is
    `score_settings`: what makes two score runs comparable)."""
    info = model.info()
    return store.open_run(
        name, model=model.spec, adapter=adapter, protocol=protocol, mode=mode,
        settings=settings.model_dump() if mode == "sample" else score_settings(settings.temperature, protocol, settings),
        seed=seed, model_info=info.details | {"backend": info.backend},
    )


def _record_served_models(store: Store, run: Run, model: Model) -> None:
    """Add the model names the server said answered (its replies' `model` field) to the run's
    model_info, so a run can be traced to what really answered behind an alias like gpt-4o."""
    served = set(getattr(model, "served_models", ()))
    known = {name for name in run.model_info.get("served_models", []) if isinstance(name, str)}
    if served - known:
        store.update_model_info(run.id, run.model_info | {"served_models": sorted(served | known)})


def _check_size(per_scenario: int, scenarios: int) -> None:
    # Before the to-do list is built. Worded without a flag name: the number may come from
    # --samples or from a config file's teacher.samples / student.samples.
    check_size(per_scenario * scenarios, f"{per_scenario:,} samples per scenario x {scenarios:,} scenarios", "samples",
               "the paper used 300 per scenario")


def _missing(store: Store, run: Run, scenarios: Sequence[Scenario], protocol: Protocol, n: int) -> list[_Todo]:
    todo: list[_Todo] = []
    for scenario in scenarios:
        question = Question.of(scenario, protocol)  # rendered once per scenario, seeded per sample
        digest = question.prompt_hash
        store.add_prompt(digest, question.messages)
        have = store.done_indexes(run.id, scenario.id, digest)
        todo.extend(_Todo(question.with_seed(sample_seed(run.seed, scenario.id, i)), digest, i)
                    for i in range(n) if i not in have)
    return todo


def _sample_stream(store: Store, model: Model, run: Run, todo: list[_Todo], settings: SamplingSettings):
    for key, result, decision in sample_answers(model, [t.question for t in todo], settings):
        yield store.add_samples([_sampled(run, todo[key], result, decision)])


def _sampled(run: Run, t: _Todo, result: GenResult, decision: Decision) -> Sample:
    """The stored record of one sampled reply."""
    return Sample(
        run_id=run.id, scenario=t.scenario.id, split=t.scenario.split, prompt_hash=t.prompt_hash,
        sample_index=t.index, seed=t.question.seed, raw_text=result.text, probs=None, valid_mass=None,
        latency_s=result.latency_s, prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
        **decision_fields(decision, t.scenario.numeric),
    )


def _scored_sample(run: Run, t: _Todo, result: ScoreResult, reasoning: GenResult | None = None) -> Sample:
    """The stored record of one distribution; for reason-first scoring also the sampled reply it followed."""
    motivation = parse_decision(reasoning.text, t.scenario).motivation if reasoning else None
    return Sample(
        run_id=run.id, scenario=t.scenario.id, split=t.scenario.split, prompt_hash=t.prompt_hash,
        sample_index=t.index, seed=t.question.seed if reasoning else None, raw_text=reasoning.text if reasoning else None,
        action=None, value=sum(float(k) * p for k, p in result.probs.items()) if t.scenario.numeric else None,
        motivation=motivation,
        invalid_reason=result.invalid_reason or (None if result.valid_mass > 0 else "no probability on any action"),
        probs=result.probs, valid_mass=result.valid_mass, parser_version=PARSER_VERSION,
        latency_s=result.latency_s + (reasoning.latency_s if reasoning else 0.0), prompt_tokens=result.prompt_tokens,
        completion_tokens=reasoning.completion_tokens if reasoning else 0,
    )


def _score_stream(store: Store, model: Model, run: Run, todo: list[_Todo], settings: SamplingSettings):
    for key, result in score_answers(model, [t.question for t in todo], settings.temperature):
        yield store.add_samples([_scored_sample(run, todo[key], result)])


def _reasoned_stream(store: Store, model: Model, run: Run, todo: list[_Todo], settings: SamplingSettings):
    """Reason first: a sampled motivation per to-do item, then the decision's distribution right
    after it. Averaging these over a cell's motivations gives its exact reason-first P(action) up to
    the choice of motivations (far less noise than sampled answers)."""
    for key, reply, result in reason_then_score(model, [t.question for t in todo], settings):
        yield store.add_samples([_scored_sample(run, todo[key], result, reply)])
