"""The OpenAI-compatible backend against a real local HTTP server that misbehaves on purpose
(tests/fakeserver.py), decided per request seed so failures are deterministic."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import pytest

from tomdistill.errors import TomdistillError
from tomdistill.models.base import (
    BackendError,
    GenRequest,
    ModelOptions,
    SamplingSettings,
    ScoreRequest,
    UnsupportedError,
    answer_index,
)
from tomdistill.models.openai_compat import PREFIX_MODE_ENV, PREFIX_REPLY_TOKENS, OpenAIModel
from tomdistill.models.registry import load_model

from fakeserver import AFTER_PREFIX, KEY, Plan

pytest_plugins = ["fakeserver_fixtures"]  # the `serve` and `models` fixtures
SETTINGS = SamplingSettings(temperature=0.7, max_new_tokens=16)
MESSAGES = [{"role": "system", "content": "Pick C or D."}, {"role": "user", "content": "Your move?"}]

def gen_requests(n: int) -> list[GenRequest]:
    return [GenRequest(key=("k", i), messages=MESSAGES, seed=1000 + i) for i in range(n)]


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tomdistill-openai:") and t.is_alive()]


FAILURES = ["500", "503", "429:0", "hang", "close", "badjson", "nochoices"]


def flaky(seed: int, attempt: int) -> str:
    """About 30% of requests fail first, a few of them twice, with every kind of failure."""
    if seed % 10 < 3 and attempt == 0:
        return FAILURES[seed % len(FAILURES)]
    if seed % 10 == 0 and attempt == 1:
        return FAILURES[(seed // 10) % len(FAILURES)]
    return "ok"


def test_every_request_gets_its_own_result_despite_failures(serve, models) -> None:
    srv = serve(flaky)
    model = models(srv.url, concurrency=8, max_retries=4)
    requests = gen_requests(40)
    results = list(model.generate(requests, SETTINGS))
    assert sorted(r.key for r in results) == sorted(r.key for r in requests)
    for result in results:
        assert result.text == f"C\nMotivation: seed was {1000 + result.key[1]}"
        assert (result.prompt_tokens, result.completion_tokens) == (11, 7)
        assert result.latency_s > 0
    failed = sum(n for action, n in srv.actions.items() if action != "ok")
    assert failed >= 12 and set(FAILURES) <= set(srv.actions)
    assert model.retries == failed
    assert sum(model.retry_reasons.values()) == failed
    assert {"timeout", "HTTP 500", "HTTP 503", "HTTP 429", "malformed JSON reply", "reply without choices"} <= set(
        model.retry_reasons
    )
    assert any(reason.startswith("connection error") for reason in model.retry_reasons)
    body = srv.bodies[0]
    assert body["model"] == "fake-model" and body["n"] == 1 and body["max_tokens"] == 16
    assert body["temperature"] == 0.7 and body["top_p"] == 1.0 and body["messages"] == MESSAGES


def test_retry_after_is_honoured(serve, models) -> None:
    srv = serve(lambda seed, attempt: "429:1" if attempt == 0 else "ok")
    model = models(srv.url)
    start = time.perf_counter()
    [result] = model.generate(gen_requests(1), SETTINGS)
    assert time.perf_counter() - start >= 0.95
    assert result.text.startswith("C") and model.retry_reasons == Counter({"HTTP 429": 1})


def test_exhausted_retries_name_the_server_not_the_key(serve, models, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    srv = serve(lambda seed, attempt: "503")
    model = models(srv.url + "/", max_retries=1)  # trailing slash is tolerated
    with pytest.raises(BackendError) as err:
        list(model.generate(gen_requests(1), SETTINGS))
    message = str(err.value)
    assert srv.url in message and "2 tries" in message and "HTTP 503" in message
    assert KEY not in message and KEY not in repr(err.value)
    assert KEY not in repr(model.info()) and KEY not in repr(model)
    assert model.info().details == {"base_url": srv.url, "model": "fake-model", "prefix_mode": "auto"}
    assert srv.auth == [f"Bearer {KEY}"] * 2 and model.retries == 1


def test_401_fails_at_once_and_points_at_the_key(serve, models, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    srv = serve(lambda seed, attempt: "401")
    model = models(srv.url)
    with pytest.raises(BackendError, match="OPENAI_API_KEY") as err:
        list(model.generate(gen_requests(1), SETTINGS))
    assert "Incorrect API key" in str(err.value) and KEY not in str(err.value)  # server text kept, key scrubbed
    assert sum(srv.attempts.values()) == 1 and model.retries == 0


def test_other_client_errors_are_not_retried(serve, models) -> None:
    srv = serve()
    model = models(srv.url.removesuffix("/v1"))  # no /v1: the URL is used as given -> 404
    with pytest.raises(BackendError, match="HTTP 404: no route /chat/completions"):
        list(model.generate(gen_requests(1), SETTINGS))
    assert model.retries == 0


def test_no_key_sends_no_authorization_and_env_base_url_is_used(serve, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    srv = serve()
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
    model = load_model("openai:fake-model", ModelOptions(timeout_s=0.5))
    try:
        assert isinstance(model, OpenAIModel) and model.spec == "openai:fake-model"
        assert model.info().details["base_url"] == srv.url
        assert len(list(model.generate(gen_requests(2), SETTINGS))) == 2
        assert srv.auth == [None, None]
    finally:
        model.close()


def test_concurrency_is_used_and_bounded(serve, models) -> None:
    srv = serve(delay_s=0.3)
    model = models(srv.url, concurrency=4)
    assert model.batch_size == 4
    assert len(list(model.generate(gen_requests(8), SETTINGS))) == 8
    assert 1 < srv.max_in_flight <= 4


@pytest.mark.parametrize("action", ["empty", "null"])
def test_empty_content_is_a_reply(serve, models, action) -> None:
    srv = serve(lambda seed, attempt: action)
    model = models(srv.url)
    [result] = model.generate(gen_requests(1), SETTINGS)
    assert result.text == "" and model.retries == 0


def test_score_renormalises_over_candidates(serve, models) -> None:
    srv = serve(lambda seed, attempt: "logprobs")
    model = models(srv.url)
    [result] = model.score([ScoreRequest(key="s", messages=MESSAGES, candidates=("C", "D"))])
    assert result.key == "s"
    assert result.valid_mass == pytest.approx(0.8)
    assert result.probs == pytest.approx({"C": 0.75, "D": 0.25})
    body = srv.bodies[0]
    assert body["max_tokens"] == 1 and body["logprobs"] is True and body["top_logprobs"] == 20
    [none] = model.score([ScoreRequest(key="t", messages=MESSAGES, candidates=("X", "Y"))])
    assert none.valid_mass == 0.0 and none.probs == {"X": 0.0, "Y": 0.0}


def test_score_without_logprobs_is_unsupported(serve, models) -> None:
    srv = serve()
    model = models(srv.url)
    with pytest.raises(UnsupportedError, match="--mode sample"):
        list(model.score([ScoreRequest(key="s", messages=MESSAGES, candidates=("C", "D"))]))


# --- score mode after a reply prefix ("Answer:"): continued, sampled, or refused ---


def prefixed(n: int, temperature: float = 1.0) -> list[ScoreRequest]:
    return [ScoreRequest(("s", i), [{"role": "user", "content": f"Game {i}: C or D?"}], ("C", "D"), prefix="Answer:",
                         temperature=temperature) for i in range(n)]


def expected(top: list[tuple[str, float]], temperature: float = 1.0) -> tuple[dict[str, float], float]:
    """(probs, valid mass) of C and D from a token's listed probabilities: at temperature 1 as they
    are, else re-tempered over the listed tokens (p ** (1 / T), normalised over the list)."""
    weight = {t: p if temperature == 1 else p ** (1 / temperature) for t, p in top}
    total = 1.0 if temperature == 1 else sum(weight.values())
    mass = {a: sum(w for t, w in weight.items() if t.strip() == a) / total for a in ("C", "D")}
    return {a: m / sum(mass.values()) for a, m in mass.items()}, sum(mass.values())


def is_continued(body: dict) -> bool:
    return body.get("continue_final_message") is True and body.get("add_generation_prompt") is False


def test_prefix_is_continued_where_the_server_does_it(serve, models) -> None:
    srv = serve(lambda seed, attempt: "honours")
    model = models(srv.url)
    results = list(model.score(prefixed(3)))
    probs, mass = expected(AFTER_PREFIX)
    assert len(results) == 3 and all(r.probs == pytest.approx(probs) and r.valid_mass == pytest.approx(mass)
                                     for r in results)
    assert model.prefix_mode == "continue" and len(srv.bodies) == 3
    for body in srv.bodies:
        assert is_continued(body) and body["messages"][-1] == {"role": "assistant", "content": "Answer:"}
        assert (body["max_tokens"], body["logprobs"], body["top_logprobs"]) == (1, True, 20)


@pytest.mark.parametrize("server", ["rejects", "ignores"])
def test_auto_falls_back_to_sampled_replies(serve, models, server) -> None:
    srv = serve(lambda seed, attempt: server)
    model = models(srv.url)
    results = list(model.score(prefixed(3, temperature=0.7)))
    probs, mass = expected(AFTER_PREFIX, 0.7)
    assert all(r.probs == pytest.approx(probs) and r.valid_mass == pytest.approx(mass) for r in results)
    assert model.prefix_mode == "sampled" and model.info().details["prefix_mode"] == "sampled"
    probe, *sampled = srv.bodies
    assert is_continued(probe) and len(sampled) == 3  # one try, then every request sampled
    for body in sampled:
        assert "continue_final_message" not in body and body["messages"][-1]["role"] == "user"
        assert (body["max_tokens"], body["temperature"], body["logprobs"], body["top_logprobs"]) == (
            PREFIX_REPLY_TOKENS, 0.7, True, 20)
    assert len({b["seed"] for b in sampled}) == 3  # each prompt its own seed


def test_sampled_mode_never_asks_for_continuation(serve, models) -> None:
    srv = serve(lambda seed, attempt: "honours")
    model = models(srv.url, extra={"prefix_mode": "sampled"})
    [result] = model.score(prefixed(1))
    assert result.probs == pytest.approx(expected(AFTER_PREFIX)[0])
    assert len(srv.bodies) == 1 and not is_continued(srv.bodies[0])


def test_continue_mode_on_a_server_that_refuses_it_stops(serve, models) -> None:
    srv = serve(lambda seed, attempt: "rejects")
    model = models(srv.url, extra={"prefix_mode": "continue"})
    with pytest.raises(BackendError, match="HTTP 400.*continue_final_message"):
        list(model.score(prefixed(1)))
    assert len(srv.bodies) == 1 and model.retries == 0


def test_a_reply_without_the_prefix_is_drawn_again(serve, models) -> None:
    actions = iter(["miss", "miss", "honours"])
    srv = serve(lambda seed, attempt: next(actions))
    model = models(srv.url, extra={"prefix_mode": "sampled"})
    [result] = model.score(prefixed(1))
    assert result.probs == pytest.approx(expected(AFTER_PREFIX)[0]) and result.invalid_reason is None
    first = srv.bodies[0]["seed"]
    assert [b["seed"] for b in srv.bodies] == [first, first + 1, first + 2]
    assert model.retry_reasons == Counter({"reply did not begin with 'Answer:' and an answer": 2})


def test_no_reply_with_the_prefix_makes_an_invalid_record_not_an_error(serve, models) -> None:
    srv = serve(lambda seed, attempt: "miss")
    model = models(srv.url, extra={"prefix_mode": "sampled"})
    results = list(model.score(prefixed(2)))
    assert len(results) == 2 and len(srv.bodies) == 6
    for result in results:
        assert result.valid_mass == 0.0 and result.probs == {"C": 0.0, "D": 0.0}
        assert result.invalid_reason == "none of 3 sampled replies began with 'Answer:' and an answer"


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_scores_are_at_the_run_temperature(serve, models, temperature) -> None:
    srv = serve(lambda seed, attempt: "honours")
    model = models(srv.url)
    [result] = model.score(prefixed(1, temperature))
    probs, mass = expected(AFTER_PREFIX, temperature)
    assert result.probs == pytest.approx(probs) and result.valid_mass == pytest.approx(mass)
    assert result.probs["C"] != pytest.approx(expected(AFTER_PREFIX)[0]["C"])
    assert srv.bodies[0]["temperature"] == 0  # the server's log-probs are at temperature 1; ours is applied here
    plain = serve(lambda seed, attempt: "logprobs")
    [first] = models(plain.url).score([ScoreRequest("t", MESSAGES, ("C", "D"), temperature=temperature)])
    probs, mass = expected([("C", 0.5), (" C", 0.1), ("D", 0.2), ("The", 0.15)], temperature)
    assert first.probs == pytest.approx(probs) and first.valid_mass == pytest.approx(mass)


def test_greedy_scores_put_everything_on_the_likeliest(serve, models) -> None:
    srv = serve(lambda seed, attempt: "honours")
    [result] = models(srv.url).score(prefixed(1, temperature=0))
    assert result.probs == {"C": 1.0, "D": 0.0}


@pytest.mark.parametrize("mode", ["auto", "continue", "sampled"])
def test_a_server_without_logprobs_says_use_sample_mode(serve, models, mode) -> None:
    srv = serve()
    model = models(srv.url, extra={"prefix_mode": mode})
    with pytest.raises(UnsupportedError, match="does not return top_logprobs; use --mode sample") as err:
        list(model.score(prefixed(2)))
    assert "\n" not in str(err.value)


def test_prefix_mode_comes_from_the_options_or_the_environment(serve, models, monkeypatch) -> None:
    monkeypatch.setenv(PREFIX_MODE_ENV, "sampled")
    assert models("http://127.0.0.1:9/v1").prefix_mode == "sampled"
    assert models("http://127.0.0.1:9/v1", extra={"prefix_mode": "continue"}).prefix_mode == "continue"
    monkeypatch.setenv(PREFIX_MODE_ENV, "always")
    with pytest.raises(TomdistillError, match=f"{PREFIX_MODE_ENV}='always': expected one of auto, continue, sampled"):
        models("http://127.0.0.1:9/v1")
    with pytest.raises(TomdistillError, match="prefix_mode='x'"):
        models("http://127.0.0.1:9/v1", extra={"prefix_mode": "x"})


@pytest.mark.parametrize(("tokens", "prefix", "index"), [
    (["Answer", ":", " C", "\n"], "Answer:", 2),
    (["\n", "Answer", ":", " ", "D"], "Answer:", 4),  # leading and inner whitespace skipped
    (["Answer:", " C"], "Answer:", 1),
    (["Ans", "wer", ":", "C"], "Answer:", 3),
    (["C", "\n", "Answer", ":"], "Answer:", None),  # the reply does not begin with the prefix
    (["Answer", ": C"], "Answer:", None),  # the prefix ends inside a token
    (["Answer", ":", " ", "\n"], "Answer:", None),  # the reply ends before an answer
    ([], "Answer:", None),
    ([" ", "C"], "", 1),
])
def test_answer_index_finds_the_token_after_the_prefix(tokens, prefix, index) -> None:
    assert answer_index(tokens, prefix) == index


def test_a_motivated_score_run_against_a_server_without_continuation(serve, tmp_path) -> None:
    from tomdistill.cli import main
    from tomdistill.store import Store

    srv = serve(lambda seed, attempt: "rejects")
    db = tmp_path / "s.db"
    args = ["elicit", "--model", "openai:fake", "--base-url", srv.url, "--run", "t", "--scenario",
            "business/prisoners_dilemma", "--protocol", "motivated", "--mode", "score", "--temperature", "0.5",
            "--store", str(db)]
    assert main(args) == 0
    with Store(db) as store:
        [sample] = store.samples(store.require_run("t").id)
    assert sample.probs == pytest.approx(expected(AFTER_PREFIX, 0.5)[0]) and sample.valid
    assert len(srv.bodies) == 2 and is_continued(srv.bodies[0]) and srv.bodies[1]["temperature"] == 0.5


def test_closing_the_generator_early_does_not_hang_or_leak(serve, models) -> None:
    # The first request answers at once; the others hang well past the moment we stop.
    srv = serve(lambda seed, attempt: "ok" if seed == 1000 else "hang")
    model = models(srv.url, concurrency=8, timeout_s=5.0)
    results = model.generate(gen_requests(8), SETTINGS)
    first = next(results)
    assert first.key == ("k", 0)
    start = time.perf_counter()
    results.close()
    assert time.perf_counter() - start < 0.5
    # The model stays usable after an abandoned window, and close() stops its loop thread.
    assert len(list(model.generate(gen_requests(1), SETTINGS))) == 1
    assert loop_threads()
    model.close()
    assert not loop_threads()


def test_ctrl_c_while_waiting_cancels_the_window(serve, models) -> None:
    srv = serve(lambda seed, attempt: "hang")
    model = models(srv.url, timeout_s=5.0)
    # A real SIGINT, as Ctrl-C sends; the handler is set explicitly because shells start
    # background jobs with SIGINT ignored, and Python then installs none.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    sent_at: list[float] = []

    def interrupt_once_requests_hang() -> None:
        deadline = time.monotonic() + 3
        while srv.in_flight < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        sent_at.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=interrupt_once_requests_hang, daemon=True)
    sender.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            list(model.generate(gen_requests(4), SETTINGS))
        raised_at = time.perf_counter()
    finally:
        sender.join(5)
        time.sleep(0.05)  # a late signal must land here, not in the next test
        signal.signal(signal.SIGINT, previous)
    # The window's cleanup (cancelling 4 hung requests) did not wait for their 5 s timeout.
    assert raised_at - sent_at[0] < 1.0
    model.close()
    assert not loop_threads()


def test_empty_request_list_starts_nothing(models) -> None:
    model = models("http://127.0.0.1:9/v1")
    assert list(model.generate([], SETTINGS)) == []
    assert not loop_threads()


def test_planted_key_never_reaches_any_artifact(serve, monkeypatch, tmp_path, capsys) -> None:
    """The key goes to the server only: grep every file a run writes, and everything printed."""
    from tomdistill.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    srv = serve(lambda seed, attempt: "500" if attempt == 0 and seed % 3 == 0 else "ok")
    db = str(tmp_path / "store.db")
    teacher = ["elicit", "--model", "openai:fake-70b", "--base-url", srv.url, "--run", "teacher", "--split", "train",
               "--protocol", "motivated", "-n", "2", "--store", db]
    assert main(teacher) == 0
    for name, rate in (("base", "0.9"), ("student", "0.6")):
        assert main(["elicit", "--model", f"mock:rate={rate}", "--run", name, "--split", "train", "--mode", "score",
                     "--store", db]) == 0
    assert main(["dataset", "--from-run", "teacher", "--out", str(tmp_path / "ds"), "--store", db]) == 0
    assert main(["evaluate", "--teacher", "teacher", "--base", "base", "--student", "student", "--store", db,
                 "--out", str(tmp_path / "eval.json"), "--bootstrap", "50"]) == 0
    assert main(["report", str(tmp_path / "eval.json"), "--out", str(tmp_path / "report")]) == 0
    assert main(["runs", "export", "teacher", "--out", str(tmp_path / "teacher.jsonl"), "--store", db]) == 0
    printed = capsys.readouterr()
    assert all(a == f"Bearer {KEY}" for a in srv.auth) and len(srv.auth) > 40  # the server did get it
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 10
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in printed.out + printed.err


FAULTS = ("500", "503", "429:0", "hang", "close", "badjson", "nochoices")


def _faulty(share: float) -> Plan:
    """First attempt of a seed fails with one of the FAULTS for `share` of the seeds; some replies
    are valid JSON but no decision; retries succeed."""
    import random

    def plan(seed: int, attempt: int) -> str:
        rng = random.Random(seed)
        if attempt == 0 and rng.random() < share:
            return rng.choice(FAULTS)
        return "prose" if rng.random() < 0.1 else "ok"

    return plan


def test_thirty_percent_faults_lose_no_sample(serve, monkeypatch, tmp_path, capsys) -> None:
    from tomdistill.cli import main
    from tomdistill.store import Store

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    srv = serve(_faulty(0.3))
    db = tmp_path / "faults.db"
    args = ["elicit", "--model", "openai:fake", "--base-url", srv.url, "--run", "f", "--split", "train", "-n", "10",
            "--protocol", "motivated", "--timeout", "0.5", "--concurrency", "8", "--store", str(db)]
    assert main(args) == 0
    out = capsys.readouterr().out
    faults = sum(srv.actions[f] for f in FAULTS)
    assert faults >= 40  # about 30% of 200
    assert f"{faults} retries" in out.replace("\n", " ")
    with Store(db) as store:
        samples = store.samples(store.require_run("f").id)
    assert len(samples) == 200 and len({(s.scenario, s.sample_index) for s in samples}) == 200
    prose = [s for s in samples if not s.valid]
    assert prose and all(s.raw_text and s.invalid_reason for s in prose)  # kept with their raw text
    assert srv.actions["prose"] == len(prose)


def test_exhausted_retries_stop_the_run_and_the_rerun_resumes(serve, monkeypatch, tmp_path, capsys) -> None:
    from tomdistill.cli import main
    from tomdistill.store import Store

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    down = serve(lambda seed, attempt: "503" if seed % 5 == 0 else "ok")
    db = tmp_path / "stop.db"
    args = ["elicit", "--model", "openai:fake", "--run", "s", "--split", "train", "-n", "6", "--max-retries", "1",
            "--concurrency", "2", "--store", str(db)]
    assert main([*args, "--base-url", down.url]) == 1
    err = capsys.readouterr().err
    assert "no usable reply after 2 tries" in err and "re-run the same command to continue" in err
    with Store(db) as store:
        stored = store.count(store.require_run("s").id)
    assert 0 < stored < 120
    healthy = serve()
    assert main([*args, "--base-url", healthy.url]) == 0
    assert f"{120 - stored} new of 120 requested" in capsys.readouterr().out.replace("\n", " ")
    with Store(db) as store:
        samples = store.samples(store.require_run("s").id)
    assert len(samples) == 120 and len({(s.scenario, s.sample_index) for s in samples}) == 120


def test_one_slow_request_delays_only_itself(serve, models, store, library) -> None:
    """Elicitation streams: with one reply taking 10 s among 104 fast ones, every fast one is
    stored before the slow one (ordered by the store's own row order, not by a clock)."""
    from tomdistill.elicit import elicit, sample_seed

    scenarios = library.scenarios("train") + library.scenarios("heldout_pgg")
    slow_seed = sample_seed(0, scenarios[0].id, 0)  # the very first request sent
    srv = serve(lambda seed, attempt: "slow:10" if seed == slow_seed else "ok")
    model = models(srv.url, timeout_s=30, concurrency=8)
    summary = elicit(store, model, scenarios, run_name="stream", samples=5)
    assert summary.new == 105 and srv.actions["slow:10"] == 1
    rows = store.samples(store.require_run("stream").id)
    order = [s.seed for s in rows]  # Store.samples lists rows in insertion order (ORDER BY id)
    assert order[-1] == slow_seed and len(order) == 105


def test_several_servers_share_the_requests_and_retries_go_elsewhere(serve, store, library) -> None:
    """Two servers of one model: both answer; one that fails every first attempt has its retries
    sent to the other, so the run needs no more tries than one retry per failure."""
    from tomdistill.ask import model_options
    from tomdistill.elicit import elicit

    healthy = serve()
    flaky = serve(lambda seed, attempt: "503")
    options = model_options(base_url=[healthy.url, flaky.url], concurrency=4, timeout_s=5, max_retries=1)
    model = load_model("openai:fake-model", options)
    try:
        assert model.batch_size == 8 and model.info().details["base_urls"] == [healthy.url, flaky.url]
        summary = elicit(store, model, library.scenarios("train")[:10], run_name="two", samples=4)
    finally:
        model.close()
    assert summary.new == 40 and sum(healthy.actions.values()) == 40
    assert flaky.actions["503"] == summary.retries > 0  # each request the flaky one failed was retried once, elsewhere
