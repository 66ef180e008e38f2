"""The tools the model may call, one module per tool or family of tools.

``TOOL_MODULES`` is the registry: each module lists its tools in ``TOOLS``, and the
model is shown them in this order. A module whose optional parts are not installed
fails to import and its tools are left out; a tool whose availability rule
(``@tool(available=…)``, beside its definition) does not hold for the run is left out
too. The tools of the run's MCP tool servers (``ctx.mcp``, ``tools/mcp_servers.py``)
come last, a name that clashes prefixed by its server's. The runner knows no tool by name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deepfolder.tools.base import Tool, ToolContext

TOOL_MODULES = (
    "deepfolder.tools.search",
    "deepfolder.tools.core",
    "deepfolder.tools.python",
    "deepfolder.tools.image",
    "deepfolder.tools.media",
    "deepfolder.tools.video",
)


def available_tools(ctx: ToolContext) -> list[Tool]:
    """Every registered tool whose parts are installed and that this run can use."""
    tools: list[Tool] = []
    for name in TOOL_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        tools.extend(t for t in module.TOOLS if t.is_available(ctx))
    if ctx.mcp is not None:
        tools.extend(ctx.mcp.tools(taken={t.name for t in tools}))
    return tools
