"""One check's outcome (:class:`CheckResult`), shared by every module that checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(slots=True)
class CheckResult:
    name: str
    passed: bool | None
    """None: the check could not be made (say why in ``details``)."""
    measured: Any
    expected: Any
    details: list[str] = field(default_factory=list)
    severity: Literal["error", "warning"] = "error"

    @property
    def failed(self) -> bool:
        return self.passed is False and self.severity == "error"

    def summary(self) -> str:
        head = f"{self.name}: {self.measured}"
        if self.expected not in (None, ""):
            head += f" (expected {self.expected})"
        return head + (f" — {'; '.join(self.details[:3])}" if self.details else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "severity": self.severity,
            "measured": self.measured,
            "expected": self.expected,
            "details": self.details,
        }
