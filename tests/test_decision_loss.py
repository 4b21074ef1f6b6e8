"""The soft-label decision loss: targets in the dataset, the collator that finds the decision
token, and the loss against hand-computed values (pure torch; the real student is in test_train)."""

from __future__ import annotations

import json
import math

import pytest

from tomdistill.dataset import TARGET_COLUMN, build_dataset, load_manifest, load_training_data, training_columns
from tomdistill.elicit import elicit
from tomdistill.errors import TomdistillError
from tomdistill.models.registry import load_model
from tomdistill.targets import SMOOTHING

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from tomdistill.train.decision import DecisionCollator, decision_loss  # noqa: E402


def test_loss_is_the_cross_entropy_of_the_renormalised_action_mass() -> None:
    logits = torch.tensor([[0.5, 2.0, 1.0, -1.0, 0.3, 3.0]])
    ids = torch.tensor([[[1, 2], [3, -1]]])  # C is token 1 or 2, D is token 3; tokens 0, 4, 5 are neither
    target = torch.tensor([[0.3, 0.7]])
    t = 0.8
    mass_c = math.exp(2.0 / t) + math.exp(1.0 / t)
    mass_d = math.exp(-1.0 / t)
    q_c, q_d = mass_c / (mass_c + mass_d), mass_d / (mass_c + mass_d)
    expected = -(0.3 * math.log(q_c) + 0.7 * math.log(q_d))
    assert float(decision_loss(logits, ids, target, t)) == pytest.approx(expected, rel=1e-6)


def test_descending_the_loss_moves_the_student_to_the_target() -> None:
    logits = torch.zeros((1, 5), requires_grad=True)
    ids, target = torch.tensor([[[1], [2]]]), torch.tensor([[0.8, 0.2]])
    optimiser = torch.optim.SGD([logits], lr=1.0)
    for _ in range(300):
        optimiser.zero_grad()
        decision_loss(logits, ids, target, 1.0).backward()
        optimiser.step()
    p = torch.softmax(logits.detach()[0, [1, 2]], dim=0)
    assert float(p[0]) == pytest.approx(0.8, abs=0.01)
    # At the target the loss is the target's entropy: forward KL 0.
    entropy = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2))
    assert float(decision_loss(logits, ids, target, 1.0)) == pytest.approx(entropy, abs=1e-3)


def _examples() -> list[dict]:
    target = json.dumps({"C": 0.25, "D": 0.75})
    return [
        # prompt 10 11 12, reply starts with C (token 7): the decision is predicted at position 2
        {"input_ids": [10, 11, 12, 7, 9], "labels": [-100, -100, -100, 7, 9], TARGET_COLUMN: target},
        # the first reply token is no action's token (a template that merged it): left to the tokens
        {"input_ids": [10, 11, 5, 9], "labels": [-100, -100, 5, 9], TARGET_COLUMN: target},
        # a row without a target (an amount)
        {"input_ids": [10, 8, 9], "labels": [-100, 8, 9], TARGET_COLUMN: ""},
    ]


@pytest.mark.parametrize("mode", ["soft", "soft+tokens"])
def test_collator_finds_the_decision_and_keeps_it_from_the_token_loss(mode: str) -> None:
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    vocab = {"C": [7], " C": [17], "D": [8], " D": [18]}
    collator = DecisionCollator(DataCollatorForLanguageModeling(pad_token_id=0), lambda text: vocab[text], mode)
    batch = collator(_examples())
    assert batch["decision_positions"].tolist() == [2, -1, -1]
    assert batch["decision_token_ids"][0].tolist() == [[7, 17], [8, 18]]
    assert batch["decision_targets"][0].tolist() == [0.25, 0.75]
    assert collator.skipped_rows == 1
    assert int(batch["labels"][0, 3]) == (-100 if mode == "soft+tokens" else 7)
    assert batch["labels"][0, 4] == 9 and batch["input_ids"].shape == (3, 5)


def _teacher(store, library, rate: float):
    scenarios = library.scenarios("train")[:3] + library.scenarios("heldout_context")[:1]
    elicit(store, load_model(f"mock:rate={rate}"), scenarios, run_name="sampled", protocol="motivated", samples=4)
    elicit(store, load_model("mock:rate=0.3"), scenarios, run_name="scored", protocol="motivated", mode="score")
    return store.require_run("sampled"), store.require_run("scored")


