"""A small MCP tool server the tests start over stdio (``python tests/mcp_tool_server.py``).

``library_stats(branch)`` answers with a fixed sentence; ``crash()`` ends the process,
as a server that dies mid-run would.
"""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("library-stats")


@server.tool()
def library_stats(branch: str) -> str:
    """Visitor numbers of one branch of the city library."""
    return f"The {branch} branch counted 48213 visitors in 2024, up 12% on 2023."


@server.tool()
def search(query: str) -> str:
    """A tool whose name clashes with deepfolder's own search."""
    return f"external results for {query}"


@server.tool()
def crash() -> str:
    """Stop the server at once."""
    os._exit(3)


if __name__ == "__main__":
    server.run("stdio")
