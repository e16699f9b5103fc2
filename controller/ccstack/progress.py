"""Progress where people wait: a bar for bytes (model downloads), a spinner for waits (`up`).

On a terminal both are rich's live displays; anywhere else (CI logs, pipes) they are plain lines, a few
of them, without control characters:

    downloading qwen2.5-coder-0.5b: 98.3/491.4 MB (20%), 12.3 MB/s, ETA 32 s
    up: llama-server loading the model (503 Loading model), 12 s

The line formatting is pure (``bytes_line``, ``wait_line``), so tests check it without a clock.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
)

PLAIN_INTERVAL = 10.0
"""Seconds between two plain progress lines (a CI log gets a line every 10 s, not a flood)."""


def is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def format_bytes(n: float) -> str:
    """Decimal units, as rich's DownloadColumn shows them: 98.3 MB, 1.1 GB, 512 B."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def format_duration(seconds: float) -> str:
    """32 s, 4:05 (minutes), 1:02:03 (hours)."""
    s = max(round(seconds), 0)
    if s < 60:
        return f"{s} s"
    minutes, s = divmod(s, 60)
    if minutes < 60:
        return f"{minutes}:{s:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{s:02d}"


def rate_and_eta(done: int, total: int | None, elapsed: float) -> tuple[str | None, str | None]:
    """The mean speed so far and the time left at that speed ("9.8 MB/s", "40 s"); None: unknown."""
    if elapsed <= 0 or done <= 0:
        return None, None
    speed = done / elapsed
    eta = format_duration((total - done) / speed) if total and done < total else None
    return f"{format_bytes(speed)}/s", eta


def bytes_line(label: str, done: int, total: int | None, elapsed: float) -> str:
    """One plain progress line for a transfer: how much, how fast, how long still."""
    parts = [f"{label}: {format_bytes(done)}"]
    if total:
        parts[0] += f"/{format_bytes(total)} ({min(done / total, 1.0):.0%})"
    rate, eta = rate_and_eta(done, total, elapsed)
    parts += [rate] if rate else []
    parts += [f"ETA {eta}"] if eta else []
    return ", ".join(parts)


def wait_line(label: str, what: str, elapsed: float) -> str:
    """One plain line of a wait: what is happening and for how long."""
    return f"{label}: {what}, {format_duration(elapsed)}"


class _PlainBytes:
    """Plain lines for a transfer: the first one, then at most one per interval, then the last."""

    def __init__(self, label: str, total: int | None, stream: IO[str], clock: Callable[[], float]) -> None:
        self.label, self.total, self.stream, self.clock = label, total, stream, clock
        self.start = clock()
        self.last_line: float | None = None
        self.done = 0

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        now = self.clock()
        if self.last_line is None or now - self.last_line >= PLAIN_INTERVAL:
            self.last_line = now
            self._write(now)

    def _write(self, now: float) -> None:
        print(bytes_line(self.label, self.done, self.total, now - self.start), file=self.stream)
        self.stream.flush()

    def close(self) -> None:
        self._write(self.clock())


@contextlib.contextmanager
def transfer(
    label: str,
    total: int | None,
    *,
    stream: IO[str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Callable[..., None]]:
    """A progress bar for bytes; yields ``update(done, total=None)`` (done: bytes so far)."""
    out = sys.stderr if stream is None else stream
    if not is_terminal(out):
        plain = _PlainBytes(label, total, out, clock)
        try:
            yield plain.update
        finally:
            plain.close()
        return
    # speed and ETA as the mean so far: rich's own columns restart theirs whenever the total changes
    # (the estimate of a download's total does, as wheels complete)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("ETA {task.fields[eta]}"),
    )
    start = clock()
    with Progress(*columns, console=Console(file=out)) as bar:
        task = bar.add_task(label, total=total, rate="?", eta="?")
        known = [total]

        def update(done: int, new_total: int | None = None) -> None:
            if new_total is not None:
                known[0] = new_total
            rate, eta = rate_and_eta(done, known[0], clock() - start)
            eta = eta or ("0 s" if rate else "?")
            bar.update(task, total=known[0], completed=done, rate=rate or "?", eta=eta)

        yield update


class _PlainWait:
    """Plain lines for a wait: when what happens changes, and otherwise once per interval."""

    def __init__(self, label: str, stream: IO[str], clock: Callable[[], float]) -> None:
        self.label, self.stream, self.clock = label, stream, clock
        self.start = clock()
        self.what = ""
        self.last_line = self.start

    def update(self, what: str) -> None:
        now = self.clock()
        if what != self.what or now - self.last_line >= PLAIN_INTERVAL:
            self.what, self.last_line = what, now
            print(wait_line(self.label, what, now - self.start), file=self.stream)
            self.stream.flush()


@contextlib.contextmanager
def waiting(
    label: str,
    *,
    stream: IO[str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Callable[[str], None]]:
    """A spinner with what is happening and the seconds so far; yields ``update(what)``."""
    out = sys.stderr if stream is None else stream
    if not is_terminal(out):
        yield _PlainWait(label, out, clock).update
        return
    start = clock()
    # the seconds first: a line wider than the terminal is cut at its end
    columns = (
        SpinnerColumn(),
        TextColumn("{task.fields[seconds]:>5}"),
        TextColumn("{task.description}: {task.fields[what]}"),
    )
    with Progress(*columns, console=Console(file=out), transient=False) as spinner:
        task = spinner.add_task(label, total=None, what="starting", seconds="0 s")

        def update(what: str) -> None:
            spinner.update(task, what=what, seconds=format_duration(clock() - start))

        yield update
