"""A misbehaving OpenAI-compatible server never ends in a traceback or a wrong stored number.

Each case runs a local server (127.0.0.1 only) that sends one odd reply shape. Replies the API
allows (content as a list of parts) are read; garbled ones (a number for content, choices of
strings, no message, token counts or log-probs that are not numbers) are retried, then stop the
run with one `stopped:` line and nothing stored; a base URL that is no http(s) URL is refused
before any request. Retries are kept to one, with a near-zero backoff, so the module is quick.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from tomdistill.cli import main
from tomdistill.models import openai_compat
from tomdistill.models.base import (
    BackendError,
    BadScoreError,
    GenRequest,
    SamplingSettings,
    ScoreRequest,
    checked_logprob,
    renormalise,
)
from tomdistill.store import Store

from badinput import make_store, run_bad, store_dump
from fakeserver import SAMPLED, FakeServer, logprob_reply

pytest_plugins = ["fakeserver_fixtures"]  # the `serve` and `models` fixtures
SCENARIO = "diplomacy/prisoners_dilemma"
MESSAGES = [{"role": "user", "content": "C or D?"}]
SERVED = "fake-70b-2024-05-13"


def reply(content, **extra) -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": content}}], "model": SERVED} | extra


def scored(*top: tuple[object, object]) -> dict:
    """A score-mode reply whose first token's top_logprobs are these (token, logprob) pairs."""
    entries = [{"token": token, "logprob": logprob} for token, logprob in top]
    return {"choices": [{"message": {"content": "C"}, "logprobs": {"content": [{"token": "C", "top_logprobs": entries}]}}]}


#: case -> (reply body, the retry reason it must give); sample mode.
GARBLED_GEN: dict[str, tuple[dict | bytes, str]] = {
    "content-number": (reply(42), "content is not text"),
    "content-object": (reply({"text": "C"}), "content is not text"),
    "content-part-text-number": (reply([{"type": "text", "text": 5}]), "content is not text"),
    "content-part-string": (reply(["C"]), "content is not text"),
    "choices-strings": ({"choices": ["C", "D"]}, "choices are not objects"),
    "choices-object": ({"choices": {"0": {"message": {"content": "C"}}}}, "choices are not objects"),
    "choice-null": ({"choices": [None]}, "choices are not objects"),
    "message-missing": ({"choices": [{"index": 0, "finish_reason": "stop"}]}, "no message"),
    "message-string": ({"choices": [{"message": "C"}]}, "no message"),
    "usage-string": (reply("C", usage={"prompt_tokens": "11", "completion_tokens": 1}), "usage.prompt_tokens"),
    "usage-float": (reply("C", usage={"prompt_tokens": 11, "completion_tokens": 1.5}), "usage.completion_tokens"),
    "usage-negative": (reply("C", usage={"prompt_tokens": -3, "completion_tokens": 1}), "usage.prompt_tokens"),
    "usage-huge": (reply("C", usage={"prompt_tokens": 10**30, "completion_tokens": 1}), "usage.prompt_tokens"),
    "usage-bool": (reply("C", usage={"prompt_tokens": 1, "completion_tokens": True}), "usage.completion_tokens"),
    "usage-list": (reply("C", usage=[11, 7]), "usage is not an object"),
    "json-nested-deep": (b"[" * 100_000 + b"]" * 100_000, "malformed JSON reply"),
    "json-array": (b"[1, 2]", "reply without choices"),
}

#: case -> (reply body, the retry reason it must give); score mode.
GARBLED_SCORE: dict[str, tuple[dict | bytes, str]] = {
    "logprob-string": (scored(("C", "abc"), ("D", -1.0)), "log-probs are not numbers"),
    "logprob-huge": (scored(("C", 1e308), ("D", -1.0)), "log-probs are not numbers"),
    "logprob-null": (scored(("C", None), ("D", -1.0)), "log-probs are not numbers"),
    "logprob-positive": (scored(("C", 0.5)), "log-probs are not numbers"),
    "logprob-bool": (scored(("C", True)), "log-probs are not numbers"),
    "logprob-nan": (b'{"choices": [{"logprobs": {"content": [{"top_logprobs": [{"token": "C", "logprob": NaN}]}]}}]}',
                    "log-probs are not numbers"),
    "logprob-infinity": (b'{"choices": [{"logprobs": {"content": [{"top_logprobs": '
                         b'[{"token": "C", "logprob": Infinity}]}]}}]}', "log-probs are not numbers"),
    "mass-above-one": (scored(("C", 0.0), (" C", 0.0), ("D", -1.0)), "log-probs are not numbers"),
    "token-number": (scored((7, -0.1)), "top_logprobs are not {token, logprob} objects"),
    "top-string": ({"choices": [{"logprobs": {"content": [{"top_logprobs": "C:-0.1"}]}}]},
                   "top_logprobs are not {token, logprob} objects"),
}


