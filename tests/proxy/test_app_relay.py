"""Streams through the app (relay.py, responses.py): pings, waiting for the upstream's status, every
stream fault ending in an error event, fragments, client disconnects."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from ccproxy.app import create_app
from fakes import (
    BASE,
    TEXT_STREAM,
    FakeUpstream,
    call_asgi_until,
    chunk,
    completion,
    messages_body,
    sse,
    stream_events,
    streaming,
    types,
)

pytestmark = pytest.mark.app


async def test_silent_upstream_gets_pings_then_the_answer() -> None:
    answer, _ = streaming([0.4, *TEXT_STREAM])
    events = await stream_events(FakeUpstream(answer))
    assert types(events)[0] == "message_start"
    pings_before_content = types(events).index("content_block_start") - 1
    assert pings_before_content >= 3, types(events)
    assert set(types(events)[1 : 1 + pings_before_content]) == {"ping"}
    assert types(events)[-2:] == ["message_delta", "message_stop"]


async def test_stream_waits_for_upstream_status_then_commits() -> None:
    """Headers slower than stream_start_wait: the client already has message_start and pings."""

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.4)
        return httpx.Response(503, json={"error": {"message": "busy"}})

    events = await stream_events(FakeUpstream(slow))
    assert types(events)[0] == "message_start"
    assert "ping" in types(events)
    assert events[-1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": events[-1]["error"]["message"]},
    }
    assert "message_stop" not in types(events)


@pytest.mark.parametrize(
    ("parts", "error_type", "needle"),
    [
        # cut mid-stream by a transport error
        (
            [*TEXT_STREAM[:2], httpx.RemoteProtocolError("peer closed connection")],
            "overloaded_error",
            "connection failed",
        ),
        # the upstream goes silent longer than the read timeout
        ([*TEXT_STREAM[:2], httpx.ReadTimeout("timed out")], "api_error", "silent"),
        # the connection closes cleanly before finish_reason
        (TEXT_STREAM[:3], "api_error", "finish_reason"),
        # garbage instead of JSON
        ([*TEXT_STREAM[:2], b"data: {not json\n\n"], "api_error", "malformed"),
        # an error object inside the stream
        (
            [*TEXT_STREAM[:2], b'data: {"error": {"code": 503, "message": "slot unavailable"}}\n\n'],
            "overloaded_error",
            "slot unavailable",
        ),
        # a tool call whose JSON never completes
        (
            sse(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "Write", "arguments": '{"a": '},
                            }
                        ]
                    }
                ),
                chunk({}, "tool_calls"),
            ),
            "api_error",
            "Write",
        ),
    ],
)
async def test_stream_faults_end_with_an_error_event(parts: list[Any], error_type: str, needle: str) -> None:
    answer, stream = streaming(parts)
    events = await stream_events(FakeUpstream(answer))
    assert types(events)[0] == "message_start"
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["type"] == error_type
    assert needle in events[-1]["error"]["message"]
    assert "message_stop" not in types(events)
    assert "message_delta" not in types(events)
    # block indices stay well-formed up to the error
    started = [e["index"] for e in events if e["type"] == "content_block_start"]
    assert started == list(range(len(started)))
    await asyncio.wait_for(stream.closed.wait(), 1)


async def test_tool_arguments_stream_in_fragments() -> None:
    args = json.dumps({"file_path": "/w/hello.txt", "content": "hello\nworld\n"})
    fragments = [args[i : i + 7] for i in range(0, len(args), 7)]
    parts = sse(
        chunk({"role": "assistant", "content": None}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "Write", "arguments": ""},
                    }
                ]
            }
        ),
        *[chunk({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}) for f in fragments],
        chunk({}, "tool_calls"),
    )
    answer, _ = streaming(parts)
    events = await stream_events(FakeUpstream(answer))
    deltas = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"]
    assert len(deltas) >= len(fragments) // 2
    assert json.loads("".join(deltas)) == json.loads(args)
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


async def test_client_disconnect_cancels_the_upstream_request() -> None:
    answer, stream = streaming([*TEXT_STREAM[:2], 30.0, *TEXT_STREAM[2:]])
    upstream = FakeUpstream(answer)
    app = create_app(BASE, transport=httpx.MockTransport(upstream))
    received = await call_asgi_until(app, messages_body(stream=True), disconnect_when=lambda b: b"Hello" in b)
    assert b"Hello" in received
    await asyncio.wait_for(stream.closed.wait(), 2)
    assert stream.cancelled
    metrics = app.state.proxy.metrics.render().decode()
    assert 'status="499"' in metrics


async def test_client_gone_before_the_first_byte_still_cancels_the_upstream() -> None:
    answer, stream = streaming([30.0, *TEXT_STREAM])
    app = create_app(BASE, transport=httpx.MockTransport(FakeUpstream(answer)))
    with pytest.raises(OSError, match="reset"):
        await call_asgi_until(app, messages_body(stream=True), refuse_start=True)
    await asyncio.wait_for(stream.closed.wait(), 2)
    assert 'status="499"' in app.state.proxy.metrics.render().decode()


async def test_client_disconnect_cancels_a_non_streamed_upstream_request() -> None:
    cancelled = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return httpx.Response(200, json=completion({"role": "assistant", "content": "late"}))

    app = create_app(BASE, transport=httpx.MockTransport(FakeUpstream(slow)))
    received = await call_asgi_until(app, messages_body(), disconnect_after=0.2)
    assert received == b""
    assert cancelled.is_set()
    assert 'status="499"' in app.state.proxy.metrics.render().decode()


async def test_one_ping_per_silent_interval() -> None:
    answer, _ = streaming([0.52, *TEXT_STREAM])  # ~10 intervals of 0.05 s
    events = await stream_events(FakeUpstream(answer))
    pings = types(events).count("ping")
    assert 2 <= pings <= 11, types(events)  # fewer on a loaded machine, never two per interval
