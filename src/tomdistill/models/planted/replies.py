"""The planted player's replies: the drawn option, and for the motivated protocol a short
motivation built from the numbers the player actually weighed.

A motivation has three sentences: what the player expects of the coplayer(s), what the options
pay it under that expectation, and why it took the option it drew. The wording varies (several
phrasings per sentence and a varied sentence order, all chosen with the sample's rng) so that a
student cannot learn one fixed sentence; the numbers never vary: each is the assessment's own,
rounded for reading (plain digits at any size) and marked "about" when rounding changed it. Every
comparison is true: a pick that is not the best by the player's own utility is never said to pay
more, and options that pay the player the same are worded as a tie, never as a cost or a gain.

The first line is exactly "Answer: <option>" (reasoned: the last line) and the motivation never
repeats that label, so the parser reads the drawn option whatever the motivation mentions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Context, Decimal

from ...situations import MatrixSituation, PublicGoodsSituation, Situation
from .behaviour import Assessment

#: Payoffs closer than this are a tie: text never calls one of them the higher.
_EPS = 1e-9
#: A drawn option at least this share as likely as the best one was a close call.
_CLOSE = 0.5
#: Sentence orders (expectation, payoffs, reason); the expectation always precedes the payoffs,
#: which may refer back to it.
_ORDERS = ((0, 1, 2), (2, 0, 1), (0, 2, 1))
#: Weights said in words when they are exactly one of these fractions.
_FRACTIONS = {0.1: "a tenth", 0.2: "a fifth", 0.25: "a quarter", 0.5: "half", 0.75: "three quarters"}


def compose_reply(situation: Situation, assessment: Assessment, choice: int, rng: random.Random) -> str:
    """The reply that takes `assessment.options[choice]`, in the situation's protocol.

    `rng` picks the wording only; the same rng state gives the same text."""
    pick = assessment.options[choice]
    if situation.protocol == "answer":
        return pick
    if situation.protocol not in ("motivated", "reasoned"):
        raise ValueError(f"unknown protocol {situation.protocol!r}; expected 'answer', 'motivated' or 'reasoned'")
    if isinstance(situation, MatrixSituation):
        clauses = _matrix_clauses(situation, assessment, choice, rng)
    else:
        clauses = _donation_clauses(situation, assessment, choice, rng)
    order = rng.choice(_ORDERS)
    motivation = " ".join(clauses[i] for i in order)
    if situation.protocol == "reasoned":  # reason first; the rule decides the same either way
        return f"Motivation: {motivation}\nAnswer: {pick}"
    return f"Answer: {pick}\nMotivation: {motivation}"


# --- numbers -----------------------------------------------------------------------------------


def _num(value: float, places: int = 1) -> str:
    """`value` rounded half up to `places` decimals, trailing zeros dropped: 5.0 -> '5', 3.35 -> '3.4'.

    Any finite float, however large or small, comes out as plain digits (5e27 -> 28 digits)."""
    if not math.isfinite(value):  # nothing to round; keeps a reply from failing on an overflow
        return str(value)
    exact = Decimal(repr(float(value)))
    # Decimal's default 28 significant digits cannot hold every float's integer part.
    context = Context(prec=max(exact.adjusted(), 0) + places + 2)
    rounded = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP, context=context)
    text = format(rounded, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _mark(text: str, value: float, unit: str = "") -> str:
    """`unit` + `text` when `text` is `value` exactly, else 'about ' before them."""
    exact = abs(float(text) - value) < _EPS
    return f"{unit}{text}" if exact else f"about {unit}{text}"


def _about(value: float, unit: str = "", places: int = 1) -> str:
    """'5' when that is exact, 'about 3.4' when rounding changed the value; `unit` goes before it."""
    return _mark(_num(value, places), value, unit)


def _percent(share: float) -> str:
    """A share as a whole percent: '20%', or 'about 13%' for 0.125."""
    return _about(100 * share, places=0) + "%"


def _frequency(q: float) -> str:
    """How often a probability comes up, as a small fraction when it is one: '3 times in 5'."""
    for den in (2, 3, 4, 5, 10):
        k = round(q * den)
        if 0 < k < den and abs(q * den - k) < _EPS:
            return f"{k} {'time' if k == 1 else 'times'} in {den}"
    return f"{_percent(q)} of the time"


def _weight_text(w: float, rng: random.Random) -> str:
    """How the player counts another's payoff against its own: 'at a quarter of my own'."""
    if w < 0:
        return f"as a loss to me, at {_percent(-w)} of their value"
    words = [f"at {_FRACTIONS[f]} of my own" for f in _FRACTIONS if abs(w - f) < _EPS]
    if abs(w - 1) < _EPS:
        words.append("as highly as my own")
    return rng.choice(words + [f"at {_percent(w)} of my own"])


def _gap(value: float) -> str:
    """A positive difference for a comparison: never '0', which would make 'more' untrue."""
    return "under 0.1" if _num(value) == "0" else _about(value)


