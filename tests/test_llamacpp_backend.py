"""The llamacpp backend: its logic against a stand-in llama_cpp module, then the real library.

CI does not install llama-cpp-python (a native build of about 7 minutes), so the unit tests run
on a fake `llama_cpp` put into sys.modules: a character-level "model" whose next-token
distribution depends on the last character, enough to check seeds, settings, KV-cache reuse and
the score-mode arithmetic. The tests marked `llamacpp` run the real embedded student and skip
where llama_cpp is not installed: `pytest -m llamacpp tests/test_llamacpp_backend.py`.
"""

from __future__ import annotations

import math
import sys
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest

from tomdistill.errors import TomdistillError
from tomdistill.models import llamacpp
from tomdistill.models.base import GenRequest, ModelOptions, ModelSpecError, SamplingSettings, ScoreRequest
from tomdistill.models.registry import load_model
from tomdistill.scenarios import render

MESSAGES = [{"role": "system", "content": "Pick C or D."}, {"role": "user", "content": "Your move?"}]
VOCAB = 128  # token id = ASCII code

#: last character -> probabilities of some next characters; the rest of the mass is spread evenly.
TABLE = {
    ">": {"C": 0.3, " ": 0.2, "D": 0.1, "3": 0.15, "1": 0.05},
    " ": {"C": 0.5, "D": 0.25},
    "1": {"0": 0.4, "\n": 0.3, "5": 0.1},
    "3": {"\n": 0.8, ".": 0.1},
    "0": {"\n": 0.9},
}


def prob(last: str, token: str) -> float:
    row = TABLE.get(last, {})
    rest = (1.0 - sum(row.values())) / (VOCAB - len(row))
    return row.get(token, rest)


