"""tomdistill agents as Concordia's language model (integrations/concordia_lm.py) and the short
Concordia game in examples/concordia_dilemma.py: exact choice distributions, seeded draws, text
sampling settings, and a game whose picks stay private until both are made."""

from __future__ import annotations

import importlib.util
import json
import math
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("concordia")

from concordia.language_model import language_model  # noqa: E402

from tomdistill.integrations.concordia_lm import AgentLanguageModel  # noqa: E402
from tomdistill.integrations.prompting import cut_at_terminators, exclusive_probabilities  # noqa: E402
from tomdistill.models.base import ModelOptions, TextScoreResult, UnsupportedError  # noqa: E402

EXAMPLE = Path(__file__).parent.parent / "examples" / "concordia_dilemma.py"


def _example():
    spec = importlib.util.spec_from_file_location("concordia_dilemma", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_choice_is_drawn_from_the_exact_distribution_over_whole_responses() -> None:
    # The mock scores 1/2 per character: "a" 1/2, "bb" 1/4, "ccc" 1/8 -> 4/7, 2/7, 1/7 at temperature 1.
    lm = AgentLanguageModel("mock:rate=0.5", choice_temperature=1.0)
    _, _, info = lm.sample_choice("pick", ["a", "bb", "ccc"], seed=3)
    assert info["probabilities"] == pytest.approx({"a": 4 / 7, "bb": 2 / 7, "ccc": 1 / 7})
    assert info["valid_mass"] == pytest.approx(7 / 8) and info["seed"] == 3
    picks = Counter(lm.sample_choice("pick", ["a", "bb", "ccc"], seed=s)[1] for s in range(4000))
    assert picks["a"] / 4000 == pytest.approx(4 / 7, abs=0.03) and picks["ccc"] / 4000 == pytest.approx(1 / 7, abs=0.02)
    assert lm.sample_choice("pick", ["a", "bb"], seed=11) == lm.sample_choice("pick", ["a", "bb"], seed=11)
    greedy = AgentLanguageModel("mock:rate=0.5", choice_temperature=0)
    assert {greedy.sample_choice("pick", ["ccc", "a", "bb"], seed=s)[:2] for s in range(50)} == {(1, "a")}


def test_a_response_listed_twice_counts_once_and_an_empty_list_is_refused() -> None:
    lm = AgentLanguageModel("mock:rate=0.5", choice_temperature=1.0)
    draws = {lm.sample_choice("pick", ["a", "bb", "a"], seed=s)[0] for s in range(300)}
    assert draws == {0, 1}
    with pytest.raises(language_model.InvalidResponseError):
        lm.sample_choice("pick", [])


def test_no_probability_on_any_response_is_an_invalid_response(monkeypatch) -> None:
    lm = AgentLanguageModel("mock:rate=0.5")
    monkeypatch.setattr(lm.agent.model, "score_texts", lambda requests: iter(
        [TextScoreResult(r.key, dict.fromkeys(r.candidates, -math.inf), 0.0) for r in requests]))
    with pytest.raises(language_model.InvalidResponseError, match="no probability"):
        lm.sample_choice("pick", ["a", "b"])


def test_a_backend_that_cannot_score_texts_says_so() -> None:
    with pytest.raises(UnsupportedError, match="log-probs"):
        AgentLanguageModel("mock:noscore=1").sample_choice("pick", ["a", "b"])
    with pytest.raises(UnsupportedError, match="whole reply texts"):
        AgentLanguageModel("planted:default").sample_choice("pick", ["a", "b"])


def test_text_is_sampled_with_the_calls_settings_and_cut_at_terminators() -> None:
    seen = []

    def script(request):
        seen.append(request)
        return "We cooperate. Then we see.\nNext line"

    lm = AgentLanguageModel("mock:rate=0.5", options=ModelOptions(extra={"script": script}), max_tokens=20, seed=5)
    assert lm.sample_text("Story so far:", terminators=["\n", "."], temperature=0.3, top_p=0.9, seed=8) == "We cooperate"
    call = lm.calls[-1]
    assert call["settings"] == {"temperature": 0.3, "top_p": 0.9, "max_new_tokens": 20}  # 5,000 asked, capped
    assert call["seed"] == 8 and seen[-1].seed == 8 and call["raw"].endswith("Next line")
    assert [m["role"] for m in seen[-1].messages] == ["system", "user"] and seen[-1].messages[1]["content"] == "Story so far:"
    lm.sample_text("again", max_tokens=4)
    assert lm.calls[-1]["settings"]["max_new_tokens"] == 4
    # Calls without a seed take the next one from the adapter's seeded generator: the same game twice.
    other = AgentLanguageModel("mock:rate=0.5", options=ModelOptions(extra={"script": script}), seed=5)
    other.sample_text("Story so far:", seed=8)
    other.sample_text("again")
    assert other.calls[-1]["seed"] == lm.calls[-1]["seed"]
    bare = AgentLanguageModel("mock:rate=0.5", system=None, options=ModelOptions(extra={"script": script}))
    bare.sample_text("plain")
    assert [m["role"] for m in seen[-1].messages] == ["user"]


def test_the_prompts_last_line_starts_the_reply_where_the_backend_allows_it(monkeypatch) -> None:
    seen = []
    lm = AgentLanguageModel("mock:rate=0.5", options=ModelOptions(extra={"script": lambda r: seen.append(r) or "x"}))
    lm.sample_text("Alice sees a stall.\nAnswer: (")
    assert seen[-1].prefix == "Answer: (" and seen[-1].messages[-1]["content"] == "Alice sees a stall."
    lm.sample_text("Alice sees a stall.\nAnswer: Alice ")
    assert lm.calls[-1]["reply_start"] == "Answer: Alice " and lm.calls[-1]["prompt"].endswith("Answer: Alice ")
    lm.sample_text("A prompt that ends a line.\n")
    assert seen[-1].prefix == "" and seen[-1].messages[-1]["content"] == "A prompt that ends a line.\n"
    monkeypatch.setattr(lm.agent.model, "reply_prefixes", False)  # e.g. a server: all of it in the user message
    lm.sample_text("Alice sees a stall.\nAnswer: Alice ")
    assert seen[-1].prefix == "" and seen[-1].messages[-1]["content"] == "Alice sees a stall.\nAnswer: Alice "


def test_responses_that_begin_one_another_are_separate_outcomes() -> None:
    # Mock: 1/2 per character. P(starts "C") 1/2 holds P(starts "Co") 1/4, which holds "Coop" 1/16.
    assert exclusive_probabilities({"C": 0.5, "Co": 0.25, "Coop": 0.0625, "D": 0.5}) == {
        "C": 0.25, "Co": 0.1875, "Coop": 0.0625, "D": 0.5}
    assert exclusive_probabilities({"a": 0.1, "ab": 0.3}) == {"a": 0.0, "ab": 0.3}  # inexact nesting: not below 0
    lm = AgentLanguageModel("mock:rate=0.5", choice_temperature=1.0)
    _, _, info = lm.sample_choice("pick", ["C", "Coop", "D"], seed=1)
    # exclusive: C 1/2 - 1/16, Coop 1/16, D 1/2 -> over 1 in all
    assert info["probabilities"] == pytest.approx({"C": 7 / 16, "Coop": 1 / 16, "D": 8 / 16})
    assert info["valid_mass"] == pytest.approx(1.0)


def test_seeds_follow_the_prompt_not_the_order_of_calls() -> None:
    a = AgentLanguageModel("mock:rate=0.5", seed=9)
    b = AgentLanguageModel("mock:rate=0.5", seed=9)
    for prompt in ("first", "second", "first"):
        a.sample_choice(prompt, ["x", "y"])
    for prompt in ("second", "first", "first"):
        b.sample_choice(prompt, ["x", "y"])
    seeds = lambda lm: sorted((c["prompt"], c["seed"]) for c in lm.calls)  # noqa: E731
    assert seeds(a) == seeds(b)
    firsts = [c["seed"] for c in a.calls if c["prompt"] == "first"]
    assert firsts[0] != firsts[1]  # a prompt asked again gets a new seed
    assert AgentLanguageModel("mock:rate=0.5", seed=10).sample_choice("first", ["x", "y"])[2]["seed"] != firsts[0]
    import numpy as np

    assert a.sample_choice("p", ["x", "y"], seed=np.int64(3))[2]["seed"] == 3
    with pytest.raises(TypeError, match="whole number"):
        a.sample_choice("p", ["x", "y"], seed=2.5)


def test_calls_from_threads_reach_the_backend_one_at_a_time() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    inside, most = [0], [0]
    guard = threading.Lock()

    def script(request):
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        threading.Event().wait(0.002)
        with guard:
            inside[0] -= 1
        return "ok"

    lm = AgentLanguageModel("mock:rate=0.5", options=ModelOptions(extra={"script": script}), seed=1)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: lm.sample_text(f"p{i % 3}"), range(40)))
    assert most[0] == 1 and len(lm.calls) == 40


