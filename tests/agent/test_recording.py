"""Model calls and tool calls become the same step records whoever makes them."""

from __future__ import annotations

from pathlib import Path

from deepfolder.agent.recording import (
    RecordedModel,
    model_call_step,
    prompt_hash,
    tool_call_steps,
)
from deepfolder.llm.base import ToolCallRequest
from deepfolder.llm.fake import FunctionModel, ScriptedModel, tool_call
from deepfolder.records import ModelCallStep, NoteStep, Step, ToolCallStep, ToolResultStep
from deepfolder.tools.base import ToolContext, ToolOutput, tool
from spine_fixtures import CORE_TOOLS, small_context

IMAGE = "data:image/png;base64," + "A" * 400


def test_a_wrapped_model_records_its_call_like_the_loop_does() -> None:
    recorded: list[Step] = []
    model = RecordedModel(
        FunctionModel(lambda messages, tools: "a cat"), recorded.append, "vision", lambda: 7
    )
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": IMAGE}}]}]
    reply = model.chat(messages, max_tokens=50)
    assert reply.content == "a cat"
    (step,) = recorded
    assert isinstance(step, ModelCallStep)
    assert (step.turn, step.purpose, step.response_text) == (7, "vision", "a cat")
    # the trace keeps the image's hash and size, and the hash of what was really sent
    url = step.messages[0]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/png;sha256=") and url.endswith(
        ";400 base64 characters omitted"
    )
    assert step.prompt_sha256 == prompt_hash(messages)
    assert messages[0]["content"][0]["image_url"]["url"] == IMAGE  # the caller's are intact


def test_a_model_call_step_names_the_tools_offered_and_the_calls_asked_for() -> None:
    model = ScriptedModel([tool_call("search", {"query": "x"})])
    specs = [t.spec() for t in CORE_TOOLS]
    response, step = model_call_step(
        model, [{"role": "user", "content": "q"}], turn=2, purpose="agent", tools=specs
    )
    assert step.tools == [t.name for t in CORE_TOOLS]
    assert [c["name"] for c in step.tool_calls] == ["search"]
    assert step.usage == response.usage and step.duration >= 0


def test_a_tool_that_fails_is_an_observation_and_an_error_note(tmp_path: Path) -> None:
    @tool
    def broken(ctx: ToolContext, text: str) -> ToolOutput:
        """Fail.

        Args:
            text: Anything.
        """
        raise RuntimeError("disk on fire")

    ctx = small_context(tmp_path)
    call = ToolCallRequest(id="c1", name="broken", arguments={"text": "x"})
    gen = tool_call_steps(call, {"broken": broken}, ctx, turn=3)
    steps: list[Step] = []
    while True:
        try:
            steps.append(next(gen))
        except StopIteration as stop:
            output, internal = stop.value
            break
    assert [type(s) for s in steps] == [ToolCallStep, NoteStep, ToolResultStep]
    note, result = steps[1], steps[2]
    assert isinstance(note, NoteStep) and note.level == "error"
    assert note.message == "tool broken failed: RuntimeError: disk on fire"
    assert isinstance(result, ToolResultStep) and result.is_error
    assert result.content == output.text == "Internal error in broken: RuntimeError: disk on fire"
    assert internal == "RuntimeError: disk on fire"
    assert all(s.turn == 3 for s in steps)
