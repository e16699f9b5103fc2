"""The upstream client: key injection, URLs, and transport failures turned into Anthropic errors."""

from __future__ import annotations

import httpx
import pytest
from ccproxy.errors import (
    OverloadedError,
    ProxyError,
    RateLimitError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from ccproxy.upstream import Upstream

pytestmark = pytest.mark.app


def make(handler: httpx.MockTransport, *, kind: str = "openai", key: str | None = "k-1") -> Upstream:
    return Upstream(
        "http://up.test:8080/v1/",
        kind=kind,
        api_key=key,
        read_timeout=7,
        connect_timeout=1,
        transport=handler,
    )


async def test_urls_and_key_injection() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    openai = make(httpx.MockTransport(handler))
    assert openai.root_url == "http://up.test:8080"
    assert await openai.post_json("/chat/completions", {"a": 1}) == {"ok": True}
    assert await openai.post_json("/tokenize", {"content": "x"}, root=True) == {"ok": True}
    anthropic = make(httpx.MockTransport(handler), kind="anthropic")
    await anthropic.send("/messages", b"{}", headers={"anthropic-version": "2023-06-01"}, query="beta=true")
    keyless = make(httpx.MockTransport(handler), key=None)
    await keyless.get("/models")
    assert [str(r.url) for r in seen] == [
        "http://up.test:8080/v1/chat/completions",
        "http://up.test:8080/tokenize",
        "http://up.test:8080/v1/messages?beta=true",
        "http://up.test:8080/v1/models",
    ]
    assert seen[0].headers["authorization"] == "Bearer k-1"
    assert "x-api-key" not in seen[0].headers
    assert seen[2].headers["x-api-key"] == "k-1"
    assert "authorization" not in seen[2].headers
    assert seen[2].headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen[3].headers


@pytest.mark.parametrize(
    ("exc", "error", "needle"),
    [
        (httpx.ConnectError("refused"), OverloadedError, "unreachable"),
        (httpx.ConnectTimeout("slow"), OverloadedError, "unreachable"),
        (httpx.PoolTimeout("pool"), OverloadedError, "unreachable"),
        (httpx.ReadTimeout("silent"), UpstreamTimeoutError, "silent for more than 7 s"),
        (httpx.RemoteProtocolError("bye"), OverloadedError, "connection failed"),
        (httpx.ReadError("reset"), OverloadedError, "connection failed"),
    ],
)
async def test_transport_failures(exc: Exception, error: type[ProxyError], needle: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    upstream = make(httpx.MockTransport(handler))
    with pytest.raises(error, match=needle):
        await upstream.send("/chat/completions", b"{}")
    with pytest.raises(error, match=needle):
        async with upstream.stream("/chat/completions", b"{}"):
            pass
    with pytest.raises(error, match=needle):
        await upstream.get_json("/models")


async def test_error_status_and_bad_json() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/busy"):
            return httpx.Response(429, headers={"retry-after": "3"}, json={"error": {"message": "busy"}})
        return httpx.Response(200, content=b"<html>")

    upstream = make(httpx.MockTransport(handler))
    with pytest.raises(RateLimitError) as info:
        async with upstream.stream("/busy", b"{}"):
            pass
    assert info.value.retry_after == 3
    unchecked = await upstream.send("/busy", b"{}", check=False)
    assert unchecked.status_code == 429
    with pytest.raises(UpstreamProtocolError, match="not JSON"):
        await upstream.post_json("/x", {})