def sampled_with(answer_top: object) -> dict:
    """A sampled reply that begins with "Answer:" and lists `answer_top` at the answer token."""
    body = logprob_reply(SAMPLED, answer_at=2)
    body["choices"][0]["logprobs"]["content"][2]["top_logprobs"] = answer_top
    return body


#: case -> (reply body, the retry reason it must give); score mode, a reply sampled after the prefix.
GARBLED_SAMPLED: dict[str, tuple[dict | bytes, str]] = {
    "content-strings": ({"choices": [{"message": {"content": "Answer: C"}, "logprobs": {"content": ["Answer", ":"]}}]},
                        "logprobs.content is not a list"),
    "content-object": ({"choices": [{"message": {"content": "C"}, "logprobs": {"content": {"token": "C"}}}]},
                       "logprobs.content is not a list"),
    "token-number": ({"choices": [{"message": {"content": "C"}, "logprobs": {"content": [{"token": 3}]}}]},
                     "logprobs.content is not a list"),
    "answer-logprob-nan": (sampled_with([{"token": " C", "logprob": math.nan}]), "log-probs are not numbers"),
    "answer-logprob-string": (sampled_with([{"token": " C", "logprob": "-0.1"}]), "log-probs are not numbers"),
    "answer-top-string": (sampled_with("C:-0.1"), "top_logprobs are not {token, logprob} objects"),
}


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch) -> None:
    monkeypatch.setattr(openai_compat, "BACKOFF_BASE_S", 0.01)


def always(action: str):
    return lambda seed, attempt: action


def garbled_server(serve, body: dict | bytes) -> FakeServer:
    return serve(always("odd"), replies={"odd": body})


# --- the backend: one retry, then one BackendError naming the reason; never another exception ---


@pytest.mark.parametrize("case", GARBLED_GEN)
def test_garbled_reply_is_retried_then_refused(serve, models, case) -> None:
    body, reason = GARBLED_GEN[case]
    srv = garbled_server(serve, body)
    model = models(srv.url, max_retries=1)
    with pytest.raises(BackendError, match="no usable reply after 2 tries") as err:
        list(model.generate([GenRequest("k", MESSAGES, seed=1)], SamplingSettings()))
    assert reason in str(err.value) and "\n" not in str(err.value)
    assert sum(srv.attempts.values()) == 2 and model.retry_reasons == {next(iter(model.retry_reasons)): 1}
    assert reason in next(iter(model.retry_reasons))
    assert not model.served_models  # nothing counted from a reply that was not used


@pytest.mark.parametrize("case", GARBLED_SCORE)
def test_garbled_logprobs_are_retried_then_refused(serve, models, case) -> None:
    body, reason = GARBLED_SCORE[case]
    srv = garbled_server(serve, body)
    model = models(srv.url, max_retries=1)
    with pytest.raises(BackendError, match="no usable reply after 2 tries") as err:
        list(model.score([ScoreRequest("k", MESSAGES, ("C", "D"))]))
    assert reason in str(err.value) and "\n" not in str(err.value)
    assert sum(srv.attempts.values()) == 2


@pytest.mark.parametrize("case", GARBLED_SAMPLED)
def test_garbled_sampled_logprobs_are_retried_then_refused(serve, models, case) -> None:
    body, reason = GARBLED_SAMPLED[case]
    srv = garbled_server(serve, body)
    model = models(srv.url, max_retries=1, extra={"prefix_mode": "sampled"})
    with pytest.raises(BackendError, match="no usable reply after 2 tries") as err:
        list(model.score([ScoreRequest("k", MESSAGES, ("C", "D"), prefix="Answer:")]))
    assert reason in str(err.value) and "\n" not in str(err.value)
    assert sum(srv.attempts.values()) == 2


