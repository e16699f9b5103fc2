"""`up`'s line while Compose waits: what each service not yet ready is doing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ccstack import up_wait
from ccstack.state import Paths, State
from ccstack.up_wait import Service, describe, health_message

pytestmark = pytest.mark.unit

LOADING = '{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}} 503'


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (LOADING, "503 Loading model"),
        ('{"status":"ok"} 200', "200 ok"),
        (" 000", "000"),  # curl: nothing listens yet
        ("curl: (7) Failed to connect", "curl: (7) Failed to connect"),
    ],
)
def test_health_message(answer: str, message: str) -> None:
    assert health_message(answer) == message


def test_describe_the_stages_of_a_local_stack() -> None:
    assert describe([]) == "creating the containers"
    loading = [Service("llama-server", "running", "starting"), Service("proxy", "created")]
    assert describe(loading, "503 Loading model") == (
        "llama-server loading the model (503 Loading model); proxy created (waits for llama-server)"
    )
    assert describe(loading, "200 ok") == (
        "llama-server answers (200 ok), Docker's health check pending; proxy created (waits for llama-server)"
    )
    proxy_starting = [Service("llama-server", "running", "healthy"), Service("proxy", "running", "starting")]
    assert describe(proxy_starting) == "proxy starting (health check pending)"
    assert describe([Service("llama-server", "restarting")]) == "llama-server restarting"
    assert describe([Service("proxy", "running", "healthy"), Service("x", "running")]) == "all services ready"


def test_compose_up_describes_the_stack_until_compose_returns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Compose stands in as a process that waits, prints and fails: the looks go to update meanwhile."""
    script = (
        "import sys, time; time.sleep(0.5); print('up'); print('unhealthy', file=sys.stderr); sys.exit(1)"
    )
    monkeypatch.setattr(up_wait, "compose_base", lambda paths, state: [sys.executable, "-c", script])
    state = State(mode="local", project="p", files=[], profiles=[], services=[], env={})
    seen: list[str] = []
    looks = iter(["creating the containers", "llama-server loading the model"] + ["all services ready"] * 50)
    result = up_wait.compose_up(
        Paths(repo=tmp_path, state_dir=tmp_path),
        state,
        [],
        seen.append,
        poll=0.2,
        look_at=lambda p: next(looks),
    )
    assert (result.returncode, result.stdout, result.stderr) == (1, "up\n", "unhealthy\n")
    assert seen[:2] == ["creating the containers", "llama-server loading the model"]
