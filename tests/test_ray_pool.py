"""Replicas on Ray (models/ray_pool.py): a local Ray instance, the default student, two replicas,
the same samples as one local model with the same seeds."""

from __future__ import annotations

import pytest

from tomdistill.ask import model_options
from tomdistill.config import load_config
from tomdistill.elicit import elicit
from tomdistill.models.base import ModelOptions
from tomdistill.models.registry import load_model


class _FakeRay:
    """Enough of Ray's API for RayPool's logic: actors run in this process when their method is
    called, `wait` hands back the oldest pending result, errors come back wrapped as Ray does."""

    class exceptions:  # noqa: N801 - mirrors ray.exceptions
        class RayTaskError(Exception):
            def __init__(self, cause: BaseException) -> None:
                self.cause = cause

            def as_instanceof_cause(self) -> BaseException:
                return self.cause

    __version__ = "0.0-fake"

    def __init__(self) -> None:
        self.reserved: list[tuple[float, float]] = []
        self.calls: list[tuple[int, int]] = []  # (actor number, requests in the piece)

    def is_initialized(self) -> bool:
        return True

    def remote(self, num_cpus: float, num_gpus: float):
        fake = self

        def wrap(cls):
            class Handle:
                @staticmethod
                def remote(*args):
                    fake.reserved.append((num_cpus, num_gpus))
                    return _Actor(fake, len(fake.reserved) - 1, cls(*args[:3], None))
            return Handle
        return wrap

    def wait(self, refs, num_returns: int):
        return [refs[0]], refs[1:]

    def get(self, ref: _Ref):
        if isinstance(ref.value, BaseException):
            raise self.exceptions.RayTaskError(ref.value)
        return ref.value

    def cancel(self, ref) -> None:
        pass

    def kill(self, actor) -> None:
        pass


class _Actor:
    def __init__(self, fake: _FakeRay, number: int, replica) -> None:
        self.fake, self.number, self.replica = fake, number, replica

    def __getattr__(self, name: str):
        method = getattr(self.replica, name)

        class Call:
            @staticmethod
            def remote(*args):
                if args and isinstance(args[0], list):
                    self.fake.calls.append((self.number, len(args[0])))
                try:
                    return _Ref(method(*args))
                except Exception as exc:  # noqa: BLE001 - handed back as Ray hands a task's error
                    return _Ref(exc)
        return Call


class _Ref:
    """An object ref: hashable, holding the finished result (or the error)."""

    def __init__(self, value) -> None:
        self.value = value


def test_a_pool_spreads_pieces_over_its_replicas_and_raises_their_errors(monkeypatch, library) -> None:
    from tomdistill.ask import Question, sample_answers
    from tomdistill.models import ray_pool
    from tomdistill.models.base import BackendError, SamplingSettings

    fake = _FakeRay()
    monkeypatch.setattr(ray_pool, "_ray", lambda: fake)
    pool = load_model("mock:rate=1", ModelOptions(replicas=2, batch_size=3, gpus_per_replica=1, cpus_per_replica=2))
    assert fake.reserved == [(2.0, 1.0), (2.0, 1.0)] and pool.batch_size == 6
    questions = [Question.of(s, "answer", seed=i) for i, s in enumerate(library.scenarios("train")[:10])]
    answers = {k: d.action for k, _, d in sample_answers(pool, questions, SamplingSettings())}
    assert answers == dict.fromkeys(range(10), "C")
    assert sorted(n for _, n in fake.calls) == [1, 3, 3, 3] and {a for a, _ in fake.calls} == {0, 1}
    assert pool.info().details["replicas"] == 2
    failing = load_model("mock:fail_after=0", ModelOptions(replicas=2))
    with pytest.raises(BackendError):
        list(sample_answers(failing, questions, SamplingSettings()))


def test_a_pool_forwards_whole_text_scores(monkeypatch) -> None:
    import math

    from tomdistill.models import ray_pool
    from tomdistill.models.base import TextScoreRequest

    fake = _FakeRay()
    monkeypatch.setattr(ray_pool, "_ray", lambda: fake)
    pool = load_model("mock:rate=1", ModelOptions(replicas=2, batch_size=1))
    requests = [TextScoreRequest(i, [{"role": "user", "content": "x"}], ("a", "bb")) for i in range(3)]
    assert pool.reply_prefixes  # the replicas' backend takes reply prefixes, so the pool does
    scored = {r.key: r.logprobs for r in pool.score_texts(requests)}
    assert scored == {i: pytest.approx({"a": -math.log(2), "bb": -2 * math.log(2)}) for i in range(3)}
    assert {a for a, _ in fake.calls} == {0, 1}


ray = pytest.importorskip("ray")


def test_replica_settings_reach_the_model_options() -> None:
    teacher = load_config(None).teacher
    teacher = teacher.model_copy(update={"ray": teacher.ray.model_copy(update={"replicas": 3, "gpus_per_replica": 2})})
    options = model_options(teacher, teacher.ray)
    assert (options.replicas, options.gpus_per_replica, options.on_ray) == (3, 2.0, True)
    assert not ModelOptions().on_ray


@pytest.mark.e2e
def test_two_replicas_give_the_samples_of_one_local_model(store, library) -> None:
    scenarios = library.scenarios("train")[:4] + library.scenarios("heldout_pgg")
    runs = {}
    for name, options in (("local", ModelOptions(dtype="float32")),
                          ("ray", ModelOptions(dtype="float32", replicas=2, batch_size=2))):
        model = load_model("default:student", options)
        try:
            for mode, samples in (("sample", 3), ("score", 1)):
                elicit(store, model, scenarios, run_name=f"{name}-{mode}", mode=mode, samples=samples)
        finally:
            model.close()
        runs[name] = {mode: {(s.scenario, s.sample_index): s for s in store.samples(store.require_run(f"{name}-{mode}").id)}
                      for mode in ("sample", "score")}
    assert store.require_run("ray-sample").model_info["replicas"] == 2
    local, pooled = runs["local"], runs["ray"]
    assert local["sample"].keys() == pooled["sample"].keys() and len(local["sample"]) == 15
    for key, sample in local["sample"].items():  # batch_size 2: the replicas saw other batches than the local model
        assert (pooled["sample"][key].raw_text, pooled["sample"][key].seed) == (sample.raw_text, sample.seed)
    for key, sample in local["score"].items():  # fp32, other batches and thread counts: equal up to rounding
        assert pooled["score"][key].probs == pytest.approx(sample.probs, abs=1e-5)
    ray.shutdown()
