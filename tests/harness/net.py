"""Ports and readiness: a free port to listen on, and "wait until it answers" for HTTP and TCP.

Every wait polls until a deadline and raises `NotReady` naming what it waited for and the last thing it
saw; `alive` (called before each poll) lets a caller fail at once when the process or container it is
waiting for has died, instead of waiting out the deadline.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable

LOOPBACK = "127.0.0.1"


class NotReady(AssertionError):
    """A server did not become ready in time (an AssertionError: a failed test, not a crashed one)."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on `host` right now. `host="::"` asks for one free on every IPv4 and IPv6 address
    (a dual-stack socket), `"0.0.0.0"` on every IPv4 address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def http_status(url: str, timeout: float = 2) -> int:
    """The status of a GET on `url` (HTTP errors are statuses too); OSError when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_http_ok(
    url: str, timeout: float, *, alive: Callable[[], object] | None = None, interval: float = 0.2
) -> None:
    """Poll `url` until it answers 200; `alive()` runs before each poll and may raise to stop early."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        if alive is not None:
            alive()
        try:
            status = http_status(url)
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = repr(exc)
        if time.monotonic() >= deadline:
            raise NotReady(f"{url} did not answer 200 within {timeout} s (last: {last})")
        time.sleep(interval)


def wait_port(port: int, timeout: float, host: str = LOOPBACK) -> bool:
    """True once something accepts TCP connections on host:port, False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False