# --- the reason, shared by both kinds of game --------------------------------------------------


def _case(a: Assessment, choice: int) -> str:
    """'own': the pick pays the player most; 'weight': its weight on the others makes the pick
    the best; 'odds': neither, the logit draw went to a weaker (or tied) option."""
    rivals = [i for i in range(len(a.options)) if i != choice]
    if all(a.own[choice] > a.own[i] + _EPS for i in rivals):
        return "own"
    if a.weight != 0 and all(a.utility[choice] > a.utility[i] + _EPS for i in rivals):
        return "weight"
    return "odds"


def _rival(a: Assessment, choice: int, scores: Sequence[float]) -> int:
    """The option other than `choice` that scores highest (the first on a tie)."""
    return max((i for i in range(len(a.options)) if i != choice), key=lambda i: scores[i])


def _ties_own(a: Assessment, choice: int) -> bool:
    """Whether no other option pays the player more than `choice` (so none may be called a cost)."""
    return a.own[_rival(a, choice, a.own)] <= a.own[choice] + _EPS


def _reasons(a: Assessment, choice: int, names: Sequence[str], weighted: Callable[[], list[str]]) -> list[str]:
    """Phrasings of why `choice` was taken; `names` says each option in a sentence and
    `weighted` gives the game's own phrasings for a pick made by the weight on the others."""
    case, pick = _case(a, choice), names[choice]
    if case == "own":
        return [f"{pick} pays me the most on average, so it is my choice.",
                f"I go with {pick} because no other choice gives me a higher expected payoff.",
                f"Since {pick} leaves me best off, it is the one I go with."]
    if case == "weight":
        return weighted()
    rival = _rival(a, choice, a.utility)
    best = names[rival]
    if a.utility[rival] <= a.utility[choice] + _EPS:
        return [f"By my numbers {pick} and {best} come out even, so I settle on {pick}.",
                f"There is nothing between {pick} and {best} once everything is counted; I go with {pick}.",
                f"{pick} and {best} are worth the same to me, and {pick} is the one I take."]
    if a.probs[choice] >= _CLOSE * a.probs[rival]:
        return [f"It is a close call: {best} comes out slightly ahead by my numbers, but I settle on {pick} anyway.",
                f"The difference is small, with {best} a little ahead on balance, and I go with {pick} regardless.",
                f"{best} edges it by my reckoning, yet the gap is narrow enough that I give {pick} a chance."]
    return [f"By my numbers {best} is the better choice, but I go with {pick} anyway and give it a chance.",
            f"{best} is what my estimate favours; I go against it this time with {pick}.",
            f"I know {best} looks better on balance, and still I take {pick} here."]


# --- two-player matrix games -------------------------------------------------------------------


def _matrix_clauses(s: MatrixSituation, a: Assessment, choice: int, rng: random.Random) -> list[str]:
    """[expectation, payoffs, reason] for a two-player matrix game, payoffs in points."""
    coop = s.cooperate
    other = next(x for x in s.actions if x != coop)
    pct = _num(100 * a.belief, 0)
    # The two chances are rounded together so that they add up to 100%.
    share, rest = _mark(pct, 100 * a.belief) + "%", _mark(str(100 - int(pct)), 100 * (1 - a.belief)) + "%"
    if s.history:
        last = s.history[-1][1]
        rounds = len(s.history)
        kept = sum(theirs == coop for _mine, theirs in s.history)
        expect = [f"The coplayer picked {last} last round, so I now expect it to pick {coop} {share} of the time.",
                  f"After seeing {last} from the coplayer last time, I put the chance that it picks {coop} now at "
                  f"{share}.",
                  f"So far the coplayer has picked {coop} in {kept} of {rounds} {'round' if rounds == 1 else 'rounds'}, "
                  f"{last} most recently; I now expect {coop} from it {_frequency(a.belief)}."]
    else:
        expect = [f"I expect the coplayer to pick {coop} {_frequency(a.belief)}.",
                  f"My guess is that the coplayer picks {coop} with a chance of {share} and {other} with a chance "
                  f"of {rest}.",
                  f"I put the probability that the coplayer goes for {coop} at {_about(a.belief, places=2)}."]
    worth = [(label, _about(a.own[i])) for i, label in enumerate(a.options)]
    first, rest = worth[0], worth[1:]
    tail = ", ".join(f"{v} with {x}" for x, v in rest)
    payoffs = [f"Under that belief, {first[0]} pays me {first[1]} points on average and " +
               ", ".join(f"{x} {v}" for x, v in rest) + ".",
               "On average I would get " + " and ".join(f"{v} points from {x}" for x, v in worth) + ".",
               f"That makes my expected payoff {first[1]} points with {first[0]}, against {tail}."]
    reasons = _reasons(a, choice, a.options, lambda: _matrix_weighted(a, choice, rng))
    return [rng.choice(expect), rng.choice(payoffs), rng.choice(reasons)]


