"""The built-in scenario library and user library files: content, splits, validation errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tomdistill.errors import LibraryError
from tomdistill.scenarios import PROTOCOLS, load_library, prompt_hash, render
from tomdistill.scenarios.spec import MatrixGame

TRAIN_GAMES = ["prisoners_dilemma", "snowdrift", "stag_hunt", "prisoners_delight"]
TRAIN_CONTEXTS = ["diplomacy", "business", "environment", "team", "friendsharing"]


@pytest.fixture(scope="module")
def lib():
    return load_library()


def test_split_sizes(lib) -> None:
    assert {s: len(lib.scenarios(s)) for s in lib.splits()} == {
        "train": 20,
        "heldout_context": 12,
        "heldout_game": 20,
        "heldout_pgg": 1,
    }


def test_train_split_is_every_train_context_with_every_train_game(lib) -> None:
    ids = {s.id for s in lib.scenarios("train")}
    assert ids == {f"{c}/{g}" for c in TRAIN_CONTEXTS for g in TRAIN_GAMES}
    held = {s.context.id for s in lib.scenarios("heldout_context")}
    assert held == {"sports", "roomsharing", "ventcap"}


def test_paper_payoffs(lib) -> None:
    # (you, coplayer) for CC / CD / DC / DD, from the paper.
    expected = {
        "prisoners_dilemma": [(5, 5), (2, 10), (10, 2), (3, 3)],
        "snowdrift": [(5, 5), (3, 10), (10, 3), (2, 2)],
        "stag_hunt": [(10, 10), (2, 5), (5, 2), (3, 3)],
        "prisoners_delight": [(10, 10), (3, 5), (5, 3), (2, 2)],
    }
    for gid, pairs in expected.items():
        game = lib.games[gid].entry
        got = [tuple(game.payoffs[m][t]) for m in "CD" for t in "CD"]
        assert got == pairs, gid


def test_heldout_games_double_every_payoff(lib) -> None:
    for gid in TRAIN_GAMES:
        base, doubled = lib.games[gid].entry, lib.games[f"{gid}_x2"].entry
        for m in "CD":
            for t in "CD":
                assert doubled.payoffs[m][t] == [2 * v for v in base.payoffs[m][t]]
    contexts = {s.context.id for s in lib.scenarios("heldout_game")}
    assert contexts == set(TRAIN_CONTEXTS)


def test_donation_game(lib) -> None:
    (s,) = lib.scenarios("heldout_pgg")
    assert s.numeric and s.game.players == 4
    text = render(s, "answer")[1]["content"]
    assert "$10" in text and "2.5" in text and "4 equal parts" in text


def test_ids_are_unique_and_stable(lib) -> None:
    ids = [s.id for s in lib.scenarios()]
    assert len(ids) == len(set(ids)) == 53
    assert ids == [s.id for s in load_library().scenarios()]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_prompts_follow_the_paper_conventions(lib, protocol) -> None:
    for s in lib.scenarios():
        system, user = render(s, protocol)
        assert system["role"] == "system" and user["role"] == "user"
        content = user["content"]
        # The payoffs are told in prose, never by the game's name.
        for name_part in ("Prisoner", "Dilemma", "Stag", "Snowdrift", "Delight", "Chicken"):
            assert name_part not in content, (s.id, name_part)
        if not s.numeric:
            assert "coplayer" in content
            assert content.count("points") >= 8  # all four profiles, both players
        if protocol == "motivated":
            assert "Motivation:" in content


def test_rendering_and_hash_are_deterministic(lib) -> None:
    s = lib.scenario("business/prisoners_dilemma")
    assert render(s, "answer") == render(s, "answer")
    hashes = {prompt_hash(render(x, p)) for x in lib.scenarios() for p in PROTOCOLS}
    assert len(hashes) == 2 * 53


def write(tmp_path: Path, text: str, name: str = "lib.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_edited_scenario_gets_a_new_hash(tmp_path) -> None:
    base = load_library().scenario("business/prisoners_dilemma")
    edited_context = base.context.model_copy(update={"id": "business2", "framing": base.context.framing + " Edited."})
    path = write(
        tmp_path,
        f'[[context]]\nid = "business2"\nname = "x"\nframing = """{edited_context.framing}"""\n',
    )
    edited = load_library([path]).scenario("business2/prisoners_dilemma")
    assert prompt_hash(render(edited, "answer")) != prompt_hash(render(base, "answer"))


USER_LIBRARY = """
[[game]]
id = "chicken"
name = "Chicken"
template = "two_player_matrix"
actions = ["C", "D"]
payoffs.C = { C = [6, 6], D = [1, 9] }
payoffs.D = { C = [9, 1], D = [0, 0] }

