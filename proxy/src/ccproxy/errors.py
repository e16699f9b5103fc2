"""Anthropic-shaped errors and the mapping of upstream failures onto them (pure).

Every error the proxy returns has the body ``{"type": "error", "error": {"type": ..., "message": ...}}``
and a status that Claude Code's retry logic treats sensibly (see shared/CLAUDE_CODE_WIRE.md):

    ProxyError(status, error_type, message)
    ├── InvalidRequestError      400 invalid_request_error   (never retried)
    │   └── PromptTooLongError   400 "prompt is too long: N tokens > M"
    ├── AuthenticationError      401 authentication_error
    ├── BillingError             402 billing_error           (the spend guard; with x-should-retry: false)
    ├── PermissionDeniedError    403 permission_error
    ├── NotFoundError            404 not_found_error
    ├── RequestTooLargeError     413 request_too_large
    ├── RateLimitError           429 rate_limit_error        (honours retry-after)
    ├── ApiError                 500 api_error               (retried by the client)
    │   ├── UpstreamProtocolError 502 api_error  (garbage or truncated upstream data)
    │   └── UpstreamTimeoutError  504 api_error  (upstream silent for too long)
    └── OverloadedError          529 overloaded_error        (upstream busy or unreachable)

``from_upstream_status`` turns an upstream HTTP error (status, body, headers) into one of these;
``from_upstream_payload`` does the same for an ``{"error": ...}`` object sent inside a stream.
Decisions use status codes and structured fields, never regexes over messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from ccproxy.text_repair import repair_text
from ccproxy.types_events import ErrorBody

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BillingError",
    "InvalidRequestError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "PromptTooLongError",
    "ProxyError",
    "RateLimitError",
    "RequestTooLargeError",
    "UpstreamProtocolError",
    "UpstreamTimeoutError",
    "from_upstream_payload",
    "from_upstream_status",
]

_MAX_UPSTREAM_MESSAGE = 2000


class ProxyError(Exception):
    """An error with an Anthropic error type and an HTTP status.

    ``retry_after`` (seconds) becomes a ``retry-after`` header; ``should_retry`` becomes
    ``x-should-retry: true|false`` (Claude Code never retries on ``false``).
    """

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        retry_after: float | None = None,
        should_retry: bool | None = None,
    ) -> None:
        message = repair_text(message)  # upstream text in a message: always encodable
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.retry_after = retry_after
        self.should_retry = should_retry

    def to_body(self) -> ErrorBody:
        """The Anthropic error body (also the data of a streamed ``error`` event)."""
        return {"type": "error", "error": {"type": self.error_type, "message": self.message}}

    def headers(self) -> dict[str, str]:
        """Extra response headers: ``retry-after`` and ``x-should-retry`` when set."""
        out: dict[str, str] = {}
        if self.retry_after is not None:
            out["retry-after"] = _format_seconds(self.retry_after)
        if self.should_retry is not None:
            out["x-should-retry"] = "true" if self.should_retry else "false"
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.error_type!r}, {self.message!r})"


class _FixedError(ProxyError):
    """A ProxyError subclass whose status and type are class constants."""

    STATUS: ClassVar[int] = 500
    ERROR_TYPE: ClassVar[str] = "api_error"

    def __init__(
        self, message: str, *, retry_after: float | None = None, should_retry: bool | None = None
    ) -> None:
        super().__init__(self.STATUS, self.ERROR_TYPE, message, retry_after, should_retry)


class InvalidRequestError(_FixedError):
    STATUS = 400
    ERROR_TYPE = "invalid_request_error"


class PromptTooLongError(InvalidRequestError):
    """The rendered prompt does not fit the backend's context window."""

    def __init__(self, prompt_tokens: int, limit: int) -> None:
        super().__init__(f"prompt is too long: {prompt_tokens} tokens > {limit} maximum", should_retry=False)
        self.prompt_tokens = prompt_tokens
        self.limit = limit


class AuthenticationError(_FixedError):
    STATUS = 401
    ERROR_TYPE = "authentication_error"


class BillingError(_FixedError):
    STATUS = 402
    ERROR_TYPE = "billing_error"


class PermissionDeniedError(_FixedError):
    STATUS = 403
    ERROR_TYPE = "permission_error"


class NotFoundError(_FixedError):
    STATUS = 404
    ERROR_TYPE = "not_found_error"


class RequestTooLargeError(_FixedError):
    STATUS = 413
    ERROR_TYPE = "request_too_large"

    def headers(self) -> dict[str, str]:
        # the rest of the body is not read: the connection cannot carry another request
        return {**super().headers(), "connection": "close"}


