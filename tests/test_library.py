"""The built-in scenario library and user library files: content, splits, validation errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tomdistill.errors import LibraryError
from tomdistill.scenarios import PROTOCOLS, load_library, prompt_hash, render
from tomdistill.scenarios import library as library_module
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
    assert len(hashes) == len(PROTOCOLS) * 53


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
    pytest.param('[[paraphrase]]\ncontext = "atlantis"\nframings = ["x"]\n', "paraphrase 'atlantis'", "context",
                 "unknown context 'atlantis'; known: diplomacy", id="paraphrase-unknown-context"),
    pytest.param('[[paraphrase]]\ncontext = "sports"\nframings = ["x"]\n', "paraphrase 'sports'", "context",
                 "paraphrases are for training contexts only", id="paraphrase-of-heldout-context"),
    pytest.param('[[paraphrase]]\ncontext = "community"\nframings = ["x"]\n', "paraphrase 'community'", "context",
                 "would leak it into training", id="paraphrase-of-pgg-context"),
    pytest.param('[[paraphrase]]\ncontext = "team"\nframings = ["Same.", "Other.", "Same."]\n', "paraphrase 'team'",
                 "framings", "framing #3 repeats framing #1", id="paraphrase-duplicate-in-entry"),
    pytest.param('[[paraphrase]]\ncontext = "team"\nframings = ["Same."]\n' * 2, "paraphrase 'team'",
                 "framings", "framing #1 repeats framing #1", id="paraphrase-duplicate-across-entries"),
    pytest.param('[[paraphrase]]\ncontext = "team"\nframings = []\n', "paraphrase 'team'", "framings",
                 "at least 1 item", id="paraphrase-no-framings"),
    pytest.param('[[paraphrase]]\ncontext = "team"\nframings = ["Fine.", "  "]\n', "paraphrase 'team'", "framings",
                 "framing #2 is empty", id="paraphrase-blank-framing"),
    pytest.param('[[paraphrase]]\nframings = ["x"]\n', "paraphrase #1", "context", "required field is missing",
                 id="paraphrase-without-context"),
    pytest.param('[[paraphrase]]\ncontext = "team"\nframings = ["Fine.", "{{ bogus }}"]\n', "paraphrase 'team'",
                 "framings", "framing #2: template error: 'bogus' is undefined", id="paraphrase-undefined-variable"),
    pytest.param("""[[paraphrase]]\ncontext = "team"\nframings = ["{{ ''.__class__ }}"]\n""", "paraphrase 'team'",
                 "framings", "not allowed in a library text", id="paraphrase-sandbox-refused"),
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


def test_builtin_paraphrases_cover_the_training_contexts_only(lib) -> None:
    for cid, src in lib.contexts.items():
        texts = lib.paraphrases(cid)
        if cid not in TRAIN_CONTEXTS:
            assert texts == [], cid
            continue
        assert len(texts) == 3, cid
        original = src.entry.framing.strip()
        assert len({t.strip() for t in texts} | {original}) == 4, cid
        for text in texts:
            # Same closing convention as the original, and roughly its length.
            assert text.strip().endswith(".") and "called the coplayer" in text.strip().split(". ")[-1], (cid, text)
            assert 0.7 < len(text.split()) / len(original.split()) < 1.4, (cid, text)


def test_paraphrases_never_change_the_scenarios(tmp_path, monkeypatch) -> None:
    def ids_splits_hashes(library):
        return [(s.id, s.split, prompt_hash(render(s, "answer"))) for s in library.scenarios()]

    with_builtin = ids_splits_hashes(load_library())
    extra = write(tmp_path, '[[paraphrase]]\ncontext = "team"\nframings = ["You and a colleague, the coplayer."]\n')
    with_user_file = ids_splits_hashes(load_library([extra]))
    monkeypatch.setattr(library_module, "_BUILTIN_FILES", tuple(
        f for f in library_module._BUILTIN_FILES if f != "paraphrases.toml"))
    bare = load_library()
    assert bare.paraphrases("team") == []
    assert with_builtin == with_user_file == ids_splits_hashes(bare)


def test_user_paraphrases_merge_after_the_builtin_ones_in_file_order(tmp_path, lib) -> None:
    first = write(tmp_path, '[[paraphrase]]\ncontext = "team"\nframings = ["A."]\n'
                            '[[paraphrase]]\ncontext = "team"\nframings = ["B.", "C."]\n', "first.toml")
    # The context is defined after its paraphrase, in a later file: order does not matter.
    second = write(tmp_path, '[[paraphrase]]\ncontext = "lake"\nframings = ["On {{ actions | join(\'/\') }}."]\n'
                             '[[paraphrase]]\ncontext = "team"\nframings = ["D."]\n', "second.toml")
    third = write(tmp_path, '[[context]]\nid = "lake"\nname = "Lake"\nframing = "A lake."\n', "third.toml")
    extended = load_library([first, second, third])
    assert extended.paraphrases("team") == lib.paraphrases("team") + ["A.", "B.", "C.", "D."]
    assert extended.paraphrases("lake") == ["On {{ actions | join('/') }}."]  # kept as a text, rendered per game
    assert extended.paraphrases("business") == lib.paraphrases("business")


def test_duplicate_paraphrase_across_user_files_names_both(tmp_path) -> None:
    one = write(tmp_path, '[[paraphrase]]\ncontext = "team"\nframings = ["A."]\n', "one.toml")
    two = write(tmp_path, '[[paraphrase]]\ncontext = "team"\nframings = ["B.", "A."]\n', "two.toml")
    with pytest.raises(LibraryError) as info:
        load_library([one, two])
    err = info.value
    assert (err.file, err.entry, err.field) == (str(two), "paraphrase 'team'", "framings")
    assert f"framing #2 repeats framing #1 of context 'team' in {one}" in str(err)


@pytest.mark.parametrize("text", ["builtin", "original"])
def test_paraphrase_repeating_a_builtin_text_is_refused(tmp_path, lib, text) -> None:
    repeated = lib.paraphrases("diplomacy")[1] if text == "builtin" else lib.contexts["diplomacy"].entry.framing
    path = tmp_path / "lib.toml"
    path.write_text(f'[[paraphrase]]\ncontext = "diplomacy"\nframings = [{json.dumps(repeated.strip())}]\n')
    with pytest.raises(LibraryError) as info:
        load_library([path])
    err = info.value
    assert (err.file, err.entry, err.field) == (str(path), "paraphrase 'diplomacy'", "framings")
    assert ("repeats framing #2" if text == "builtin" else "the context's own framing") in str(err)
