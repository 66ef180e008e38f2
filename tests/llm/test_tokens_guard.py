from __future__ import annotations

import os

import pytest

from deepfolder.llm.base import ModelError
from deepfolder.llm.guard import (
    allow_model_requests,
    check_model_request_allowed,
    model_requests_allowed,
)
from deepfolder.llm.tokens import estimate_message_tokens, estimate_tokens


def test_suite_runs_with_requests_disabled() -> None:
    assert os.environ["DEEPFOLDER_ALLOW_MODEL_REQUESTS"] == "0"
    assert not model_requests_allowed()
    with pytest.raises(ModelError, match="disabled"):
        check_model_request_allowed("openai:gpt-4o", "https://api.openai.com/v1")


def test_allow_context_restores() -> None:
    with allow_model_requests():
        assert model_requests_allowed()
        check_model_request_allowed("x", "y")
    assert not model_requests_allowed()


def test_estimates_scale_by_script() -> None:
    assert estimate_tokens("") == 0
    zh = "光伏组件的转换效率在过去十年中显著提高" * 10  # 190 CJK characters
    en = "The conversion efficiency of solar modules rose markedly. " * 10  # 590 chars
    assert 110 <= estimate_tokens(zh) <= 160
    assert 120 <= estimate_tokens(en) <= 170
    assert estimate_message_tokens([{"role": "user", "content": zh}]) > estimate_tokens(zh)
