"""llama-server's prompt progress as log lines; every chunk still reaches the translator unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from ccproxy.errors import ApiError, ProxyError
from ccproxy.prefill_log import PrefillLog, progress_line
from ccproxy.relay import StreamStats

pytestmark = pytest.mark.unit

# as llama-server b11434 sends them with return_progress (recorded from the real server, ids dropped)
PROGRESS = [
    {"total": 3506, "cache": 3, "processed": 3, "time_ms": 0},
    {"total": 3506, "cache": 3, "processed": 2051, "time_ms": 7754},
    {"total": 3506, "cache": 3, "processed": 3506, "time_ms": 15532},
]


def progress_chunk(progress: dict[str, Any]) -> dict[str, Any]:
    delta = {"role": "assistant", "content": None}
    choices = [{"finish_reason": None, "index": 0, "delta": delta}]
    return {"choices": choices, "object": "chat.completion.chunk", "prompt_progress": progress}


@pytest.mark.parametrize(
    ("progress", "line"),
    [
        (PROGRESS[0], None),  # nothing processed yet
        (PROGRESS[1], "req_1 prefill 2051/3506 tokens (3 cached) 7.8 s, 264 tok/s"),
        (PROGRESS[2], "req_1 prefill 3506/3506 tokens (3 cached) 15.5 s, 226 tok/s"),
        ({"total": 20000, "cache": 19500, "processed": 20000, "time_ms": 900}, None),  # a warm cache
        (
            {"total": 4000, "cache": 0, "processed": 2048, "time_ms": 0},
            "req_1 prefill 2048/4000 tokens (0 cached) 0.0 s",
        ),
        ({"total": "4000", "cache": 0, "processed": 2048, "time_ms": 10}, None),
        ({"total": 4000, "cache": True, "processed": 2048, "time_ms": 10}, None),
        ([1, 2], None),
    ],
)
def test_progress_line(progress: object, line: str | None) -> None:
    assert progress_line("req_1", progress) == line


class Recording:
    def __init__(self) -> None:
        self.fed: list[dict[str, Any]] = []
        self.calls: list[str] = []

    def start(self) -> list[dict[str, Any]]:
        self.calls.append("start")
        return [{"type": "message_start"}]

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        self.fed.append(chunk)
        return []

    def finish(self) -> list[dict[str, Any]]:
        self.calls.append("finish")
        return [{"type": "message_stop"}]

    def fail(self, err: ProxyError) -> list[dict[str, Any]]:
        self.calls.append("fail")
        return [{"type": "error"}]


def test_chunks_pass_through_and_progress_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    inner = Recording()
    wrapped = PrefillLog(inner, "req_9")
    chunks = [progress_chunk(p) for p in PROGRESS] + [{"choices": [{"index": 0, "delta": {"content": "Hi"}}]}]
    with caplog.at_level("INFO", logger="ccproxy"):
        assert wrapped.start() == [{"type": "message_start"}]
        for chunk in chunks:
            wrapped.feed(chunk)
        assert wrapped.finish() == [{"type": "message_stop"}]
        assert wrapped.fail(ApiError("x")) == [{"type": "error"}]
    assert inner.fed == chunks
    assert inner.calls == ["start", "finish", "fail"]
    assert [r.getMessage() for r in caplog.records] == [
        "req_9 prefill 2051/3506 tokens (3 cached) 7.8 s, 264 tok/s",
        "req_9 prefill 3506/3506 tokens (3 cached) 15.5 s, 226 tok/s",
    ]


def test_the_answer_after_the_progress_is_the_streams_first_byte() -> None:
    """llama-server answers its headers at once when it sends progress: the log line's ttfb and tok/s
    time the answer from its first chunk after the prefill instead."""
    stats = StreamStats(started=0.0, first_byte=0.01)
    wrapped = PrefillLog(Recording(), "req_9", stats)
    wrapped.start()
    wrapped.feed(progress_chunk(PROGRESS[1]))
    assert stats.first_byte == 0.01
    wrapped.feed({"choices": [{"index": 0, "delta": {"content": "Hi"}}]})
    answered = stats.first_byte
    assert answered is not None
    assert answered > 0.01
    wrapped.feed({"choices": [{"index": 0, "delta": {"content": "!"}}]})
    assert stats.first_byte == answered
    plain = StreamStats(started=0.0, first_byte=0.01)  # no progress: the headers came with the answer
    PrefillLog(Recording(), "req_10", plain).feed({"choices": []})
    assert plain.first_byte == 0.01
