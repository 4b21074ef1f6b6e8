"""Device and dtype defaults: cuda, then Apple's mps, then the CPU (faked: no such hardware here)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tomdistill.hardware import default_device  # noqa: E402


@pytest.mark.parametrize(("cuda", "mps", "expected"), [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_default_device_order(monkeypatch, cuda, mps, expected) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert default_device() == expected


def test_mps_runs_in_float16_unless_asked_and_is_not_cpu_for_training(monkeypatch, tmp_path) -> None:
    pytest.importorskip("transformers")
    from tomdistill.models.hf import pick_device, pick_dtype

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device(None) == "mps" and pick_device("cpu") == "cpu"
    assert pick_dtype("mps") == torch.float16 and pick_dtype("mps", "float32") == torch.float32
    from tomdistill.config import TrainConfig
    from tomdistill.train.build import sft_args

    pytest.importorskip("trl")
    args = sft_args(TrainConfig(), tmp_path / "checkpoints", bf16=False)
    assert args.use_cpu is False  # transformers then trains on mps itself
