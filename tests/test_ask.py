"""The one asking seam (tomdistill.ask): options from settings, models from any source, and the
same answers whether elicitation or an agent asks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tomdistill.agents import Agent
from tomdistill.ask import Question, model_options, open_model, score_answers
from tomdistill.cli import main
from tomdistill.config import load_config
from tomdistill.elicit import elicit
from tomdistill.errors import TomdistillError
from tomdistill.models.base import ModelOptions
from tomdistill.models.registry import load_model
from tomdistill.store import Store


def _adapter_folder(root: Path, student: str = "mock:rate=0.25") -> Path:
    """An adapter folder as `tomdistill train` leaves it, as far as loading reads it."""
    folder = root / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "train_config.json").write_text(json.dumps({"student": student}))
    return folder


def test_model_options_come_from_a_config_section_and_flags() -> None:
    teacher = load_config(None).teacher.model_copy(update={"batch_size": 7, "base_url": "http://x/v1"})
    options = model_options(teacher, base_url="http://y/v1", device=None)
    assert options == ModelOptions(base_url="http://y/v1", batch_size=7, dtype=teacher.dtype,
                                   concurrency=teacher.concurrency)  # flags win; None leaves the default
    assert model_options(adapter="some/folder").adapter == Path("some/folder")
    with pytest.raises(TypeError, match="unknown model option.*temprature"):
        model_options(temprature=0.5)


def test_open_model_takes_an_adapter_folder_and_refuses_two_adapters(tmp_path) -> None:
    folder = _adapter_folder(tmp_path)
    opened = open_model(folder)
    assert (opened.kind, opened.model.spec, opened.adapter, opened.mode) == ("adapter", "mock:rate=0.25", folder, "score")
    with pytest.raises(TomdistillError, match="not both"):
        open_model(folder, options=ModelOptions(adapter=folder))


def test_elicit_model_accepts_an_adapter_folder(tmp_path, capsys) -> None:
    folder = _adapter_folder(tmp_path)
    db = tmp_path / "s.db"
    code = main(["elicit", "--model", str(folder), "--run", "ft", "--mode", "score", "--scenario",
                 "business/prisoners_dilemma", "--store", str(db)])
    assert code == 0, capsys.readouterr().err
    with Store(db, readonly=True) as store:
        run = store.require_run("ft")
        assert (run.model, run.adapter) == ("mock:rate=0.25", str(folder))
        [sample] = store.samples(run.id)
    assert sample.probs["C"] == pytest.approx(0.25, abs=0.05)


def test_elicitation_and_an_agent_read_the_same_distribution(store, library) -> None:
    """Both ask through the seam: the stored score of a scenario is the agent's probabilities."""
    scenarios = library.scenarios("train")[:3]
    model = load_model("mock:rate=0.3")
    elicit(store, model, scenarios, run_name="s", mode="score", settings=None)
    stored = {s.scenario: s.probs for s in store.samples(store.require_run("s").id)}
    agent = Agent(model, mode="score")
    decided = agent.decide_many(scenarios, seeds=[1, 2, 3])
    assert [d.probabilities for d in decided] == [stored[s.id] for s in scenarios]
    direct = dict(score_answers(model, [Question.of(s, "answer") for s in scenarios], 0.8))
    assert [direct[i].probs for i in range(3)] == [stored[s.id] for s in scenarios]


def test_elicit_asks_an_adapter_folder_in_score_mode_by_default(tmp_path, capsys) -> None:
    """A folder says how it is asked (here: an adapter, score mode) unless a flag says otherwise."""
    folder = _adapter_folder(tmp_path)
    db = tmp_path / "s.db"
    for run, flags in (("default", []), ("sampled", ["--mode", "sample", "-n", "2"])):
        assert main(["elicit", "--model", str(folder), "--run", run, "--scenario", "team/stag_hunt",
                     "--store", str(db), *flags]) == 0, capsys.readouterr().err
    with Store(db, readonly=True) as store:
        assert [(r.name, r.mode, r.protocol) for r in store.runs()] == [("default", "score", "answer"),
                                                                        ("sampled", "sample", "answer")]