def _matrix_weighted(a: Assessment, choice: int, rng: random.Random) -> list[str]:
    """Why a pick that pays the player less (or no more) is still its best: the coplayer's points."""
    pick = a.options[choice]
    rival = _rival(a, choice, a.own)
    name = a.options[rival]
    gain = _gap(abs(a.others[choice] - a.others[rival]))
    counted = _weight_text(a.weight, rng)
    if _ties_own(a, choice):  # the coplayer's points decide it alone; no cost to speak of
        mine, link = f"{pick} pays me as much as {name}", "and"
        more, cost = f"{name} would pay me no more", f"{pick} costs me nothing against {name} and"
    else:
        gap = _gap(a.own[rival] - a.own[choice])
        mine, link = f"{pick} pays me {gap} points less than {name}", "but"
        more, cost = f"{name} would pay me {gap} points more", f"{pick} costs me {gap} points against {name} but"
    if a.weight < 0:
        return [f"{mine}, {link} it keeps the coplayer {gain} points lower, and I count the coplayer's points {counted}."]
    texts = [f"{more}, {link} I count the coplayer's points {counted}, and {pick} gives the coplayer {gain} more, so "
             f"{pick} is worth more to me all told.",
             f"I weigh the coplayer's points {counted}; {cost} gains the coplayer {gain}, which tips the balance "
             f"to {pick}."]
    joint = [a.own[i] + a.others[i] for i in (choice, rival)]
    if joint[0] > joint[1] + _EPS:
        texts.append(f"{mine}, {link} the two of us expect {_about(joint[0])} points together with it against "
                     f"{_about(joint[1])} with {name}, and I value the coplayer's points {counted}.")
    return texts


# --- the donation (public-goods) game ----------------------------------------------------------


def _donation_clauses(s: PublicGoodsSituation, a: Assessment, choice: int, rng: random.Random) -> list[str]:
    """[expectation, payoffs, reason] for the donation game, amounts in the game's currency."""
    cur, others = s.currency, s.players - 1
    each, total = a.belief * s.endowment, others * a.belief * s.endowment
    expect = [f"I expect each of the other {others} to put in {_about(each, cur)} of their {cur}{_num(s.endowment)}, "
              f"so {_about(total, cur)} from them together.",
              f"My guess is that the others give {_percent(a.belief)} of what they have, "
              f"{_about(total, cur)} between the {others} of them.",
              f"I reckon the fund gets {_about(total, cur)} from the other {others} on average."]
    names = [f"{cur}{o}" for o in a.options]
    back = s.multiplier / s.players
    net = 1 - back
    if abs(net) < _EPS:
        balance = "so giving it breaks even for me"
    else:
        balance = f"so giving it {'costs' if net > 0 else 'earns'} me {_about(abs(net), cur, 3)} net"
    mine = _about(a.own[choice], cur)
    by_amount = sorted(range(len(a.options)), key=lambda i: float(a.options[i]))
    lo, hi = by_amount[0], by_amount[-1]
    payoffs = [f"Each {cur}1 I put in comes back to me as {_about(back, cur, 3)} and pays each of the others "
               f"{_about(back, cur, 3)} too, {balance}; with {names[choice]} put in I expect to end with {mine}.",
               f"A {cur}1 I keep stays {cur}1 for me, while a {cur}1 I give returns {_about(back, cur, 3)} to me and "
               f"the same to every other player; giving {names[choice]} leaves me {mine} on average.",
               f"On average I end with {_about(a.own[lo], cur)} if I give {names[lo]} and {_about(a.own[hi], cur)} "
               f"if I give {names[hi]}" + ("" if choice in (lo, hi) else f", and {mine} with {names[choice]}") +
               f"; every {cur}1 given adds {_about(back, cur, 3)} for each of the others."]
    reasons = _reasons(a, choice, names, lambda: _donation_weighted(s, a, choice, names, rng))
    return [rng.choice(expect), rng.choice(payoffs), rng.choice(reasons)]


def _donation_weighted(s: PublicGoodsSituation, a: Assessment, choice: int, names: Sequence[str],
                       rng: random.Random) -> list[str]:
    """Why an amount that pays the player less (or no more) is still its best: the others' money."""
    pick, counted = names[choice], _weight_text(a.weight, rng)
    spread = _about((s.players - 1) * s.multiplier / s.players, s.currency, 3)
    if _ties_own(a, choice):  # giving breaks even: the others' money decides it alone
        mine = f"{pick} pays me as much as any other amount, and"
        though = "and no other amount would pay me more"
    else:
        mine, though = f"{pick} does not pay me the most, but", "even though another amount would pay me more"
    texts = [f"I count the others' money {counted}, and on that count {pick} is the best amount to give, {though}.",
             f"{mine} with the others' money counted {counted}, it is the amount I value highest."]
    if a.weight > 0:
        texts.append(f"Each {s.currency}1 I give brings the other {s.players - 1} players {spread} between them, and since I "
                     f"value their money {counted}, that is worth giving {pick} for.")
    return texts
