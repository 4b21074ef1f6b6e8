"""A model run as several replicas on a Ray cluster: each replica is a Ray actor holding one
backend (hf, default, vllm, ...), and this process hands them requests and gathers the results.

The driver stays the only writer of the store: replicas only answer requests, so elicitation
stores, resumes and seeds exactly as on one machine (a sample's seed travels with its request).
`ray.init()` starts a local Ray instance when no cluster address is given. Requests go out in
pieces of one replica batch, two pieces in flight per replica, and each finished piece frees its
replica for the next at once, so a slow replica delays only its own pieces.

Ray is an optional extra (`pip install 'tomdistill[ray]'`); it is imported when a pool is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from ..errors import TomdistillError
from .base import (
    GenRequest,
    GenResult,
    Model,
    ModelInfo,
    ModelOptions,
    SamplingSettings,
    ScoreRequest,
    ScoreResult,
    TextScoreRequest,
    TextScoreResult,
)

#: What builds a replica's backend: the registry's load_model, handed in (Ray ships it to the
#: actors by reference) so that this module does not import the registry that imports it.
Builder = Callable[[str, ModelOptions], Model]
#: Pieces queued per replica: one running, one ready, so a replica never waits on the driver.
IN_FLIGHT_PER_REPLICA = 2


class _Replica:
    """One backend inside a Ray actor (the class is wrapped with ray.remote when a pool is built)."""

    def __init__(self, build: Builder, spec: str, options: ModelOptions, threads: int | None) -> None:
        if threads:  # replicas sharing a machine split its cores instead of each taking all of them
            import torch

            torch.set_num_threads(threads)
        self.model = build(spec, options)

    def describe(self) -> tuple[ModelInfo, int, bool]:
        return self.model.info(), self.model.batch_size, self.model.reply_prefixes

    def generate(self, requests: list[GenRequest], settings: SamplingSettings) -> list[GenResult]:
        return list(self.model.generate(requests, settings))

    def score(self, requests: list[ScoreRequest]) -> list[ScoreResult]:
        return list(self.model.score(requests))

    def score_texts(self, requests: list[TextScoreRequest]) -> list[TextScoreResult]:
        return list(self.model.score_texts(requests))

    def close(self) -> None:
        self.model.close()


def _ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError:
        raise TomdistillError("replicas on Ray need the package 'ray': pip install 'tomdistill[ray]'") from None
    return ray


class RayPool(Model):
    """`options.replicas` replicas of the backend for `spec` (each made by `build`), on the Ray
    cluster at `options.ray_address` (a local instance when None)."""

    def __init__(self, spec: str, options: ModelOptions, build: Builder) -> None:
        ray = self._ray = _ray()
        if not ray.is_initialized():
            ray.init(address=options.ray_address, include_dashboard=False, log_to_driver=False)
        self.spec = spec
        inner = replace(options, replicas=1, ray_address=None)
        cpus = max(1.0, options.cpus_per_replica)
        remote = ray.remote(num_cpus=cpus, num_gpus=options.gpus_per_replica)(_Replica)
        self._actors = [remote.remote(build, spec, inner, int(cpus)) for _ in range(options.replicas)]
        described = [self._get(a.describe.remote()) for a in self._actors]
        self._info, batch, self.reply_prefixes = described[0]
        self.batch_size = batch * len(self._actors)
        self._piece = max(1, batch)

    def info(self) -> ModelInfo:
        details = self._info.details | {"replicas": len(self._actors), "ray": self._ray.__version__}
        return ModelInfo(self.spec, f"ray/{self._info.backend}", details)

    def generate(self, requests: Sequence[GenRequest], settings: SamplingSettings) -> Iterator[GenResult]:
        return self._spread(requests, lambda actor, piece: actor.generate.remote(piece, settings))

    def score(self, requests: Sequence[ScoreRequest]) -> Iterator[ScoreResult]:
        return self._spread(requests, lambda actor, piece: actor.score.remote(piece))

    def score_texts(self, requests: Sequence[TextScoreRequest]) -> Iterator[TextScoreResult]:
        return self._spread(requests, lambda actor, piece: actor.score_texts.remote(piece))

    def _spread(self, requests: Sequence[Any], call: Callable[[Any, list[Any]], Any]) -> Iterator[Any]:
        """Results of `requests` as their pieces finish, each replica kept busy until none are left."""
        pieces = [list(requests[i : i + self._piece]) for i in range(0, len(requests), self._piece)]
        pieces.reverse()  # popped from the end: sent in order
        running: dict[Any, Any] = {}  # object ref -> the actor computing it

        def send(actor: Any) -> None:
            if pieces:
                running[call(actor, pieces.pop())] = actor

        for actor in self._actors:
            for _ in range(IN_FLIGHT_PER_REPLICA):
                send(actor)
        try:
            while running:
                [done], _ = self._ray.wait(list(running), num_returns=1)
                actor = running.pop(done)
                send(actor)
                yield from self._get(done)
        finally:  # an error or a stop: drop what is still queued
            for ref in running:
                try:
                    self._ray.cancel(ref)
                except Exception:  # noqa: BLE001 - best effort: the actors are killed on close anyway
                    pass

    def _get(self, ref: Any) -> Any:
        """ray.get, raising a replica's own error (a BackendError, an UnsupportedError ...) as itself,
        so callers handle it as they would from a local backend."""
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayTaskError as exc:
            raise exc.as_instanceof_cause() from None

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
