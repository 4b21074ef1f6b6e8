"""The reason-first protocol: the motivation, then the decision; scored after each sampled motivation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from tomdistill.agents import Agent
from tomdistill.dataset import build_dataset
from tomdistill.elicit import elicit
from tomdistill.errors import TomdistillError
from tomdistill.models.base import ModelOptions, ScoreRequest, ScoreResult
from tomdistill.models.mock import MockModel
from tomdistill.models.registry import load_model
from tomdistill.scenarios import render
from tomdistill.scenarios.parse import ChoiceAnswer, NumberAnswer, answer_line_start, parse_reply, reasoned_prefix
from tomdistill.scenarios.protocols import PROTOCOLS, decision_prefix, reason_first
from tomdistill.targets import exact_targets

CD = ChoiceAnswer(actions=("C", "D"))


@pytest.mark.parametrize(("text", "action", "motivation"), [
    ("Motivation: They have always kept their word.\nAnswer: C", "C", "They have always kept their word."),
    # The decision line is the first labelled answer line, whatever the motivation mentions inline.
    ("Motivation: C pays 3 and D pays 5.\nAnswer: D\n", "D", "C pays 3 and D pays 5."),
    ("**Motivation:** trust matters.\n**Answer:** C", "C", "trust matters."),
    ("Motivation: first I thought D. Answer: D would be greedy.\nFinal answer: C", "C",
     "first I thought D. Answer: D would be greedy."),
])
def test_reason_first_replies_are_read_from_their_first_answer_line(text, action, motivation) -> None:
    decision = parse_reply(text, CD)
    assert (decision.action, decision.motivation) == (action, motivation)


def test_reason_first_amounts_and_replies_without_an_answer_line() -> None:
    assert parse_reply("Motivation: keep a little back.\nAnswer: 7", NumberAnswer(low=0, high=10)).action == 7.0
    missing = parse_reply("Motivation: it could go either way between C and D.", CD)
    assert missing.action is None and missing.invalid_reason == "no decision before the motivation"
    # Decision-first replies read as before.
    assert parse_reply("Answer: D\nMotivation: Answer: C is naive.", CD).action == "D"


def test_reasoned_prefix_cuts_the_reply_where_its_decision_starts() -> None:
    assert reason_first("reasoned") and not reason_first("motivated") and not reason_first("answer")
    assert reasoned_prefix("Motivation: they trust me.\n\nAnswer: D\nextra", "reasoned") == \
        "Motivation: they trust me.\nAnswer:"
    # A reply that never reached its answer line is still followed by the same question.
    assert reasoned_prefix("Motivation: they trust", "reasoned") == "Motivation: they trust\nAnswer:"
    with pytest.raises(ValueError, match="not reason-first"):
        reasoned_prefix("C", "motivated")


def test_the_parser_and_score_mode_cut_a_reasoned_reply_at_the_same_line() -> None:
    """One rule (answer_line_start) for both: a reply that states two answers is read, and scored,
    at its first; the scored prefix is exactly the stored motivation plus the decision prefix."""
    reply = "Motivation: they kept their word.\n**Answer:** C\nOn reflection...\nFinal answer: D"
    decision = parse_reply(reply, CD)
    assert (decision.action, decision.motivation) == ("C", "they kept their word.")
    assert reasoned_prefix(reply, "reasoned") == "Motivation: they kept their word.\nAnswer:"
    assert answer_line_start(reply) == reply.index("**Answer:**")
    # Every reason-first protocol's own decision prefix is a line the rule recognises.
    for protocol in PROTOCOLS:
        if reason_first(protocol):
            assert answer_line_start(f"Motivation: x\n{decision_prefix(protocol)} C") is not None


class _Persuadable(MockModel):
    """Writes a trusting or a wary motivation by seed, and cooperates after a trusting one."""

    def __init__(self) -> None:
        super().__init__("rate=0.5", ModelOptions(extra={"script": self._write}))
        self.prefixes: list[str] = []

    @staticmethod
    def _write(request) -> str:
        word = "trust" if request.seed % 2 else "doubt"
        return f"Motivation: I {word} the coplayer.\nAnswer: X"

    def score(self, requests: Sequence[ScoreRequest]) -> Iterator[ScoreResult]:
        for r in requests:
            self.prefixes.append(r.prefix)
            p = 0.9 if "trust" in r.prefix else 0.2
            yield ScoreResult(r.key, {"C": p, "D": 1 - p}, valid_mass=1.0, latency_s=0.0)


def test_reasoned_score_mode_scores_after_each_sampled_motivation(store, library) -> None:
    scenarios = library.scenarios("train")[:2]
    model = _Persuadable()
    summary = elicit(store, model, scenarios, run_name="rf", protocol="reasoned", mode="score", samples=6)
    run = store.require_run("rf")
    stored = store.samples(run.id)
    assert summary.new == 12 and len(stored) == 12
    # Every record keeps its motivation, seed and raw text, and is scored right after that motivation.
    assert all(s.raw_text and s.seed is not None and s.motivation in ("I trust the coplayer.", "I doubt the coplayer.")
               for s in stored)
    assert sorted(set(model.prefixes)) == ["Motivation: I doubt the coplayer.\nAnswer:",
                                           "Motivation: I trust the coplayer.\nAnswer:"]
    for cell in summary.scenarios:
        mine = [s for s in stored if s.scenario == cell.scenario]
        trusting = sum(s.seed % 2 for s in mine)
        assert cell.rate == pytest.approx((0.9 * trusting + 0.2 * (6 - trusting)) / 6)
        assert exact_targets(store, run, [library.scenario(cell.scenario)]).probs[cell.scenario]["C"] == \
            pytest.approx(cell.rate)
    assert run.settings["reasoned"]["decision_prefix"] == "Answer:"
    assert run.settings["reasoned"]["sampling"]["max_new_tokens"] == 144
    # Resuming asks only for what is missing.
    assert elicit(store, model, scenarios, run_name="rf", protocol="reasoned", mode="score", samples=6).new == 0


def test_planted_teacher_reasons_first_and_decides_by_its_rule(store, library) -> None:
    scenario = library.scenario("business/prisoners_dilemma")
    elicit(store, load_model("planted:default"), [scenario], run_name="pl", protocol="reasoned", samples=8)
    for s in store.samples(store.require_run("pl").id):
        assert s.raw_text.startswith("Motivation: ") and s.raw_text.splitlines()[-1] == f"Answer: {s.action}"
        assert s.motivation and "Answer" not in s.motivation


def test_reasoned_protocol_is_refused_where_it_cannot_work(store, library, tmp_path) -> None:
    with pytest.raises(TomdistillError, match="sample mode only"):
        Agent(load_model("mock:rate=0.5"), protocol="reasoned", mode="score")
    scenarios = library.scenarios("train")[:1]
    elicit(store, load_model("mock:rate=0.5"), scenarios, run_name="t", samples=2, protocol="motivated")
    with pytest.raises(TomdistillError, match="reason-first"):
        build_dataset(store, store.require_run("t"), library, tmp_path / "ds", prompt_protocol="reasoned")
    assert not (tmp_path / "ds").exists()
    assert "Give your reasoning first" in render(scenarios[0], "reasoned")[-1]["content"]
