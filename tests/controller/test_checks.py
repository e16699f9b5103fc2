"""ccstack.checks: a port in use is refused with what to do (loopback only)."""

from __future__ import annotations

import socket

import pytest
from ccstack import checks
from ccstack.errors import StackError

pytestmark = pytest.mark.unit


def test_a_port_in_use_is_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert checks.port_in_use(port)
        with pytest.raises(StackError, match=f"port {port} on 127.0.0.1 is in use.*--publish PORT"):
            checks.check_port_free(port)
    assert not checks.port_in_use(port)


def test_a_free_port_can_be_bound_and_is_then_in_use() -> None:
    port = checks.free_port()
    assert 1024 <= port <= 65535
    assert not checks.port_in_use(port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert checks.port_in_use(port)