def test_dataset_carries_exact_targets_from_a_score_run(store, library, tmp_path) -> None:
    sampled, scored = _teacher(store, library, 0.7)
    manifest = build_dataset(store, sampled, library, tmp_path / "ds", targets_run=scored)
    data = load_training_data(tmp_path / "ds")
    targets = {s: json.loads(t) for s, t in zip(data["scenario"], data[TARGET_COLUMN])}
    # The mock's P(C) = 0.3 at T = 1, tempered to the run's T = 0.8 like a real model's softmax.
    p_c = 1 / (1 + math.exp(-math.log(0.3 / 0.7) / 0.8))
    assert len(targets) == 3 and all(t == pytest.approx({"C": p_c, "D": 1 - p_c}) for t in targets.values())
    assert manifest.with_target == manifest.examples == 12
    assert manifest.decision_targets.startswith("exact: score run 'scored'") and manifest.target_temperature == 0.8
    assert load_manifest(tmp_path / "ds").with_target == 12


def test_dataset_smooths_sampled_answers_without_a_score_run(store, library, tmp_path) -> None:
    sampled, _ = _teacher(store, library, 1.0)  # every sample says C
    manifest = build_dataset(store, sampled, library, tmp_path / "ds")
    data = load_training_data(tmp_path / "ds")
    expected = (4 + SMOOTHING) / (4 + 2 * SMOOTHING)
    assert all(json.loads(t)["C"] == pytest.approx(expected) for t in data[TARGET_COLUMN])
    assert manifest.decision_targets.startswith("smoothed")


def test_a_soft_loss_needs_a_dataset_with_targets() -> None:
    assert training_columns(["prompt", "completion", TARGET_COLUMN], soft=True)[-1] == TARGET_COLUMN
    assert training_columns(["prompt", "completion", TARGET_COLUMN], soft=False) == ["prompt", "completion"]
    with pytest.raises(TomdistillError, match="no decision targets"):
        training_columns(["prompt", "completion"], soft=True)


def test_label_permutations_relabel_the_game_and_map_the_target(store, library, tmp_path) -> None:
    from tomdistill.augment import LABEL_PAIRS, permuted

    pd = library.scenario("team/prisoners_dilemma")
    variants = permuted(pd, 2 * len(LABEL_PAIRS))
    assert len({v.scenario.id for v in variants}) == len({tuple(v.scenario.game.actions) for v in variants}) == 12
    first, second = variants[0], variants[1]
    assert first.labels == {"C": "K", "D": "J"} and first.scenario.game.actions == ["K", "J"]
    assert second.scenario.game.actions == ["Y", "X"]  # listed in the other order
    # Payoffs follow the options: X is C, so X against X pays what C against C pays.
    assert second.scenario.game.payoffs["X"]["X"] == pd.game.payoffs["C"]["C"]
    assert second.scenario.game.payoffs["Y"]["X"] == pd.game.payoffs["D"]["C"]
    assert second.scenario.game.cooperative_action == "X" and second.scenario.split == "train"

    sampled, scored = _teacher(store, library, 0.7)
    manifest = build_dataset(store, sampled, library, tmp_path / "ds", targets_run=scored, label_permutations=2)
    data = load_training_data(tmp_path / "ds")
    augmented = [i for i, a in enumerate(data["augmented"]) if a]
    assert len(augmented) == 3 * 2 and manifest.examples == 12 + 6 and manifest.label_permutations == 2
    plain = {s: json.loads(t) for s, t, a in zip(data["scenario"], data[TARGET_COLUMN], data["augmented"]) if not a}
    for i in augmented:
        scenario, target = data["scenario"][i], json.loads(data[TARGET_COLUMN][i])
        original = scenario.replace("_perm1", "").replace("_perm2", "")
        labels = {"_perm1": ("K", "J"), "_perm2": ("X", "Y")}["_perm1" if "_perm1" in scenario else "_perm2"]
        assert target == pytest.approx({labels[0]: plain[original]["C"], labels[1]: plain[original]["D"]})
        assert data["completion"][i][0]["content"] in labels  # the decision alone, under the new letter
        assert f"({' or '.join(labels if '_perm1' in scenario else labels[::-1])})" in data["prompt"][i][1]["content"]
    # Only training scenarios are varied: the held-out scenario the teacher also answered is in no form.
    assert not any(s.startswith("sports/") for s in data["scenario"])


