"""A scripted OpenAI-compatible server on 127.0.0.1 for tests that run ``deepfolder`` as a
real process.

Each reply is computed from the request by ``reply(body) -> completion dict`` (so a
resumed run gets the same answers as an uninterrupted one), and every request is logged
in order, with the hash the trace records for its messages (``prompt_sha256``), to
``requests`` and to a JSONL file. ``on_request(n, body)`` runs before the reply to
request ``n`` (1-based) and may stop the client (kill it), return False to leave the
request unanswered, or return a :class:`Refusal` to answer with its status and headers
(a 429 with ``Retry-After``). Each logged request has the time it arrived (``at``). ``down`` makes every request fail with HTTP 503 (an endpoint that
stays down).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from deepfolder.agent.recording import prompt_hash
from openai_server import LoopbackServer, send_json
from openai_server import completion as base_completion


def completion(
    content: str | None, *, tool_calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return base_completion(
        content,
        tool_calls=tool_calls,
        prompt_tokens=100,
        completion_tokens=20,
        finish_reason="tool_calls" if tool_calls else "stop",
    )


def tool_call(name: str, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
    }


@dataclass(frozen=True)
class Refusal:
    """An error reply an ``on_request`` hook sends instead of the scripted one."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedServer(LoopbackServer):
    def __init__(
        self,
        reply: Callable[[dict[str, Any]], dict[str, Any]],
        log_path: Path,
    ) -> None:
        self.reply = reply
        self.log_path = log_path
        self.requests: list[dict[str, Any]] = []
        self.on_request: Callable[[int, dict[str, Any]], bool | Refusal | None] | None = None
        self.down = False
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                n = outer._log(body)
                hook = outer.on_request
                verdict = hook(n, body) if hook is not None else None
                if verdict is False:
                    return  # left unanswered: the client was stopped
                if isinstance(verdict, Refusal):
                    message = {"error": {"message": f"HTTP {verdict.status} (scripted)"}}
                    self._send(verdict.status, message, verdict.headers)
                    return
                if outer.down:
                    self._send(503, {"error": {"message": "endpoint down (scripted)"}})
                    return
                self._send(200, outer.reply(body))

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                send_json(self, status, json.dumps(body, ensure_ascii=False).encode(), headers)

        self._serve(Handler)

    def _log(self, body: dict[str, Any]) -> int:
        entry = {"prompt_sha256": prompt_hash(body.get("messages") or []), "down": self.down}
        with self._lock:
            self.requests.append({**entry, "body": body, "at": time.time()})
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
            return len(self.requests)

    def prompts(self, start: int = 0) -> list[str]:
        """The message hashes of the requests from number ``start`` (0-based) on."""
        return [r["prompt_sha256"] for r in self.requests[start:]]


def subprocess_env() -> dict[str, str]:
    """The environment of a ``deepfolder`` process a test starts against the scripted
    server: this checkout's sources, no inherited DEEPFOLDER_* settings, model requests
    allowed (the server is on 127.0.0.1), no colours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFOLDER_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    env["DEEPFOLDER_ALLOW_MODEL_REQUESTS"] = "1"
    env["NO_COLOR"] = "1"
    return env