class FakeFormatter:
    def __init__(self, template: str, eos_token: str, bos_token: str) -> None:
        self.template = template

    def __call__(self, messages: list[dict]) -> SimpleNamespace:
        return SimpleNamespace(prompt="".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>")


class FakeLlama:
    """The parts of llama_cpp.Llama the backend uses, over a character-level toy model."""

    instances: ClassVar[list[FakeLlama]] = []

    def __init__(self, model_path: str, **kwargs) -> None:
        self.model_path, self.kwargs = model_path, kwargs
        self.metadata = {"tokenizer.chat_template": "{{ messages }}"}
        self.input_ids = np.zeros(kwargs["n_ctx"], dtype=np.intc)
        self.n_tokens = 0
        self.evaluated: list[int] = []  # tokens decoded per eval() call
        self.completions: list[dict] = []
        self.closed = False
        self.logits = np.zeros(VOCAB)
        FakeLlama.instances.append(self)

    @property
    def ctx(self) -> FakeLlama:
        return self

    def n_vocab(self) -> int:
        return VOCAB

    def token_eos(self) -> int:
        return 0

    def token_bos(self) -> int:
        return -1

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        assert not add_bos
        return list(text)

    def detokenize(self, tokens: list[int], special: bool = False) -> bytes:
        return bytes(tokens)

    def eval(self, tokens: list[int]) -> None:
        assert tokens, "an eval of nothing leaves stale logits"
        self.input_ids[self.n_tokens : self.n_tokens + len(tokens)] = tokens
        self.n_tokens += len(tokens)
        self.evaluated.append(len(tokens))
        last = chr(tokens[-1])
        with np.errstate(divide="ignore"):  # log(0) = -inf: a token the toy model never writes
            self.logits = np.log([prob(last, chr(i)) for i in range(VOCAB)])

    def create_completion(self, prompt: list[int], **kwargs) -> dict:
        self.completions.append({"prompt": prompt, **kwargs})
        text = f"C because seed {kwargs['seed']}"
        return {"choices": [{"text": text}], "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(text)}}

    def close(self) -> None:
        self.closed = True


@pytest.fixture()
def fake_llama_cpp(monkeypatch, tmp_path):
    module = SimpleNamespace(
        __version__="0.0-fake", Llama=FakeLlama, llama_chat_format=SimpleNamespace(Jinja2ChatFormatter=FakeFormatter),
        llama_get_logits_ith=lambda ctx, i: ctx.logits,
    )
    monkeypatch.setitem(sys.modules, "llama_cpp", module)
    FakeLlama.instances.clear()
    gguf = tmp_path / "toy.gguf"
    gguf.write_bytes(b"GGUF" + bytes(60))
    return gguf


def test_each_request_samples_from_its_own_seed_with_the_settings_given(fake_llama_cpp) -> None:
    model = load_model(f"llamacpp:{fake_llama_cpp}")
    settings = SamplingSettings(temperature=0.7, top_p=0.9, max_new_tokens=33)
    requests = [GenRequest(k, MESSAGES, seed=s) for k, s in (("a", 11), ("b", 12), ("c", 11))]
    results = {r.key: r for r in model.generate(requests, settings)}
    assert results["a"].text == results["c"].text != results["b"].text
    calls = FakeLlama.instances[0].completions
    assert [c["seed"] for c in calls] == [11, 12, 11]
    # temperature and top_p only: llama.cpp's own top-k / min-p / repeat penalty defaults are off.
    assert {k: calls[0][k] for k in ("temperature", "top_p", "max_tokens", "top_k", "min_p", "typical_p", "repeat_penalty")} == {
        "temperature": 0.7, "top_p": 0.9, "max_tokens": 33, "top_k": 0, "min_p": 0.0, "typical_p": 1.0, "repeat_penalty": 1.0}
    prompt = "<system>Pick C or D.<user>Your move?<assistant>"
    assert calls[0]["prompt"] == list(prompt.encode())
    assert results["a"].prompt_tokens == len(prompt) and results["a"].completion_tokens == len(results["a"].text)
    assert results["a"].latency_s >= 0


def test_model_is_built_for_the_cpu_and_described(fake_llama_cpp, monkeypatch) -> None:
    monkeypatch.setenv(llamacpp.THREADS_ENV, "3")
    model = load_model(f"llamacpp:{fake_llama_cpp}")
    kwargs = FakeLlama.instances[0].kwargs
    assert kwargs["n_threads"] == kwargs["n_threads_batch"] == 3
    assert kwargs["n_ctx"] >= 2048  # ~400-token prompts plus a motivated reply, with room to spare
    info = model.info()
    assert info.backend == "llamacpp"
    assert info.details == {"path": str(fake_llama_cpp), "gguf_size": 64, "n_ctx": llamacpp.N_CTX,
                            "n_threads": 3, "llama_cpp": "0.0-fake"}
    model.close()
    assert FakeLlama.instances[0].closed


@pytest.mark.parametrize("cores", [1, 2, 16])
def test_threads_are_the_usable_cores_unless_set(monkeypatch, cores) -> None:
    monkeypatch.delenv(llamacpp.THREADS_ENV, raising=False)
    monkeypatch.setattr(llamacpp.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    # A busy-looking load average (e.g. this process's own previous stage) must not cut threads.
    monkeypatch.setattr(llamacpp.os, "getloadavg", lambda: (5.0, 5.0, 5.0), raising=False)
    assert llamacpp.cpu_threads() == cores
    monkeypatch.setenv(llamacpp.THREADS_ENV, "1")
    assert llamacpp.cpu_threads() == 1
    monkeypatch.setenv(llamacpp.THREADS_ENV, "many")
    with pytest.raises(TomdistillError, match="whole number of threads"):
        llamacpp.cpu_threads()


def test_score_sums_every_spelling_and_renormalises(fake_llama_cpp) -> None:
    model = load_model(f"llamacpp:{fake_llama_cpp}")
    (result,) = model.score([ScoreRequest("k", MESSAGES, ("C", "D"))])
    # "C" directly, or " " then "C" (a two-token spelling, followed step by step).
    raw_c = prob(">", "C") + prob(">", " ") * prob(" ", "C")
    raw_d = prob(">", "D") + prob(">", " ") * prob(" ", "D")
    assert result.valid_mass == pytest.approx(raw_c + raw_d)
    assert result.probs == pytest.approx({"C": raw_c / (raw_c + raw_d), "D": raw_d / (raw_c + raw_d)})
    assert result.prompt_tokens == len("<system>Pick C or D.<user>Your move?<assistant>")


def test_score_reuses_the_cached_prompt(fake_llama_cpp) -> None:
    model = load_model(f"llamacpp:{fake_llama_cpp}")
    list(model.score([ScoreRequest("a", MESSAGES, ("C", "D"))]))
    llama = FakeLlama.instances[0]
    before = len(llama.evaluated)
    list(model.score([ScoreRequest("b", MESSAGES, ("C", "D"))]))
    # The whole prompt is cached: every later step decodes only the last MIN_FRESH tokens again.
    assert llama.evaluated[before:] and set(llama.evaluated[before:]) == {llamacpp.MIN_FRESH}


def test_amounts_are_whole_numbers_followed_by_a_non_digit(fake_llama_cpp) -> None:
    model = load_model(f"llamacpp:{fake_llama_cpp}")
    amounts = tuple(str(i) for i in range(11))
    (result,) = model.score([ScoreRequest("k", MESSAGES, amounts)])

    def stops(last: str) -> float:
        return 1.0 - sum(prob(last, chr(i)) for i in range(VOCAB) if chr(i).isdigit() or chr(i) == ".")

    def written(start: str, text: str) -> float:  # P(the reply goes on with `text` after character `start`)
        return math.prod(prob(a, b) for a, b in zip(start + text, text, strict=False))

    # Each amount as it is, or after a space (as it follows "Answer:"), then no further digit.
    raw = {c: (written(">", c) + written(">", " " + c)) * stops(c[-1]) for c in amounts}
    assert result.valid_mass == pytest.approx(sum(raw.values()))
    assert result.probs == pytest.approx({c: p / sum(raw.values()) for c, p in raw.items()})
    assert sum(result.probs.values()) == pytest.approx(1.0)


def tempered(last: str, token: str, temperature: float) -> float:
    """The toy model's next-token probability at `temperature`: softmax(log p / T) over the vocabulary."""
    weights = [prob(last, chr(i)) ** (1 / temperature) for i in range(VOCAB)]
    return prob(last, token) ** (1 / temperature) / sum(weights)


def test_score_conditions_on_the_reply_prefix(fake_llama_cpp, monkeypatch) -> None:
    monkeypatch.setitem(TABLE, ":", {" ": 0.5, "C": 0.05, "D": 0.15})
    model = load_model(f"llamacpp:{fake_llama_cpp}")
    (result,) = model.score([ScoreRequest("k", MESSAGES, ("C", "D"), prefix="Answer:")])
    # The distribution after "...<assistant>Answer:", not after "<assistant>".
    raw_c = prob(":", "C") + prob(":", " ") * prob(" ", "C")
    raw_d = prob(":", "D") + prob(":", " ") * prob(" ", "D")
    assert result.probs == pytest.approx({"C": raw_c / (raw_c + raw_d), "D": raw_d / (raw_c + raw_d)})
    assert result.valid_mass == pytest.approx(raw_c + raw_d)
    prompt = "<system>Pick C or D.<user>Your move?<assistant>Answer:"
    assert result.prompt_tokens == len(prompt)
    assert list(FakeLlama.instances[0].input_ids[: len(prompt)]) == list(prompt.encode())


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_score_is_the_distribution_at_the_temperature(fake_llama_cpp, temperature) -> None:
    model = load_model(f"llamacpp:{fake_llama_cpp}")
    (result,) = model.score([ScoreRequest("k", MESSAGES, ("C", "D"), temperature=temperature)])
    # Every position, the first and the one after " ", is tempered.
    raw_c = tempered(">", "C", temperature) + tempered(">", " ", temperature) * tempered(" ", "C", temperature)
    raw_d = tempered(">", "D", temperature) + tempered(">", " ", temperature) * tempered(" ", "D", temperature)
    assert result.valid_mass == pytest.approx(raw_c + raw_d)
    assert result.probs == pytest.approx({"C": raw_c / (raw_c + raw_d), "D": raw_d / (raw_c + raw_d)})
    (plain,) = model.score([ScoreRequest("k", MESSAGES, ("C", "D"))])
    assert plain.probs["C"] != pytest.approx(result.probs["C"])


def test_greedy_score_puts_everything_on_the_likeliest_candidate(fake_llama_cpp, monkeypatch) -> None:
    monkeypatch.setitem(TABLE, ">", {"D": 0.3, "C": 0.2})
    model = load_model(f"llamacpp:{fake_llama_cpp}")
    (result,) = model.score([ScoreRequest("k", MESSAGES, ("C", "D"), temperature=0)])
    assert result.probs == {"C": 0.0, "D": 1.0}
    assert 0 < result.valid_mass < 1


def test_no_mass_on_any_candidate_gives_zeros(fake_llama_cpp, monkeypatch) -> None:
    monkeypatch.setitem(TABLE, ">", {"x": 1.0})
    monkeypatch.setitem(TABLE, " ", {"x": 1.0})
    model = load_model(f"llamacpp:{fake_llama_cpp}")
    (result,) = model.score([ScoreRequest("k", MESSAGES, ("C", "D"))])
    assert result.valid_mass == 0.0 and result.probs == {"C": 0.0, "D": 0.0}


def test_adapters_are_refused(fake_llama_cpp, tmp_path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(TomdistillError, match="adapters.*not supported by the llamacpp backend"):
        load_model(f"llamacpp:{fake_llama_cpp}", ModelOptions(adapter=adapter))
    assert not FakeLlama.instances  # refused before any weights load


def test_default_specs_name_the_embedded_gguf(fake_llama_cpp, monkeypatch) -> None:
    asked = []
    monkeypatch.setattr(llamacpp, "ensure_gguf", lambda weights: asked.append(weights.name) or fake_llama_cpp)
    model = load_model("llamacpp:default:teacher")
    assert asked == ["teacher"] and model.spec == "llamacpp:default:teacher"
    assert FakeLlama.instances[0].model_path == str(fake_llama_cpp)
    assert model.info().details["gguf_sha256"].startswith("1d9614638d18")
    with pytest.raises(ModelSpecError, match="unknown default model"):
        load_model("llamacpp:default:wizard")


def test_a_missing_file_is_named(fake_llama_cpp, tmp_path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(TomdistillError, match=f"{missing}: GGUF file not found"):
        load_model(f"llamacpp:{missing}")


def test_missing_library_gives_the_pip_hint(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(ModelSpecError, match=r"llama_cpp.*pip install 'tomdistill\[llamacpp\]'"):
        load_model(f"llamacpp:{gguf}")


# --- the real library and the embedded student ---------------------------------------------------


@pytest.fixture(scope="module")
def real_student():
    pytest.importorskip("llama_cpp")
    model = load_model("llamacpp:default:student")
    yield model
    model.close()


@pytest.mark.llamacpp
@pytest.mark.e2e
def test_real_same_seed_same_text(real_student, library) -> None:
    scenarios = [library.scenario("business/prisoners_dilemma"), library.scenario("team/stag_hunt")]
    settings = SamplingSettings(temperature=0.8, max_new_tokens=24)
    requests = [GenRequest((s.id, seed), render(s, "answer"), seed) for s in scenarios for seed in (1, 2)]
    first = {r.key: r.text for r in real_student.generate(requests, settings)}
    # Reversed order: every request now follows a different one in the KV cache.
    again = {r.key: r.text for r in real_student.generate(requests[::-1], settings)}
    assert first == again
    assert len(set(first.values())) > 1


#: Largest |P(C) llama.cpp - P(C) hf float32| allowed. Both run the same Q4_1 weights, but
#: llama.cpp multiplies them with 8-bit-quantised activations and keeps an f16 KV cache, while hf
#: runs them dequantised in float32. Measured over the 20 train scenarios: mean 0.004, max 0.017
#: (business/prisoners_dilemma, tested here); 0.05 leaves 3x room for other CPUs' kernels.
PC_TOLERANCE = 0.05


@pytest.mark.llamacpp
@pytest.mark.e2e
def test_real_score_matches_the_hf_backend(real_student, library) -> None:
    pytest.importorskip("torch")
    from tomdistill.ask import score_candidates

    scenarios = [library.scenario(i) for i in ("business/prisoners_dilemma", "team/stag_hunt", "diplomacy/snowdrift")]
    requests = [ScoreRequest(s.id, render(s, "answer"), score_candidates(s)) for s in scenarios]
    ours = {r.key: r for r in real_student.score(requests)}
    hf = load_model("default:student", ModelOptions(dtype="float32"))
    theirs = {r.key: r for r in hf.score(requests)}
    for s in scenarios:
        assert sum(ours[s.id].probs.values()) == pytest.approx(1.0)
        assert 0 < ours[s.id].valid_mass <= 1
        assert math.isclose(ours[s.id].probs["C"], theirs[s.id].probs["C"], abs_tol=PC_TOLERANCE), (
            s.id, ours[s.id].probs, theirs[s.id].probs)
