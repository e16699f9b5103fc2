"""Opt-in trace files: one JSON file per request with what came in, what went upstream and what went
back. Secrets never reach the disk: credential headers are replaced and every configured secret
(client token, upstream key) is scrubbed from all strings. Directory 0700, files 0600.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("ccproxy.tracing")

REDACTED = "[redacted]"
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "proxy-authorization", "cookie", "set-cookie", "api-key"}
)


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k: (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers}


def scrub(value: object, secrets: tuple[str, ...]) -> Any:
    """Replace every occurrence of any secret in any string inside a JSON-like value."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, Mapping):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    return value


def body_for_trace(data: bytes) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


def timing_fields(
    started: float, first_byte: float | None, upstream_timings: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What a trace records of a call's timing beside `seconds`: the time to the upstream's first byte
    (of the answer, after a prefill) and the backend's own timings (llama-server's `timings` of a stream's
    last chunk: prompt_n, cache_n, prompt_ms, predicted_n, predicted_ms, ...)."""
    fields: dict[str, Any] = {}
    if first_byte is not None:
        fields["first_byte_seconds"] = round(first_byte - started, 4)
    if upstream_timings is not None:
        fields["upstream_timings"] = dict(upstream_timings)
    return fields


class Tracer:
    """Writes traces into `directory` (created 0700). Disabled when directory is None."""

    def __init__(self, directory: Path | None, secrets: Iterable[str | None] = ()) -> None:
        self.directory = directory
        self._secrets = tuple(s for s in secrets if s)
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(directory, 0o700)

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def write(self, request_id: str, record: Mapping[str, Any]) -> Path | None:
        if self.directory is None:
            return None
        path = self.directory / f"{time.strftime('%Y%m%dT%H%M%S')}-{request_id}.json"
        data = json.dumps(scrub(dict(record), self._secrets), indent=1, ensure_ascii=False).encode()
        # Written beside its final name and renamed into place: whoever lists the directory
        # (`ccstack trace`, the status line's tests, a user's `jq`) sees whole traces or none.
        partial = path.with_name(f".{path.name}.partial")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.rename(partial, path)
        except OSError as exc:
            log.warning("trace %s not written: %s", path, exc)
            with contextlib.suppress(OSError):
                os.unlink(partial)
            return None
        return path
