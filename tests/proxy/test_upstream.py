"""The upstream client: key injection, URLs, and transport failures turned into Anthropic errors."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx
import pytest
from ccproxy.errors import (
    OverloadedError,
    ProxyError,
    RateLimitError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from ccproxy.upstream import Upstream, is_stale_connection

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


# --- a pooled connection that was dead: sent once more ----------------------------------------------


def flaky(failures: list[Exception]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport that raises the given errors first, then answers 200."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if failures:
            raise failures.pop(0)
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler), seen


async def test_a_request_whose_connection_dropped_before_answering_is_sent_once_more() -> None:
    retries: list[None] = []
    transport, seen = flaky([httpx.RemoteProtocolError("Server disconnected without sending a response.")])
    upstream = Upstream(
        "http://up.test/v1",
        kind="openai",
        api_key=None,
        read_timeout=7,
        connect_timeout=1,
        transport=transport,
        on_retry=lambda: retries.append(None),
    )
    async with upstream.stream("/chat/completions", b'{"a":1}') as response:
        assert response.status_code == 200
    assert len(seen) == 2
    assert seen[0].content == seen[1].content == b'{"a":1}'
    assert len(retries) == 1


async def test_only_once_and_never_for_connect_failures_or_timeouts() -> None:
    stale = httpx.RemoteProtocolError("Server disconnected")
    transport, seen = flaky([stale, httpx.RemoteProtocolError("again")])
    with pytest.raises(OverloadedError, match="again"):
        await make(transport).send("/chat/completions", b"{}")
    assert len(seen) == 2
    for exc in (httpx.ConnectError("refused"), httpx.ReadTimeout("silent")):
        transport, seen = flaky([exc])
        with pytest.raises(ProxyError):
            await make(transport).send("/chat/completions", b"{}")
        assert len(seen) == 1


def connection_key() -> Any:
    """Stands in for aiohttp's ConnectionKey: the fields a ClientConnectorError's message reads."""
    return SimpleNamespace(host="up.test", port=80, is_ssl=False, ssl=True)


def mapped(cause: BaseException) -> httpx.HTTPError:
    """What httpx-aiohttp raises for an aiohttp error (aiohttp's connection errors -> ConnectTimeout)."""
    exc = httpx.ConnectTimeout(str(cause))
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "stale"),
    [
        (mapped(aiohttp.ServerDisconnectedError()), True),
        (mapped(aiohttp.ClientOSError(104, "Connection reset by peer")), True),
        (mapped(aiohttp.ClientConnectorError(connection_key(), OSError(111, "refused"))), False),
        (mapped(aiohttp.ServerTimeoutError("timeout")), False),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
        (httpx.ConnectError("refused"), False),
        (httpx.ReadTimeout("silent"), False),
    ],
)
def test_is_stale_connection(exc: httpx.HTTPError, stale: bool) -> None:
    assert is_stale_connection(exc) is stale


# --- credentials from the upstream URL, and repaired JSON answers -------------------------------------


@pytest.mark.parametrize(
    ("kind", "key", "expected"),
    [
        ("openai", None, {"authorization": "Basic dXNlcjpwQHNz"}),
        ("openai", "k-1", {"authorization": "Bearer k-1"}),
        ("anthropic", "k-1", {"authorization": "Basic dXNlcjpwQHNz", "x-api-key": "k-1"}),
    ],
)
async def test_url_credentials_travel_as_basic_auth(
    kind: str, key: str | None, expected: dict[str, str]
) -> None:
    transport, seen = flaky([])
    upstream = Upstream(
        "http://up.test/v1",
        kind=kind,
        api_key=key,
        read_timeout=7,
        connect_timeout=1,
        transport=transport,
        credentials=("user", "p@ss"),
    )
    await upstream.send("/x", b"{}", headers={"authorization": "from the client"})
    got = {k: v for k, v in seen[0].headers.items() if k in ("authorization", "x-api-key")}
    assert got == expected
    assert "@" not in str(seen[0].url)


async def test_json_answers_are_repaired() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"text": "a\\ud800 \xff \\ud83d\\ude00"}')

    assert await make(httpx.MockTransport(handler)).post_json("/x", {}) == {
        "text": "a\ufffd \ufffd \U0001f600"
    }
