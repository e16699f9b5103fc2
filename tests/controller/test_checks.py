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
