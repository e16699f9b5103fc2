"""llama-server features through the app (llama_server.py, slots.py, the plan's slot, count and clamp
stages): slots, side requests, exact counts, the context window, prompt progress, recorded sessions."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import (
    BASE,
    LLAMA,
    TEXT_STREAM,
    TOOLS,
    FakeLlama,
    FakeUpstream,
    chunk,
    client_for,
    completion,
    messages_body,
    ok_completion,
    parse_sse,
    recorded,
    sse,
    stop_word_completion,
    stream_events,
    streaming,
    types,
)

pytestmark = pytest.mark.app


async def test_slot_affinity_and_side_requests() -> None:
    upstream = FakeLlama(chat=ok_completion)
    title = messages_body(
        tools=[],
        output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
    )
    async with client_for(upstream, LLAMA) as client:
        for session, body in [
            ("s-a", messages_body()),
            ("s-b", messages_body()),
            ("s-a", messages_body()),
            ("s-a", title),
            ("s-b", messages_body(model="claude-haiku-4-5-20251001")),
            ("s-c", messages_body()),
        ]:
            r = await client.post("/v1/messages", json=body, headers={"X-Claude-Code-Session-Id": session})
            assert r.status_code == 200, r.text
        no_header = await client.post("/v1/messages", json=messages_body(metadata={"user_id": '{"u": 1}'}))
        assert no_header.status_code == 200
    slots = [b["id_slot"] for b in upstream.bodies()]
    # 3 slots: 0 and 1 for sessions, 2 for side requests; s-a keeps its slot, s-c takes the less used one
    assert slots[:5] == [0, 1, 0, 2, 2]
    assert slots[5] in (0, 1)
    assert all(b.get("cache_prompt") is True for b in upstream.bodies())


async def test_llama_streams_ask_for_prompt_progress_and_log_it(caplog: pytest.LogCaptureFixture) -> None:
    """While llama-server prefills it sends `prompt_progress` chunks (asked with return_progress): the
    proxy logs them and the client's stream is the same as without them."""
    progress = [
        chunk({"role": "assistant", "content": None}, prompt_progress=p)
        for p in (
            {"total": 18000, "cache": 0, "processed": 2048, "time_ms": 20000},
            {"total": 18000, "cache": 0, "processed": 18000, "time_ms": 180000},
        )
    ]
    streamed_answer = b"".join(sse(*progress, done=False) + TEXT_STREAM)

    def answer(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("stream"):
            return httpx.Response(200, content=streamed_answer)
        return ok_completion(request)

    upstream = FakeLlama(chat=answer)
    plain = FakeLlama(chat=httpx.Response(200, content=b"".join(TEXT_STREAM)))
    with caplog.at_level("INFO", logger="ccproxy"):
        async with client_for(upstream, LLAMA) as client:
            r = await client.post("/v1/messages", json=messages_body(stream=True))
            await client.post("/v1/messages", json=messages_body())
    async with client_for(plain, LLAMA) as client:
        without = await client.post("/v1/messages", json=messages_body(stream=True))
    strip = [{k: v for k, v in e.items() if k != "message"} for e in parse_sse(r.text)]
    assert strip == [{k: v for k, v in e.items() if k != "message"} for e in parse_sse(without.text)]
    streamed, complete = upstream.bodies()
    assert streamed["return_progress"] is True
    assert "return_progress" not in complete
    lines = [rec.getMessage() for rec in caplog.records if " prefill " in rec.getMessage()]
    assert [line.split(" ", 1)[1] for line in lines] == [
        "prefill 2048/18000 tokens (0 cached) 20.0 s, 102 tok/s",
        "prefill 18000/18000 tokens (0 cached) 180.0 s, 100 tok/s",
    ]


async def test_side_model_goes_to_the_side_model_without_a_slot() -> None:
    upstream = FakeLlama(chat=ok_completion)
    settings = replace(LLAMA, model="big", side_model="small")
    async with client_for(upstream, settings) as client:
        await client.post("/v1/messages", json=messages_body(max_tokens=1))
        await client.post("/v1/messages", json=messages_body())
    side, main = upstream.bodies()
    assert side["model"] == "small"
    assert "id_slot" not in side
    assert len(upstream.bodies("/apply-template")) == 1  # only the main request is checked here
    assert main["model"] == "big"
    assert main["id_slot"] == 0


async def test_max_tokens_clamped_to_what_the_context_leaves() -> None:
    upstream = FakeLlama(chat=ok_completion, n_ctx=4096, prompt_tokens=1000)
    async with client_for(upstream, LLAMA) as client:
        r = await client.post("/v1/messages", json=messages_body(max_tokens=64000))
        small = await client.post("/v1/messages", json=messages_body(max_tokens=50))
    assert r.status_code == small.status_code == 200
    assert [b["max_tokens"] for b in upstream.bodies()] == [3096, 50]
    usage = r.json()["usage"]
    assert usage["cache_read_input_tokens"] == 90
    (rendered, *_) = upstream.bodies("/apply-template")
    assert rendered["messages"][-1] == {"role": "user", "content": "hi"}
    assert "id_slot" not in rendered


@pytest.mark.parametrize("stream", [False, True])
async def test_prompt_too_long_is_rejected_before_the_backend(stream: bool) -> None:
    upstream = FakeLlama(chat=ok_completion, n_ctx=4096, prompt_tokens=5000)
    async with client_for(upstream, LLAMA) as client:
        r = await client.post("/v1/messages", json=messages_body(stream=stream))
    assert r.status_code == 400
    assert r.json()["error"] == {
        "type": "invalid_request_error",
        "message": "prompt is too long: 5000 tokens > 4096 maximum",
    }
    assert upstream.bodies() == []


async def test_stream_reports_exact_input_tokens_and_cache_reads() -> None:
    parts = sse(
        chunk({"content": "ok"}),
        chunk({}, "stop"),
        {
            "choices": [],
            "usage": {"prompt_tokens": 300, "completion_tokens": 1},
            "timings": {"cache_n": 280, "prompt_n": 20},
        },
    )
    answer, _ = streaming(parts)
    upstream = FakeLlama(chat=answer, prompt_tokens=300)
    events = await stream_events(upstream, LLAMA)
    assert events[0]["message"]["usage"]["input_tokens"] == 300
    assert events[-2]["usage"]["cache_read_input_tokens"] == 280


async def test_requests_for_one_slot_queue_instead_of_failing() -> None:
    upstream = FakeLlama(n_slots=2)

    async def slow(request: httpx.Request) -> httpx.Response:
        slot = json.loads(request.content)["id_slot"]
        upstream.running += 1
        upstream.max_running[slot] = max(upstream.max_running.get(slot, 0), upstream.running)
        await asyncio.sleep(0.1)
        upstream.running -= 1
        if json.loads(request.content).get("stream"):
            return httpx.Response(200, content=b"".join(TEXT_STREAM))
        return ok_completion(request)

    upstream.chat = slow
    async with client_for(upstream, LLAMA) as client:
        results = await asyncio.gather(
            *[
                client.post(
                    "/v1/messages", json=messages_body(stream=s), headers={"X-Claude-Code-Session-Id": "one"}
                )
                for s in (False, True, False, True)
            ]
        )
    assert [r.status_code for r in results] == [200] * 4
    assert upstream.max_running == {0: 1}
    streamed = parse_sse(results[1].text)
    assert types(streamed)[-1] == "message_stop"


async def test_behind_a_pool_requests_carry_the_session_and_do_not_queue() -> None:
    """Two sessions on slot 0 of different servers run at once: the proxy's queue per slot number would
    serialise them; each request names its session for the balancer's hash."""
    upstream = FakeLlama(n_slots=2)
    started = asyncio.Event()
    seen: list[tuple[str | None, int]] = []

    async def both_at_once(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers.get("x-claude-code-session-id"), json.loads(request.content)["id_slot"]))
        if len(seen) == 2:
            started.set()
        await asyncio.wait_for(started.wait(), 5)  # a proxy-side queue would time this out
        return ok_completion(request)

    upstream.chat = both_at_once
    async with client_for(upstream, replace(LLAMA, upstream_pool="on")) as client:
        results = await asyncio.gather(
            *[
                client.post("/v1/messages", json=messages_body(), headers={"X-Claude-Code-Session-Id": s})
                for s in ("one", "two")
            ]
        )
    assert [r.status_code for r in results] == [200, 200]
    assert sorted(seen) == [("session:one", 0), ("session:two", 0)]


