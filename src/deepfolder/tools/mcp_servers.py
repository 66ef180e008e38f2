"""MCP tool servers in the agent: the tools of external MCP servers, next to deepfolder's own.

``tools.mcp_servers`` (settings) names the servers: a command started over stdio or a
streamable-HTTP URL, optionally with an allow-list of their tools. At run start
:func:`connect_mcp_servers` connects to each, lists its tools and wraps each as a
:class:`~deepfolder.tools.base.Tool` whose schema is the server's input schema; the
runner offers them to the policy after deepfolder's own (``available_tools``), a name
that clashes with a tool already offered prefixed by the server's name
(``weather_search``).

The agent is synchronous and the MCP SDK is asynchronous: the sessions live on one
event loop in a background thread (an anyio blocking portal), each entered inside the
portal so its task group and subprocess are owned by that loop; a tool call waits for
its result there, up to the server's ``timeout_s``.

A result becomes evidence the model may cite: ``Source(kind="mcp", id="mcp:<server>/<tool>")``
and ``Locator(call='<tool>({"arg": …})')``, so the citation reads
``mcp:weather, forecast({"city": "Paris"})`` and the same call with the same result
always has the same id. Its text is shown as material, never as instructions.

Failures do not end the run: a server that fails to start is left out with a problem
the runner records; one that dies mid-run (or times out) makes its tools answer with an
error observation naming the server from then on, and the run goes on without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from deepfolder.prompts.material import quote_material
from deepfolder.records import Evidence, Locator, Segment, Source
from deepfolder.settings import McpServerSettings
from deepfolder.tools.base import Tool, ToolContext, ToolOutput

EVIDENCE_TEXT_CHARS = 6000
"""Characters of one result kept as its evidence text (and shown to the model)."""
CALL_CHARS = 2000
"""Characters of a call's arguments kept in its locator."""


class McpUnavailable(ImportError):
    """The ``mcp`` package is not installed."""


def _require_mcp() -> None:
    try:
        import mcp  # noqa: F401
    except ImportError as exc:
        raise McpUnavailable(
            "MCP tool servers need the 'mcp' extra: pip install 'deepfolder[mcp]'"
        ) from exc


@dataclass
class McpServer:
    """One connected server: its settings, the client session, and whether it still works."""

    config: McpServerSettings
    client: Any
    """The SDK's ``mcp.Client``, entered on the portal's loop."""
    tools: list[Any] = field(default_factory=list)
    """The server's tools (``mcp.types.Tool``) after the allow-list."""
    failure: str | None = None
    """Why the server stopped answering; None while it works."""


