"""LoRA training on the real 135M student (marked e2e): weights, reload, merge, resume."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tomdistill.ask import score_candidates
from tomdistill.config import Config, TrainConfig, load_config, resolve_train_config
from tomdistill.dataset import build_dataset
from tomdistill.elicit import elicit
from tomdistill.errors import ConfigError, TomdistillError
from tomdistill.models.base import ModelOptions, ScoreRequest
from tomdistill.models.registry import load_model, local_model_path
from tomdistill.scenarios import render

# A teacher that always defects, with a motivation: the student's P(C) must fall after training.
DEFECTOR = "Answer: D\nMotivation: I cannot count on the coplayer, so I protect my own payoff."
TINY = dict(batch_size=4, max_length=320, learning_rate=2e-3, save_steps=2, logging_steps=1)


def test_presets_and_overrides() -> None:
    paper = resolve_train_config(TrainConfig(preset="paper"))
    assert (paper.r, paper.alpha, paper.learning_rate, paper.epochs, paper.batch_size * paper.grad_accum) == (
        8, 16, 5e-5, 3, 64)
    assert paper.target_modules == ["q_proj", "v_proj"] and paper.lora_targets() == ["q_proj", "v_proj"]
    assert paper.decision_loss == "tokens"  # the paper trained on the reply's tokens only
    # The default recipe: LoRA on every linear layer, PEFT's own selector passed as a string.
    default = resolve_train_config(TrainConfig())
    assert (default.decision_loss, default.decision_weight, default.lora_targets()) == ("soft+tokens", 5.0, "all-linear")
    with pytest.raises(ValueError, match="give it alone"):
        TrainConfig(target_modules=["all-linear", "q_proj"])
    assert resolve_train_config(TrainConfig(preset="paper"), {"epochs": 1}).epochs == 1
    assert resolve_train_config(TrainConfig(r=4)).r == 4
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        resolve_train_config(TrainConfig(), {"preset": "fast"})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, library):
    pytest.importorskip("trl")
    from tomdistill.store import Store

    folder = tmp_path_factory.mktemp("train")
    with Store(folder / "t.db") as store:
        teacher = load_model("mock:defector", ModelOptions(extra={"script": lambda r: DEFECTOR}))
        elicit(store, teacher, library.scenarios("train")[:4], run_name="teacher", protocol="motivated", samples=2)
        build_dataset(store, store.require_run("teacher"), library, folder / "ds")
    return folder / "ds"


def _p_cooperate(spec: str, library, **options) -> list[float]:
    # float32: bf16 rounding would blur the exact comparisons below (adapter vs merged weights).
    model = load_model(spec, ModelOptions(dtype="float32", **options))
    scenarios = library.scenarios("train")[:4]
    requests = [ScoreRequest(s.id, render(s, "answer"), score_candidates(s)) for s in scenarios]
    return [r.probs["C"] for r in model.score(requests)]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.e2e
def test_the_soft_decision_loss_trains_toward_the_targets(data_dir, library, tmp_path) -> None:
    from tomdistill.train import train

    out = tmp_path / "soft"
    config = resolve_train_config(TrainConfig(**TINY, max_steps=3, decision_loss="soft"))
    train("default:student", data_dir, out, config, progress=False)
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    # Soft only: the loss is the decision loss (the smoothed targets put 0.83 on D).
    assert all(row["loss"] == pytest.approx(row["decision_loss"], abs=1e-3) for row in log)
    assert log[-1]["decision_loss"] < log[0]["decision_loss"]
    assert sum(_p_cooperate("default:student", library, adapter=out)) < sum(_p_cooperate("default:student", library))


@pytest.mark.e2e
def test_lora_training_moves_the_student_and_keeps_the_base(data_dir, library, tmp_path) -> None:
    from safetensors.torch import load_file

    from tomdistill.train import train

    base_file = Path(local_model_path("default:student")) / "model.safetensors"
    base_hash = _sha(base_file)
    out = tmp_path / "adapter"
    result = train("default:student", data_dir, out, resolve_train_config(TrainConfig(**TINY, max_steps=4)), progress=False)
    assert result.steps == 4 and result.examples == 8

    weights = load_file(str(out / "adapter_model.safetensors"))
    assert weights and all("lora_" in k for k in weights)  # only LoRA weights are saved
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and all(float(v.abs().max()) > 0 for v in lora_b)  # B starts at zero: training changed it
    assert _sha(base_file) == base_hash  # the base weights are untouched
    for name in ("README.md", "train_config.json", "training_log.jsonl", "tokenizer.json", "adapter_config.json"):
        assert (out / name).is_file(), name
    # No tracker by default: no TensorBoard folder, here or under the checkpoints (transformers' default place).
    assert not (out / "runs").exists() and not list(out.rglob("events.out.tfevents.*"))
    assert len((out / "training_log.jsonl").read_text().splitlines()) == 4
    assert "default:student" in (out / "README.md").read_text()
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md").data.to_dict()  # PEFT's metadata kept, the base named by Hub id
    assert card["library_name"] == "peft" and card["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == card["base_model"]

    before = _p_cooperate("default:student", library)
    after = _p_cooperate("default:student", library, adapter=out)
    again = _p_cooperate("default:student", library, adapter=out)
    assert after == pytest.approx(again, abs=1e-6)  # the saved adapter reloads to the same scores
    assert sum(after) < sum(before)  # moved toward the defecting teacher

    from tomdistill.train import merge

    merged = merge(out, tmp_path / "merged")
    assert ModelCard.load(merged / "README.md").data.to_dict()["base_model_relation"] == "merge"
    assert _p_cooperate(f"hf:{merged}", library) == pytest.approx(after, abs=1e-4)


@pytest.mark.e2e
def test_training_refuses_to_overwrite_and_resumes_after_a_kill(data_dir, tmp_path) -> None:
    out = tmp_path / "adapter"
    cmd = [sys.executable, "-m", "tomdistill", "train", "--student", "default:student", "--data", str(data_dir),
           "--out", str(out), "--max-steps", "6", "--batch-size", "4", "--max-length", "320", "--save-steps", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file():
        assert time.time() < deadline and proc.poll() is None, "training never wrote checkpoint-2"
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "adapter_model.safetensors").exists()

    refused = subprocess.run(cmd, capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr

    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads((out / "train_config.json").read_text())
    assert info["result"]["steps"] == 6
    assert info["result"]["resumed_from"].endswith("checkpoint-2") or info["result"]["resumed_from"].endswith("checkpoint-4")
    steps = [json.loads(line)["step"] for line in (out / "training_log.jsonl").read_text().splitlines()]
    assert steps[-1] == 6 and sorted(set(steps)) == steps


def test_train_rejects_a_folder_that_is_not_a_dataset(tmp_path) -> None:
    from tomdistill.train import train

    with pytest.raises(TomdistillError, match="not a tomdistill dataset folder"):
        train("default:student", tmp_path, tmp_path / "out", TrainConfig())


@pytest.mark.e2e
def test_cpu_loss_is_trls_loss(data_dir, tmp_path) -> None:
    """Off GPU the trainer computes the causal-LM loss from the labelled positions only, instead of
    TRL's fused head: the same number as TRL's loss and the model's own."""
    import torch
    import transformers
    from peft import LoraConfig
    from trl import SFTConfig

    from tomdistill.dataset import load_training_data
    from tomdistill.train.trainer import TomdistillSFTTrainer

    path = local_model_path("default:student")
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    data = load_training_data(data_dir).select_columns(["prompt", "completion"])
    trainer = TomdistillSFTTrainer(
        model=model, processing_class=tokenizer, train_dataset=data,
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
        args=SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, completion_only_loss=True,
                       max_length=320, use_cpu=True, report_to=[]),
    )
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    assert (batch["labels"] == -100).any() and (batch["labels"] != -100).any()  # prompt masked, reply kept
    with torch.no_grad():
        ours = trainer.compute_loss(trainer.model, dict(batch))
        trls = super(TomdistillSFTTrainer, trainer).compute_loss(trainer.model, dict(batch))
        items = (batch["labels"][:, 1:] != -100).sum()
        ours_n = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=items)
        trls_n = super(TomdistillSFTTrainer, trainer).compute_loss(trainer.model, dict(batch), num_items_in_batch=items)
        own = trainer.model(**dict(batch), use_cache=False).loss  # the model's own loss projects every position
        _, outputs = trainer.compute_loss(trainer.model, dict(batch), return_outputs=True)
    assert float(ours) == pytest.approx(float(trls), rel=1e-4)
    assert float(ours_n) == pytest.approx(float(trls_n), rel=1e-4)
    assert float(ours) == pytest.approx(float(own), rel=1e-4)
    # The head saw only the positions whose next token is labelled, not the whole batch.
    assert outputs.logits.shape[0] == int(items) < batch["labels"].numel() // 2


