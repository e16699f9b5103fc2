"""Accounting of a call (calls.py): the log line."""

from __future__ import annotations

import pytest
from ccproxy.calls import Call, log_line
from ccproxy.relay import StreamStats

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("stream", [False, True])
def test_the_log_line_rate_is_over_the_generation_time(stream: bool) -> None:
    """A non-streamed answer's first byte arrives when it is complete: its tokens/s is over the whole
    request, not over the few milliseconds of reading the body (which once gave tok/s=111324.0)."""
    call = Call(request_id="req_1", endpoint="messages", started=100.0, stream=stream)
    stats = StreamStats(started=100.0) if stream else None
    line = log_line(call, 200, 110.0, 109.999, (1000, 50, 0), None, stats)
    assert ("tok/s=5.0" if not stream else "tok/s=50000.0") in line
    assert "ttfb=9.999s total=10.000s" in line
    streamed = log_line(call, 200, 110.0, 105.0, (1000, 50, 0), None, stats)
    assert ("tok/s=5.0" if not stream else "tok/s=10.0") in streamed
