"""Trace files as data: what ccproxy wrote with --trace-dir (one JSON object per request: the request
as Claude Code sent it, the upstream request, the answer, status and timings), or a request recorded
from Claude Code itself (`{method, path, headers, body}`, tests/fixtures/claude_code).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccstack.traces.analysis import CallCheck, Turn, check_tool_calls, message_from_events, turn_stats

ENV_DIR = "CCPROXY_TRACE_DIR"


class TraceError(Exception):
    """A trace that cannot be read; the CLI prints the message."""


@dataclass(frozen=True)
class Trace:
    file: Path
    id: str
    endpoint: str
    """The request's path (/v1/messages, /v1/messages/count_tokens)."""
    request: dict[str, Any]
    """The Anthropic request body as Claude Code sent it."""
    headers: dict[str, str] = field(default_factory=dict)
    time: float | None = None
    status: int | None = None
    seconds: float | None = None
    first_byte_seconds: float | None = None
    upstream_request: dict[str, Any] | None = None
    """The translated (OpenAI) request, when the proxy translated."""
    response: dict[str, Any] | None = None
    """The Anthropic message answered (streams: rebuilt from the events sent)."""
    upstream_timings: dict[str, Any] | None = None
    """The backend's own timings (llama-server: prompt_n, cache_n, prompt_ms, predicted_ms, ...)."""
    recorded: bool = False
    """A recorded Claude Code request (no proxy trace: no answer, no timings)."""
    cost_usd: float | None = None
    """What the proxy counted this call as costing (the upstream's reported cost or its price table)."""
    budget: dict[str, Any] | None = None
    """The proxy's spend guard when the call was made (session_tokens, day_tokens, session_usd, day_usd)."""

    @property
    def session(self) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == "x-claude-code-session-id":
                return value
        return None

    @property
    def is_messages(self) -> bool:
        return self.endpoint.rstrip("/").endswith("/v1/messages")

    @property
    def model(self) -> str:
        upstream = (self.upstream_request or {}).get("model")
        requested = str(self.request.get("model", "?"))
        return f"{requested}->{upstream}" if upstream and upstream != requested else requested

    def turn(self) -> Turn:
        usage = (self.response or {}).get("usage")
        return turn_stats(
            usage if isinstance(usage, dict) else None,
            self.upstream_timings,
            first_byte_s=self.first_byte_seconds,
            total_s=self.seconds,
        )

    def tool_checks(self) -> list[CallCheck]:
        tools = [t for t in self.request.get("tools") or () if isinstance(t, dict)]
        return check_tool_calls(tools, self.response)


def default_dir(state_dir: Path | None = None) -> Path:
    """$CCPROXY_TRACE_DIR, else the stack's state directory's traces/."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    state = state_dir or Path(os.environ.get("CCSANDBOX_STATE_DIR", ".stack"))
    return state / "traces"


def trace_files(directory: Path) -> list[Path]:
    """The trace files of a directory, oldest first: by name (ccproxy's start with the time, to the second),
    then by modification time within one second."""
    if not directory.is_dir():
        raise TraceError(f"{directory}: no such directory (ccproxy --trace-dir / {ENV_DIR})")
    files = [p for p in directory.glob("*.json") if p.is_file()]
    return sorted(files, key=lambda p: (p.name[:15], p.stat().st_mtime_ns, p.name))


def resolve(name: str, directory: Path) -> Path:
    """A trace named by path, or by file name / request id (prefix) inside the trace directory."""
    path = Path(name)
    if path.is_file():
        return path
    if directory.is_dir():
        matches = [p for p in trace_files(directory) if name in p.name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise TraceError(f"{name}: {len(matches)} traces match in {directory}; be more specific")
    raise TraceError(f"{name}: no such trace (a file, or a request id in {directory})")


def load(path: Path) -> Trace:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TraceError(f"{path}: not a readable JSON trace ({exc})") from exc
    return parse(data, path)


def parse(data: object, path: Path) -> Trace:
    if not isinstance(data, dict):
        raise TraceError(f"{path}: not a trace (a JSON object expected)")
    if "request_body" in data:  # ccproxy --trace-dir
        body = data["request_body"]
        if not isinstance(body, dict):
            raise TraceError(f"{path}: the request body is not JSON")
        response = data.get("response_body")
        events = data.get("response_events")
        if not isinstance(response, dict) and isinstance(events, list):
            response = message_from_events(events)
        upstream_response = data.get("upstream_response")
        timings = data.get("upstream_timings")
        if timings is None and isinstance(upstream_response, dict):
            timings = upstream_response.get("timings")
        upstream = data.get("upstream_request")
        return Trace(
            file=path,
            id=str(data.get("id") or path.stem),
            endpoint=str(data.get("path") or "/v1/messages"),
            request=body,
            headers=_str_dict(data.get("request_headers")),
            time=_number(data.get("time")),
            status=data["status"] if isinstance(data.get("status"), int) else None,
            seconds=_number(data.get("seconds")),
            first_byte_seconds=_number(data.get("first_byte_seconds")),
            upstream_request=upstream if isinstance(upstream, dict) else None,
            response=response if isinstance(response, dict) else None,
            upstream_timings=timings if isinstance(timings, dict) else None,
            cost_usd=_number(data.get("cost_usd")),
            budget=data["budget"] if isinstance(data.get("budget"), dict) else None,
        )
    if isinstance(data.get("body"), dict) and "path" in data:  # a recorded Claude Code request
        return Trace(
            file=path,
            id=path.stem,
            endpoint=str(data["path"]).split("?", 1)[0],
            request=data["body"],
            headers=_str_dict(data.get("headers")),
            recorded=True,
        )
    raise TraceError(f"{path}: neither a ccproxy trace nor a recorded request")


def load_many(paths: list[Path]) -> list[Trace]:
    return [load(p) for p in paths]


def _str_dict(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
