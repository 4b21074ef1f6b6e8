"""Issue 13, item 1: library texts are data. Rendering runs in Jinja2's sandbox, so a shared
library file or a `make_scenario` context cannot run code, reach Python internals, mutate the
game or exhaust memory; each violation is one line naming the file, entry and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tomdistill.errors import TomdistillError
from tomdistill.scenarios import load_library, make_scenario

from badinput import run_bad

CONTEXT = '[[context]]\nid = "lake"\nname = "Lake"\nsplit = "train"\nframing = """{framing}"""\n'
TEMPLATE = ('[[template]]\nid = "evil"\ntext = """{text}"""\n'
            '[[game]]\nid = "g"\nname = "G"\ntemplate = "evil"\nactions = ["C", "D"]\ncontexts = ["team"]\n'
            'payoffs.C = { C = [1, 1], D = [0, 2] }\npayoffs.D = { C = [2, 0], D = [0, 0] }\n')

#: Texts that must never render: code execution, Python internals, mutation, resource exhaustion.
ATTACKS = {
    "popen-via-lipsum": "{{ lipsum.__globals__['os'].popen('touch {marker}').read() }}",
    "globals-of-num": "{{ num.__globals__['__builtins__']['open']('{marker}', 'w') }}",
    "class-mro-subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "cycler-init-globals": "{{ cycler.__init__.__globals__.os.system('touch {marker}') }}",
    "mutate-actions": "{{ actions.append('E') }}",
    "mutate-payoffs": "{{ payoffs.clear() }}",
    "range-of-a-billion": "{% for i in range(10**9) %}x{% endfor %}",
    "repeat-a-gigabyte": "{{ 'x' * 10**9 }}",
    "tower-of-powers": "{{ 10 ** 10 ** 10 ** 10 ** 10 ** 10 }}",
    "str-format-attribute": "{{ '{0.__class__}'.format(actions) }}",
    # Found by an adversarial pass after the first fix: ways to exhaust memory or CPU, or to crash.
    "replace-blow-up": "{{ ('x' * 10000) | replace('x', 'x' * 10000) | length }}",
    "join-of-repeated-list": "{{ (['x' * 10000] * 10000) | join | length }}",
    "center-a-gigabyte": "{{ 'abc'.center(1000000000) }}",
    "format-width": "{{ '{0:>200000000}'.format('x') }}",
    "percent-width": "{{ '%0200000000d' % 1 }}",
    "percent-mapping": "{{ '%(a)s' % payoffs }}",
    "set-and-square": "{% set a = 10 ** 900 %}{% set a = a * a %}{{ a }}",
    "concat-doubling": "{% set a = 'x' * 10000 %}{% set a = a ~ a %}{{ a }}",
    "big-product": "{{ 10 ** 1000 * 10 ** 1000 }}",
    "nested-loops-over-text": "{% for i in 'x' * 10000 %}{% for j in 'x' * 10000 %}{% endfor %}{% endfor %}",
    "recursive-macro": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "include": "{% include 'x' %}",
}
#: Words the one-line error must contain for each attack (the sandbox's or Jinja2's reason).
REASONS = {
    "popen-via-lipsum": "calling anything but num",
    "cycler-init-globals": "calling anything but num",
    "range-of-a-billion": "'for' may only loop over the game's data",
    "repeat-a-gigabyte": "repeating text",
    "tower-of-powers": "powers",
    "replace-blow-up": "filter 'replace' is not allowed",
    "join-of-repeated-list": "repeating a list",
    "center-a-gigabyte": "calling anything but num",
    "percent-width": "'%' formatting",
    "set-and-square": "'Assign'",
    "concat-doubling": "'Assign'",
    "big-product": "products above",
    "nested-loops-over-text": "'for' may only loop over the game's data",
    "recursive-macro": "'Macro'",
    "include": "'Include'",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_context_framing_cannot_run_code(attack: str, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "PWNED"
    lib = tmp_path / "lib.toml"
    lib.write_text(CONTEXT.replace("{framing}", ATTACKS[attack].replace("{marker}", str(marker))))
    line = run_bad(["scenarios", "list", "--library", str(lib)], f"{lib}: context 'lake': field 'framing'", capsys,
                   watch=tmp_path)
    assert REASONS.get(attack, "not allowed") in line
    assert not marker.exists()


@pytest.mark.parametrize("attack", ["popen-via-lipsum", "globals-of-num", "mutate-payoffs", "repeat-a-gigabyte"])
def test_template_text_cannot_run_code(attack: str, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "PWNED"
    lib = tmp_path / "lib.toml"
    lib.write_text(TEMPLATE.replace("{text}", ATTACKS[attack].replace("{marker}", str(marker))))
    run_bad(["scenarios", "list", "--library", str(lib)], f"{lib}: template 'evil': field 'text'", capsys, watch=tmp_path)
    assert not marker.exists()


def test_library_error_names_the_context_not_the_game(tmp_path: Path) -> None:
    lib = tmp_path / "lib.toml"
    lib.write_text(CONTEXT.replace("{framing}", "You are {{ nobody }}."))
    with pytest.raises(TomdistillError) as err:
        load_library([lib])
    assert err.value.entry == "context 'lake'" and err.value.field == "framing"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("argument", "text"), [("context", ATTACKS["globals-of-num"]),
                                                ("rules", ATTACKS["class-mro-subclasses"])])
def test_make_scenario_renders_in_the_sandbox(argument: str, text: str, tmp_path: Path) -> None:
    payoffs = {"C": {"C": (3, 3), "D": (0, 5)}, "D": {"C": (5, 0), "D": (1, 1)}}
    kwargs = {"context": "You fish a shared lake with the coplayer.", argument: text.replace("{marker}", str(tmp_path / "x"))}
    with pytest.raises(TomdistillError, match=f"field '{argument}': not allowed"):
        make_scenario(payoffs, **kwargs)
    assert not (tmp_path / "x").exists()


def test_the_allowed_filters_still_render(tmp_path: Path) -> None:
    lib = tmp_path / "lib.toml"
    lib.write_text(CONTEXT.replace("{framing}", "Options: {{ actions | join(' or ') | lower }}; "
                                          "best {{ num(payoffs['C']['C'][0] * 2) }}; {{ actions | length }} options."))
    scenario = load_library([lib]).scenario("lake/prisoners_dilemma")
    from tomdistill.scenarios import render

    text = render(scenario, "answer")[1]["content"]
    assert text.startswith("Options: c or d; best 10; 2 options.")


def test_joins_over_a_long_user_list_are_bounded(tmp_path: Path, capsys) -> None:
    # A game's `contexts` is a list the user controls; nested joins would multiply its length.
    lib = tmp_path / "lib.toml"
    text = "{{ contexts | join(contexts | join('x' * 10000)) }}"
    lib.write_text(TEMPLATE.replace("{text}", text).replace('contexts = ["team"]', f"contexts = {['team'] * 50}"))
    run_bad(["scenarios", "list", "--library", str(lib)], "joining beyond 100,000 characters is not allowed", capsys,
            watch=tmp_path)
