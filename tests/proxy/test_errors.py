"""Anthropic-shaped errors and the mapping of upstream failures."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ccproxy.errors import (
    ApiError,
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    PromptTooLongError,
    ProxyError,
    RateLimitError,
    RequestTooLargeError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
    from_upstream_payload,
    from_upstream_status,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("cls", "status", "error_type"),
    [
        (InvalidRequestError, 400, "invalid_request_error"),
        (AuthenticationError, 401, "authentication_error"),
        (PermissionDeniedError, 403, "permission_error"),
        (NotFoundError, 404, "not_found_error"),
        (RequestTooLargeError, 413, "request_too_large"),
        (RateLimitError, 429, "rate_limit_error"),
        (ApiError, 500, "api_error"),
        (UpstreamProtocolError, 502, "api_error"),
        (UpstreamTimeoutError, 504, "api_error"),
        (OverloadedError, 529, "overloaded_error"),
    ],
)
def test_error_classes(cls: Callable[[str], ProxyError], status: int, error_type: str) -> None:
    err = cls("msg")
    assert isinstance(err, ProxyError)
    assert err.status == status
    assert err.error_type == error_type
    assert err.to_body() == {"type": "error", "error": {"type": error_type, "message": "msg"}}
    # a 413 leaves the body unread: the connection is closed after it
    assert err.headers() == ({"connection": "close"} if status == 413 else {})


def test_messages_with_lone_surrogates_stay_encodable() -> None:
    err = from_upstream_payload({"message": "bad \ud800 text"})
    assert err.message.encode() == "upstream error: bad \ufffd text".encode()


def test_headers_and_base_constructor() -> None:
    err = ProxyError(429, "rate_limit_error", "slow down", retry_after=2.5, should_retry=True)
    assert err.headers() == {"retry-after": "2.5", "x-should-retry": "true"}
    assert RateLimitError("x", retry_after=3.0).headers() == {"retry-after": "3"}
    assert InvalidRequestError("x", should_retry=False).headers() == {"x-should-retry": "false"}
    assert "slow down" in repr(err)


def test_prompt_too_long_message() -> None:
    err = PromptTooLongError(9000, 8192)
    assert err.status == 400
    assert err.message == "prompt is too long: 9000 tokens > 8192 maximum"
    assert err.headers() == {"x-should-retry": "false"}


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls", "out_status", "should_retry", "retry_after"),
    [
        (429, '{"error":{"message":"rate limited"}}', {"Retry-After": "7"}, RateLimitError, 429, None, 7.0),
        (429, "", {"retry-after-ms": "1500"}, RateLimitError, 429, None, 1.5),
        (429, "", {"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, RateLimitError, 429, None, None),
        (503, '{"error":{"code":503,"message":"Loading model"}}', {}, OverloadedError, 529, None, None),
        (529, "{}", {"retry-after": "1"}, OverloadedError, 529, None, 1.0),
        (401, '{"error":"bad key"}', {}, ProxyError, 502, False, None),
        (403, "", {}, ProxyError, 502, False, None),
        (408, "", {}, UpstreamTimeoutError, 504, None, None),
        (
            400,
            '{"error":{"message":"bad param","type":"invalid_request_error"}}',
            {},
            InvalidRequestError,
            400,
            False,
            None,
        ),
        (404, '{"error":{"message":"model not found"}}', {}, InvalidRequestError, 400, False, None),
        (422, "unprocessable", {}, InvalidRequestError, 400, False, None),
        (500, "internal", {}, ProxyError, 500, None, None),
        (502, "<html>bad gateway</html>", {}, ProxyError, 502, None, None),
        (302, "", {}, UpstreamProtocolError, 502, None, None),
    ],
)
def test_from_upstream_status(
    status: int,
    body: str,
    headers: dict[str, str],
    cls: type[ProxyError],
    out_status: int,
    should_retry: bool | None,
    retry_after: float | None,
) -> None:
    err = from_upstream_status(status, body, headers)
    assert isinstance(err, cls)
    assert err.status == out_status
    assert err.should_retry is should_retry
    assert err.retry_after == retry_after
    assert err.to_body()["type"] == "error"
    assert f"HTTP {status}" in err.message or status == 302


def test_upstream_message_is_carried_and_bounded() -> None:
    err = from_upstream_status(400, '{"error":{"message":"messages: bad role"}}', {})
    assert err.message == "upstream returned HTTP 400: messages: bad role"
    long = from_upstream_status(500, "x" * 10_000, {})
    assert len(long.message) < 2100


def test_llama_context_overflow_becomes_prompt_too_long() -> None:
    body = (
        '{"error":{"code":400,"message":"the request exceeds the available context size",'
        '"type":"exceed_context_size_error","n_prompt_tokens":40000,"n_ctx":32768}}'
    )
    err = from_upstream_status(400, body, {})
    assert isinstance(err, PromptTooLongError)
    assert err.message == "prompt is too long: 40000 tokens > 32768 maximum"
    assert isinstance(
        from_upstream_payload({"type": "exceed_context_size_error", "n_prompt_tokens": 5, "n_ctx": 4}),
        PromptTooLongError,
    )


@pytest.mark.parametrize(
    ("payload", "cls", "status"),
    [
        ({"code": 503, "message": "busy"}, OverloadedError, 529),
        ({"code": 500, "message": "boom"}, ProxyError, 500),
        ({"code": True, "message": "bool is not a code"}, ApiError, 500),
        ({"message": "no code"}, ApiError, 500),
        ("text", ApiError, 500),
        (None, ApiError, 500),
    ],
)
def test_from_upstream_payload(payload: object, cls: type[ProxyError], status: int) -> None:
    err = from_upstream_payload(payload)
    assert isinstance(err, cls)
    assert err.status == status
