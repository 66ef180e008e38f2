"""Fixtures of the model-layer tests: the scripted endpoint (tests/openai_server.py) and
the switch that lets a test talk to it."""

from __future__ import annotations

import pytest

from openai_server import FakeOpenAIServer


@pytest.fixture
def openai_server() -> type[FakeOpenAIServer]:
    """The server class: ``with openai_server(script) as server: ...``."""
    return FakeOpenAIServer


@pytest.fixture
def allow_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-enable model requests for a test that only talks to a server on 127.0.0.1."""
    monkeypatch.setenv("DEEPFOLDER_ALLOW_MODEL_REQUESTS", "1")