async def test_count_tokens_from_llama_server_tokenizer() -> None:
    upstream = FakeLlama(prompt_tokens=1234)
    async with client_for(upstream, LLAMA) as client:
        r = await client.post(
            "/v1/messages/count_tokens?beta=true",
            json={
                "model": "claude-opus-4-8",
                "system": "be brief",
                "messages": [{"role": "user", "content": "hi"}],
                "tools": TOOLS,
            },
        )
    assert r.status_code == 200
    assert r.json() == {"input_tokens": 1234}
    (rendered,) = upstream.bodies("/apply-template")
    assert rendered["messages"][0] == {"role": "system", "content": "be brief"}
    assert rendered["tools"][0]["function"]["name"] == "Write"
    (tokenize,) = upstream.bodies("/tokenize")
    assert tokenize == {"content": "<rendered>", "add_special": True, "parse_special": True}


async def test_count_tokens_offline_when_the_backend_cannot() -> None:
    upstream = FakeUpstream()
    async with client_for(upstream) as client:
        short = await client.post(
            "/v1/messages/count_tokens",
            json={"model": "m", "messages": [{"role": "user", "content": "hello"}]},
        )
        long = await client.post(
            "/v1/messages/count_tokens",
            json={"model": "m", "messages": [{"role": "user", "content": "hello world " * 500}]},
        )
        bad = await client.post("/v1/messages/count_tokens", json={"model": "m"})
    assert short.status_code == long.status_code == 200
    assert 0 < short.json()["input_tokens"] < 20
    assert 900 < long.json()["input_tokens"] < 1200
    assert bad.status_code == 400
    assert "messages" in bad.json()["error"]["message"]
    assert upstream.requests == []


