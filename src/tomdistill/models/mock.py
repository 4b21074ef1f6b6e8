"""Scripted replies for unit tests of the engine's logic. Never used by the product path or demos.

Spec: `mock:` followed by comma-separated settings, e.g. `mock:rate=0.7,delay=0.01`.
    rate=P      reply "C" (or give 10) with probability P per sample, drawn from the sample's seed
    text=T      always reply T (URL-style escapes allowed, e.g. %0A for a new line)
    delay=S     sleep S seconds per reply (to test interruptions)
    fail_after=N  raise BackendError after N replies (to test a run that stops and resumes)
    noscore=1   refuse score mode, like a server without log-probs (to test the sampled fallback)
Whole reply texts (`score_texts`) score 1/2 per character: "a" has log-prob -ln 2, "yes" -3 ln 2.
A test can also pass a callable as `ModelOptions(extra={"script": fn})`; fn(request) -> reply text.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator, Sequence
from urllib.parse import unquote

import numpy as np

from ..errors import quoted
from .base import (
    BackendError,
    GenRequest,
    GenResult,
    Model,
    ModelInfo,
    ModelOptions,
    ModelSpecError,
    SamplingSettings,
    ScoreRequest,
    ScoreResult,
    TextScoreRequest,
    TextScoreResult,
    UnsupportedError,
    renormalise,
    tempered_logprobs,
)


def _setting(script: str, fields: dict[str, str], name: str, kind: type, default):
    """One numeric setting of the spec; a value that is no number (or a negative one) names the spec."""
    if name not in fields:
        return default
    try:
        value = kind(fields[name])
    except ValueError:
        value = None
    if value is None or not 0 <= value < float("inf"):
        raise ModelSpecError(f"model spec {quoted('mock:' + script)}: {name}={quoted(fields[name])} is not a "
                             f"{'whole ' if kind is int else ''}number from 0 on; settings are comma-separated, "
                             "e.g. mock:rate=0.7,delay=0.01")
    return value


class MockModel(Model):
    reply_prefixes = True  # a script sees request.prefix; the scripted reply is what follows it

    def __init__(self, script: str, options: ModelOptions) -> None:
        # Tests may pin the spec so that a failing and a healthy mock continue the same run.
        self.spec = options.extra.get("spec", f"mock:{script}")
        self.batch_size = options.batch_size or 4
        fields = dict(part.partition("=")[::2] for part in script.split(",") if part)
        self.rate = _setting(script, fields, "rate", float, 0.5)
        self.text = unquote(fields["text"]) if "text" in fields else None
        self.delay = _setting(script, fields, "delay", float, 0.0)
        self.fail_after = _setting(script, fields, "fail_after", int, None)
        self.scorable = fields.get("noscore") != "1"
        self.script = options.extra.get("script")
        self.calls = 0

    def info(self) -> ModelInfo:
        return ModelInfo(self.spec, "mock", {"rate": self.rate})

    def _reply(self, request: GenRequest) -> str:
        if self.script is not None:
            return self.script(request)
        if self.text is not None:
            return self.text
        cooperate = random.Random(request.seed).random() < self.rate
        if "fund" in request.messages[-1]["content"]:
            return f"{10 if cooperate else 0}\nMotivation: scripted."
        return f"{'C' if cooperate else 'D'}\nMotivation: scripted."

    def generate(self, requests: Sequence[GenRequest], settings: SamplingSettings) -> Iterator[GenResult]:
        for request in requests:
            if self.fail_after is not None and self.calls >= self.fail_after:
                raise BackendError(f"{self.spec}: scripted failure after {self.fail_after} replies")
            if self.delay:
                time.sleep(self.delay)
            self.calls += 1
            yield GenResult(request.key, self._reply(request), latency_s=self.delay, prompt_tokens=0, completion_tokens=1)

    def _check_scorable(self) -> None:
        if not self.scorable:
            raise UnsupportedError(f"{self.spec}: this model gives no log-probs, so it cannot be scored; "
                                   "use --mode sample")

    def score(self, requests: Sequence[ScoreRequest]) -> Iterator[ScoreResult]:
        """P(first action) = rate at temperature 1, tempered like a real model's softmax."""
        self._check_scorable()
        for request in requests:
            cands = request.candidates
            if len(cands) == 2:
                logp = tempered_logprobs(np.log([max(self.rate, 1e-300), max(1 - self.rate, 1e-300)]),
                                         request.temperature)
                raw = {c: float(np.exp(lp)) for c, lp in zip(cands, logp)}
            else:  # an amount: all mass on the candidate nearest rate * max
                target = round(self.rate * (len(cands) - 1))
                raw = {c: float(i == target) for i, c in enumerate(cands)}
            probs, mass = renormalise(raw, request.temperature)
            yield ScoreResult(request.key, probs, valid_mass=mass, latency_s=0.0)

    def score_texts(self, requests: Sequence[TextScoreRequest]) -> Iterator[TextScoreResult]:
        """Each character is one 'token' with probability 1/2 at every temperature (a two-way
        choice at every step), so the exact answer is known: shorter candidates are likelier."""
        self._check_scorable()
        for request in requests:
            self.calls += 1
            yield TextScoreResult(request.key, {c: -len(c) * math.log(2) for c in request.candidates}, latency_s=0.0)