class McpToolServers:
    """The run's connected MCP tool servers; :meth:`close` ends the sessions."""

    def __init__(self, log_dir: Path | None = None) -> None:
        _require_mcp()
        from anyio.from_thread import start_blocking_portal

        self._stack = contextlib.ExitStack()
        self._portal = self._stack.enter_context(start_blocking_portal())
        self._log_dir = log_dir
        self.servers: list[McpServer] = []
        self.problems: list[str] = []
        """What went wrong (a server that did not start, one that died), for the trace."""
        self.on_problem: Callable[[str], None] | None = None
        """Told each problem as it happens (the runner prints it)."""

    # -- connecting -------------------------------------------------------------------
    def connect(self, config: McpServerSettings, timeout_s: float) -> None:
        """Start or reach one server and list its tools; a failure becomes a problem."""
        try:
            client = self._stack.enter_context(
                self._portal.wrap_async_context_manager(self._client_for(config, timeout_s))
            )
            listed = self._portal.call(_list_tools, client, timeout_s)
        except Exception as exc:  # a bad command, a refused connection, a crash at start
            self._problem(
                f"MCP server {config.name!r} did not start ({_reason(exc)}); "
                "the run goes on without its tools"
            )
            return
        allowed = config.tools
        tools = [t for t in listed if allowed is None or t.name in allowed]
        missing = sorted(set(allowed or []) - {t.name for t in listed})
        if missing:
            self._problem(
                f"MCP server {config.name!r} has no tool named {', '.join(missing)}; "
                f"it lists: {', '.join(t.name for t in listed) or 'none'}"
            )
        self.servers.append(McpServer(config, client, tools))

    def _client_for(self, config: McpServerSettings, timeout_s: float) -> Any:
        """The SDK client for ``config``; ``timeout_s`` bounds each request of the handshake."""
        from mcp import Client, StdioServerParameters
        from mcp.client.stdio import stdio_client

        if config.url is not None:
            target = config.url if not config.bearer_token_env else _http_transport(config)
            return Client(target, read_timeout_seconds=timeout_s)
        env = {**config.env, **{k: os.environ[k] for k in config.pass_env if k in os.environ}}
        params = StdioServerParameters(
            command=config.command or "", args=config.args, env=env or None, cwd=config.cwd
        )
        return Client(
            stdio_client(params, errlog=self._errlog(config.name)), read_timeout_seconds=timeout_s
        )

    def _errlog(self, name: str) -> TextIO:
        """Where the server's standard error goes: ``mcp_servers/<name>.log`` in the run
        directory (a real file: the subprocess writes to it directly)."""
        if self._log_dir is None:
            return self._stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
        self._log_dir.mkdir(parents=True, exist_ok=True)
        path = self._log_dir / f"{name}.log"
        return self._stack.enter_context(path.open("a", encoding="utf-8"))

    # -- the tools --------------------------------------------------------------------
    def tools(self, taken: set[str]) -> list[Tool]:
        """Every allowed tool of every connected server as a deepfolder Tool; a name
        already in ``taken`` (or another server's) gets the server's name in front."""
        out: list[Tool] = []
        names = set(taken)
        for server in self.servers:
            for spec in server.tools:
                name = _function_name(spec.name)
                if name in names:
                    name = _function_name(f"{server.config.name}_{spec.name}")
                names.add(name)
                out.append(self._wrap(server, spec, name))
        return out

    def _wrap(self, server: McpServer, spec: Any, name: str) -> Tool:
        schema = dict(spec.input_schema or {"type": "object", "properties": {}})
        schema.setdefault("properties", {})
        origin = f"(MCP server {server.config.name!r}, tool {spec.name!r})"
        description = f"{(spec.description or spec.name).strip()} {origin}"

        def call(ctx: ToolContext, **arguments: Any) -> ToolOutput:
            return self.call(ctx, server, spec.name, arguments)

        return Tool(name=name, description=description, parameters=schema, fn=call)

    def call(
        self, ctx: ToolContext, server: McpServer, tool: str, arguments: dict[str, Any]
    ) -> ToolOutput:
        """One tool call; its result as citable evidence, or an error observation."""
        name = server.config.name
        if server.failure is not None:
            return ToolOutput(
                text=f"MCP server {name!r} is no longer available ({server.failure}); "
                "go on without its tools.",
                is_error=True,
                quoted=True,
            )
        try:
            result = self._portal.call(
                _call_tool, server.client, tool, arguments, server.config.timeout_s
            )
        except Exception as exc:  # the server died, hung or broke the protocol
            server.failure = _reason(exc)
            self._problem(
                f"MCP server {name!r} stopped answering ({server.failure}) during "
                f"{tool}(); the run goes on without it"
            )
            return ToolOutput(
                text=f"MCP server {name!r} failed: {server.failure}. Its tools are no longer "
                "available; go on without them.",
                is_error=True,
                quoted=True,
            )
        text = result_text(result)
        if result.is_error:
            body = quote_material(text or "(no message)", label=f"{name}.{tool} error")
            return ToolOutput(
                text=f"{tool}() on MCP server {name!r} reported an error:\n{body}",
                is_error=True,
                quoted=True,
            )
        ev = result_evidence(name, tool, arguments, text)
        ctx.created[ev.id] = ev
        ctx.remember([ev])
        head = f"[{ev.id}] {ev.citation_label(ctx.language)}"
        body = quote_material(ev.segment.text or "(empty result)", label=f"{name}.{tool} result")
        return ToolOutput(text=f"{head}\n{body}\n{ctx.status_line()}", evidence=[ev], quoted=True)

    # -- the end ----------------------------------------------------------------------
    def _problem(self, message: str) -> None:
        self.problems.append(message)
        if self.on_problem is not None:
            self.on_problem(message)

    def close(self) -> None:
        """End every session (stopping stdio servers) and the portal's loop."""
        with contextlib.suppress(Exception):  # a dead server must not hide the report
            self._stack.close()