def test_a_reply_start_ending_in_a_space_is_written_by_the_model() -> None:
    seen = []

    def script(request):
        seen.append(request)
        return " thinks it over."

    lm = AgentLanguageModel("mock:rate=0.5", options=ModelOptions(extra={"script": script}))
    assert lm.sample_text("Doc\nAnswer: Alice ") == "thinks it over."  # Concordia puts "Alice " before it
    assert seen[-1].prefix == "Answer: Alice"


def test_bad_settings_are_one_line_errors_and_a_handed_in_agent_stays_open() -> None:
    from tomdistill.agents import Agent

    with pytest.raises(ValueError, match="choice_temperature"):
        AgentLanguageModel("mock:rate=0.5", choice_temperature=float("nan"))
    with pytest.raises(ValueError, match="max_tokens"):
        AgentLanguageModel("mock:rate=0.5", max_tokens=0)
    lm = AgentLanguageModel("mock:rate=0.5")
    for bad in ({"temperature": -1.0}, {"top_p": 0.0}):
        with pytest.raises(ValueError) as caught:
            lm.sample_text("p", **bad)
        assert "\n" not in str(caught.value)
    agent = Agent.load("mock:rate=0.5", mode="score")
    closed = []
    agent.close = lambda: closed.append(True)  # type: ignore[method-assign]
    with AgentLanguageModel(agent):
        pass
    assert closed == []
    assert AgentLanguageModel("mock:rate=0.5", mode="sample").agent.mode == "sample"


