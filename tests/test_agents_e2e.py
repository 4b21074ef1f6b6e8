"""Agents on the real 135M default student (marked e2e): export as adapter and merged, decide() on a
scenario built in code, and a tiny population run through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tomdistill import Agent, make_scenario
from tomdistill.agents.export import export_agent
from tomdistill.cli import main

pytestmark = pytest.mark.e2e
MARKET = {"C": {"C": (4, 4), "D": (1, 6)}, "D": {"C": (6, 1), "D": (2, 2)}}
CONTEXT = ("You sell bread at a weekly market, and another baker has a stall across the aisle; you have never spoken. "
           "Today each of you sets a price once, without talking to the other. From here on the other baker is called "
           "the coplayer.")


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory) -> Path:
    """A LoRA adapter on the default student with random (not trained) weights, saved like `tomdistill train` does."""
    pytest.importorskip("peft")
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model

    from tomdistill.models.registry import local_model_path

    folder = tmp_path_factory.mktemp("adapter") / "adapter"
    path = local_model_path("default:student")
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    # init_lora_weights=False draws both LoRA matrices at random, so the adapter really changes the model.
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False, task_type="CAUSAL_LM"))
    peft_model.save_pretrained(str(folder))
    transformers.AutoTokenizer.from_pretrained(path).save_pretrained(str(folder))
    (folder / "train_config.json").write_text(json.dumps({"student": "default:student", "result": {"steps": 0}}))
    return folder


def test_exported_adapter_and_merged_agents_decide_alike(tiny_adapter, tmp_path) -> None:
    export_agent(tiny_adapter, tmp_path / "adapter-agent")
    export_agent(tiny_adapter, tmp_path / "merged-agent", merge=True)
    merged_files = {p.name for p in (tmp_path / "merged-agent" / "model").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= merged_files
    manifest = json.loads((tmp_path / "merged-agent" / "agent.json").read_text())
    assert manifest["kind"] == "merged" and manifest["chat_template"] == "model/chat_template.jinja"

    scenario = make_scenario(MARKET, CONTEXT, id="market/bread")
    seeds = list(range(6))
    with Agent.load(tmp_path / "adapter-agent", dtype="float32") as a, Agent.load(tmp_path / "merged-agent", dtype="float32") as m:
        assert m.model.spec == f"hf:{tmp_path / 'merged-agent' / 'model'}"
        da, dm = a.decide_many([scenario] * 6, seeds=seeds), m.decide_many([scenario] * 6, seeds=seeds)
        # fp32 rounding of W + BA (merged) vs W x + B(A x) (adapter) moved P(C) by up to 1.4e-4 in
        # CI runs; a wrong merge moves it by far more than 1e-3 (see the base check below).
        assert [d.probabilities["C"] for d in da] == pytest.approx([d.probabilities["C"] for d in dm], abs=1e-3)
        assert all(d.action in ("C", "D") for d in da)
    with Agent.load("default:student", mode="score", dtype="float32") as base:
        assert da[0].probabilities["C"] != pytest.approx(base.decide(scenario, seed=1).probabilities["C"], abs=1e-3)
        sampled = Agent(base.model, mode="sample").decide(scenario, seed=1)  # the same weights, asked for a reply
        assert sampled.raw is not None and sampled.probabilities is None

def test_default_student_decides_on_a_code_built_scenario() -> None:
    scenario = make_scenario(MARKET, CONTEXT, id="market/bread")
    with Agent.load("default:student", mode="score") as agent:
        d = agent.decide(scenario, seed=3)
        assert d.valid and d.action in ("C", "D") and sum(d.probabilities.values()) == pytest.approx(1.0)
        again = agent.decide(scenario, seed=3)
        assert again.action == d.action and again.probabilities == pytest.approx(d.probabilities)


def test_a_tiny_population_run(tmp_path, capsys) -> None:
    out = tmp_path / "report"
    code = main(["play", "--agents", "student=default:student", "tit-for-tat", "--scenario", "team/prisoners_dilemma",
                 "--rounds", "2", "--pairs", "1", "--mode", "score", "--run", "tiny", "--store", str(tmp_path / "s.db"),
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    data = json.loads((out / "play.json").read_text())
    assert data["moves"] == 2 * 3 * 2 and data["types"]["student"]["fallback_moves"] == 0
    assert (out / "report.html").is_file() and (out / "cooperation_by_round.png").is_file()
