"""The only module that talks HTTP to the upstream.

`Upstream` sends `httpx.Request`s through one pooled httpx transport, which is injectable (tests pass
`httpx.MockTransport`). It calls the transport directly: `httpx.AsyncClient`'s layers (cookie jar,
auth and redirect loops, event hooks) have nothing to do here and cost ~5% of a streamed request's
CPU (profiled). It injects the upstream key (and credentials from the upstream URL, as Basic auth),
applies the proxy's own timeouts, and turns transport failures into Anthropic-shaped `ProxyError`s:

    httpx.ConnectError / ConnectTimeout / PoolTimeout -> OverloadedError (529, "upstream unreachable")
    httpx.ReadTimeout                                  -> UpstreamTimeoutError (504, "upstream silent ...")
    httpx.RemoteProtocolError / ReadError / ...        -> OverloadedError (529, "connection failed")
    a non-2xx status                                   -> errors.from_upstream_status(...)

A pooled keep-alive connection can be dead by the time it is reused (llama-server closes connections
after streamed answers and after 5 s idle; the pool notices only when the close has been read). A
request whose connection drops before any byte of the answer arrived has generated nothing: it is sent
once more, on a connection opened for it (`is_stale_connection`). Nothing is ever retried after the
answer started.

No other module imports httpx: answers leave this module as a `Reply` (status, headers, bytes) or a
`Body` (the bytes of a streamed answer as they arrive), and every failure, while sending or while
reading, as a `ProxyError`.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from ccproxy.errors import (
    OverloadedError,
    ProxyError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
    from_upstream_status,
)
from ccproxy.text_repair import decode_text, may_hold_surrogates, repair_strings

log = logging.getLogger("ccproxy")
ERROR_BODY_LIMIT = 64 * 1024

Transport: TypeAlias = httpx.AsyncBaseTransport
"""What replaces the network in tests (`httpx.MockTransport`)."""


@dataclass(frozen=True)
class Reply:
    """A whole upstream answer, whatever its status."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def error(self) -> ProxyError:
        """The error this (non-2xx) answer stands for."""
        return from_upstream_status(self.status_code, self.text[:ERROR_BODY_LIMIT], self.headers)


class Body:
    """An open, streamed 2xx answer: `async for data in body` yields its bytes as they arrive; a read
    that fails raises the `ProxyError` it stands for."""

    def __init__(self, response: httpx.Response, read_timeout: float) -> None:
        self._response = response
        self._read_timeout = read_timeout
        self.status_code = response.status_code

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._response.aiter_bytes():
                yield data
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._read_timeout) from exc

    async def json(self, *, what: str) -> Any:
        """The whole answer as JSON (`decode_json`)."""
        return decode_json(b"".join([data async for data in self]), what=what)


