"""The planted teacher's replies: they parse to the drawn option, vary in wording with the seed,
carry the assessment's own numbers, and never call a pick drawn against the odds the better one."""

from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter

import pytest

from tomdistill.models.planted.behaviour import assess
from tomdistill.models.planted.params import load_params
from tomdistill.models.planted.replies import compose_reply
from tomdistill.scenarios.parse import answer_spec, parse_reply
from tomdistill.scenarios.render import PastRound
from tomdistill.scenarios.situate import situation
from tomdistill.situations import MatrixSituation, PublicGoodsSituation

SEEDS = range(200)
#: What a reply says when its pick pays the player the most; never said of a pick against the odds.
OWN_CLAIM = re.compile(r"pays me the most|higher expected payoff|leaves me best off|pays me more|better for me")
COMPARATIVE = re.compile(r"\b(?:better|best|ahead|edges|favours|more|most|higher|highest)\b")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
HISTORY = [PastRound("C", "D", 2.0), PastRound("D", "C", 10.0)]
#: What a reply says when another option pays the player more than its pick: never said on a tie.
COST_CLAIM = re.compile(r"points (?:more|less)\b|does not pay me the most|another amount would pay me more"
                        r"|costs me (?!nothing)")
#: Parameters whose belief and weight are not whole percents, so their percents are rounded.
ODD_PARAMS = "lambda = 0.25\nlearning_rate = 0.5\n[default]\nbelief = {q}\nweight = {w}\n"


@pytest.fixture(scope="module")
def params():
    return load_params("default").params


def _case(library, params, scenario_id, protocol="motivated", history=None):
    scenario = library.scenario(scenario_id)
    sit = situation(scenario, protocol, history)
    return scenario, sit, assess(sit, params, 0.8)


def _motivation(reply: str) -> str:
    first, _, rest = reply.partition("\n")
    assert rest.startswith("Motivation: "), reply
    return rest.removeprefix("Motivation: ")


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=\.)\s+", text) if s]


def _index(options, option) -> int:
    return list(options).index(option)


def _odd_params(tmp_path, q: float, w: float):
    path = tmp_path / f"odd_{q}_{w}.toml"
    path.write_text(ODD_PARAMS.format(q=q, w=w))
    return load_params(str(path)).params


def test_every_reply_parses_to_the_drawn_option(library, params):
    for scenario in library.scenarios():
        histories = [None, HISTORY] if not scenario.numeric else [None]
        for protocol in ("answer", "motivated"):
            for history in histories:
                sit = situation(scenario, protocol, history)
                a = assess(sit, params, 0.8)
                for choice, option in enumerate(a.options):
                    for seed in range(6):
                        reply = compose_reply(sit, a, choice, random.Random(seed))
                        decision = parse_reply(reply, answer_spec(scenario))
                        expected = float(option) if scenario.numeric else option
                        assert decision.action == expected, (scenario.id, reply, decision)
                        if protocol == "answer":
                            assert reply == option
                        else:
                            assert reply.split("\n")[0] == f"Answer: {option}"
                            assert "answer:" not in _motivation(reply).lower()
                            assert decision.motivation == _motivation(reply)


def test_same_seed_gives_the_same_reply(library, params):
    for scenario_id, choice in [("business/snowdrift", 0), ("community/donation_game", 7)]:
        _, sit, a = _case(library, params, scenario_id)
        for seed in range(20):
            assert compose_reply(sit, a, choice, random.Random(seed)) == compose_reply(sit, a, choice, random.Random(seed))
        assert len({compose_reply(sit, a, choice, random.Random(seed)) for seed in range(20)}) > 1


# Each pick covers one case: pays most / weight on the coplayer / against the odds (far and close),
# in matrix and donation games, and a repeated game.
VARIED = [
    ("diplomacy/prisoners_dilemma", "D", None),
    ("environment/snowdrift", "C", None),
    ("team/prisoners_dilemma", "C", None),
    ("business/snowdrift", "C", None),
    ("team/prisoners_dilemma", "D", HISTORY),
    ("community/donation_game", "0", None),
    ("community/donation_game", "10", None),
    ("community/donation_game", "4", None),
]


