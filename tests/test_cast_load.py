"""Loading a float32 checkpoint in bf16 tensor by tensor gives the library's model, and anything
unusual falls back to the library's own load."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from safetensors.torch import load_file, save_file  # noqa: E402

from tomdistill.models import cast_load  # noqa: E402


def _tiny(tmp_path, *, tied: bool = True, shard: str | None = None):
    config = transformers.Qwen2Config(
        vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, tie_word_embeddings=tied, eos_token_id=7,
    )
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    folder = tmp_path / "model"
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(folder, **kwargs)
    return folder


def _counting_from_pretrained(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = transformers.AutoModelForCausalLM.from_pretrained

    def spy(ident, *args, **kwargs):
        calls.append(str(ident))
        return real(ident, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    return calls


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("shard", [None, "20KB"])
def test_bf16_from_float32_matches_the_library_load(tmp_path, monkeypatch, tied, shard) -> None:
    folder = _tiny(tmp_path, tied=tied, shard=shard)
    assert len(cast_load.checkpoint_files(folder)) == (1 if shard is None else len(list(folder.glob("*.safetensors"))))
    reference = transformers.AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.bfloat16)
    calls = _counting_from_pretrained(monkeypatch)
    model = cast_load.load_causal_lm(str(folder), torch.bfloat16)
    assert calls == []  # the tensor-by-tensor path, not the library's
    assert not model.training
    assert model.generation_config.eos_token_id == reference.generation_config.eos_token_id == 7
    ours, theirs = model.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert ours[name].dtype == torch.bfloat16
        assert torch.equal(ours[name], theirs[name]), name
    if tied:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.equal(model(ids).logits, reference(ids).logits)


def test_same_dtype_and_unknown_names_go_to_the_library(tmp_path, monkeypatch) -> None:
    folder = _tiny(tmp_path)
    calls = _counting_from_pretrained(monkeypatch)
    cast_load.load_causal_lm(str(folder), torch.float32)  # a view of the file, no cast: the library's load
    assert calls == [str(folder)]
    # A checkpoint whose names the model does not use (renamed keys, extra heads): left to transformers.
    tensors = load_file(folder / "model.safetensors")
    tensors["value_head.weight"] = torch.zeros(1, 32)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    cast_load.load_causal_lm(str(folder), torch.bfloat16)
    assert calls == [str(folder), str(folder)]


def test_a_missing_parameter_goes_to_the_library(tmp_path, monkeypatch) -> None:
    folder = _tiny(tmp_path)
    tensors = load_file(folder / "model.safetensors")
    del tensors["model.norm.weight"]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    calls = _counting_from_pretrained(monkeypatch)
    cast_load.load_causal_lm(str(folder), torch.bfloat16)
    assert calls == [str(folder)]


def test_a_hub_id_goes_to_the_library(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        lambda ident, **kwargs: calls.append(ident) or "model")
    assert cast_load.load_causal_lm("someone/some-model", torch.bfloat16) == "model"
    assert calls == ["someone/some-model"]