[[context]]
id = "fishing"
name = "Fishing grounds"
split = "heldout_context"
framing = "You skipper a boat; another skipper, called the coplayer, fishes the same grounds once."
"""


def test_user_library_adds_a_game_and_a_context(tmp_path) -> None:
    lib = load_library([write(tmp_path, USER_LIBRARY)])
    assert "team/chicken" in {s.id for s in lib.scenarios("train")}
    assert lib.scenario("fishing/stag_hunt").split == "heldout_context"
    assert len(lib.scenarios("train")) == 25
    assert "you get 9 points" in render(lib.scenario("fishing/chicken"), "answer")[1]["content"]


def test_shipped_example_library_loads() -> None:
    example = Path(__file__).parent.parent / "examples" / "my_library.toml"
    lib = load_library([example])
    assert lib.scenario("fishing/chicken_high_stakes")


GAME = """
[[game]]
id = "g"
name = "G"
template = "two_player_matrix"
actions = ["C", "D"]
"""
FULL_PAYOFFS = 'payoffs.C = { C = [1, 1], D = [0, 2] }\npayoffs.D = { C = [2, 0], D = [0, 0] }\n'

BAD_LIBRARIES = [
    pytest.param(GAME + 'payoffs.C = { C = [1, 1], D = [0, 2] }\npayoffs.D = { C = [2, 0] }\n',
                 "game 'g'", "payoffs", "missing payoff for you=D, coplayer=D", id="missing-payoff"),
    pytest.param(GAME + 'payoffs.C = { C = ["ten", 1], D = [0, 2] }\npayoffs.D = { C = [2, 0], D = [0, 0] }\n',
                 "game 'g'", "payoffs.C.C.0", "valid number", id="non-numeric-payoff"),
    pytest.param(GAME.replace('["C", "D"]', '["C", "D", "E"]') + FULL_PAYOFFS,
                 "game 'g'", "actions", "exactly 2 actions", id="three-actions"),
    pytest.param(GAME + 'payoffs.C = { C = [1, 1, 1], D = [0, 2] }\npayoffs.D = { C = [2, 0], D = [0, 0] }\n',
                 "game 'g'", "payoffs", "got 3 numbers", id="payoff-triple"),
    pytest.param(GAME + FULL_PAYOFFS + GAME + FULL_PAYOFFS, "game 'g'", "id", "duplicate id", id="duplicate-in-file"),
    pytest.param(GAME.replace('id = "g"', 'id = "stag_hunt"') + FULL_PAYOFFS,
                 "game 'stag_hunt'", "id", "already defined in", id="duplicate-of-builtin"),
    pytest.param(GAME.replace("two_player_matrix", "nope") + FULL_PAYOFFS,
                 "game 'g'", "template", "unknown template 'nope'", id="unknown-template"),
    pytest.param(GAME + FULL_PAYOFFS + "colour = 'red'\n", "game 'g'", "colour", "unknown field", id="typo-field"),
    pytest.param(GAME.replace('name = "G"\n', "") + FULL_PAYOFFS, "game 'g'", "name", "required field is missing",
                 id="missing-name"),
    pytest.param(GAME + FULL_PAYOFFS + 'kind = "auction"\n', "game 'g'", "kind", "unknown game kind", id="bad-kind"),
    pytest.param(GAME.replace('id = "g"', 'id = "Bad Id"') + FULL_PAYOFFS, "game 'Bad Id'", "id", "should match pattern",
                 id="bad-id"),
    pytest.param(GAME + FULL_PAYOFFS + 'contexts = ["atlantis"]\n', "game 'g'", "contexts", "unknown context 'atlantis'",
                 id="unknown-context"),
    pytest.param(GAME + FULL_PAYOFFS + 'contexts = ["community"]\n', "game 'g'", "contexts", "written for 4 players",
                 id="player-mismatch"),
    pytest.param('[[context]]\nid = "c"\nname = "C"\n', "context 'c'", "framing", "required field is missing",
                 id="context-without-framing"),
    pytest.param('[[variant]]\nid = "x3"\nname = "x3"\nscale = 3\ngames = ["poker"]\nsplit = "heldout_game"\n',
                 "variant 'x3'", "games", "unknown game 'poker'", id="variant-unknown-game"),
    pytest.param('[[variant]]\nid = "x3"\nname = "x3"\nscale = 3\ngames = ["donation_game"]\nsplit = "heldout_game"\n',
                 "variant 'x3'", "games", "not a matrix game", id="variant-of-numeric-game"),
    pytest.param('[[template]]\nid = "t"\ntext = "{{ bogus }}"\n' + GAME.replace("two_player_matrix", "t") + FULL_PAYOFFS,
                 "template 't'", "text", "'bogus' is undefined", id="template-undefined-variable"),
    pytest.param("[[game]\nid = 1", None, None, "not valid TOML", id="bad-toml"),
    pytest.param("[[monster]]\nid = 'x'\n", None, None, "unknown section 'monster'", id="unknown-section"),
    pytest.param("game = 3\n", None, None, "must be an array of tables", id="section-not-array"),
    pytest.param("", None, None, "holds no entries", id="empty-file"),
]


@pytest.mark.parametrize(("text", "entry", "field", "message"), BAD_LIBRARIES)
def test_bad_library_names_file_entry_and_field(tmp_path, text, entry, field, message) -> None:
    path = write(tmp_path, text)
    with pytest.raises(LibraryError) as info:
        load_library([path])
    err = info.value
    assert err.file == str(path)
    assert message in str(err)
    if entry:
        assert err.entry == entry
    if field:
        assert err.field == field
    assert "\n" not in str(err)


def test_missing_library_file(tmp_path) -> None:
    with pytest.raises(LibraryError, match="file not found"):
        load_library([tmp_path / "absent.toml"])


def test_scaled_game_keeps_the_original_untouched(lib) -> None:
    game: MatrixGame = lib.games["prisoners_dilemma"].entry
    assert game.payoffs["C"]["D"] == [2, 10]
    assert game.cooperative_action == "C"