@pytest.mark.parametrize("scenario_id,option,history", VARIED)
def test_wording_varies_with_the_seed(library, params, scenario_id, option, history):
    _, sit, a = _case(library, params, scenario_id, history=history)
    texts = [_motivation(compose_reply(sit, a, _index(a.options, option), random.Random(s))) for s in SEEDS]
    assert len(set(texts)) >= 40
    counts = Counter(sentence for text in texts for sentence in set(_sentences(text)))
    assert len(counts) >= 9  # at least three phrasings for each of the three sentences
    sentence, n = counts.most_common(1)[0]
    assert n <= len(texts) / 2, sentence
    assert all(len(_sentences(t)) == 3 for t in texts)
    # The clause order varies too: the sentence naming the pick's own payoff moves around.
    own = a.own[_index(a.options, option)]
    positions = {next(i for i, s in enumerate(_sentences(t)) if _has_number(s, own)) for t in texts}
    assert len(positions) >= 2


def _has_number(text: str, value: float, tolerance: float = 0.05) -> bool:
    return any(abs(float(n) - value) <= tolerance + 1e-9 for n in NUMBER.findall(text))


def _tolerance(number: str, after: str) -> float:
    """How far a printed number may be from its true value: one decimal for payoffs and amounts,
    a whole percent, or half the last printed digit of a finer number."""
    if after.startswith("%"):
        return 0.5
    decimals = len(number.partition(".")[2])
    return 0.05 if decimals <= 1 else 0.5 * 10 ** -decimals


def _allowed_matrix(sit, a) -> list[float]:
    pairs = [(i, j) for i in range(len(a.options)) for j in range(len(a.options)) if i != j]
    values = [*a.own, *a.others, a.belief, 100 * a.belief, 100 * (1 - a.belief), 100 * abs(a.weight)]
    values += [abs(a.own[i] - a.own[j]) for i, j in pairs] + [abs(a.others[i] - a.others[j]) for i, j in pairs]
    values += [a.own[i] + a.others[i] for i in range(len(a.options))]
    values += [len(sit.history), sum(theirs == sit.cooperate for _, theirs in sit.history)]
    return values


def _allowed_donation(sit, a) -> list[float]:
    n, e, m, q = sit.players, sit.endowment, sit.multiplier, a.belief
    values = [*a.own, *(float(o) for o in a.options), e, q * e, (n - 1) * q * e, 100 * q, m / n, abs(1 - m / n)]
    return values + [(n - 1) * m / n, 100 * abs(a.weight), n - 1, 1]


def _check_numbers(motivation: str, q: float, allowed: list[float]) -> None:
    """Every number in `motivation` is one of `allowed` (as rounded, and then marked 'about'),
    fractions 'k times in d' are q."""
    for k, d in re.findall(r"(\d+) times? in (\d+)", motivation):
        assert int(k) / int(d) == pytest.approx(q), motivation
    assert not re.search(r"\ban? \d", motivation), motivation  # no "a 87%": the article depends on the number
    rest = re.sub(r"\d+ times? in \d+", "", motivation)
    for match in NUMBER.finditer(rest):
        number, before, after = match.group(0), rest[:match.start()], rest[match.end():]
        tol = _tolerance(number, after)
        assert any(abs(float(number) - v) <= tol + 1e-9 for v in allowed), (number, motivation)
        if not any(abs(float(number) - v) < 1e-9 for v in allowed):
            assert re.search(r"\babout \D{0,3}$", before), (number, "rounded but not marked", motivation)


