"""A scripted OpenAI-compatible endpoint for tests: ``FakeOpenAIServer``, a real HTTP
server on 127.0.0.1 that speaks ``POST /v1/chat/completions``.

Each request pops the next scripted behaviour: ``(status, body_dict, headers)``,
``("sleep", seconds)`` to answer too late (a timeout), ``("raw", status, text)`` to
send ``text`` as the body byte for byte (not JSON, cut-off JSON, an HTML error page), or
``("dropped", text)``: a 200 promising more bytes than ``text`` and closing the
connection after it (a reply cut off in transit).
Received request bodies are kept in ``requests``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def completion(
    content: str | None = "ok",
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    data: bytes,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer ``handler``'s request with ``data`` as a JSON body (the client may have
    given up already: a timeout test, a killed process)."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)


class LoopbackServer:
    """A threaded HTTP server on a free 127.0.0.1 port, started by ``with``."""

    httpd: ThreadingHTTPServer

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class FakeOpenAIServer(LoopbackServer):
    completion = staticmethod(completion)

    def __init__(self, script: list[tuple[Any, ...]]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                outer.requests.append(json.loads(self.rfile.read(length) or b"{}"))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                    return
                step = outer.script.pop(0) if outer.script else (500, {"error": "no script"}, {})
                if step[0] == "sleep":
                    time.sleep(step[1])
                    step = (200, completion("too late"), {})
                if step[0] == "raw":
                    self._send_bytes(step[1], step[2].encode("utf-8"), {})
                    return
                if step[0] == "dropped":
                    data = step[1].encode("utf-8")
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data) + 500))
                    self.end_headers()
                    self.wfile.write(data)
                    self.close_connection = True
                    return
                status, body, headers = step
                send_json(self, status, json.dumps(body).encode(), headers)

            def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
                send_json(self, status, json.dumps(body).encode(), headers)

            def _send_bytes(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                send_json(self, status, data, headers)

        self._serve(Handler)
