"""The embedded model: fast checks of its schema logic, and one slow real run."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from deepfolder.llm import embedded
from deepfolder.llm.base import ModelConfigError
from deepfolder.llm.embedded import (
    busy_cores_of_others,
    default_threads,
    threads_for,
    tool_call_schema,
)
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


# --- threads ------------------------------------------------------------------------


def test_a_momentary_spike_in_one_reading_does_not_cost_a_thread() -> None:
    # 2 cores, otherwise idle; the first reading caught another job's burst.
    assert threads_for([2.0, 0.1, 0.0], cores=2) == 2
    # The single reading the old rule used would have chosen 1 thread.
    assert threads_for([2.0], cores=2) == 1


def test_steady_load_leaves_the_free_cores() -> None:
    assert threads_for([1.0, 1.1, 0.9], cores=2) == 1
    assert threads_for([2.0, 2.0, 1.9], cores=2) == 1  # never below one thread
    assert threads_for([0.0, 0.2, 0.1], cores=2) == 2
    assert threads_for([1.1, 0.9, 1.0], cores=4) == 3


def test_free_cores_are_counted_on_the_whole_machine_and_capped() -> None:
    # 16 cores with 13 busy leave 3 free (the old rule subtracted the busy cores from
    # min(4, cores) and chose 1); an idle big machine still gets at most MAX_THREADS.
    assert threads_for([13.0, 13.0, 13.0], cores=16) == 3
    assert threads_for([0.0, 0.0, 0.0], cores=16) == embedded.MAX_THREADS
    assert threads_for([None, None], cores=2) == 2  # no /proc/stat: all cores, capped
    assert threads_for([None, 1.2, None], cores=2) == 1  # unreadable readings are skipped


def test_default_threads_takes_the_median_of_its_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded.os, "cpu_count", lambda: 2)
    readings = iter([1.9, 0.0, 0.2])
    intervals: list[float] = []

    def read(interval: float) -> float | None:
        intervals.append(interval)
        return next(readings)

    assert default_threads(samples=3, interval=0.05, read=read) == 2
    assert intervals == [0.05, 0.05, 0.05]


def test_busy_cores_of_others_leaves_out_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine's 2 cores are fully busy during the reading, and this process used
    # one core's worth of CPU time itself: one core is busy with other work.
    jiffies = iter([(1000, 4000), (1000, 4020)])
    clock = iter([10.0, 10.1])
    monkeypatch.setattr(embedded, "_cpu_jiffies", lambda: next(jiffies))
    monkeypatch.setattr(embedded.time, "process_time", lambda: next(clock))
    monkeypatch.setattr(embedded.time, "sleep", lambda s: None)
    monkeypatch.setattr(embedded.os, "cpu_count", lambda: 2)
    assert busy_cores_of_others(0.1) == pytest.approx(1.0)


def test_busy_cores_of_others_reads_this_machine() -> None:
    busy = busy_cores_of_others(0.05)
    if busy is None:
        pytest.skip("no /proc/stat on this system")
    assert 0.0 <= busy <= (embedded.os.cpu_count() or 1) + 0.5


class _FakeLlama:
    """Stands for llama_cpp.Llama: records the threads each completion ran with."""

    def __init__(self) -> None:
        self.n_threads = embedded.MAX_THREADS
        self.calls: list[int] = []

    def create_chat_completion(self, **_: Any) -> dict[str, Any]:
        self.calls.append(self.n_threads)
        return {
            "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1},
        }


def _model_over(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: dict[str, Any]
) -> tuple[Any, _FakeLlama]:
    monkeypatch.setitem(sys.modules, "llama_cpp", types.ModuleType("llama_cpp"))
    gguf = tmp_path / "model.gguf"
    monkeypatch.setattr(embedded, "ensure_gguf", lambda spec, model_dir: gguf)
    model = embedded.EmbeddedModel(Settings.model_validate({"embedded": settings}))
    fake = _FakeLlama()
    monkeypatch.setitem(embedded._LOADED, (str(gguf), model.context_window), fake)

    def set_threads(llama: Any, n: int) -> None:
        llama.n_threads = n

    monkeypatch.setattr(embedded, "set_threads", set_threads)
    return model, fake


def test_threads_are_chosen_again_before_every_call(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model, fake = _model_over(monkeypatch, tmp_path, {"n_ctx": 1024})
    # Busy at the first call (the moment the old rule decided for the whole run), free after.
    choices = iter([1, 2, 2])
    monkeypatch.setattr(embedded, "default_threads", lambda: next(choices))
    for _ in range(3):
        assert model.chat([{"role": "user", "content": "hi"}]).content == "ok"
    assert fake.calls == [1, 2, 2]
    assert model.n_threads == 2


def test_threads_from_the_settings_are_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model, fake = _model_over(monkeypatch, tmp_path, {"n_ctx": 1024, "n_threads": 3})

    def no_measuring() -> int:
        raise AssertionError("threads were measured although the settings fix them")

    monkeypatch.setattr(embedded, "default_threads", no_measuring)
    model.chat([{"role": "user", "content": "hi"}])
    model.chat([{"role": "user", "content": "hi"}])
    assert fake.calls == [3, 3]


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


def test_llama_cpp_leaves_no_unclosed_file_at_exit() -> None:
    """llama_cpp opens /dev/null twice at import; every run used to end with two
    "unclosed file" ResourceWarnings."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    code = "from deepfolder.llm.embedded import import_llama_cpp; import_llama_cpp()"
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "ResourceWarning" not in done.stderr
