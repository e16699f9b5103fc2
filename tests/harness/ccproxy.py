"""The real `ccproxy` console script as a local process on 127.0.0.1 (our own CCPROXY_* environment
variables removed, so only the flags given here configure it).

    with ccproxy(upstream="http://127.0.0.1:8080/v1", log=tmp / "ccproxy.log") as proxy:
        httpx.post(proxy.url + "/v1/messages", ...)

`CCPROXY_CMD` is the command line that starts it: the console script next to this interpreter, or
whatever `BENCH_CCPROXY_CMD` says (another build or launcher to measure instead).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.net import LOOPBACK, NotReady, free_port
from harness.processes import Process

CCPROXY = Path(sys.executable).with_name("ccproxy")
CCPROXY_CMD: list[str] = shlex.split(os.environ.get("BENCH_CCPROXY_CMD", "")) or [str(CCPROXY)]


def require_ccproxy() -> None:
    if [str(CCPROXY)] == CCPROXY_CMD and not CCPROXY.exists():
        raise NotReady(f"ccproxy console script missing at {CCPROXY} (pip install -e proxy)")


def ccproxy_process(
    port: int,
    upstream: str,
    *flags: str,
    log: Path,
    name: str = "ccproxy",
    cmd: Sequence[str] = (),
    host: str = LOOPBACK,
) -> Process:
    """The ccproxy process (not started) listening on host:port in front of `upstream`."""
    argv = [*(cmd or CCPROXY_CMD), "--host", host, "--port", str(port), "--upstream", upstream, *flags]
    return Process(name, argv, log, drop_env_prefixes=("CCPROXY_",))


@dataclass(frozen=True)
class Ccproxy:
    """A running ccproxy: its root URL, its process, its log and (with --trace-dir) its traces."""

    url: str
    process: Process
    log: Path
    trace_dir: Path | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def traces(self) -> list[dict[str, Any]]:
        """The proxy's trace records (--trace-dir), oldest first."""
        if self.trace_dir is None:
            return []
        files = sorted(self.trace_dir.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        return [json.loads(f.read_text()) for f in files]


def start_ccproxy(
    upstream: str, *flags: str, log: Path, trace_dir: Path | None = None, timeout: float = 30
) -> Ccproxy:
    """Start ccproxy on a free loopback port and wait for its /health; the caller stops `.process`."""
    require_ccproxy()
    port = free_port()
    extra = ("--trace-dir", str(trace_dir)) if trace_dir is not None else ()
    process = ccproxy_process(port, upstream, *flags, *extra, log=log).start()
    proxy = Ccproxy(url=f"http://{LOOPBACK}:{port}", process=process, log=log, trace_dir=trace_dir)
    try:
        process.wait_http_ok(proxy.url + "/health", timeout)
    except BaseException:
        process.stop()
        raise
    return proxy


@contextmanager
def ccproxy(
    upstream: str, *flags: str, log: Path, trace_dir: Path | None = None, timeout: float = 30
) -> Iterator[Ccproxy]:
    """`start_ccproxy` as a context manager: stopped on the way out."""
    proxy = start_ccproxy(upstream, *flags, log=log, trace_dir=trace_dir, timeout=timeout)
    try:
        yield proxy
    finally:
        proxy.process.stop()
