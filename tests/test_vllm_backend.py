"""The vllm backend's own logic, against a stand-in `vllm` module (vLLM needs a GPU and is not
installed in CI): grouping the samples of a prompt into one seeded n-sample request, and reading
score-mode probabilities from first-token log-probs."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from tomdistill.errors import TomdistillError
from tomdistill.models.base import (
    GenRequest,
    ModelOptions,
    ModelSpecError,
    SamplingSettings,
    ScoreRequest,
    UnsupportedError,
)
from tomdistill.models.registry import load_model

PD = [{"role": "system", "content": "Pick C or D."}, {"role": "user", "content": "Prisoner's dilemma?"}]
SH = [{"role": "system", "content": "Pick C or D."}, {"role": "user", "content": "Stag hunt?"}]


@dataclass
class FakeSamplingParams:
    n: int = 1
    seed: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = 16
    logprobs: int | None = None


@dataclass
class FakeTokenizer:
    """The action labels are one token each; anything else is one token per character, so digits
    are one token each, as in Qwen and SmolLM2, and a prompt decodes back to its text."""

    vocab: dict[int, str] = field(default_factory=lambda: {1: "C", 2: " C", 3: "D", 4: " D", 5: "I"})
    #: (text, add_special_tokens) of every encode() call
    encoded: list[tuple[str, bool]] = field(default_factory=list)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        self.encoded.append((text, add_special_tokens))
        labels = {t: i for i, t in self.vocab.items()}
        return [labels[text]] if text in labels else [ord(ch) for ch in text]

    def decode(self, ids: list[int]) -> str:
        return self.vocab[ids[0]]

    def apply_chat_template(self, messages: list, add_generation_prompt: bool = False, tokenize: bool = True) -> str:
        assert add_generation_prompt and not tokenize
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


class FakeLLM:
    instances: ClassVar[list[FakeLLM]] = []
    #: token id -> logprob of the first reply token, for score mode; None decoded_token = ask the tokenizer
    top: ClassVar[dict[int, tuple[str | None, float]]] = {}

    def __init__(self, model: str, **kwargs: Any) -> None:
        self.model, self.kwargs = model, kwargs
        self.calls: list[tuple[list, list]] = []
        self.tokenizer = FakeTokenizer()
        FakeLLM.instances.append(self)

    def get_tokenizer(self) -> FakeTokenizer:
        return self.tokenizer

    def generate(self, prompts: list, sampling_params: list, *, use_tqdm: bool = True) -> list:
        """Token-id prompts (score mode): one child with the first reply token's top log-probs."""
        assert not use_tqdm and len(prompts) == len(sampling_params)
        self.calls.append((prompts, sampling_params))
        top = {t: SimpleNamespace(decoded_token=d, logprob=lp) for t, (d, lp) in FakeLLM.top.items()}
        return [SimpleNamespace(prompt_token_ids=p["prompt_token_ids"], outputs=[SimpleNamespace(index=0, logprobs=[top])])
                for p in prompts]

    def chat(self, messages: list, sampling_params: list, use_tqdm: bool = True) -> list:
        assert not use_tqdm and len(messages) == len(sampling_params)
        self.calls.append((messages, sampling_params))
        outputs = []
        for conversation, params in zip(messages, sampling_params):
            # Like vLLM V1, child i of an n-sample request draws with seed + i; returned out of order.
            children = [SimpleNamespace(index=i, text=f"{conversation[-1]['content']} #{(params.seed or 0) + i}", token_ids=[0] * (i + 1),
                                        logprobs=[{t: SimpleNamespace(decoded_token=d, logprob=lp) for t, (d, lp) in FakeLLM.top.items()}])
                        for i in range(params.n)]
            outputs.append(SimpleNamespace(prompt_token_ids=[0] * 7, outputs=children[::-1]))
        return outputs


@pytest.fixture()
def fake_vllm(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(__version__="0.0-fake", LLM=FakeLLM, SamplingParams=FakeSamplingParams))
    FakeLLM.instances.clear()
    return FakeLLM


def test_samples_of_one_prompt_go_as_one_seeded_request(fake_vllm) -> None:
    model = load_model("vllm:some/model")
    llm = fake_vllm.instances[0]
    assert llm.kwargs["enable_prefix_caching"] is True
    settings = SamplingSettings(temperature=0.8, top_p=0.9, max_new_tokens=40)
    requests = [GenRequest("pd0", PD, 50), GenRequest("sh0", SH, 70), GenRequest("pd1", PD, 9), GenRequest("pd2", PD, 51)]
    results = {r.key: r for r in model.generate(requests, settings)}
    ((conversations, params),) = llm.calls
    assert conversations == [PD, SH]
    assert [(p.n, p.seed) for p in params] == [(3, 50), (1, 70)]
    assert {(p.temperature, p.top_p, p.max_tokens) for p in params} == {(0.8, 0.9, 40)}
    # The k-th request of a group gets the k-th child, whatever order vLLM lists them in.
    assert {k: r.text for k, r in results.items()} == {
        "pd0": "Prisoner's dilemma? #50", "pd1": "Prisoner's dilemma? #51", "pd2": "Prisoner's dilemma? #52", "sh0": "Stag hunt? #70"}
    assert results["pd1"].completion_tokens == 2 and results["sh0"].prompt_tokens == 7
    # Reproducible for the same requests: the same groups, so the same seeds.
    assert {r.key: r.text for r in model.generate(requests, settings)} == {k: r.text for k, r in results.items()}