def test_a_dilemma_the_example_cannot_play_is_refused_before_loading() -> None:
    with pytest.raises(SystemExit, match="matrix games"):
        _example().main(["--agent", "no-such-model:x", "--scenario", "community/donation_game"])


def test_terminators_cut_at_the_earliest_one() -> None:
    assert cut_at_terminators("a, b. c", [".", ","]) == "a"
    assert cut_at_terminators("abc", ["x", ""]) == "abc"


def test_calls_are_written_as_json_lines(tmp_path) -> None:
    lm = AgentLanguageModel("mock:text=Hi", seed=1)
    lm.sample_text("p1")
    lm.sample_choice("p2", ["x", "yy"])
    rows = [json.loads(line) for line in lm.write_calls(tmp_path / "calls.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["text", "choice"]
    assert rows[0]["prompt"] == "p1" and rows[1]["choice"] in {"x", "yy"} and rows[1]["model"] == "mock:text=Hi"


def test_the_example_game_keeps_picks_private_and_pays_the_games_payoffs(tmp_path) -> None:
    record = _example().main(["--agent", "mock:rate=0.5", "--rounds", "3", "--out", str(tmp_path), "--seed", "4"])
    from tomdistill.scenarios.custom import resolve_scenario

    game = resolve_scenario("team/prisoners_dilemma").game
    assert [r["round"] for r in record["rounds"]] == [1, 2, 3]
    for r in record["rounds"]:
        alice, bob = r["picks"]["Alice"], r["picks"]["Bob"]
        assert [r["payoffs"]["Alice"], r["payoffs"]["Bob"]] == game.payoffs[alice][bob]
        assert all(sum(p.values()) == pytest.approx(1.0) for p in r["probabilities"].values())
        assert set(r["thought"]) == {"Alice", "Bob"}
    assert record["calls"] == {"text": 6, "choice": 6}
    assert record["totals"]["Alice"] == sum(r["payoffs"]["Alice"] for r in record["rounds"])
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    choices = [c for c in calls if c["kind"] == "choice"]
    # Bob picks after Alice in each round but must not see her pick: no outcome of the current
    # round is in his prompt, while the previous round's outcome is.
    assert "Round 1:" not in choices[1]["prompt"] and "Round 1: Bob picked" in choices[3]["prompt"]
    # Thoughts stay in their thinker's memory.
    assert "[thought] Bob" in choices[1]["prompt"] and "[thought] Alice" not in choices[1]["prompt"]
    assert json.loads((tmp_path / "game.json").read_text()) == record
    again = _example().main(["--agent", "mock:rate=0.5", "--rounds", "3", "--out", str(tmp_path / "b"), "--seed", "4"])
    assert [r["picks"] for r in again["rounds"]] == [r["picks"] for r in record["rounds"]]


def test_the_example_refuses_a_folder_of_someone_elses_files_and_replaces_its_own(tmp_path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "game.json").write_text("my notes")
    args = ["--agent", "mock:rate=0.5", "--rounds", "1"]
    with pytest.raises(SystemExit, match="tomdistill did not write it"):
        _example().main([*args, "--out", str(theirs)])
    assert (theirs / "game.json").read_text() == "my notes" and len(list(theirs.iterdir())) == 1
    ours = tmp_path / "ours"
    _example().main([*args, "--out", str(ours)])
    (ours / "stale.txt").write_text("left from an older game")
    _example().main([*args, "--out", str(ours)])  # its own folder: replaced whole
    assert not (ours / "stale.txt").exists() and (ours / "game.json").is_file()


@pytest.mark.e2e
def test_the_default_student_scores_whole_texts_as_its_own_forward_pass_does() -> None:
    """Each response is scored as the tokens the model would write after the reply start, all of
    them, from one plain forward pass over the joint text (tokenized together: " a" after "Answer:")."""
    import torch

    with AgentLanguageModel("default:student", choice_temperature=1.0) as lm:
        model = lm.agent.model
        for prompt in ("Question: Which option does Alice pick?\n  (a) C\n  (b) D\nAnswer: (",
                       "Question: Which option does Alice pick?\nAnswer: "):
            responses = ["a", "cooperate with Bob", "b"]
            _, _, info = lm.sample_choice(prompt, responses, seed=0)
            messages, start = lm._frame(prompt)
            text = model.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + start
            base = model.tokenizer(text, add_special_tokens=False)["input_ids"]
            logprobs = {}
            for response in responses:
                joint = model.tokenizer(text + response, add_special_tokens=False)["input_ids"]
                shared = len(base) if joint[: len(base)] == base else len(base) - 1  # " a" merges with "Answer: "
                ids = torch.tensor(joint)
                with torch.no_grad():
                    steps = model.model(input_ids=ids[None]).logits[0].double().log_softmax(-1)
                logprobs[response] = float(sum(steps[i - 1, ids[i]] for i in range(shared, len(joint))))
            total = sum(math.exp(v) for v in logprobs.values())
            expected = {r: math.exp(v) / total for r, v in logprobs.items()}
            assert info["probabilities"] == pytest.approx(expected, rel=1e-4), prompt


@pytest.mark.e2e
def test_the_example_game_runs_offline_on_the_default_student(tmp_path) -> None:
    record = _example().main(["--rounds", "1", "--max-tokens", "12", "--out", str(tmp_path)])
    picks = record["rounds"][0]["picks"]
    assert set(picks.values()) <= {"C", "D"} and record["calls"] == {"text": 2, "choice": 2}
    assert all(t.strip() for t in record["rounds"][0]["thought"].values())


def _python_312() -> str | None:
    """A working Python 3.12 beside this one (pyenv's shim exits 127 when 3.12 is not selected)."""
    import glob
    import os
    import shutil
    import subprocess

    found = [shutil.which("python3.12"), *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))]
    return next((p for p in found if p and subprocess.run([p, "--version"], capture_output=True).returncode == 0), None)


@pytest.mark.compat
def test_the_newest_concordia_in_the_pinned_range_passes_these_tests_on_python_312(tmp_path) -> None:
    """Concordia from 2.2 on needs Python 3.12: a fresh 3.12 environment with tomdistill (no torch)
    and the newest release that pyproject's `concordia` extra allows there runs this file's mock tests."""
    import subprocess
    import tomllib

    python = _python_312() or pytest.skip("no Python 3.12 on this machine")
    root = Path(__file__).parent.parent
    extra = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["concordia"]
    [pin] = [r.split(";")[0].strip() for r in extra if ">= '3.12'" in r]
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-e", str(root), pin, "pytest"], check=True, timeout=900)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m",
                           "not e2e and not compat", str(Path(__file__))], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-500:]
    version = subprocess.run([str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; "
                              "print(m.version('gdm-concordia'))"], capture_output=True, text=True, check=True)
    assert tuple(int(x) for x in version.stdout.split(".")[:2]) >= (2, 2), version.stdout
