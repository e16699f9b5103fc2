"""`ccstack up` fails with a one-line reason users can act on: Docker not running, port in use,
missing key, missing model file; nothing is started."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from stack_helpers import Stack

pytestmark = pytest.mark.stack


def test_docker_not_running(stack: Stack, tmp_path: Path) -> None:
    r = stack.ccstack("up", "test", check=False, env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert r.returncode == 1
    assert "Docker is not running" in r.stderr
    assert "Traceback" not in r.stderr


def test_port_in_use(stack: Stack) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = stack.ccstack("up", "test", "--publish", str(port), check=False)
    assert r.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in r.stderr


def test_missing_key(stack: Stack) -> None:
    r = stack.ccstack("up", "openrouter", check=False)
    assert r.returncode == 1
    assert "set OPENROUTER_API_KEY or pass --key-file" in r.stderr


def test_missing_model_file(stack: Stack, tmp_path: Path) -> None:
    r = stack.ccstack("up", "local", "--model", str(tmp_path / "nope.gguf"), check=False)
    assert r.returncode == 1
    assert "model file not found" in r.stderr


def test_commands_before_up_say_so(stack: Stack) -> None:
    for args in (("status",), ("claude", "."), ("down",)):
        r = stack.ccstack(*args, check=False)
        assert r.returncode == 1
        assert "the stack is not up: run `ccstack up MODE`" in r.stderr, args