def test_excluded_scenarios_stay_out_augmented_or_not(store, library, tmp_path) -> None:
    sampled, scored = _teacher(store, library, 0.7)
    manifest = build_dataset(store, sampled, library, tmp_path / "ds", targets_run=scored, label_permutations=1,
                             exclude=["diplomacy/snow*"])
    data = load_training_data(tmp_path / "ds")
    assert not any("snowdrift" in s for s in data["scenario"])
    assert manifest.dropped_excluded == 4 and manifest.examples == 8 + 2


def test_paraphrases_retell_training_contexts_with_the_teacher_answer(store, library, tmp_path) -> None:
    sampled, scored = _teacher(store, library, 0.7)
    manifest = build_dataset(store, sampled, library, tmp_path / "ds", targets_run=scored, paraphrases=2)
    data = load_training_data(tmp_path / "ds")
    rows = [i for i, a in enumerate(data["augmented"]) if a == "paraphrase"]
    assert len(rows) == 3 * 2 and manifest.examples == 12 + 6 and manifest.paraphrases == 2
    framings = library.paraphrases("diplomacy")
    for i in rows:
        scenario = data["scenario"][i]
        k = int(scenario.split("/")[0].removeprefix("diplomacy_para"))
        assert data["prompt"][i][1]["content"].startswith(framings[k - 1].strip()[:60])
        original = scenario.replace(f"diplomacy_para{k}", "diplomacy")
        teacher_rows = [j for j, s in enumerate(data["scenario"]) if s == original]
        assert data["completion"][i] in [data["completion"][j] for j in teacher_rows]
        assert data[TARGET_COLUMN][i] == data[TARGET_COLUMN][teacher_rows[0]]
    assert not any(s.startswith("sports") for s in data["scenario"])


def test_candidate_logits_in_fp32_and_through_a_sharded_head() -> None:
    from tomdistill.train.decision import candidate_logits

    head = torch.nn.Linear(4, 6, bias=True).to(torch.bfloat16)
    hidden = torch.randn(2, 4, dtype=torch.bfloat16)
    ids = torch.tensor([[[1, 2], [3, -1]], [[0, -1], [5, 4]]])
    logits = candidate_logits(head, hidden, ids)
    full = hidden.float() @ head.weight.float().T + head.bias.float()
    assert logits.dtype == torch.float32 and logits.shape == (2, 2, 2)
    assert torch.allclose(logits[0, 0], full[0, [1, 2]]) and torch.allclose(logits[1, 1], full[1, [5, 4]])
    assert torch.isinf(logits[0, 1, 1]) and torch.isinf(logits[1, 0, 1])  # padding

    class Sharded(torch.nn.Module):  # ZeRO-3 / FSDP: the weight outside forward is an empty shard
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.empty(0, dtype=torch.bfloat16))
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return torch.arange(6, dtype=torch.bfloat16).repeat(x.shape[0], 1)

    sharded = Sharded()
    out = candidate_logits(sharded, hidden, ids)
    assert sharded.calls == 1 and out.dtype == torch.float32 and out[1, 1].tolist() == [5.0, 4.0]


def test_the_loss_from_candidate_logits_is_the_loss_over_the_whole_vocabulary() -> None:
    """The softmax normaliser cancels in the renormalised action mass: the loss computed from the
    candidates' logits alone equals the one from a log-softmax over all 50 tokens."""
    from tomdistill.train.decision import candidate_logits, candidate_loss

    torch.manual_seed(0)
    head = torch.nn.Linear(8, 50, bias=False)
    hidden = torch.randn(3, 8) * 3
    ids = torch.tensor([[[1, 7], [3, -1]], [[10, -1], [20, 21]], [[5, 6], [8, 9]]])
    target = torch.tensor([[0.3, 0.7], [1.0, 0.0], [0.5, 0.5]])
    for t in (0.8, 1.0):
        whole = decision_loss(head(hidden), ids, target, t)
        assert float(candidate_loss(candidate_logits(head, hidden, ids), ids, target, t)) == pytest.approx(float(whole), rel=1e-5)


def test_a_multi_token_action_or_packing_leaves_the_soft_loss_out() -> None:
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from tomdistill.config import TrainConfig

    vocab = {"C": [7], " C": [17], "D": [8, 9], " D": [18, 9]}  # D starts with no single token
    collator = DecisionCollator(DataCollatorForLanguageModeling(pad_token_id=0), lambda text: vocab[text], "soft")
    batch = collator(_examples()[:1])
    assert batch["decision_positions"].tolist() == [-1] and collator.skipped_rows == 1
    with pytest.raises(ValueError, match="packing"):
        TrainConfig(packing=True, decision_loss="soft")
