"""The app's per-session figures (GET /ccproxy/sessions/<id>) and the spend guard, over a scripted
upstream: what the status line reads, who may read it, and the 402 after a spent budget."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
import pytest
from ccproxy.app import create_app
from ccproxy.config import Settings
from fakes import BASE, LLAMA, TOKEN, FakeLlama, FakeUpstream, chunk, messages_body, parse_sse, sse

pytestmark = pytest.mark.app

SESSION = "0f6c3a52-6f1e-4c55-9b7c-2f4ab0e1d001"
OTHER = "7d2b9e10-1c3a-4f4e-8a1b-5e6f7a8b9c0d"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def llama_stream(request: httpx.Request) -> httpx.Response:
    """A streamed llama-server answer whose last chunk carries usage and the server's timings."""
    body = json.loads(request.content)
    assert body["stream"] is True
    parts = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hello"}),
        chunk({}, "stop"),
        {
            "choices": [],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 20},
            "timings": {"prompt_n": 100, "cache_n": 900, "predicted_n": 20, "predicted_per_second": 25.5},
        },
    )
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"".join(parts))


def client(upstream: FakeUpstream, settings: Settings, address: str = "172.18.0.5") -> httpx.AsyncClient:
    app = create_app(settings, transport=httpx.MockTransport(upstream))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://proxy.test", headers=AUTH)


async def turn(c: httpx.AsyncClient, session: str = SESSION, **body: Any) -> httpx.Response:
    headers = {"x-claude-code-session-id": session}
    return await c.post("/v1/messages?beta=true", json=messages_body(stream=True, **body), headers=headers)


async def test_status_figures_of_the_last_turn_with_the_backends_window() -> None:
    upstream = FakeLlama(n_ctx=8192, prompt_tokens=1000, chat=llama_stream)
    async with client(upstream, replace(LLAMA, token=TOKEN)) as c:
        r = await turn(c)
        assert r.status_code == 200
        assert parse_sse(r.text)[-1]["type"] == "message_stop"
        stats = await c.get(f"/ccproxy/sessions/{SESSION}")
    assert stats.status_code == 200, stats.text
    view = stats.json()
    assert view["window"] == 8192
    assert view["turns"] == 1
    last = view["last_turn"]
    assert (last["prompt_tokens"], last["cache_read_tokens"], last["output_tokens"]) == (1000, 900, 20)
    assert last["cache_share"] == 0.9
    assert last["tokens_per_second"] == 25.5
    assert last["context_used"] == round(1000 / 8192, 4)
    assert view["spend"]["session"]["tokens"] == 1020
    assert view["budget"] == {
        "session_tokens": None,
        "day_tokens": None,
        "session_usd": None,
        "day_usd": None,
    }


async def test_side_requests_are_spend_not_the_turn_shown() -> None:
    upstream = FakeLlama(n_ctx=8192, prompt_tokens=1000, chat=llama_stream)
    async with client(upstream, replace(LLAMA, token=TOKEN)) as c:
        assert (await turn(c)).status_code == 200
        assert (await turn(c, model="claude-haiku-4-5")).status_code == 200  # a side request
        view = (await c.get(f"/ccproxy/sessions/{SESSION}")).json()
    assert view["turns"] == 1
    assert view["spend"]["session"]["tokens"] == 2 * 1020


async def test_figures_are_the_callers_own_session_only() -> None:
    upstream = FakeLlama(chat=llama_stream)
    settings = replace(LLAMA, token=TOKEN)
    app = create_app(settings, transport=httpx.MockTransport(upstream))

    def at(address: str, headers: dict[str, str] = AUTH) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://proxy.test", headers=headers)

    async with at("172.18.0.5") as mine, at("172.18.0.6") as theirs, at("172.18.0.5", {}) as anonymous:
        assert (await turn(mine)).status_code == 200
        assert (await turn(theirs, session=OTHER)).status_code == 200
        assert (await mine.get(f"/ccproxy/sessions/{SESSION}")).status_code == 200
        assert (await theirs.get(f"/ccproxy/sessions/{OTHER}")).status_code == 200
        # another sandbox of the same stack (same token, another address) asking for my session
        refused = await theirs.get(f"/ccproxy/sessions/{SESSION}")
        unknown = await mine.get("/ccproxy/sessions/00000000-0000-0000-0000-000000000000")
        no_token = await anonymous.get(f"/ccproxy/sessions/{SESSION}")
    assert refused.status_code == unknown.status_code == 200
    assert refused.json() == unknown.json()  # no oracle: another's session looks like no session
    assert refused.json()["turns"] == 0
    assert refused.json()["last_turn"] is None
    assert refused.json()["spend"]["session"] == {"tokens": 0, "usd": 0.0, "unpriced_calls": 0}
    assert refused.json()["spend"]["day"]["tokens"] > 0  # the stack's day: the same for every session
    assert SESSION not in refused.text
    assert no_token.status_code == 401
    assert no_token.json()["error"]["type"] == "authentication_error"


