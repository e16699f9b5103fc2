"""The real ccproxy in front of the real llama-server, request after request: llama-server closes
keep-alive connections after streamed answers, and none of that may reach the client (no 5xx, no 529,
no pre-flight count lost); stop sequences come back as the Anthropic API reports them."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import httpx
import pytest
from harness import Ccproxy
from llama_helpers import dump

pytestmark = pytest.mark.backend

ROUNDS = 200
SHORT = {
    "model": "claude-opus-4-8",
    "max_tokens": 6,
    "temperature": 0,
    "messages": [{"role": "user", "content": "Say hello."}],
}
COUNT = {"model": "claude-opus-4-8", "messages": [{"role": "user", "content": "How many tokens is this?"}]}


def sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.split("\n") if line.startswith("data: ")]


def metric(proxy: Ccproxy, name: str) -> float:
    text = httpx.get(proxy.url + "/metrics", timeout=10).text
    values = re.findall(rf"^{name}{{[^}}]*}} ([0-9.e+]+)$", text, re.MULTILINE)
    return sum(float(v) for v in values)


def test_back_to_back_requests_never_fail(proxy: Ccproxy) -> None:
    failures_before = metric(proxy, "ccproxy_preflight_count_failures_total")
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=proxy.url, timeout=120) as client:  # one keep-alive client, as Claude Code
        for i in range(ROUNDS):
            kind = ("stream", "json", "count", "stream", "json")[i % 5]
            if kind == "count":
                r = client.post("/v1/messages/count_tokens?beta=true", json=COUNT)
                assert r.status_code == 200, (i, r.text)
                assert r.json()["input_tokens"] > 0
            else:
                r = client.post("/v1/messages?beta=true", json={**SHORT, "stream": kind == "stream"})
                assert r.status_code == 200, (i, kind, r.text)
                if kind == "stream":
                    events = sse_events(r.text)
                    assert events[-1]["type"] == "message_stop", (i, dump(events[-3:]))
                    assert not [e for e in events if e["type"] == "error"], (i, dump(events))
                else:
                    assert r.json()["stop_reason"] in ("end_turn", "max_tokens"), (i, r.text)
            seen[kind] += 1
    retries = metric(proxy, "ccproxy_upstream_retries_total")
    failures = metric(proxy, "ccproxy_preflight_count_failures_total") - failures_before
    print(
        f"\nback to back: {dict(seen)}; retries on a new connection: {retries:g}; failed counts: {failures:g}"
    )
    assert sum(seen.values()) == ROUNDS
    assert failures == 0  # every pre-flight count reached llama-server: the context check always ran
    assert "token count failed" not in proxy.log.read_text()


@pytest.mark.parametrize("stream", [False, True])
def test_stop_sequence_reports_the_matched_string(proxy: Ccproxy, stream: bool) -> None:
    body = {
        "model": "claude-opus-4-8",
        "max_tokens": 60,
        "temperature": 0,
        "stream": stream,
        "stop_sequences": ["seven", "7"],
        "messages": [{"role": "user", "content": "Count from 1 to 10 in digits, separated by spaces."}],
    }
    r = httpx.post(proxy.url + "/v1/messages", json=body, timeout=120)
    assert r.status_code == 200, r.text
    if stream:
        events = sse_events(r.text)
        delta = next(e for e in events if e["type"] == "message_delta")["delta"]
        text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
        stop_reason, stop_sequence = delta["stop_reason"], delta["stop_sequence"]
    else:
        message = r.json()
        text = "".join(b.get("text", "") for b in message["content"])
        stop_reason, stop_sequence = message["stop_reason"], message["stop_sequence"]
    assert (stop_reason, stop_sequence) == ("stop_sequence", "7"), (text, r.text[-400:])
    assert "7" not in text
    assert "6" in text
