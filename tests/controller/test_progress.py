"""Progress lines: formatting, and what reaches a log that is not a terminal."""

from __future__ import annotations

import io
import re

import pytest
from ccstack import progress

pytestmark = pytest.mark.unit

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
"""Control characters other than the newline (escape sequences, carriage returns, ...)."""


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (512, "512 B"), (1_500, "1.5 kB"), (98_362_432, "98.4 MB"), (1_117_320_768, "1.1 GB")],
)
def test_format_bytes(n: int, text: str) -> None:
    assert progress.format_bytes(n) == text


@pytest.mark.parametrize(("s", "text"), [(0, "0 s"), (32.4, "32 s"), (245, "4:05"), (3723, "1:02:03")])
def test_format_duration(s: float, text: str) -> None:
    assert progress.format_duration(s) == text


def test_bytes_line_says_amount_share_speed_and_eta() -> None:
    line = progress.bytes_line("downloading qwen", 98_300_000, 491_400_064, 10.0)
    assert line == "downloading qwen: 98.3 MB/491.4 MB (20%), 9.8 MB/s, ETA 40 s"


def test_bytes_line_without_a_total_or_time() -> None:
    assert progress.bytes_line("x", 0, None, 0.0) == "x: 0 B"
    assert progress.bytes_line("x", 2_000, None, 2.0) == "x: 2.0 kB, 1.0 kB/s"
    assert progress.bytes_line("x", 11, 11, 1.0) == "x: 11 B/11 B (100%), 11 B/s"  # done: no ETA


def test_wait_line() -> None:
    assert progress.wait_line("up", "llama-server loading the model", 72.0) == (
        "up: llama-server loading the model, 1:12"
    )


def test_transfer_off_a_terminal_writes_few_plain_lines() -> None:
    out = io.StringIO()
    ticks = iter([0.0, 0.0, 1.0, 2.0, 11.0, 12.0])
    with progress.transfer("downloading toy", 100, stream=out, clock=lambda: next(ticks)) as update:
        update(0)  # first look: a line
        update(10)  # within the interval: none
        update(50)  # still within
        update(90)  # 11 s after the first line: a line
    lines = out.getvalue().splitlines()
    assert lines == [
        "downloading toy: 0 B/100 B (0%)",
        "downloading toy: 90 B/100 B (90%), 8 B/s, ETA 1 s",
        "downloading toy: 90 B/100 B (90%), 8 B/s, ETA 1 s",  # the last state, when it ends
    ]


def test_waiting_off_a_terminal_writes_a_line_per_change() -> None:
    out = io.StringIO()
    ticks = iter([0.0, 1.0, 2.0, 3.0, 15.0])
    with progress.waiting("up", stream=out, clock=lambda: next(ticks)) as update:
        update("creating the containers")
        update("creating the containers")  # no change, within the interval: nothing
        update("llama-server loading the model")
        update("llama-server loading the model")  # 12 s later: a reminder
    assert out.getvalue().splitlines() == [
        "up: creating the containers, 1 s",
        "up: llama-server loading the model, 3 s",
        "up: llama-server loading the model, 15 s",
    ]


def test_no_control_characters_off_a_terminal() -> None:
    """CI logs stay readable: no escape sequences, no carriage returns, only lines."""
    out = io.StringIO()
    with progress.transfer("downloading", 491_400_064, stream=out) as update:
        for done in range(0, 491_400_064, 50_000_000):
            update(done)
        update(491_400_064, 491_400_064)
    with progress.waiting("up", stream=out) as say:
        say("llama-server loading the model (503 Loading model)")
        say("all services ready")
    text = out.getvalue()
    assert text.endswith("\n")
    assert "downloading" in text
    assert "up: all services ready" in text
    assert not CONTROL.search(text), repr(text)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_rich_bars() -> None:
    out = _Tty()
    with progress.transfer("downloading toy", 100, stream=out) as update:
        update(100)
    with progress.waiting("up", stream=out) as say:
        say("all services ready")
    text = out.getvalue()
    assert "\x1b[" in text  # a live display (cursor control), not plain lines
    assert "downloading toy" in text
    assert "up: all services ready" in text
