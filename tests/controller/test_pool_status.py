"""ccstack.pool_status: HAProxy's `show stat` (recorded from the real HAProxy 2.6) -> `status` lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from ccstack.pool import BACKEND, STATS_PORT, PoolSpec, haproxy_cfg
from ccstack.pool_status import Server, parse_stat, pool_lines

pytestmark = pytest.mark.unit

RECORDED = (Path(__file__).resolve().parents[1] / "fixtures" / "haproxy" / "show_stat.csv").read_text()


def test_the_pools_servers_are_read_from_haproxys_answer() -> None:
    up, down = parse_stat(RECORDED)
    assert up == Server("llama-server", "UP", "L7OK 200", 5, active=0, requests=1)
    assert down == Server("llama-server-2", "DOWN", "L4CON", 4, active=0, requests=0)
    assert (up.up, down.up) == (True, False)


def test_status_lines_name_each_server_and_how_many_are_up() -> None:
    assert pool_lines(parse_stat(RECORDED)) == [
        "server llama-server    UP    health L7OK 200 for 5 s; 0 active, 1 requests",
        "server llama-server-2  DOWN  health L4CON for 4 s; 0 active, 0 requests",
        "2 servers, 1 up: sessions of the others move to them",
    ]
    up = Server("a", "UP", "L7OK 200", 3725, active=2, requests=40)
    assert pool_lines([up])[-1] == "1 server, all up"
    assert "for 1:02:05" in pool_lines([up])[0]
    down = Server("a", "DOWN", "", None, active=0, requests=0)
    assert pool_lines([down]) == [
        "server a  DOWN  not checked yet; 0 active, 0 requests",
        "1 server, none up: `ccstack logs haproxy` says why",
    ]
    assert pool_lines([]) == ["HAProxy lists no server in the pool"]


def test_other_sections_and_garbage() -> None:
    other = RECORDED.replace("\nllama,", "\nelsewhere,")
    assert parse_stat(other) == []
    with pytest.raises(ValueError, match="show stat"):
        parse_stat("Unknown command. Please enter one of the following commands only :\n")
    with pytest.raises(ValueError, match="show stat"):
        parse_stat("")


def test_the_generated_configuration_opens_the_read_only_api_on_loopback() -> None:
    cfg = haproxy_cfg(PoolSpec(replicas=2), timeout_s=60)
    assert f"stats socket ipv4@127.0.0.1:{STATS_PORT} level user" in cfg
    assert f"\nbackend {BACKEND}\n" in cfg