def test_a_replica_with_several_gpus_runs_tensor_parallel(fake_vllm) -> None:
    load_model("vllm:some/model", ModelOptions(gpus_per_replica=2))
    load_model("vllm:some/model")
    assert [llm.kwargs["tensor_parallel_size"] for llm in fake_vllm.instances] == [2, 1]


def test_greedy_requests_are_not_grouped(fake_vllm) -> None:
    model = load_model("vllm:some/model")
    list(model.generate([GenRequest("a", PD, 1), GenRequest("b", PD, 2)], SamplingSettings(temperature=0, max_new_tokens=5)))
    ((_, params),) = fake_vllm.instances[0].calls
    assert [p.n for p in params] == [1, 1]


#: The first reply token's top log-probs in the score tests: token id -> (decoded text, log-prob).
TOP = {1: ("C", math.log(0.3)), 2: (None, math.log(0.2)), 3: ("D", math.log(0.1)), 5: ("I", math.log(0.35))}


def test_score_reads_first_token_logprobs(fake_vllm, monkeypatch) -> None:
    monkeypatch.setattr(FakeLLM, "top", TOP)
    model = load_model("vllm:some/model")
    (result,) = model.score([ScoreRequest("k", PD, ("C", "D"))])
    ((_, params),) = fake_vllm.instances[0].calls
    assert (params[0].max_tokens, params[0].temperature, params[0].logprobs) == (1, 0.0, 20)
    # "C" and " C" (decoded by the tokenizer) both count for C.
    assert result.valid_mass == pytest.approx(0.6)
    assert result.probs == pytest.approx({"C": 0.5 / 0.6, "D": 0.1 / 0.6})


def test_score_prompt_is_the_chat_template_then_the_reply_prefix(fake_vllm, monkeypatch) -> None:
    monkeypatch.setattr(FakeLLM, "top", TOP)
    model = load_model("vllm:some/model")
    requests = [ScoreRequest("pd", PD, ("C", "D"), prefix="Answer:"), ScoreRequest("sh", SH, ("C", "D"))]
    results = {r.key: r for r in model.score(requests)}
    llm = fake_vllm.instances[0]
    ((prompts, _),) = llm.calls
    texts = ["".join(map(chr, p["prompt_token_ids"])) for p in prompts]
    assert texts == ["<system>Pick C or D.<user>Prisoner's dilemma?<assistant>Answer:",
                     "<system>Pick C or D.<user>Stag hunt?<assistant>"]
    # Tokenized as one text, without special tokens on top of the template's.
    assert [(t, special) for t, special in llm.tokenizer.encoded if t.startswith("<")] == [(t, False) for t in texts]
    assert results["pd"].prompt_tokens == len(texts[0])


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_score_is_tempered_over_the_listed_logprobs(fake_vllm, monkeypatch, temperature) -> None:
    monkeypatch.setattr(FakeLLM, "top", TOP)
    model = load_model("vllm:some/model")
    (result,) = model.score([ScoreRequest("k", PD, ("C", "D"), prefix="Answer:", temperature=temperature)])
    ((_, params),) = fake_vllm.instances[0].calls
    assert params[0].temperature == 0.0  # vLLM returns temperature-1 log-probs; the temperature is ours
    weight = {token: math.exp(lp / temperature) for token, (_, lp) in TOP.items()}
    total = sum(weight.values())
    c, d = (weight[1] + weight[2]) / total, weight[3] / total
    assert result.valid_mass == pytest.approx(c + d)
    assert result.probs == pytest.approx({"C": c / (c + d), "D": d / (c + d)})


def test_greedy_score_picks_the_likeliest_candidate(fake_vllm, monkeypatch) -> None:
    monkeypatch.setattr(FakeLLM, "top", {3: ("D", math.log(0.3)), 1: ("C", math.log(0.2)), 5: ("I", math.log(0.4))})
    model = load_model("vllm:some/model")
    (result,) = model.score([ScoreRequest("k", PD, ("C", "D"), temperature=0)])
    assert result.probs == {"C": 0.0, "D": 1.0} and result.valid_mass == pytest.approx(0.5)


def test_multi_token_amounts_are_refused(fake_vllm) -> None:
    model = load_model("vllm:some/model")
    with pytest.raises(UnsupportedError, match="amounts like '10' are several tokens"):
        list(model.score([ScoreRequest("k", PD, tuple(str(i) for i in range(11)))]))
    with pytest.raises(UnsupportedError, match="'Coop' is several tokens"):
        list(model.score([ScoreRequest("k", PD, ("Coop", "D"))]))
    assert not fake_vllm.instances[0].calls  # refused before anything ran


def test_adapters_are_refused_and_missing_vllm_gives_the_pip_hint(fake_vllm, monkeypatch, tmp_path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(TomdistillError, match="--adapter is not supported by the vllm backend"):
        load_model("vllm:some/model", ModelOptions(adapter=adapter))
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ModelSpecError, match=r"'vllm'.*pip install 'tomdistill\[vllm\]'"):
        load_model("vllm:some/model")