class RateLimitError(_FixedError):
    STATUS = 429
    ERROR_TYPE = "rate_limit_error"


class ApiError(_FixedError):
    STATUS = 500
    ERROR_TYPE = "api_error"


class UpstreamProtocolError(ApiError):
    """The upstream sent something that is not a valid response (garbage, truncated stream, bad JSON)."""

    STATUS = 502


class UpstreamTimeoutError(ApiError):
    """The upstream stayed silent longer than the proxy's read timeout."""

    STATUS = 504


class OverloadedError(_FixedError):
    STATUS = 529
    ERROR_TYPE = "overloaded_error"


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lname = name.lower()
    for key, val in headers.items():
        if key.lower() == lname:
            return val
    return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name in ("retry-after-ms", "retry-after"):
        raw = _header(headers, name)
        if raw is None:
            continue
        try:
            seconds = float(raw.strip())
        except ValueError:
            continue  # an HTTP date: not worth parsing, the client backs off anyway
        if seconds < 0:
            continue
        return seconds / 1000.0 if name == "retry-after-ms" else seconds
    return None


def _error_object(body_text: str) -> Mapping[str, Any] | None:
    try:
        body = json.loads(body_text)
    except (ValueError, RecursionError):
        return None
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping):
            return err
        if isinstance(err, str):
            return {"message": err}
        if isinstance(body.get("message"), str):
            return body
    return None


def _describe(status: int | None, err: Mapping[str, Any] | None, body_text: str) -> str:
    detail = ""
    if err is not None and isinstance(err.get("message"), str):
        detail = err["message"]
    elif body_text.strip():
        detail = body_text.strip()
    detail = detail[:_MAX_UPSTREAM_MESSAGE]
    prefix = f"upstream returned HTTP {status}" if status is not None else "upstream error"
    return f"{prefix}: {detail}" if detail else prefix


def _context_overflow(err: Mapping[str, Any] | None) -> PromptTooLongError | None:
    """llama-server reports ``type: exceed_context_size_error`` with ``n_prompt_tokens`` and ``n_ctx``."""
    if err is None or err.get("type") != "exceed_context_size_error":
        return None
    n_prompt, n_ctx = err.get("n_prompt_tokens"), err.get("n_ctx")
    if isinstance(n_prompt, int) and isinstance(n_ctx, int):
        return PromptTooLongError(n_prompt, n_ctx)
    return None


def from_upstream_status(status: int, body_text: str, headers: Mapping[str, str]) -> ProxyError:
    """Map an upstream HTTP error response to the error the proxy returns to Claude Code.

    - 429 -> 429 ``rate_limit_error`` with the upstream's ``retry-after``.
    - 503, 529 -> 529 ``overloaded_error`` (Claude Code tries 3 times).
    - 401, 403 from the upstream: the proxy's upstream key is wrong; the client cannot fix it ->
      502 ``api_error`` with ``x-should-retry: false``.
    - 408 -> 504 ``api_error`` (retried).
    - other 4xx -> 400 ``invalid_request_error`` with ``x-should-retry: false`` (a retry cannot fix it);
      a llama-server context overflow becomes "prompt is too long: N tokens > M maximum".
    - 5xx -> ``api_error`` with the upstream status (retried by the client).
    """
    err = _error_object(body_text)
    message = _describe(status, err, body_text)
    retry_after = _retry_after(headers)
    if status == 429:
        return RateLimitError(message, retry_after=retry_after)
    if status in (503, 529):
        return OverloadedError(message, retry_after=retry_after)
    if status in (401, 403):
        return ProxyError(502, "api_error", f"{message} (check the proxy's upstream key)", should_retry=False)
    if status == 408:
        return UpstreamTimeoutError(message)
    if 400 <= status < 500:
        overflow = _context_overflow(err)
        if overflow is not None:
            return overflow
        return InvalidRequestError(message, should_retry=False)
    if status >= 500:
        return ProxyError(status, "api_error", message, retry_after)
    return UpstreamProtocolError(f"unexpected upstream status {status}: {message}")


def from_upstream_payload(error: object) -> ProxyError:
    """Map an ``{"error": ...}`` object that an upstream sent inside a stream (or a 200 body)."""
    if isinstance(error, Mapping):
        code = error.get("code")
        text = json.dumps({"error": error}, ensure_ascii=False)
        if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:
            return from_upstream_status(code, text, {})
        overflow = _context_overflow(error)
        if overflow is not None:
            return overflow
        return ApiError(_describe(None, error, text))
    return ApiError(_describe(None, None, str(error)))
