"""The scripted OpenAI-compatible upstream (stdlib only) that the e2e, stack and bench suites drive."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "backends" / "scripted-upstream"))
import scripted_upstream as su  # noqa: E402

WRITE = {"type": "function", "function": {"name": "Write", "parameters": {"type": "object"}}}


@pytest.fixture
def server() -> Iterator[tuple[su.ScriptedServer, str]]:
    script = [
        {
            "tool_calls": [{"name": "Write", "arguments": {"file_path": "/w/a.txt", "content": "hi"}}],
            "chunks": 4,
        },
        {"text": "all done"},
        {"error": {"status": 503, "message": "loading model"}},
    ]
    srv = su.ScriptedServer(("127.0.0.1", 0), su.Script(su.validate_script(script)), quiet=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def chat(base: str, **body: Any) -> httpx.Response:
    payload = {"model": "m", "messages": [{"role": "user", "content": "go"}], **body}
    return httpx.post(f"{base}/v1/chat/completions", json=payload, headers={"authorization": "Bearer k"})


def stream_chunks(response: httpx.Response) -> list[dict[str, Any]]:
    lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_turns_in_order_side_requests_do_not_consume(server: tuple[su.ScriptedServer, str]) -> None:
    _, base = server
    first = chat(base, tools=[WRITE], stream=True, stream_options={"include_usage": True})
    assert first.headers["content-type"] == "text/event-stream"
    chunks = stream_chunks(first)
    fragments = [
        c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert len([f for f in fragments if f]) == 4
    assert json.loads("".join(fragments)) == {"file_path": "/w/a.txt", "content": "hi"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] > 0

    title = chat(base, tools=[], response_format={"type": "json_schema"})
    assert json.loads(title.json()["choices"][0]["message"]["content"]) == {"title": "Scripted session"}
    assert chat(base, tools=[WRITE], max_tokens=1).json()["choices"][0]["message"]["content"] == "OK"

    second = chat(base, tools=[WRITE])
    assert second.json()["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "all done"},
        "finish_reason": "stop",
    }
    third = chat(base, tools=[WRITE])
    assert third.status_code == 503
    assert third.json()["error"]["message"] == "loading model"
    assert chat(base, tools=[WRITE]).json()["choices"][0]["message"]["content"] == su.EXHAUSTED_TEXT


def test_requests_are_recorded_and_script_replaceable(server: tuple[su.ScriptedServer, str]) -> None:
    _, base = server
    chat(base, tools=[WRITE])
    recorded = httpx.get(f"{base}/_requests").json()
    assert len(recorded) == 1
    assert recorded[0]["path"] == "/v1/chat/completions"
    assert recorded[0]["headers"]["authorization"] == "Bearer k"
    assert recorded[0]["body"]["tools"] == [WRITE]
    assert httpx.delete(f"{base}/_requests").json() == {"cleared": True}
    assert httpx.get(f"{base}/_requests").json() == []
    assert httpx.post(f"{base}/_script", json=[{"text": "fresh"}]).status_code == 200
    assert chat(base, tools=[WRITE]).json()["choices"][0]["message"]["content"] == "fresh"
    assert httpx.post(f"{base}/_script", json=[{"nothing": 1}]).status_code == 400
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    assert httpx.get(f"{base}/v1/models").json()["data"][0]["id"] == "scripted"


def test_keep_alive_streams_reuse_one_connection(server: tuple[su.ScriptedServer, str]) -> None:
    _, base = server
    with httpx.Client() as client:
        for _ in range(3):
            r = client.post(
                f"{base}/v1/chat/completions", json={"model": "m", "messages": [], "stream": True}
            )
            assert stream_chunks(r)[-1]["choices"][0]["finish_reason"] == "stop"
        assert len(client._transport._pool.connections) == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("script", "needle"),
    [({"text": "x"}, "list"), ([{"foo": 1}], "turn 0"), ([{"tool_calls": [{"arguments": {}}]}], "name")],
)
def test_bad_scripts_are_rejected(script: object, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        su.validate_script(script)
