"""What a probe returns (:class:`ProbeResult`), its nonces, and the table ``ccstack verify`` prints."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


class ProbeError(RuntimeError):
    """A probe could not run at all (container missing, no node in it, garbage output)."""


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe: ``passed`` means the isolation held (and the control, if any, worked)."""

    name: str
    area: str
    passed: bool
    detail: str
    control: bool | None = None  # the positive control reached the target (None: no control)

    def row(self) -> tuple[str, str, str, str, str]:
        control = "-" if self.control is None else ("reached" if self.control else "FAILED")
        return (self.area, self.name, "pass" if self.passed else "FAIL", control, self.detail)


def new_nonce() -> str:
    return "n" + secrets.token_hex(8)


def format_errors(results: Iterable[dict[str, Any]]) -> str:
    return ", ".join(str(r.get("error") or r.get("status_line") or "connected") for r in results)


def verdict(name: str, area: str, ok: bool, detail: str, control: bool | None = None) -> ProbeResult:
    passed = ok and control is not False
    return ProbeResult(name=name, area=area, passed=passed, detail=detail, control=control)


def format_table(results: Sequence[ProbeResult], *, width: int = 100) -> str:
    """A plain-text table (area, probe, result, control, detail) and a summary line."""
    rows = [("area", "probe", "result", "control", "detail")] + [r.row() for r in results]
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for r in rows:
        detail = r[4] if len(r[4]) <= width else r[4][: width - 3] + "..."
        lines.append("  ".join(c.ljust(w[i]) for i, c in enumerate(r[:4])) + "  " + detail)
    passed = sum(r.passed for r in results)
    lines.append(f"{passed}/{len(results)} probes passed")
    return "\n".join(lines)


@dataclass
class Collector:
    """Results gathered over a test session (the suite writes the table at the end)."""

    results: list[ProbeResult] = field(default_factory=list)

    def add(self, *results: ProbeResult) -> None:
        self.results.extend(results)