async def test_llama_features_degrade_when_props_is_missing() -> None:
    upstream = FakeUpstream(ok_completion)  # no /props, /slots, /tokenize: answers 404
    async with client_for(upstream, LLAMA) as client:
        for _ in range(3):
            r = await client.post("/v1/messages", json=messages_body())
            assert r.status_code == 200
    assert [b.get("id_slot") for b in upstream.bodies()] == [None, None, None]
    assert len([r for r in upstream.requests if r.url.path == "/props"]) == 1  # not retried per request


async def test_llama_health_reports_the_context_window() -> None:
    upstream = FakeLlama(n_ctx=32768, n_slots=2)
    async with client_for(upstream, LLAMA) as client:
        r = await client.get("/health")
    assert r.status_code == 200
    assert r.json()["backend"] == {"n_ctx": 32768, "slots": 2}


async def test_recorded_claude_code_session_keeps_slot_and_prefix() -> None:
    """Real CLI requests (title side request + two turns): one slot per session, the side request on
    the side slot, and turn 2's upstream bytes extend turn 1's up to the end of its messages."""
    upstream = FakeLlama(chat=lambda r: httpx.Response(200, content=b"".join(TEXT_STREAM)))
    async with client_for(upstream, LLAMA) as client:
        for name in (
            "interactive/02-side.json",
            "interactive/03-turn1.json",
            "interactive/04-turn2-tool-result.json",
        ):
            headers, body = recorded(name)
            r = await client.post("/v1/messages?beta=true", json=body, headers=headers)
            assert r.status_code == 200, r.text
            assert parse_sse(r.text)[-1]["type"] == "message_stop"
    sent = [r.content for r in upstream.requests if r.url.path == "/v1/chat/completions"]
    side, turn1, turn2 = (json.loads(b) for b in sent)
    assert (side["id_slot"], turn1["id_slot"], turn2["id_slot"]) == (2, 0, 0)
    assert "tools" not in side
    assert side["response_format"]["type"] == "json_schema"
    cut = sent[1].index(b'],"cache_prompt":')
    assert sent[2].startswith(sent[1][:cut])
    assert turn2["messages"][-1]["role"] == "tool"


