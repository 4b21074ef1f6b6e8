"""One road from a model source to a decision: open any model, put scenarios to it, read the answers.

Elicitation (which samples are missing, store what comes back) and `Agent` (decisions for
simulations) both go through here, so a model is loaded and asked the same way everywhere:

- `model_options` builds the backend options from settings (a config section, flags, keywords);
- `open_model` loads a model from a spec, a training adapter folder or an exported agent folder;
- `Question` is one scenario as a model is asked it (rendered messages, the game as data, a seed);
- `sample_answers`, `score_answers` and `reason_then_score` call the backend and read its replies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import TomdistillError
from .models.base import (
    ADAPTER_CONFIG,
    GenRequest,
    GenResult,
    Mode,
    Model,
    ModelOptions,
    SamplingSettings,
    ScoreRequest,
    ScoreResult,
)
from .models.registry import PROVIDERS, load_model, parse_spec
from .scenarios import Scenario, prompt_hash, render
from .scenarios.parse import ChoiceAnswer, Decision, answer_spec, parse_decision, reasoned_prefix
from .scenarios.protocols import Protocol, reply_prefix
from .scenarios.render import PastRound, num
from .scenarios.situate import situation
from .situations import ChatMessage, Situation

_OPTION_FIELDS = tuple(f.name for f in fields(ModelOptions))


def model_options(*settings: object, **values: Any) -> ModelOptions:
    """The backend options named in `settings` (objects with some ModelOptions fields, e.g. a
    config's teacher section and its `ray` table; later ones win) and in `values` (flags,
    keywords; they win over all), None meaning "not set".

    The one place options are built from settings, so a new backend option is added once. An
    unknown keyword is refused, naming it."""
    unknown = sorted(set(values) - set(_OPTION_FIELDS))
    if unknown:
        raise TypeError(f"unknown model option(s): {', '.join(unknown)}; known: {', '.join(_OPTION_FIELDS)}")
    chosen: dict[str, Any] = {}
    for given in settings:
        chosen |= {name: getattr(given, name) for name in _OPTION_FIELDS if hasattr(given, name)}
    chosen |= values
    if isinstance(chosen.get("base_url"), list):  # several servers (a repeated --base-url, a config list)
        chosen["base_url"] = tuple(chosen["base_url"])
    chosen = {k: v for k, v in chosen.items() if v is not None and v != ()}
    if "adapter" in chosen:
        chosen["adapter"] = Path(chosen["adapter"])
    return ModelOptions(**chosen)


# --- loading ---------------------------------------------------------------------------------


@dataclass
class Opened:
    """A loaded model and what its source says about how to ask it (None: the source says nothing)."""

    model: Model
    #: 'spec', 'adapter' (a training adapter folder) or 'agent' (an exported agent folder).
    kind: str
    source: str
    #: The adapter put on the model's base weights, if any (recorded with elicitation runs).
    adapter: Path | None = None
    label: str | None = None
    protocol: str | None = None
    mode: Mode | None = None
    sampling: SamplingSettings | None = None
    #: The agent folder's AgentManifest (agent.json), for 'agent' sources.
    manifest: Any = None


def source_kind(source: str | Path) -> str:
    """'agent', 'adapter' or 'spec' for a model source, refusing anything else with one line."""
    path = Path(source)
    if path.is_dir():
        from .agents.manifest import AGENT_FILE

        if (path / AGENT_FILE).is_file():
            return "agent"
        if (path / ADAPTER_CONFIG).is_file():
            return "adapter"
        raise TomdistillError(f"{path}: not an agent folder (no {AGENT_FILE}) nor an adapter folder "
                              f"(no {ADAPTER_CONFIG}); make an agent with `tomdistill export`")
    if ":" in str(source):
        parse_spec(str(source))  # one line naming what is wrong with the spec (e.g. an unknown provider)
    else:
        raise TomdistillError(f"{source}: no such agent folder, and not a model spec, which must look like provider:id "
                              f"(provider one of {', '.join(PROVIDERS)})")
    return "spec"


def open_model(source: str | Path, *, mode: Mode | None = None, options: ModelOptions | None = None) -> Opened:
    """Load a model from a spec (`default:student`, `hf:FOLDER`, `openai:MODEL`, ...), a training
    adapter folder (the adapter on the student it was trained on) or an exported agent folder (its
    weights, checked against agent.json first). `mode` is how it will be asked (default: what the
    folder says, else sample mode for specs and score mode for adapters); it picks the dtype."""
    options = options or ModelOptions()
    kind = source_kind(source)
    if kind != "spec" and options.adapter is not None:
        raise TomdistillError(f"{source} is a folder with its own weights; give an adapter either as the model "
                              "folder or as --adapter on a model spec, not both")
    if kind == "agent":
        return _open_agent(Path(source), mode, options)
    if kind == "adapter":
        return _open_adapter(Path(source), mode, options)
    return Opened(load_model(str(source), options.for_mode(mode or "sample")), "spec", str(source),
                  adapter=options.adapter)


def _open_agent(folder: Path, mode: Mode | None, options: ModelOptions) -> Opened:
    from .agents.manifest import check_base, read_manifest, verify_folder

    manifest = read_manifest(folder)
    weights = verify_folder(folder, manifest)  # paths, symlinks and weight hashes, before any model loads
    chosen: Mode = mode or manifest.mode
    options = options.for_mode(chosen)
    if manifest.kind == "adapter":
        check_base(folder, manifest.base)
        model, adapter = load_model(manifest.base.spec, replace(options, adapter=weights)), weights
    else:
        model, adapter = load_model(f"hf:{weights}", replace(options, adapter=None)), None
    return Opened(model, "agent", str(folder), adapter=adapter, label=manifest.name, protocol=manifest.protocol,
                  mode=manifest.mode, sampling=manifest.sampling, manifest=manifest)


def _open_adapter(folder: Path, mode: Mode | None, options: ModelOptions) -> Opened:
    from .train.folders import TRAIN_CONFIG, adapter_student

    student = adapter_student(folder)
    if student is None:
        raise TomdistillError(f"{folder}: adapter folder without {TRAIN_CONFIG}, so its base model is unknown; "
                              "give the student's spec as the model and this folder as its adapter "
                              "(`--model SPEC --adapter FOLDER`), or export it with `tomdistill export --student SPEC`")
    model = load_model(student, replace(options.for_mode(mode or "score"), adapter=folder))
    return Opened(model, "adapter", str(folder), adapter=folder, label=folder.name, mode="score")


# --- asking ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """One scenario as a model is asked it: the rendered messages, the game as data beside them,
    and the seed its reply is sampled with (scoring needs none). Build one with `Question.of`."""

    scenario: Scenario
    protocol: Protocol
    messages: list[ChatMessage]
    situation: Situation
    seed: int | None = None

    @classmethod
    def of(cls, scenario: Scenario, protocol: Protocol, history: Sequence[PastRound] | None = None,
           seed: int | None = None) -> Question:
        """`scenario` rendered for `protocol`, after the earlier rounds of a repeated game if any."""
        return cls(scenario, protocol, render(scenario, protocol, history), situation(scenario, protocol, history), seed)

    def with_seed(self, seed: int) -> Question:
        """The same question (rendered once) sampled with another seed."""
        return replace(self, seed=seed)

    @property
    def prompt_hash(self) -> str:
        return prompt_hash(self.messages)


def score_candidates(scenario: Scenario) -> tuple[str, ...]:
    """What score mode weighs: the action labels, or every whole amount for numeric games."""
    spec = answer_spec(scenario)
    if isinstance(spec, ChoiceAnswer):
        return spec.actions
    return tuple(num(v) for v in range(int(spec.low), int(spec.high) + 1))


def sample_answers(model: Model, questions: Sequence[Question],
                   settings: SamplingSettings) -> Iterator[tuple[int, GenResult, Decision]]:
    """(index, reply, what the parser read in it) for each question, as soon as each is ready."""
    for result in model.generate(_gen_requests(questions), settings):
        yield result.key, result, parse_decision(result.text, questions[result.key].scenario)


def score_answers(model: Model, questions: Sequence[Question], temperature: float,
                  prefixes: Sequence[str] | None = None) -> Iterator[tuple[int, ScoreResult]]:
    """(index, exact probability of each answer) for each question, at `temperature`, after the
    protocol's reply prefix or after each given prefix."""
    requests = [ScoreRequest(key=i, messages=q.messages, candidates=score_candidates(q.scenario),
                             prefix=reply_prefix(q.protocol) if prefixes is None else prefixes[i],
                             temperature=temperature, situation=q.situation)
                for i, q in enumerate(questions)]
    for result in model.score(requests):
        yield result.key, result


