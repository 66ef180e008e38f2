"""Local data analysis: model-written Python in a limited, persistent worker process."""

from deepfolder.analysis.sandbox import (
    CellResult,
    FigureInfo,
    PythonSandbox,
    SandboxError,
    SandboxLimits,
    probe_isolation,
)

__all__ = [
    "CellResult",
    "FigureInfo",
    "PythonSandbox",
    "SandboxError",
    "SandboxLimits",
    "probe_isolation",
]