def test_a_body_that_fails_to_decode_is_retried_then_refused(serve, models) -> None:
    srv = serve(always("badgzip"))
    model = models(srv.url, max_retries=1)
    with pytest.raises(BackendError, match=r"after 2 tries; last error: connection error \(DecodingError\)"):
        list(model.generate([GenRequest("k", MESSAGES, seed=1)], SamplingSettings()))
    assert sum(srv.attempts.values()) == 2


def test_a_client_error_body_nested_beyond_recursion_is_one_message(serve, models) -> None:
    srv = serve(always("400nested"))
    with pytest.raises(BackendError, match=r"HTTP 400: \[\[\[") as err:
        list(models(srv.url, max_retries=1).generate([GenRequest("k", MESSAGES, seed=1)], SamplingSettings()))
    assert len(str(err.value)) < 500  # the body is cut, not repeated whole
    assert sum(srv.attempts.values()) == 1  # a 4xx is not retried


def test_a_garbled_first_reply_costs_one_retry(serve, models) -> None:
    srv = serve(lambda seed, attempt: "odd" if attempt == 0 else "ok", replies={"odd": reply(3.5)})
    model = models(srv.url, max_retries=1)
    [result] = model.generate([GenRequest("k", MESSAGES, seed=1)], SamplingSettings())
    assert result.text.startswith("C\n") and (result.prompt_tokens, result.completion_tokens) == (11, 7)
    assert model.retry_reasons == {"garbled reply: content is not text": 1}


# --- the command line: the run stops with one line, and no sample is stored ---


def elicit_args(url: str, db: Path, mode: str = "sample") -> list[str]:
    return ["elicit", "-m", "openai:fake", "--base-url", url, "-r", "new", "--scenario", SCENARIO, "-n", "1",
            "--mode", mode, "--max-retries", "1", "--timeout", "2", "--store", str(db)]


def assert_stopped_storing_nothing(args: list[str], reason: str, db: Path, capsys) -> None:
    """Exit 1 with a `stopped:` line naming the reason, no traceback, and the store as it was but for
    the new run's own row: no sample and no other change."""
    before = store_dump(db)
    code = main(args)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err, err
    assert err.startswith("stopped: ") and reason in err.splitlines()[0], err
    added = sorted(set(store_dump(db)) - set(before))
    assert len(added) == 1 and added[0].startswith('INSERT INTO "runs"'), added
    assert set(before) <= set(store_dump(db))
    with Store(db) as store:
        assert store.count(store.require_run("new").id) == 0


@pytest.mark.parametrize("case", ["content-number", "choices-strings", "message-missing", "usage-negative"])
def test_cli_stops_on_garbled_replies(serve, tmp_path, capsys, case) -> None:
    body, reason = GARBLED_GEN[case]
    srv = garbled_server(serve, body)
    db = make_store(tmp_path / "s.db")
    assert_stopped_storing_nothing(elicit_args(srv.url, db), reason, db, capsys)


@pytest.mark.parametrize("case", ["logprob-string", "logprob-huge", "logprob-null", "logprob-nan"])
def test_cli_stops_on_garbled_logprobs_and_stores_no_nan(serve, tmp_path, capsys, case) -> None:
    body, reason = GARBLED_SCORE[case]
    srv = garbled_server(serve, body)
    db = make_store(tmp_path / "s.db")
    assert_stopped_storing_nothing(elicit_args(srv.url, db, mode="score"), reason, db, capsys)
    con = sqlite3.connect(db)
    assert not con.execute("SELECT COUNT(*) FROM samples WHERE probs LIKE '%NaN%' OR valid_mass != valid_mass").fetchone()[0]
    con.close()


# --- base URLs that are no http(s) URL: refused before any request, the store untouched ---


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("127.0.0.1:{port}/v1", "needs http:// or https://"),
        ("localhost:{port}/v1", "needs http:// or https://"),
        ("http://[::1/v1", "not a valid URL"),
        ("ftp://127.0.0.1:{port}/v1", "needs http:// or https://"),
        ("http:///v1", "needs http:// or https://"),
        ("http://127.0.0.1:{port}/v1 ", "no spaces"),
        ("http://127.0.0.1:99999/v1", "valid port"),
        ("http://127.0.0.1:{port}/v1?key=1", "no ?query"),
    ],
)
@pytest.mark.parametrize("source", ["--base-url", "OPENAI_BASE_URL"])
def test_bad_base_url_is_refused_before_any_request(serve, tmp_path, capsys, monkeypatch, url, why, source) -> None:
    srv = serve()
    url = url.format(port=srv.server_address[1])
    db = make_store(tmp_path / "s.db")
    args = elicit_args(url, db)
    if source == "OPENAI_BASE_URL":
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        args = [a for a in args if a not in ("--base-url", url)]
    line = run_bad(args, why, capsys, store=db)
    assert line.startswith(f"error: {source} ") and "http://localhost:8000/v1" in line
    assert not srv.bodies  # no request was made


