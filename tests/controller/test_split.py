"""ccstack.split: rpc-servers for one model's layers -> llama-server's --rpc list and the workers."""

from __future__ import annotations

import pytest
from ccstack.split import SplitSpec, compose_services, llama_environment

pytestmark = pytest.mark.unit


def test_workers_in_the_stack_then_the_ones_elsewhere() -> None:
    spec = SplitSpec(workers=2, remote=("gpu-1.lan:50052",))
    assert spec.worker_names == ("rpc-server", "rpc-server-2")
    assert llama_environment(spec) == {"LLAMA_RPC": "rpc-server:50052,rpc-server-2:50052,gpu-1.lan:50052"}


def test_workers_extend_the_first_and_llama_server_waits_for_them() -> None:
    services = compose_services(SplitSpec(workers=3), compose_file="/repo/compose.yaml")
    assert services["rpc-server-2"] == {"extends": {"file": "/repo/compose.yaml", "service": "rpc-server"}}
    assert "rpc-server" not in services  # compose.yaml's own
    assert services["llama-server"] == {
        "depends_on": {
            n: {"condition": "service_healthy"} for n in ("rpc-server", "rpc-server-2", "rpc-server-3")
        }
    }
    remote = compose_services(SplitSpec(workers=0, remote=("10.0.0.2:50052",)), compose_file="c")
    assert remote == {"llama-server": {"networks": ["backend", "egress"]}}


@pytest.mark.parametrize(
    ("workers", "remote", "error"),
    [
        (9, (), "0..8"),
        (0, (), "needs rpc-servers"),
        (1, ("gpu-1.lan",), "HOST:PORT"),
        (1, ("gpu-1.lan:0",), "HOST:PORT"),
        (1, ("http://gpu:50052",), "HOST:PORT"),
    ],
)
def test_bad_specs_say_what_to_give(workers: int, remote: tuple[str, ...], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        SplitSpec(workers, remote)