async def test_session_token_budget_refuses_the_next_request_with_402_not_retried() -> None:
    upstream = FakeLlama(prompt_tokens=1000, chat=llama_stream)
    settings = replace(LLAMA, token=TOKEN, budget_session_tokens=1500)
    async with client(upstream, settings) as c:
        first = await turn(c)  # 1020 tokens: below the budget
        second = await turn(c)  # 2040: this one crosses it and completes
        third = await turn(c)
        other = await turn(c, session=OTHER)  # another session has its own budget
        view = (await c.get(f"/ccproxy/sessions/{SESSION}")).json()
    assert (first.status_code, second.status_code, other.status_code) == (200, 200, 200)
    assert third.status_code == 402
    assert third.headers["x-should-retry"] == "false"
    error = third.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "billing_error"
    assert "token budget of this session is spent (2,040 of 1,500 tokens)" in error["error"]["message"]
    assert len(upstream.bodies()) == 3  # the refused request never reached the upstream
    assert view["spend"]["session"]["tokens"] == 2040
    assert view["budget"]["session_tokens"] == 1500


async def test_day_cost_budget_counts_all_sessions_with_the_upstreams_reported_cost() -> None:
    def costed(request: httpx.Request) -> httpx.Response:
        parts = sse(
            chunk({"role": "assistant", "content": "ok"}),
            chunk({}, "stop"),
            {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 2, "cost": 0.03}},
        )
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"".join(parts))

    upstream = FakeUpstream(costed)
    settings = replace(BASE, token=TOKEN, budget_day_usd=0.05)
    async with client(upstream, settings) as c:
        assert (await turn(c)).status_code == 200
        assert (await turn(c, session=OTHER)).status_code == 200  # $0.06 spent today
        refused = await turn(c, session="a-third-session")
        view = (await c.get(f"/ccproxy/sessions/{SESSION}")).json()
    assert refused.status_code == 402
    assert "cost budget of today (UTC) is spent ($0.0600 of $0.05)" in refused.json()["error"]["message"]
    assert view["spend"]["day"]["usd"] == pytest.approx(0.06)
    assert view["spend"]["session"]["usd"] == pytest.approx(0.03)
    assert view["window"] is None  # a generic upstream tells no window


async def test_pass_through_is_guarded_and_priced_by_the_table() -> None:
    def anthropic(request: httpx.Request) -> httpx.Response:
        message = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1000, "output_tokens": 1000, "cache_read_input_tokens": 1_000_000},
        }
        return httpx.Response(200, json=message)

    upstream = FakeUpstream()
    upstream.routes["/v1/messages"] = anthropic
    settings = replace(BASE, token=TOKEN, upstream_kind="anthropic", budget_session_usd=0.3)
    headers = {"x-claude-code-session-id": SESSION}
    async with client(upstream, settings) as c:
        body = messages_body(model="claude-sonnet-4-5")
        first = await c.post("/v1/messages", json=body, headers=headers)
        second = await c.post("/v1/messages", json=body, headers=headers)
        view = (await c.get(f"/ccproxy/sessions/{SESSION}")).json()
    assert first.status_code == 200
    # 1000 x $3 + 1000 x $15 + 1M cached x $0.30 per million = $0.318
    assert view["spend"]["session"]["usd"] == pytest.approx(0.318)
    assert view["last_turn"]["cache_share"] == pytest.approx(1_000_000 / 1_001_000, abs=1e-4)
    assert second.status_code == 402
    assert second.json()["error"]["type"] == "billing_error"


async def test_traces_carry_the_session_the_cost_and_the_budget(tmp_path: Any) -> None:
    upstream = FakeLlama(prompt_tokens=1000, chat=llama_stream)
    settings = replace(LLAMA, token=TOKEN, trace_dir=tmp_path, budget_session_tokens=1500)
    async with client(upstream, settings) as c:
        assert (await turn(c)).status_code == 200
        assert (await turn(c)).status_code == 200
        assert (await turn(c)).status_code == 402
    records = sorted((json.loads(p.read_text()) for p in tmp_path.glob("*.json")), key=lambda r: r["time"])
    assert [r["status"] for r in records] == [200, 200, 402]
    assert {r["session"] for r in records} == {f"session:{SESSION}"}
    assert all(r["budget"]["session_tokens"] == 1500 for r in records)
    assert [r.get("cost_usd", "absent") for r in records] == [None, None, "absent"]  # no price: unknown
    assert records[2]["error"]["error"]["type"] == "billing_error"
