"""ccstack.doctor: the checks as a pure function of gathered facts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from ccstack import cli
from ccstack.doctor import (
    PROBE_TOOL,
    Check,
    Facts,
    Reply,
    as_json,
    healthy,
    judge,
    judge_probe,
    probe_request,
)
from ccstack.modes import parse_mode
from rich.console import Console

pytestmark = pytest.mark.unit

IMAGES = {"ccsandbox/proxy:local": True, "ccsandbox/claude-sandbox:local": True}
CALL = {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "notes.txt"}}
HEALTHY = Facts(
    mode=parse_mode("local"),
    docker_version="27.3.1",
    compose_version="2.40.3",
    images={**IMAGES, "ccsandbox/llama-server:local": True},
    model_file="/models/q.gguf",
    model_file_exists=True,
    stack_mode="local",
    services={"proxy": "running (healthy)", "llama-server": "running (healthy)"},
    proxy_url="http://172.20.0.2:8787",
    health=Reply(
        200, {"status": "ok", "upstream": "http://llama-server:8080/v1", "backend": {"n_ctx": 32768}}
    ),
    probe=Reply(200, {"type": "message", "content": [CALL]}, 2.5),
)


def by_name(rows: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in rows}


def failed(facts: Facts) -> dict[str, Check]:
    return {c.name: c for c in judge(facts) if c.status == "fail"}


def test_a_healthy_stack_is_all_ticks() -> None:
    rows = judge(HEALTHY)
    assert healthy(rows)
    assert [c.status for c in rows] == ["ok"] * len(rows)
    names = by_name(rows)
    assert "32768 tokens per slot" in names["context window"].detail
    assert names["tool call"].detail.startswith('read_file({"path": "notes.txt"})')


def test_docker_missing_stops_early_with_the_fix() -> None:
    rows = judge(Facts(mode=parse_mode("local"), docker_version=None, docker_error="no socket"))
    assert [(c.name, c.status) for c in rows] == [("Docker", "fail")]
    assert rows[0].fix is not None
    assert "systemctl start docker" in rows[0].fix


@pytest.mark.parametrize(
    ("version", "resolvers", "ok"),
    [("25.0.3", ("127.0.0.53",), False), ("25.0.3", ("10.0.0.2",), True), ("26.1.0", ("127.0.0.1",), True)],
)
def test_known_bad_docker_needs_a_loopback_resolver(
    version: str, resolvers: tuple[str, ...], ok: bool
) -> None:
    docker = by_name(judge(dataclasses.replace(HEALTHY, docker_version=version, host_resolvers=resolvers)))[
        "Docker"
    ]
    assert (docker.status == "ok") == ok
    if not ok:
        assert "CVE-2024-29018" in docker.detail


def test_old_compose_and_missing_images() -> None:
    bad = failed(
        dataclasses.replace(
            HEALTHY, compose_version="2.20.2", images={**IMAGES, "ccsandbox/proxy:local": False}
        )
    )
    assert "2.24.4" in (bad["Compose"].fix or "")
    assert "ccsandbox/proxy:local" in bad["images"].detail
    assert "just build" in (bad["images"].fix or "")


def test_a_stopped_backend() -> None:
    facts = dataclasses.replace(
        HEALTHY,
        services={"proxy": "running (healthy)", "llama-server": "exited"},
        health=Reply(503, {"status": "unavailable", "error": "upstream unreachable"}),
        probe=None,
    )
    rows = by_name(judge(facts))
    assert rows["service llama-server"].status == "fail"
    assert "just logs llama-server" in (rows["service llama-server"].fix or "")
    assert rows["backend"].status == "fail"
    assert "upstream unreachable" in rows["backend"].detail
    assert rows["backend"].fix == "`just logs llama-server`, then `just up local`"
    assert rows["tool call"].status == "skip"


def test_a_pool_with_a_server_down() -> None:
    from ccstack.pool_status import Server, parse_stat

    recorded = (Path(__file__).resolve().parents[1] / "fixtures" / "haproxy" / "show_stat.csv").read_text()
    pool = dataclasses.replace(
        HEALTHY, mode=parse_mode("pool"), stack_mode="pool", pool=tuple(parse_stat(recorded))
    )
    row = by_name(judge(pool))["pool servers"]
    assert row.status == "fail"
    assert row.detail == "1 of 2 up; down: llama-server-2 DOWN (L4CON)"
    assert "just logs NAME" in (row.fix or "")
    up = Server("llama-server", "UP", "L7OK 200", 5, 0, 1)
    assert by_name(judge(dataclasses.replace(pool, pool=(up, up))))["pool servers"].detail == "2 of 2 up"
    assert healthy(judge(dataclasses.replace(pool, pool=(up, up))))
    missing = by_name(judge(dataclasses.replace(pool, pool=None, pool_error=None)))["pool servers"]
    assert (missing.status, missing.detail) == ("fail", "HAProxy not running")
    assert "pool servers" not in by_name(judge(HEALTHY))  # local: no such row


def test_a_port_taken_by_another_process() -> None:
    bad = failed(dataclasses.replace(HEALTHY, port=8787, port_state="taken"))
    assert "--publish OTHER" in (bad["port 8787"].fix or "")
    assert (
        by_name(judge(dataclasses.replace(HEALTHY, port=8787, port_state="ours")))["port 8787"].status == "ok"
    )


def test_a_missing_model() -> None:
    bad = failed(dataclasses.replace(HEALTHY, model_file_exists=False))
    assert "just model NAME" in (bad["model file"].fix or "")
    bad = failed(dataclasses.replace(HEALTHY, model_file=None, model_error="model file not found: x.gguf"))
    assert bad["model file"].detail == "model file not found: x.gguf"


def test_the_stack_down_or_in_another_mode_skips_what_needs_it() -> None:
    rows = judge(dataclasses.replace(HEALTHY, stack_mode=None))
    assert [c.status for c in rows[-3:]] == ["skip"] * 3
    assert by_name(rows)["stack"].fix == "`just up local`"
    assert "just down" in (failed(dataclasses.replace(HEALTHY, stack_mode="mlx"))["stack"].fix or "")


def test_a_key_mode_without_its_key() -> None:
    facts = dataclasses.replace(HEALTHY, mode=parse_mode("subscription"), key_source=None, stack_mode=None)
    bad = failed(facts)
    assert "CLAUDE_CODE_OAUTH_TOKEN" in (bad["upstream key"].fix or "")
    assert "setup-token" in bad["upstream key"].detail


def test_an_unknown_window_of_a_user_server() -> None:
    facts = dataclasses.replace(
        HEALTHY, mode=parse_mode("openai"), stack_mode="openai", health=Reply(200, {})
    )
    assert "--context-window N" in (failed(facts)["context window"].fix or "")
    ok = dataclasses.replace(facts, window=8192, window_source="read from the server")
    assert by_name(judge(ok))["context window"].status == "ok"


def reply(*blocks: dict[str, Any]) -> Reply:
    return Reply(200, {"type": "message", "content": list(blocks)})


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (reply({"type": "text", "text": "I would read notes.txt"}), "answered text, no tool call"),
        (reply({**CALL, "name": "Read"}), "called an unknown tool"),
        (reply({**CALL, "input": {"file": "notes.txt"}}), "arguments invalid"),
        (reply({**CALL, "input": {"path": 3}}), "arguments invalid"),
        (Reply(529, {"type": "error"}), "HTTP 529"),
        (Reply(0, "connection refused"), "HTTP 0"),
    ],
)
def test_the_probe_wants_a_valid_call_of_the_requests_tool(answer: Reply, detail: str) -> None:
    check = judge_probe(answer, [PROBE_TOOL])
    assert check.status == "fail"
    assert detail in check.detail
    assert check.fix


def test_the_probe_request_carries_one_tool() -> None:
    body = probe_request("local")
    assert body["tools"] == [PROBE_TOOL]
    assert PROBE_TOOL["name"] in body["messages"][0]["content"]


def test_json_and_table_output() -> None:
    rows = judge(dataclasses.replace(HEALTHY, stack_mode=None))
    data = json.loads(as_json(rows, "local"))
    assert data["ok"] is False
    assert {"name": "stack", "status": "fail", "detail": "not up", "fix": "`just up local`"} in data["checks"]
    console = Console(width=160, record=True)
    console.print(cli.doctor_table(rows, "local"))
    text = console.export_text()
    assert "✗" in text
    assert "`just up local`" in text
    assert "✓" in text
