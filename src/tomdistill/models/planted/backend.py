"""The `planted:` backend: plays every scenario by the documented rule in `behaviour`, so its
exact choice distribution is known. A positive control for distillation recipes (can a student
recover planted game structure?), never a stand-in for a real teacher.

    planted:default       the parameters shipped in default.toml (fixed once; see that file)
    planted:FILE.toml     your own lambda, learning rate and (q, w) per context

Score mode returns the distribution itself (nothing is run). Sample mode draws the decision with
the sample's seed and writes the reply in the request's protocol; the same seed gives the same
reply. Requests must carry the game as data (`situation`); a free-text prompt is refused.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence

from ...errors import TomdistillError
from ...situations import Situation
from ..base import (
    GenRequest,
    GenResult,
    Model,
    ModelInfo,
    ModelOptions,
    ModelSpecError,
    SamplingSettings,
    ScoreRequest,
    ScoreResult,
    draw_index,
)
from .behaviour import assess
from .params import load_params
from .replies import compose_reply


class PlantedModel(Model):
    """The planted reference teacher; see the module docstring."""

    def __init__(self, ident: str, options: ModelOptions) -> None:
        if options.adapter is not None:  # an adapter would be recorded on the run yet change nothing
            raise ModelSpecError(f"planted:{ident} plays by its rule and takes no --adapter")
        self.source = load_params(ident)
        self.params = self.source.params
        self.spec = f"planted:{ident}"
        # Nothing to batch for speed; big windows only keep the engine's bookkeeping cheap.
        self.batch_size = options.batch_size or 64

    def info(self) -> ModelInfo:
        return ModelInfo(self.spec, "planted", {
            "params_file": self.source.name, "params_sha256": self.source.sha256,
            # What decides its answers: a run continued after the file changed is refused (store.open_run).
            "fingerprint": self.source.sha256,
            "params": self.params.model_dump(by_alias=True),
        })

    def _situation(self, request: GenRequest | ScoreRequest) -> Situation:
        if request.situation is None:
            raise TomdistillError(f"{self.spec}: this request is free text without the game as data; the planted "
                                  "teacher plays only scenarios (from the library or make_scenario)")
        return request.situation

    def generate(self, requests: Sequence[GenRequest], settings: SamplingSettings) -> Iterator[GenResult]:
        """One reply per request: the decision drawn with the request's seed, then its wording.
        `top_p` trims the distribution as nucleus sampling would; replies are always short, so
        `max_new_tokens` does not apply."""
        for request in requests:
            started = time.perf_counter()
            situation = self._situation(request)
            assessment = assess(situation, self.params, settings.temperature)
            # Seeded by the seed's text: random.Random(int) uses abs(seed), so -3 and 3 would draw alike.
            rng = random.Random(str(request.seed))
            choice = draw_index(nucleus(assessment.probs, settings.top_p), rng.random())
            text = compose_reply(situation, assessment, choice, rng)
            yield GenResult(request.key, text, latency_s=time.perf_counter() - started)

    def score(self, requests: Sequence[ScoreRequest]) -> Iterator[ScoreResult]:
        """The exact distribution over the request's candidates at its temperature."""
        for request in requests:
            started = time.perf_counter()
            assessment = assess(self._situation(request), self.params, request.temperature, request.candidates)
            yield ScoreResult(request.key, dict(zip(assessment.options, assessment.probs)), valid_mass=1.0,
                              latency_s=time.perf_counter() - started)


def nucleus(probs: Sequence[float], top_p: float) -> list[float]:
    """`probs` keeping only the likeliest options whose mass first reaches `top_p` (ties keep
    their order), renormalised; top_p = 1 keeps them all."""
    if top_p >= 1:
        return list(probs)
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    kept, mass = set(), 0.0
    for i in order:
        kept.add(i)
        mass += probs[i]
        if mass >= top_p:
            break
    return [p / mass if i in kept else 0.0 for i, p in enumerate(probs)]
