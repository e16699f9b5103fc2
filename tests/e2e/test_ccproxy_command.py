"""The installed `ccproxy` console script as a real process on loopback, over the scripted upstream:
real sockets, real timeouts, pings on the wall clock."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import CCPROXY, ccproxy, free_port, scripted_upstream
from harness.ccproxy import require_ccproxy

pytestmark = pytest.mark.e2e

TOOLS = [{"name": "Write", "input_schema": {"type": "object"}}]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Any]:
    """Start the scripted upstream with a script, then ccproxy with extra flags; yields the proxy URL."""
    with ExitStack() as started:

        def start(script: list[dict[str, Any]], *flags: str) -> str:
            upstream = started.enter_context(scripted_upstream(log=tmp_path / "upstream.log", script=script))
            proxy = started.enter_context(ccproxy(upstream.url + "/v1", *flags, log=tmp_path / "proxy.log"))
            return proxy.url

        yield start


def timed_events(url: str) -> list[tuple[float, dict[str, Any]]]:
    """POST a streamed request; every SSE event with its arrival time (s after the request)."""
    body = {
        "model": "claude-opus-4-8",
        "max_tokens": 100,
        "stream": True,
        "tools": TOOLS,
        "messages": [{"role": "user", "content": "hi"}],
    }
    out: list[tuple[float, dict[str, Any]]] = []
    start = time.monotonic()
    with httpx.stream("POST", f"{url}/v1/messages?beta=true", json=body, timeout=30) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                out.append((time.monotonic() - start, json.loads(line[6:])))
    return out


def test_pings_flow_while_the_upstream_prefills(stack: Any) -> None:
    url = stack([{"text": "finally here", "delay": 1.5}], "--ping-interval", "0.25", "--read-timeout", "10")
    events = timed_events(url)
    kinds = [e["type"] for _, e in events]
    assert kinds[0] == "message_start"
    assert events[0][0] < 1.0  # message_start goes out at once, long before the answer
    ping_times = [t for t, e in events if e["type"] == "ping"]
    assert len(ping_times) >= 3
    gaps = [b - a for a, b in itertools.pairwise(ping_times)]
    assert max(gaps) < 0.6
    assert len(ping_times) <= 1.5 / 0.25 + 2  # one ping per silent interval, never two back to back
    assert kinds[-2:] == ["message_delta", "message_stop"]
    text = "".join(e["delta"].get("text", "") for _, e in events if e["type"] == "content_block_delta")
    assert text == "finally here"


def test_the_installed_server_limits_heads_and_bodies(stack: Any) -> None:
    url = stack([{"text": "unused"}])
    port = int(url.rsplit(":", 1)[1])
    answers = []
    big_header = [b"x-big-%d: %s\r\n" % (i, b"a" * 16_000) for i in range(64)]  # 1 MB of headers
    declared = [b"content-length: 41943040\r\n\r\n"]  # a 40 MB body announced
    for lines in (big_header, declared):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: p\r\n")
            conn.settimeout(0.05)
            answer = b""
            for line in lines:  # stop sending once answered, as an HTTP client does
                conn.sendall(line)
                try:
                    answer = conn.recv(65_536)
                    break
                except TimeoutError:
                    continue
            conn.settimeout(10)
            answers.append(answer + b"".join(iter(lambda c=conn: c.recv(65_536), b"")))  # until closed
    assert answers[0].startswith(b"HTTP/1.1 431")
    assert answers[1].startswith(b"HTTP/1.1 413")
    assert b'"request_too_large"' in answers[1]


def test_upstream_read_timeout_ends_the_stream_with_an_error(stack: Any) -> None:
    url = stack([{"text": "too late", "delay": 4}], "--ping-interval", "0.25", "--read-timeout", "1")
    events = timed_events(url)
    kinds = [e["type"] for _, e in events]
    assert kinds[0] == "message_start"
    assert "ping" in kinds
    final_time, final = events[-1]
    assert final["type"] == "error"
    assert final["error"]["type"] == "api_error"
    assert "silent for more than 1 s" in final["error"]["message"]
    assert 0.9 < final_time < 3.5
    assert "message_stop" not in kinds


def test_client_disconnect_is_seen_by_the_real_server(stack: Any) -> None:
    url = stack([{"text": "never read", "delay": 8}], "--ping-interval", "0.2")
    body = {
        "model": "claude-opus-4-8",
        "max_tokens": 100,
        "stream": True,
        "tools": TOOLS,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with httpx.stream("POST", f"{url}/v1/messages", json=body, timeout=10) as response:
        first = next(response.iter_lines())
        assert first == "event: message_start"
    deadline = time.monotonic() + 2  # far less than the upstream's 8 s delay
    metrics = ""
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{url}/metrics").text
        if 'status="499"' in metrics:
            break
        time.sleep(0.1)
    assert 'ccproxy_requests_total{endpoint="messages",model="claude-opus-4-8",status="499"' in metrics


def test_anthropic_sdk_over_real_sockets(stack: Any, tmp_path: Path) -> None:
    import anthropic

    key_file = tmp_path / "key"
    key_file.write_text("upstream-secret\n")
    args = {"file_path": "/tmp/x.txt", "content": "a\nb\n"}
    url = stack(
        [{"tool_calls": [{"name": "Write", "arguments": args}], "chunks": 6}, {"text": "plain answer"}],
        "--token",
        "tok",
        "--upstream-key-file",
        str(key_file),
        "--model",
        "scripted",
    )
    client = anthropic.Anthropic(base_url=url, api_key="tok", max_retries=0)
    with client.messages.stream(
        model="claude-sonnet-5",
        max_tokens=500,
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "write it"}],
    ) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "tool_use"
    (tool,) = message.content
    assert tool.type == "tool_use"
    assert tool.input == args
    plain = client.messages.create(
        model="claude-sonnet-5",
        max_tokens=50,
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "and now?"}],
    )
    assert plain.content[0].type == "text"
    assert plain.content[0].text == "plain answer"
    count = client.messages.count_tokens(
        model="claude-sonnet-5", messages=[{"role": "user", "content": "hi"}]
    )
    assert count.input_tokens > 0
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=url, api_key="nope", max_retries=0).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )


def test_non_loopback_without_token_is_refused() -> None:
    require_ccproxy()
    run = subprocess.run(
        [str(CCPROXY), "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 2
    assert "refusing to listen on non-loopback" in run.stderr
