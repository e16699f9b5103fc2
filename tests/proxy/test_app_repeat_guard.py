"""The repeat guard through the app: a stuck turn is answered by the proxy, the upstream not asked."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from ccproxy.repeat_guard import NOTICE_PREFIX
from fakes import LLAMA, FakeLlama, client_for, ok_completion, parse_sse

pytestmark = pytest.mark.app


def two_repeats_body(**overrides: Any) -> dict[str, Any]:
    tool_use = {"type": "tool_use", "id": "t", "name": "Edit", "input": {"file_path": "a.py"}}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Fix the bug."}]
    for i in range(3):
        messages.append({"role": "assistant", "content": [{**tool_use, "id": f"t{i}"}]})
        result = {"type": "tool_result", "tool_use_id": f"t{i}", "content": "no such file", "is_error": True}
        messages.append({"role": "user", "content": [result]})
    return {"model": "claude-x", "max_tokens": 1000, "messages": messages, **overrides}


@pytest.mark.parametrize("stream", [False, True])
async def test_the_app_answers_a_stuck_turn_itself_and_the_upstream_is_not_asked(stream: bool) -> None:
    upstream = FakeLlama(chat=ok_completion)
    async with client_for(upstream, replace(LLAMA, repeat_limit=3)) as client:
        r = await client.post("/v1/messages", json=two_repeats_body(stream=stream))
        fresh = await client.post(
            "/v1/messages", json=two_repeats_body(messages=[{"role": "user", "content": "hi"}])
        )
    assert r.status_code == 200
    assert fresh.status_code == 200
    assert len(upstream.bodies()) == 1  # only the fresh conversation went upstream
    if stream:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(r.text)
        assert [e["type"] for e in events] == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        text = events[2]["delta"]["text"]
        assert events[4]["delta"]["stop_reason"] == "end_turn"
    else:
        message = r.json()
        assert message["stop_reason"] == "end_turn"
        assert message["model"] == "claude-x"
        text = message["content"][0]["text"]
    assert text.startswith(NOTICE_PREFIX)
    assert "called Edit with the same arguments 3 times" in text