# --- what the API allows: content as parts; and the model the server says answered is recorded ---


def test_content_parts_are_joined_and_the_served_model_is_recorded(serve, tmp_path, capsys) -> None:
    parts = [{"type": "text", "text": "D"}, {"type": "image_url", "image_url": {"url": "x"}},
             {"type": "text", "text": "\nMotivation: safer alone."}]
    srv = serve(always("parts"), replies={"parts": reply(parts, usage={"prompt_tokens": 20, "completion_tokens": 9})})
    db = tmp_path / "s.db"
    assert main([*elicit_args(srv.url, db), "--protocol", "motivated", "-n", "3"]) == 0
    with Store(db) as store:
        run = store.require_run("new")
        samples = store.samples(run.id)
    assert [s.action for s in samples] == ["D"] * 3 and len(srv.bodies) == 3
    assert all(s.raw_text == "D\nMotivation: safer alone." and s.motivation == "safer alone." for s in samples)
    assert all((s.prompt_tokens, s.completion_tokens) == (20, 9) for s in samples)
    assert run.model_info["served_models"] == [SERVED] and run.model_info["model"] == "fake"
    capsys.readouterr()
    assert main(["runs", "show", "new", "--store", str(db)]) == 0
    assert f"served by {SERVED}" in capsys.readouterr().out


def test_a_second_served_model_is_added_on_resume(serve, tmp_path) -> None:
    db = tmp_path / "s.db"
    first = serve(always("ok"), replies={"ok": reply("C", model="alias-v1")})
    assert main([*elicit_args(first.url, db), "-n", "1"]) == 0
    second = serve(always("ok"), replies={"ok": reply("D", model="alias-v2")})
    assert main([*elicit_args(second.url, db), "-n", "2"]) == 0
    with Store(db) as store:
        assert store.require_run("new").model_info["served_models"] == ["alias-v1", "alias-v2"]


@pytest.mark.parametrize("name", [42, None, "", "evil\x1b[31mred", "x" * 201])
def test_a_served_model_name_that_is_no_name_is_not_recorded(serve, models, name) -> None:
    srv = serve(always("ok"), replies={"ok": reply("C", model=name)})
    model = models(srv.url)
    [result] = model.generate([GenRequest("k", MESSAGES, seed=1)], SamplingSettings())
    assert result.text == "C" and not model.served_models and model.retries == 0


# --- the shared score helpers every backend's score mode goes through ---


@pytest.mark.parametrize("value", ["abc", None, True, math.nan, math.inf, 1e308, 10**400, 0.01, [1]])
def test_checked_logprob_refuses_what_is_no_logprob(value) -> None:
    with pytest.raises(BadScoreError, match="is not a number <= 0"):
        checked_logprob(value)


@pytest.mark.parametrize(("value", "prob"), [(-math.inf, 0.0), (-(10**400), 0.0), (0, 1.0), (1e-7, 1.0),
                                             (math.log(0.25), 0.25)])
def test_checked_logprob_accepts_logprobs(value, prob) -> None:
    assert math.exp(checked_logprob(value)) == pytest.approx(prob)


@pytest.mark.parametrize("raw", [{"C": math.nan, "D": 0.1}, {"C": 0.7, "D": 0.6}, {"C": -0.2, "D": 0.5},
                                 {"C": math.inf, "D": 0.0}])
def test_renormalise_refuses_what_is_no_probability(raw) -> None:
    with pytest.raises(BadScoreError, match="not probabilities"):
        renormalise(raw)


def test_renormalise_absorbs_rounding() -> None:
    probs, mass = renormalise({"C": 0.6002, "D": 0.4003})
    assert mass == 1.0 and sum(probs.values()) == pytest.approx(1.0) and probs["C"] == pytest.approx(0.6002 / 1.0005)
