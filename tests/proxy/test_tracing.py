"""Trace files: opt-in, directory 0700, files 0600, secrets never written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ccproxy.tracing import REDACTED, Tracer, body_for_trace, redact_headers, scrub, timing_fields

pytestmark = pytest.mark.unit


def test_disabled_tracer_writes_nothing(tmp_path: Path) -> None:
    tracer = Tracer(None)
    assert not tracer.enabled
    assert tracer.write("r1", {"a": 1}) is None


def test_trace_file_permissions_and_redaction(tmp_path: Path) -> None:
    directory = tmp_path / "traces" / "nested"
    tracer = Tracer(directory, secrets=("tok-SECRET", "sk-UPSTREAM", None))
    headers = redact_headers(
        [
            ("Authorization", "Bearer tok-SECRET"),
            ("x-api-key", "sk-UPSTREAM"),
            ("anthropic-version", "2023-06-01"),
        ]
    )
    path = tracer.write(
        "req_1",
        {
            "request_headers": headers,
            "request_body": {"messages": [{"content": "my key is sk-UPSTREAM, token tok-SECRET"}]},
        },
    )
    assert path is not None
    assert directory.stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert "tok-SECRET" not in text
    assert "sk-UPSTREAM" not in text
    data = json.loads(text)
    assert data["request_headers"] == {
        "Authorization": REDACTED,
        "x-api-key": REDACTED,
        "anthropic-version": "2023-06-01",
    }
    assert data["request_body"]["messages"][0]["content"] == f"my key is {REDACTED}, token {REDACTED}"


def test_existing_directory_is_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "open"
    directory.mkdir(mode=0o777)
    Tracer(directory)
    assert directory.stat().st_mode & 0o777 == 0o700


def test_scrub_and_body_helpers() -> None:
    assert scrub({"k": ["a-s-b", 1, None]}, ("s",)) == {"k": [f"a-{REDACTED}-b", 1, None]}
    assert scrub("unchanged", ()) == "unchanged"
    assert body_for_trace(b'{"a": 1}') == {"a": 1}
    assert body_for_trace(b"\xffnot json") == "\ufffdnot json"


def test_timing_fields() -> None:
    assert timing_fields(10.0, None, None) == {}
    timings = {"prompt_n": 20, "cache_n": 5, "prompt_ms": 1089.2}
    assert timing_fields(10.0, 10.25, timings) == {"first_byte_seconds": 0.25, "upstream_timings": timings}


def test_a_trace_appears_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Readers list `*.json` while the proxy writes: they must never see a half-written trace."""
    tracer = Tracer(tmp_path)
    seen_while_writing: list[list[str]] = []
    real_rename = os.rename

    def rename(src: str, dst: str) -> None:
        seen_while_writing.append(sorted(p.name for p in tmp_path.glob("*.json")))
        real_rename(src, dst)

    monkeypatch.setattr("ccproxy.tracing.os.rename", rename)
    path = tracer.write("req_1", {"big": "x" * 100_000})
    assert seen_while_writing == [[]]
    assert path is not None
    assert json.loads(path.read_text())["big"] == "x" * 100_000
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def rename(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ccproxy.tracing.os.rename", rename)
    assert Tracer(tmp_path).write("req_1", {"a": 1}) is None
    assert list(tmp_path.iterdir()) == []