@pytest.mark.parametrize("odd", [None, (0.125, 0.125), (0.875, -0.135)])
def test_numbers_are_the_assessments(library, params, tmp_path, odd):
    # The odd parameters put the belief and the weight on a rounding boundary (12.5%, 87.5%, 13.5%).
    params = _odd_params(tmp_path, *odd) if odd else params
    for scenario in library.scenarios():
        histories = [None, HISTORY] if not scenario.numeric else [None]
        for history in histories:
            sit = situation(scenario, "motivated", history)
            a = assess(sit, params, 0.8)
            allowed = _allowed_donation(sit, a) if scenario.numeric else _allowed_matrix(sit, a)
            for choice in range(len(a.options)):
                for seed in range(10):
                    text = _motivation(compose_reply(sit, a, choice, random.Random(seed)))
                    _check_numbers(text, a.belief, allowed)
                    assert _has_number(text, a.own[choice]), (scenario.id, text)
                    if scenario.numeric:  # what the others give, in all
                        assert _has_number(text, (sit.players - 1) * a.belief * sit.endowment), text
                    else:
                        assert all(_has_number(text, x) for x in a.own), text
                    assert not re.search(r"\d\.0\b", text), text  # 5, never 5.0


def test_belief_is_stated(library, params):
    for scenario_id, history in [("diplomacy/prisoners_dilemma", None), ("team/stag_hunt", None),
                                 ("team/prisoners_dilemma", HISTORY)]:
        _, sit, a = _case(library, params, scenario_id, history=history)
        for seed in range(50):
            text = _motivation(compose_reply(sit, a, 0, random.Random(seed)))
            percent = any(abs(float(n) - 100 * a.belief) <= 0.5 for n in re.findall(r"(\d+)%", text))
            fraction = any(int(k) / int(d) == pytest.approx(a.belief)
                           for k, d in re.findall(r"(\d+) times? in (\d+)", text))
            decimal = any(abs(float(n) - a.belief) <= 0.005 for n in re.findall(r"\b0\.\d+", text))
            assert percent or fraction or decimal, text
            if history:
                assert re.search(r"last|most recently", text), text


ODDS = [("team/prisoners_dilemma", "C"), ("business/snowdrift", "C"), ("environment/prisoners_dilemma", "C"),
        ("community/donation_game", "4"), ("community/donation_game", "9")]


@pytest.mark.parametrize("scenario_id,option", ODDS)
def test_a_pick_against_the_odds_is_never_called_the_better_one(library, params, scenario_id, option):
    _, sit, a = _case(library, params, scenario_id)
    choice = _index(a.options, option)
    # Preconditions: the pick is the best neither for the player alone nor by its utility.
    assert a.own[choice] < max(a.own) and a.best != choice
    best = a.options[a.best]
    best_name = f"{sit.currency}{best}" if scenario_id.startswith("community") else best
    # A pick far less likely than the best one is not passed off as a close call.
    far = a.probs[choice] < 0.4 * a.probs[a.best]
    for seed in SEEDS:
        text = _motivation(compose_reply(sit, a, choice, random.Random(seed)))
        assert not OWN_CLAIM.search(text), text
        assert re.search(r"anyway|regardless|a chance|against it|still", text), text
        assert not (far and re.search(r"close|slightly|small|narrow|a little|edges", text)), text
        for sentence in _sentences(text):
            if COMPARATIVE.search(sentence):
                assert re.search(rf"(?<![\w.]){re.escape(best_name)}(?![\w.])", sentence), sentence


@pytest.mark.parametrize("scenario_id,option", [("diplomacy/prisoners_dilemma", "D"), ("community/donation_game", "0")])
def test_a_pick_that_pays_most_says_so(library, params, scenario_id, option):
    # The positive control of OWN_CLAIM: the wording the odds test rules out is the one used here.
    _, sit, a = _case(library, params, scenario_id)
    for seed in SEEDS:
        assert OWN_CLAIM.search(compose_reply(sit, a, _index(a.options, option), random.Random(seed)))


