"""Suite-wide test setup: no test may reach a real model endpoint.

``DEEPFOLDER_ALLOW_MODEL_REQUESTS=0`` makes every OpenAI-compatible model raise a
ModelError before any network I/O (see deepfolder.llm.guard). Tests that talk to a fake
server on 127.0.0.1 re-enable requests with ``monkeypatch.setenv(..., "1")``. The
embedded in-process model is not affected.
"""

from __future__ import annotations

import os

os.environ["DEEPFOLDER_ALLOW_MODEL_REQUESTS"] = "0"
