"""The embedded model: fast checks of its schema logic, and one slow real run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from deepfolder.llm.base import ModelConfigError
from deepfolder.llm.embedded import tool_call_schema
from deepfolder.llm.packaged_weights import PACKAGED_MODELS, find_part_files
from deepfolder.settings import Settings

SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the folder for passages about a topic.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
}
READ = {
    "type": "function",
    "function": {
        "name": "read",
        "description": "Read one evidence item.",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
    },
}


def test_schema_allows_answer_unless_a_call_is_required() -> None:
    schema, prompt = tool_call_schema([SEARCH, READ], "auto")
    assert len(schema["anyOf"]) == 3
    assert {"answer"} == set(schema["anyOf"][2]["properties"])
    assert "search" in prompt and '"answer"' in prompt

    schema, prompt = tool_call_schema([SEARCH, READ], "required")
    assert all("answer" not in o["properties"] for o in schema["anyOf"])

    schema, _ = tool_call_schema([SEARCH, READ], {"type": "function", "function": {"name": "read"}})
    assert schema["properties"]["name"] == {"const": "read"}

    with pytest.raises(ModelConfigError, match="not among the tools"):
        tool_call_schema([SEARCH], {"type": "function", "function": {"name": "nope"}})


def _embedded_unavailable() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install 'deepfolder[local]')"
    try:
        find_part_files(PACKAGED_MODELS["qwen2.5-coder-1.5b"])
    except ModelConfigError as exc:
        return f"embedded model parts missing: {exc}"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_embedded_unavailable() is not None, reason=str(_embedded_unavailable()))
@pytest.mark.timeout(600)
def test_embedded_model_chats_and_calls_a_tool(tmp_path: Path) -> None:
    from deepfolder.llm.embedded import EmbeddedModel

    settings = Settings.model_validate({"embedded": {"n_ctx": 2048, "n_threads": 2}})
    model = EmbeddedModel(settings)
    assert model.is_local and model.context_window == 2048
    assert model.count_tokens("光伏发电") > 0

    reply = model.chat(
        [{"role": "user", "content": "What is 2 + 3? Answer with the number only."}],
        max_tokens=8,
        temperature=0.0,
    )
    assert reply.content is not None and "5" in reply.content
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0

    call = model.chat(
        [{"role": "user", "content": "Search the folder for perovskite solar cell efficiency."}],
        tools=[SEARCH, READ],
        tool_choice="required",
        max_tokens=48,
        temperature=0.0,
    )
    assert len(call.tool_calls) == 1
    assert call.tool_calls[0].parse_error is None
    assert call.tool_calls[0].name == "search"
    assert "perovskite" in call.tool_calls[0].arguments["query"].lower()
