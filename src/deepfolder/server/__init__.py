"""deepfolder as an MCP server: ``deepfolder mcp FOLDER`` serves the folder's tools
(``folder.py``, the agent's own tools, a report check and a full research run) and its
sources over the Model Context Protocol (``app.py``: stdio or streamable HTTP).
Needs the ``mcp`` extra."""
