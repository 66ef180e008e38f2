"""A switch that makes any real network model request fail loudly.

The test suite sets ``DEEPFOLDER_ALLOW_MODEL_REQUESTS=0`` (tests/conftest.py), so a test
that accidentally builds a remote model and calls it gets a :class:`ModelError` before
any network I/O instead of a slow, flaky, paid request. Tests that talk to a local fake
HTTP server on 127.0.0.1 turn it back on explicitly (``monkeypatch.setenv(..., "1")``).

The embedded in-process model is not a network request and is not blocked.
(The idea follows pydantic-ai's ``ALLOW_MODEL_REQUESTS``.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from deepfolder.llm.base import ModelError

ENV_VAR = "DEEPFOLDER_ALLOW_MODEL_REQUESTS"
_FALSE = {"0", "false", "no", "off"}


def model_requests_allowed() -> bool:
    """False when ``$DEEPFOLDER_ALLOW_MODEL_REQUESTS`` is 0/false/no/off; True otherwise."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in _FALSE


def check_model_request_allowed(model_name: str, base_url: str) -> None:
    """Raise :class:`ModelError` when real model requests are disabled."""
    if not model_requests_allowed():
        raise ModelError(
            f"real model requests are disabled ({ENV_VAR}=0): refusing to call "
            f"{model_name} at {base_url}. Tests must use deepfolder.llm.fake "
            f"(ScriptedModel / FunctionModel), or set {ENV_VAR}=1 for a test that "
            "talks to a local server on 127.0.0.1."
        )


@contextmanager
def allow_model_requests(allowed: bool = True) -> Iterator[None]:
    """Temporarily allow (or forbid) real model requests in this process."""
    old = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = "1" if allowed else "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = old