def reason_then_score(model: Model, questions: Sequence[Question],
                      settings: SamplingSettings) -> Iterator[tuple[int, GenResult, ScoreResult]]:
    """Reason first: sample a motivation per question, then score the decision right after it
    (the reply cut at its answer line, `reasoned_prefix`). Motivations are scored a batch at a
    time as they arrive, so results stream out while later motivations are still being written."""
    group = max(1, model.batch_size)
    ready: list[GenResult] = []
    for reply in model.generate(_gen_requests(questions), settings):
        ready.append(reply)
        if len(ready) >= group:
            yield from _score_after(model, questions, settings, ready)
            ready = []
    yield from _score_after(model, questions, settings, ready)


def _score_after(model: Model, questions: Sequence[Question], settings: SamplingSettings,
                 replies: list[GenResult]) -> Iterator[tuple[int, GenResult, ScoreResult]]:
    """The decision's distribution after each of `replies` (keys index `questions`)."""
    asked = [questions[r.key] for r in replies]
    prefixes = [reasoned_prefix(r.text, q.protocol) for r, q in zip(replies, asked)]
    for i, result in score_answers(model, asked, settings.temperature, prefixes):
        yield replies[i].key, replies[i], result


def _gen_requests(questions: Sequence[Question]) -> list[GenRequest]:
    if any(q.seed is None for q in questions):
        raise ValueError("a sampled question needs a seed")
    return [GenRequest(key=i, messages=q.messages, seed=q.seed, situation=q.situation)  # type: ignore[arg-type]
            for i, q in enumerate(questions)]
