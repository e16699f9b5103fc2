"""A long command's steps as progress: `python -m ccstack.step_progress LABEL -- COMMAND...`.

The MLX conversion (`scripts/prepare-mlx-model.sh` runs `backends/mlx/convert_gguf_to_mlx.py` in its
own tools venv, which has no rich) says each step on stderr (``[convert_gguf_to_mlx] GGUF -> Hugging
Face folder ...``), and transformers draws tqdm bars while it dequantizes the GGUF's tensors
(``Converting and de-quantizing GGUF tensors...:  45%|████▌     | 122/272 [00:03<00:04, 35.1it/s]``).
This wrapper runs the command, reads its stderr, and shows what it reads with rich: a spinner and the
elapsed time per step, a bar with ETA while tqdm counts. Off a terminal: plain lines, no control
characters (tqdm's carriage-return redraws become a line per ``PLAIN_INTERVAL``). Other stderr lines
are passed on; stdout is the command's own. Exit status: the command's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ccstack.progress import PLAIN_INTERVAL, format_duration, is_terminal

STEP = re.compile(r"^\[[a-z][a-z0-9_.-]*\] (.+)$")
"""A step: ``[tool_name] message`` (lowercase tag: a library's ``[INFO] ...`` is not one)."""
TQDM = re.compile(r"^(?:(?P<desc>.*?):)?\s*\d+%\|.*?\|\s*(?P<n>\d+)/(?P<total>\d+)\b")


def fragments(chunks: Iterator[bytes]) -> Iterator[str]:
    """Lines of a byte stream, split at newlines and at carriage returns (tqdm's redraws)."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode("utf-8", "replace")
        *complete, buffer = re.split(r"\r\n|\r|\n", buffer)
        yield from (f for f in complete if f.strip())
    if buffer.strip():
        yield buffer


def parse_tqdm(fragment: str) -> tuple[str, int, int] | None:
    """(description, done, total) of a tqdm redraw, or None."""
    m = TQDM.match(fragment.strip())
    if not m:
        return None
    return (m.group("desc") or "").strip(), int(m.group("n")), int(m.group("total"))


def parse_step(fragment: str) -> str | None:
    """The step a ``[tool] message`` line announces, or None."""
    m = STEP.match(fragment.strip())
    return m.group(1) if m else None


class _Plain:
    def __init__(self, label: str, out: IO[str], clock: Callable[[], float]) -> None:
        self.label, self.out, self.clock = label, out, clock
        self.start = clock()
        self.last_count = -PLAIN_INTERVAL
        self.last_shown: tuple[str, int, int] | None = None

    def step(self, text: str) -> None:
        self._print(text)

    def count(self, desc: str, done: int, total: int) -> None:
        now = self.clock()
        due = now - self.last_count >= PLAIN_INTERVAL or done == total
        if due and self.last_shown != (desc, done, total):
            self.last_count, self.last_shown = now, (desc, done, total)
            self._print(f"{desc or 'progress'} {done}/{total}")

    def other(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def _print(self, text: str) -> None:
        print(
            f"{self.label}: {text} ({format_duration(self.clock() - self.start)})", file=self.out, flush=True
        )


class _Rich:
    def __init__(self, label: str, progress: Progress) -> None:
        self.label, self.progress = label, progress
        self.task: TaskID | None = None
        self.counting: tuple[str, TaskID] | None = None

    def step(self, text: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, total=1, completed=1)
        self.task = self.progress.add_task(f"{self.label}: {text}", total=None)
        self.counting = None

    def count(self, desc: str, done: int, total: int) -> None:
        if self.counting is None or self.counting[0] != desc:
            self.counting = (desc, self.progress.add_task(f"  {desc or 'progress'}", total=total))
        self.progress.update(self.counting[1], completed=done, total=total)

    def other(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False)

    def finish(self) -> None:
        for task in self.progress.tasks:
            if task.total is None:
                self.progress.update(task.id, total=1, completed=1)


def follow(label: str, stderr: IO[bytes], out: IO[str], clock: Callable[[], float] = time.monotonic) -> None:
    """Shows the steps and counts the command writes to ``stderr`` until it closes."""
    chunks = iter(lambda: os.read(stderr.fileno(), 65536), b"")
    if not is_terminal(out):
        plain = _Plain(label, out, clock)
        _dispatch(fragments(chunks), plain.step, plain.count, plain.other)
        return
    columns = (
        SpinnerColumn(finished_text="✓"),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=out)) as progress:
        shown = _Rich(label, progress)
        _dispatch(fragments(chunks), shown.step, shown.count, shown.other)
        shown.finish()


def _dispatch(
    lines: Iterator[str],
    step: Callable[[str], None],
    count: Callable[[str, int, int], None],
    other: Callable[[str], None],
) -> None:
    for line in lines:
        counted = parse_tqdm(line)
        if counted is not None:
            count(*counted)
        elif (text := parse_step(line)) is not None:
            step(text)
        else:
            other(line)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m ccstack.step_progress LABEL -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    label, command = args[0], args[2:]
    with subprocess.Popen(command, stderr=subprocess.PIPE) as proc:
        assert proc.stderr is not None
        follow(label, proc.stderr, sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