class Upstream:
    def __init__(
        self,
        base_url: str,
        *,
        kind: str,
        api_key: str | None,
        read_timeout: float,
        connect_timeout: float,
        transport: Transport | None = None,
        credentials: tuple[str, str] | None = None,
        on_retry: Callable[[], None] | None = None,
        auth: str = "x-api-key",
        betas: tuple[str, ...] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.kind = kind
        self.read_timeout = read_timeout
        self._api_key = api_key
        self._bearer = auth == "bearer"
        self._betas = betas if kind == "anthropic" else ()
        self._basic = _basic_auth(credentials)
        if self._basic and api_key and kind == "openai":
            log.warning("upstream URL credentials not used: the upstream key takes the Authorization header")
        self._on_retry = on_retry
        self._timeout = httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=None
        )
        self._timeout_extension = self._timeout.as_dict()
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30)
        # httpx's API (and its MockTransport seam for tests) over aiohttp's connection pool: per streamed
        # request it costs about half the CPU of httpx's own httpcore transport (bench/README.md).
        self._transport = transport or AiohttpTransport(limits=limits, trust_env=False)
        # retries after a dead pooled connection: a connection of their own (an injected transport in tests)
        self._fresh = transport or AiohttpTransport(client=_fresh_session, trust_env=False)
        self._urls: dict[str, httpx.URL] = {}
        self._base_headers = {"accept-encoding": "identity", "user-agent": "ccproxy", **self.auth_headers()}

    @property
    def root_url(self) -> str:
        """The server root (llama-server's /props, /slots, /tokenize live there, not under /v1)."""
        base = self.base_url
        return base[: -len("/v1")] if base.endswith("/v1") else base

    def auth_headers(self) -> dict[str, str]:
        headers = {"authorization": self._basic} if self._basic else {}
        if not self._api_key:
            return headers
        if self.kind == "anthropic" and not self._bearer:
            return {**headers, "x-api-key": self._api_key}
        return {"authorization": f"Bearer {self._api_key}"}

    async def aclose(self) -> None:
        await self._transport.aclose()
        if self._fresh is not self._transport:
            await self._fresh.aclose()

    async def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Send through the transport (what `AsyncClient.send` does, minus the layers not used); once
        more on a new connection when the pooled one was dead."""
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.HTTPError as exc:
            if not is_stale_connection(exc):
                raise
            log.info("upstream connection closed before an answer (%s): sent again on a new connection", exc)
            if self._on_retry is not None:
                self._on_retry()
            response = await self._fresh.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    def _url(self, url: str) -> httpx.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = httpx.URL(url)
            if len(self._urls) < 256:
                self._urls[url] = parsed
        return parsed

    def _request(
        self, method: str, url: str, *, content: bytes | None, headers: Mapping[str, str] | None
    ) -> httpx.Request:
        """Build the request directly (parsed URLs cached): `client.build_request` costs more than the
        rest of a streamed request's client side."""
        all_headers = dict(self._base_headers)
        if content is not None:
            all_headers["content-type"] = "application/json"
        if headers:
            all_headers.update(headers)
            all_headers.update(self.auth_headers())  # nothing from the caller overrides the key
        if self._betas:
            all_headers["anthropic-beta"] = with_betas(all_headers.get("anthropic-beta"), self._betas)
        request = httpx.Request(method, self._url(url), headers=all_headers, content=content)
        request.extensions["timeout"] = self._timeout_extension
        return request

    async def send(
        self,
        path: str,
        content: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        root: bool = False,
        query: str = "",
        check: bool = True,
    ) -> Reply:
        """POST and read the whole answer. Raises ProxyError for transport failures and (when `check`)
        for a non-2xx status."""
        url = (self.root_url if root else self.base_url) + path + (f"?{query}" if query else "")
        request = self._request("POST", url, content=content, headers=headers)
        reply = await self._reply(request)
        if check and reply.status_code >= 300:
            raise reply.error()
        return reply

    async def _reply(self, request: httpx.Request) -> Reply:
        try:
            response = await self._send(request)
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.read_timeout) from exc
        return Reply(response.status_code, response.headers, response.content)

    @asynccontextmanager
    async def stream(
        self,
        path: str,
        content: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        query: str = "",
        root: bool = False,
    ) -> AsyncIterator[Body]:
        """POST with a streamed answer; yields its open 2xx `Body`. Raises ProxyError otherwise."""
        url = (self.root_url if root else self.base_url) + path + (f"?{query}" if query else "")
        request = self._request("POST", url, content=content, headers=headers)
        try:
            response = await self._send(request, stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.read_timeout) from exc
        try:
            if response.status_code >= 300:
                try:
                    body = (await response.aread())[:ERROR_BODY_LIMIT].decode("utf-8", "replace")
                except httpx.HTTPError:
                    body = ""
                raise from_upstream_status(response.status_code, body, response.headers)
            yield Body(response, self.read_timeout)
        finally:
            await response.aclose()

    async def get(self, path: str, *, root: bool = False, deadline: float | None = None) -> Reply:
        """GET without raising on status (used by probes). Raises ProxyError on transport failure."""
        url = (self.root_url if root else self.base_url) + path
        request = self._request("GET", url, content=None, headers=None)
        if deadline is not None:
            request.extensions["timeout"] = httpx.Timeout(deadline).as_dict()
        return await self._reply(request)

    async def get_json(self, path: str, *, root: bool = False, deadline: float | None = None) -> Any:
        reply = await self.get(path, root=root, deadline=deadline)
        if reply.status_code >= 300:
            raise reply.error()
        return decode_json(reply.content, what=f"GET {path}")

    async def post_json(self, path: str, payload: object, *, root: bool = False) -> Any:
        response = await self.send(path, json.dumps(payload).encode(), root=root)
        return decode_json(response.content, what=f"POST {path}")


def decode_json(data: bytes, *, what: str) -> Any:
    """An upstream JSON answer, its text repaired (bytes that are not UTF-8, lone surrogates: U+FFFD)."""
    try:
        value = json.loads(decode_text(data))
    except (ValueError, RecursionError) as exc:
        raise UpstreamProtocolError(f"upstream {what}: answer is not JSON: {exc}") from exc
    return repair_strings(value) if may_hold_surrogates(data) else value


def is_stale_connection(exc: httpx.HTTPError) -> bool:
    """Whether a send failed because the connection was closed or reset before any byte of the answer
    (never because it could not connect): over aiohttp a `ServerDisconnectedError` or a reset, which
    httpx-aiohttp maps to `ConnectTimeout`; over httpx's own transport a `RemoteProtocolError`."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientConnectorError):
        return False
    if isinstance(cause, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return True
    return isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError)


def _fresh_session() -> aiohttp.ClientSession:
    """A session that opens a new connection for every request (and closes it after)."""
    ssl_context = httpx.create_ssl_context(trust_env=False)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, ssl=ssl_context))


def with_betas(header: str | None, betas: tuple[str, ...]) -> str:
    """The client's `anthropic-beta` list with ``betas`` appended (each once, order kept)."""
    names = [b.strip() for b in (header or "").split(",") if b.strip()]
    return ",".join(names + [b for b in betas if b not in names])


def _basic_auth(credentials: tuple[str, str] | None) -> str | None:
    if credentials is None:
        return None
    token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode("ascii")
    return f"Basic {token}"


def transport_error(exc: httpx.HTTPError, read_timeout: float) -> ProxyError:
    match exc:
        case httpx.ReadTimeout():
            return UpstreamTimeoutError(f"upstream silent for more than {read_timeout:g} s (read timeout)")
        # The transport's own message says what happened ("Cannot connect to host ... [Connect call
        # failed ...]"); the httpx class name it was mapped to is not always exact over aiohttp.
        case httpx.ConnectError() | httpx.ConnectTimeout() | httpx.PoolTimeout():
            return OverloadedError(f"upstream unreachable: {exc or type(exc).__name__}")
        case _:
            return OverloadedError(f"upstream connection failed: {exc or type(exc).__name__}")