async def test_side_requests_max_tokens_clamped() -> None:
    upstream = FakeUpstream(chat=ok_completion)
    title = messages_body(
        tools=[], output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}}
    )
    async with client_for(upstream, BASE) as client:
        await client.post("/v1/messages", json=title)
        await client.post("/v1/messages", json=messages_body(model="claude-haiku-4-5"))
        await client.post("/v1/messages", json=messages_body())
    async with client_for(upstream, replace(BASE, side_max_tokens=None)) as client:
        await client.post("/v1/messages", json=title)
    assert [b["max_tokens"] for b in upstream.bodies()] == [256, 256, 64000, 64000]


async def test_a_failing_preflight_count_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    upstream = FakeLlama(chat=ok_completion)
    upstream.routes["/apply-template"] = lambda r: httpx.Response(500, json={"error": {"message": "boom"}})
    async with client_for(upstream, LLAMA) as client:
        r = await client.post("/v1/messages", json=messages_body())
        metrics = (await client.get("/metrics")).text
    assert r.status_code == 200
    assert "ccproxy_preflight_count_failures_total" in metrics
    assert 'ccproxy_preflight_count_failures_total{upstream="http://upstream.test/v1"} 1.0' in metrics
    assert "token count failed" in caplog.text


@pytest.mark.parametrize("stream", [False, True])
async def test_stop_sequence_reported_as_the_api_does(stream: bool) -> None:
    upstream = FakeLlama(chat=stop_word_completion)
    async with client_for(upstream, LLAMA) as client:
        r = await client.post(
            "/v1/messages", json=messages_body(stream=stream, stop_sequences=["NEVER", "END"])
        )
        plain = await client.post("/v1/messages", json=messages_body(stream=stream))
    if stream:
        delta = next(e for e in parse_sse(r.text) if e["type"] == "message_delta")["delta"]
        plain_delta = next(e for e in parse_sse(plain.text) if e["type"] == "message_delta")["delta"]
    else:
        delta, plain_delta = r.json(), plain.json()
    assert (delta["stop_reason"], delta["stop_sequence"]) == ("stop_sequence", "END")
    assert (plain_delta["stop_reason"], plain_delta["stop_sequence"]) == ("end_turn", None)
    asked, not_asked = upstream.bodies()
    assert asked["verbose"] is True
    assert asked["stop"] == ["NEVER", "END"]
    assert "verbose" not in not_asked


RECORDED_DAY1 = Path(__file__).resolve().parents[1] / "fixtures/claude_code/sessions/day1/01-turn1.json"


async def test_lean_prompt_profile_reaches_the_upstream_and_the_count() -> None:
    body = json.loads(RECORDED_DAY1.read_text())["body"]
    body["stream"] = False
    answer = completion({"role": "assistant", "content": "ok"})
    sent: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for profile in ("full", "lean"):
        upstream = FakeUpstream(httpx.Response(200, json=answer))
        settings = replace(BASE, prompt_profile=profile)  # type: ignore[arg-type]
        async with client_for(upstream, settings) as client:
            r = await client.post("/v1/messages", json=body)
            assert r.status_code == 200, r.text
            count_body = {k: body[k] for k in ("model", "messages", "system", "tools")}
            c = await client.post("/v1/messages/count_tokens", json=count_body)
            assert c.status_code == 200, c.text
        (sent[profile],) = upstream.bodies()
        counts[profile] = c.json()["input_tokens"]
    full, lean = sent["full"], sent["lean"]
    assert [t["function"]["parameters"] for t in lean["tools"]] == [
        t["function"]["parameters"] for t in full["tools"]
    ]
    assert len(json.dumps(lean)) < len(json.dumps(full))
    assert "# Memory" in full["messages"][0]["content"]
    assert "# Memory" not in lean["messages"][0]["content"]
    assert counts["lean"] < counts["full"]