@pytest.mark.parametrize("scenario_id,option,weight_words", [
    ("environment/snowdrift", "C", ["35%"]),
    ("community/donation_game", "10", ["25%", "a quarter"]),
])
def test_a_pick_made_for_the_coplayer_says_what_it_weighs(library, params, scenario_id, option, weight_words):
    _, sit, a = _case(library, params, scenario_id)
    choice = _index(a.options, option)
    assert a.own[choice] < max(a.own) and a.best == choice  # precondition: the weight decides it
    for seed in SEEDS:
        text = _motivation(compose_reply(sit, a, choice, random.Random(seed)))
        assert any(w in text for w in weight_words), text
        assert not OWN_CLAIM.search(text), text


def test_unknown_protocol_is_refused(library, params):
    _, sit, a = _case(library, params, "team/stag_hunt", protocol="answer")
    odd = dataclasses.replace(sit, protocol="essay")
    with pytest.raises(ValueError, match="essay"):
        compose_reply(odd, a, 0, random.Random(0))


# Games where the player's own payoff is the same whatever it picks, so the weight on the others
# alone decides: a matrix game with flat own payoffs, and a donation game that breaks even.
FLAT = {"C": {"C": (3.0, 5.0), "D": (3.0, 1.0)}, "D": {"C": (3.0, 3.0), "D": (3.0, 0.0)}}
TIES = [
    (MatrixSituation("team", "flat", ("C", "D"), "C", FLAT, "motivated"), None),
    (MatrixSituation("team", "flat", ("C", "D"), "C", FLAT, "motivated"), (0.6, -0.5)),
    (PublicGoodsSituation("community", "even", 4, 10.0, 4.0, "$", "motivated"), None),
]


@pytest.mark.parametrize("sit,odd", TIES)
def test_a_tie_in_own_payoffs_is_worded_as_a_tie(params, tmp_path, sit, odd):
    a = assess(sit, _odd_params(tmp_path, *odd) if odd else params, 0.8)
    choice = a.best
    # Preconditions: every option pays the player the same, and the weight picks one of them.
    assert max(a.own) - min(a.own) < 1e-9 and a.utility[choice] > min(a.utility) + 1e-6
    for seed in SEEDS:
        text = _motivation(compose_reply(sit, a, choice, random.Random(seed)))
        assert not COST_CLAIM.search(text), text
        assert not OWN_CLAIM.search(text), text  # not strictly the best for the player either
        assert re.search(r"as much as|no (?:other amount would pay me )?more|costs me nothing|Each \$1 I give", text), text


@pytest.mark.parametrize("scenario_id,option", [("environment/snowdrift", "C"), ("community/donation_game", "10")])
def test_a_pick_that_costs_the_player_says_so(library, params, scenario_id, option):
    # The positive control of COST_CLAIM: the wording the tie test rules out is the one used here.
    _, sit, a = _case(library, params, scenario_id)
    choice = _index(a.options, option)
    assert a.own[choice] < max(a.own) - 0.1 and a.best == choice
    texts = [_motivation(compose_reply(sit, a, choice, random.Random(seed))) for seed in SEEDS]
    assert sum(bool(COST_CLAIM.search(t)) for t in texts) > len(texts) / 2


@pytest.mark.parametrize("scale", [1e27, 1e300, 1e-30])
def test_payoffs_of_any_size_are_plain_digits(params, scale):
    payoffs = {"C": {"C": (5 * scale, 5 * scale), "D": (2 * scale, 10 * scale)},
               "D": {"C": (10 * scale, 2 * scale), "D": (3 * scale, 3 * scale)}}
    sit = MatrixSituation("team", "big", ("C", "D"), "C", payoffs, "motivated")
    a = assess(sit, params, 0.8)
    for choice in range(len(a.options)):
        for seed in range(30):
            text = _motivation(compose_reply(sit, a, choice, random.Random(seed)))
            assert not re.search(r"\d[eE][+-]?\d|inf|nan", text), text
            printed = [float(n) for n in NUMBER.findall(text)]
            for own in a.own:  # each own payoff, to the one decimal a payoff is written with
                assert any(n == pytest.approx(own, rel=1e-12, abs=0.05) for n in printed), (own, text)
