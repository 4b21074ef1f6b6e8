"""The reply parser on realistic model outputs, written for these tests (not copied from anywhere)."""

from __future__ import annotations

import pytest

from tomdistill.scenarios import load_library
from tomdistill.scenarios.parse import ChoiceAnswer, NumberAnswer, parse_decision, parse_reply

CD = ChoiceAnswer(("C", "D"))
DONATE = NumberAnswer(0, 10)

CHOICES: list[tuple[str, str | None]] = [
    ("C", "C"),
    ("D", "D"),
    ("  D\n", "D"),
    ("c", "C"),
    ("d.", "D"),
    ("**D**", "D"),
    ("`C`", "C"),
    ("(C)", "C"),
    ("Strategy D.", "D"),
    ("Option C", "C"),
    ("My decision: C", "C"),
    ("Answer: D", "D"),
    ("Answer: <C>\nMotivation: copying the format literally.", "C"),
    ("Final answer: **C**", "C"),
    ("I choose C because mutual gains are larger.", "C"),
    ("I choose C because if I choose D the coplayer loses.", "C"),
    ("i choose d", "D"),
    ("I would pick D, since the coplayer might not cooperate.", "D"),
    ("I'd go with C.", "C"),
    ("I’ll choose option D to protect my company.", "D"),
    ("I am choosing C.", "C"),
    ("My choice is D.", "D"),
    ("My answer would be C", "C"),
    ("C or D? I pick D", "D"),
    ("Between C and D, I will go with C.", "C"),
    ("D - the coplayer has every reason to defect.", "D"),
    ("C. Working together gives both of us 10 points.", "C"),
    ("C\nMotivation: Both of us gain most if we cooperate.", "C"),
    ("D\n\nMotivation: I cannot be sure the coplayer picks C, and D protects me.", "D"),
    ("**C**\n**Motivation:** Trust pays off here.", "C"),
    ("Considering the payoffs, the best option for me is D.", "D"),
    ("After weighing the risk, I decide to choose C.", "C"),
    ("If the coplayer is rational, I should pick D.", "D"),
    ("I will not choose D. I choose C.", "C"),
    # ambiguous or empty: never guessed
    ("C or D", None),
    ("C/D", None),
    ("It depends: C if they trust me, D otherwise.", None),
    ("I choose C. Actually, D.", None),
    ("I am torn between C and D.", None),
    ("I would cooperate with the coplayer.", None),
    ("", None),
    ("   \n  ", None),
    ("Motivation: it is better to work together.", None),
    ("I choose C and I choose D", None),
    # seen from the 135M student
    ("C: you pick D", None),
    ('the answer is "C or D" but in this case, the first one', None),
    ("The coplayer, who has only two options to choose from: you pick D.", "D"),
    ("C, of course.", "C"),
]

AMOUNTS: list[tuple[str, float | None]] = [
    ("7", 7),
    ("$7", 7),
    ("5 dollars", 5),
    ("10", 10),
    ("0", 0),
    ("I would donate $7", 7),
    ("I would donate $7 because if everyone donates $10 we all get $25.", 7),
    ("I'll give 10 dollars to the fund, since 10 x 2.5 shared by 4 is more than I keep.", 10),
    ("My contribution: 6", 6),
    ("I donate five dollars.", 5),
    ("I would give nothing.", 0),
    ("3\nMotivation: I keep most of it but still help the group.", 3),
    ("**8**", 8),
    ("Answer: 4", 4),
    ("Answer: 6\nMotivation: the fund returns more than I put in.", 6),
    ("I will contribute $2.50.", 2.5),
    ("I think putting in $6 is fair.", 6),
    # invalid
    ("12", None),
    ("I would donate $15.", None),
    ("Either 5 or 10.", None),
    ("I am not sure how much to give.", None),
    ("I donate 5. Actually, make it 7.", None),
]


@pytest.mark.parametrize(("text", "expected"), CHOICES)
def test_choice_replies(text: str, expected: str | None) -> None:
    decision = parse_reply(text, CD)
    assert decision.action == expected, decision
    assert decision.valid == (expected is not None)
    if expected is None:
        assert decision.invalid_reason


@pytest.mark.parametrize(("text", "expected"), AMOUNTS)
def test_amount_replies(text: str, expected: float | None) -> None:
    decision = parse_reply(text, DONATE)
    assert decision.action == expected, decision
    assert decision.valid == (expected is not None)


def test_motivation_is_kept() -> None:
    d = parse_reply("D\nMotivation: I cannot trust an unknown coplayer.", CD)
    assert d.motivation == "I cannot trust an unknown coplayer."
    d = parse_reply("I choose C because we both gain.", CD)
    assert d.motivation == "because we both gain."
    assert parse_reply("C", CD).motivation is None


def test_invalid_reasons_say_why() -> None:
    assert "names C and D" in parse_reply("C or D", CD).invalid_reason
    assert "outside 0-10" in parse_reply("12", DONATE).invalid_reason
    assert parse_reply("", CD).invalid_reason == "empty reply"


def test_word_letters_are_not_read_in_lower_case() -> None:
    ab = ChoiceAnswer(("A", "B"))
    assert parse_reply("I choose a strategy that helps: B", ab).action == "B"
    assert parse_reply("A", ab).action == "A"


def test_parse_decision_uses_the_scenario_answer_kind() -> None:
    lib = load_library()
    assert parse_decision("I pick D", lib.scenario("team/snowdrift")).action == "D"
    assert parse_decision("I would donate $7", lib.scenario("community/donation_game")).action == 7
    assert not parse_decision("C", lib.scenario("community/donation_game")).valid
