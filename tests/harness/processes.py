"""Local processes the suites and benchmarks start: each in its own session (process group) with its
output in a log file, stopped as a group (SIGTERM, then SIGKILL) so nothing it spawned lingers.

    proc = Process("ccproxy", argv, log=tmp / "ccproxy.log").start()
    proc.wait_http_ok(url + "/health", 30)   # fails at once, with the log's tail, if it exits
    ...
    proc.stop()

or `with Process(...).started(ready_url=..., timeout=...) as proc:`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.net import NotReady, wait_http_ok


class ProcessExited(NotReady):
    """The process ended while we waited for it to become ready."""


@dataclass
class Process:
    """A command to run; `env` is added to this process's environment, minus `drop_env_prefixes`."""

    name: str
    argv: Sequence[str]
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)
    drop_env_prefixes: tuple[str, ...] = ()
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        base = {
            k: v for k, v in os.environ.items() if not any(k.startswith(p) for p in self.drop_env_prefixes)
        }
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**base, **self.env},
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check_alive(self) -> None:
        """Raise ProcessExited (with the log's tail) if the process has ended."""
        if not self.alive():
            raise ProcessExited(f"{self.name} exited with {self.returncode}:\n{self.tail(40)}")

    def wait_http_ok(self, url: str, timeout: float) -> None:
        """Wait until `url` answers 200, failing at once if the process dies first."""
        try:
            wait_http_ok(url, timeout, alive=self.check_alive, interval=0.1)
        except ProcessExited:
            raise
        except NotReady as exc:
            raise NotReady(f"{exc}\n{self.name}'s log:\n{self.tail(40)}") from None

    def stop(self) -> None:
        if self.popen is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(10 if sig == signal.SIGTERM else 5)
                break
            except subprocess.TimeoutExpired:
                continue
        # the leader is gone; make sure nothing it left behind in its group lingers
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    @contextlib.contextmanager
    def started(self, ready_url: str | None = None, timeout: float = 30) -> Iterator[Process]:
        """Start, wait for `ready_url` (if any) to answer 200, yield; stopped on the way out."""
        self.start()
        try:
            if ready_url is not None:
                self.wait_http_ok(ready_url, timeout)
            yield self
        finally:
            self.stop()
