"""ccstack.traces.reading: the trace formats (streamed, non-streamed, older traces without timings,
recorded requests) and how traces are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ccstack.traces.reading import TraceError, load, parse, resolve, trace_files

pytestmark = pytest.mark.unit

REQUEST = {"model": "claude-opus-4-8", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 9}


def test_non_streamed_trace_takes_the_timings_of_the_upstream_answer() -> None:
    record = {
        "id": "req_1",
        "time": 1.5,
        "path": "/v1/messages",
        "request_headers": {"X-Claude-Code-Session-Id": "s1", "authorization": "[redacted]"},
        "request_body": REQUEST,
        "upstream_request": {"model": "qwen", "messages": []},
        "upstream_response": {"choices": [], "timings": {"prompt_n": 3, "cache_n": 0, "prompt_ms": 9.0}},
        "response_body": {"content": [{"type": "text", "text": "hello"}], "usage": {"output_tokens": 2}},
        "status": 200,
        "seconds": 0.5,
    }
    trace = parse(record, Path("t.json"))
    assert trace.session == "s1"
    assert trace.model == "claude-opus-4-8->qwen"
    assert trace.upstream_timings == {"prompt_n": 3, "cache_n": 0, "prompt_ms": 9.0}
    assert trace.first_byte_seconds is None  # traces written before first_byte_seconds existed
    turn = trace.turn()
    assert (turn.prompt_tokens, turn.output_tokens, turn.total_s) == (3, 2, 0.5)
    assert trace.tool_checks() == []


def test_streamed_trace_is_rebuilt_from_its_events() -> None:
    events = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 5, "cache_read_input_tokens": 15}}},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "name": "X", "input": {}},
        },
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 4}},
    ]
    record = {"path": "/v1/messages", "request_body": REQUEST, "response_events": events, "status": 200}
    trace = parse(record, Path("s.json"))
    assert trace.response is not None
    assert trace.response["stop_reason"] == "tool_use"
    assert trace.turn().cache_share == pytest.approx(0.75)
    assert [c.problem for c in trace.tool_checks()] == ["not a tool of the request"]
    assert trace.id == "s"


def test_recorded_request_and_bad_files(tmp_path: Path) -> None:
    recorded = parse(
        {"method": "POST", "path": "/v1/messages?beta=true", "headers": {}, "body": REQUEST}, tmp_path
    )
    assert recorded.recorded
    assert recorded.endpoint == "/v1/messages"
    assert recorded.is_messages
    with pytest.raises(TraceError, match="neither"):
        parse({"what": 1}, tmp_path)
    with pytest.raises(TraceError, match="not JSON"):
        parse({"request_body": "garbage"}, tmp_path)
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(TraceError, match="not a readable JSON trace"):
        load(tmp_path / "x.json")


def test_resolve_by_id(tmp_path: Path) -> None:
    for name in ("20261201T100000-req_aaa1.json", "20261201T100001-req_aaa2.json", "notes.txt"):
        (tmp_path / name).write_text(json.dumps({"path": "/", "body": {}}))
    assert [p.name for p in trace_files(tmp_path)] == [
        "20261201T100000-req_aaa1.json",
        "20261201T100001-req_aaa2.json",
    ]
    assert resolve("req_aaa2", tmp_path).name == "20261201T100001-req_aaa2.json"
    with pytest.raises(TraceError, match="2 traces match"):
        resolve("req_aaa", tmp_path)
    with pytest.raises(TraceError, match="no such trace"):
        resolve("req_b", tmp_path)