def test_tracker_names_are_the_ones_transformers_accepts(tmp_path, capsys) -> None:
    from tomdistill.cli import main
    from tomdistill.tracking import TRACKERS

    integrations = pytest.importorskip("transformers.integrations.integration_utils")
    assert set(TRACKERS) == set(integrations.INTEGRATION_TO_CALLBACK)
    assert TrainConfig().report_to == []  # off by default
    assert TrainConfig(report_to=["tensorboard", "wandb", "tensorboard"]).report_to == ["tensorboard", "wandb"]
    assert resolve_train_config(TrainConfig(report_to=["wandb"]), {"report_to": ["none"]}).report_to == []
    path = tmp_path / "c.toml"
    path.write_text('[train]\nreport_to = ["tensorbord"]\n')
    with pytest.raises(ConfigError, match=r"field 'train.report_to': unknown tracker 'tensorbord'; known: .*tensorboard"):
        load_config(path)
    code = main(["train", "--student", "default:student", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--report-to", "none", "--report-to", "wandb"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "'report_to'" in err and "'none' alone turns them off" in err


def test_a_missing_tracker_package_is_named_before_any_work(monkeypatch, tmp_path) -> None:
    from tomdistill import tracking
    from tomdistill.pipeline import Pipeline

    assert not tracking._installed("tomdistill_no_such_module", "no_such_package.sub")()
    monkeypatch.setitem(tracking.TRACKERS, "wandb", tracking.Tracker("pip install wandb", lambda: False))
    config = Config.model_validate({"train": {"report_to": ["tensorboard", "wandb"]}})
    with pytest.raises(TomdistillError, match=r"^train.report_to: 'wandb' needs pip install wandb$"):
        Pipeline(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def _tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars of the TensorBoard event files in `folder`, read with tensorboardX's protobuf
    classes (an event file is a TFRecord file: length, its CRC, the Event, the Event's CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack_from("<Q", data, at)
            event = Event.FromString(data[at + 12 : at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                if value.WhichOneof("value") == "simple_value":
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


@pytest.mark.e2e
def test_report_to_tensorboard_logs_the_loss_next_to_the_adapter(data_dir, tmp_path, capsys) -> None:
    pytest.importorskip("tensorboardX")
    from tomdistill.cli import main

    out = tmp_path / "adapter"
    code = main(["train", "--student", "default:student", "--data", str(data_dir), "--out", str(out),
                 "--max-steps", "2", "--batch-size", "4", "--max-length", "320", "--decision-loss", "tokens",
                 "--report-to", "tensorboard"])
    assert code == 0, capsys.readouterr().err
    shown = capsys.readouterr().out  # not a terminal: the progress as plain lines, with the loss
    assert "\r" not in shown and re.search(r"^training: 2/2 \(100%\), .*, loss \d+\.\d{4}$", shown, re.MULTILINE), shown
    losses = _tensorboard_scalars(out / "runs")["train/loss"]
    logged = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    assert [step for step, _ in losses] == [1, 2]
    assert [loss for _, loss in losses] == pytest.approx([row["loss"] for row in logged], rel=1e-5)
    assert not (out / "checkpoints" / "runs").exists()  # not transformers' default place
    assert json.loads((out / "train_config.json").read_text())["config"]["report_to"] == ["tensorboard"]