def connect_mcp_servers(
    configs: list[McpServerSettings],
    *,
    timeout_s: float,
    log_dir: Path | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> McpToolServers:
    """Connect to every configured server; those that fail are recorded in ``problems``."""
    servers = McpToolServers(log_dir)
    servers.on_problem = on_problem
    for config in configs:
        servers.connect(config, timeout_s)
    return servers


def result_text(result: Any) -> str:
    """The text of an MCP tool result: its text blocks, else its structured content as
    JSON; other blocks (images, audio) are named, not shown."""
    parts: list[str] = []
    for block in result.content:
        if getattr(block, "type", "") == "text":
            parts.append(block.text)
        elif getattr(block, "type", "") == "resource" and hasattr(block.resource, "text"):
            parts.append(block.resource.text)
        else:
            parts.append(f"[{getattr(block, 'type', 'content')} block not shown]")
    if not any(p.strip() for p in parts) and result.structured_content is not None:
        parts = [json.dumps(result.structured_content, ensure_ascii=False)]
    return "\n".join(parts).strip()


def call_label(tool: str, arguments: dict[str, Any]) -> str:
    """``forecast({"city": "Paris"})``: the locator of a call's result (the arguments as
    sorted JSON; only arguments past ``CALL_CHARS`` are cut)."""
    args = json.dumps(arguments, ensure_ascii=False, sort_keys=True, default=str)
    if len(args) > CALL_CHARS:
        args = args[: CALL_CHARS - 1] + "…"
    return f"{tool}({args})"


def result_evidence(server: str, tool: str, arguments: dict[str, Any], text: str) -> Evidence:
    """A tool result as evidence: the server and tool are the source, the call its locator."""
    if len(text) > EVIDENCE_TEXT_CHARS:
        text = text[: EVIDENCE_TEXT_CHARS - 1] + "…"
    source = Source(
        id=f"mcp:{server}/{tool}",
        path=f"mcp:{server}",
        kind="mcp",
        title=f"{server}.{tool}",
        meta={"server": server, "tool": tool},
    )
    locator = Locator(call=call_label(tool, arguments))
    return Evidence(Segment.create(source.id, text, locator), source)


def _function_name(name: str) -> str:
    """A tool name as model APIs accept one: letters, digits, ``_`` and ``-``, 64 at most."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


def _reason(exc: BaseException) -> str:
    """A one-line reason; an exception group (anyio's task groups) by its first cause."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


@contextlib.asynccontextmanager
async def _http_transport(config: McpServerSettings) -> AsyncIterator[Any]:
    """A streamable-HTTP transport that sends the bearer token ``bearer_token_env`` names."""
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    env = config.bearer_token_env or ""
    token = os.environ.get(env)
    if not token:
        raise ValueError(f"MCP server {config.name!r}: ${env} (bearer_token_env) is not set")
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(config.url or "", http_client=http) as streams,
    ):
        yield streams


async def _list_tools(client: Any, timeout_s: float) -> list[Any]:
    import anyio

    tools: list[Any] = []
    cursor: str | None = None
    with anyio.fail_after(timeout_s):
        while True:
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools


async def _call_tool(client: Any, tool: str, arguments: dict[str, Any], timeout_s: float) -> Any:
    return await client.call_tool(tool, arguments, read_timeout_seconds=timeout_s)
