"""The `serve` and `models` fixtures around tests/fakeserver.py, loaded by test modules with
`pytest_plugins = ["fakeserver_fixtures"]` (a plugin module of its own, so the modules can still
import the server's names directly)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from tomdistill.models.base import ModelOptions
from tomdistill.models.openai_compat import OpenAIModel

from fakeserver import FakeServer, Plan


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeServer]]:
    """serve(plan, delay_s, replies) starts a FakeServer; all are shut down after the test."""
    servers: list[FakeServer] = []

    def start(plan: Plan = lambda seed, attempt: "ok", delay_s: float = 0.0,
              replies: dict[str, dict | bytes] | None = None) -> FakeServer:
        srv = FakeServer(plan, delay_s, replies)
        threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def models() -> Iterator[Callable[..., OpenAIModel]]:
    """models(url, **options) builds an OpenAIModel (0.5 s timeout unless given); closed after the test."""
    made: list[OpenAIModel] = []

    def make(url: str, **options) -> OpenAIModel:
        options.setdefault("timeout_s", 0.5)
        model = OpenAIModel("fake-model", ModelOptions(base_url=url, **options))
        made.append(model)
        return model

    yield make
    for model in made:
        model.close()
