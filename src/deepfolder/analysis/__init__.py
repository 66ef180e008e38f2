"""Local data analysis: model-written Python in an isolated, limited, persistent worker."""

from deepfolder.analysis.isolation import IsolationUnavailable
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
    "IsolationUnavailable",
    "PythonSandbox",
    "SandboxError",
    "SandboxLimits",
    "probe_isolation",
]
