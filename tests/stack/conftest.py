"""Fixtures of the stack suite: real Docker Engine + Compose v2, images built with the configured bases,
and throwaway stacks driven through the `ccstack` CLI exactly as a user runs it (each with its own
Compose project and state directory, torn down afterwards).

Base images: PYTHON_IMAGE / NODE_IMAGE from the environment; with CCSTACK_LOCAL_BASES=1 (offline CI)
the local stand-ins of scripts/build-local-bases.sh. Docker missing or not running fails the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stack_helpers import AGENT_GID, AGENT_UID, REPO, Stack, base_image_env, docker_client


@pytest.fixture(scope="session")
def docker() -> Any:
    return docker_client()


@pytest.fixture(scope="session")
def images(docker: Any) -> dict[str, float]:
    """Build (or re-use from the layer cache) the proxy, sandbox and scripted-upstream images."""
    env = os.environ | base_image_env() | {"CCSANDBOX_STATE_DIR": str(REPO / ".stack")}
    timings: dict[str, float] = {}
    for service in ("proxy", "scripted-upstream", "claude-sandbox"):
        start = time.monotonic()
        r = subprocess.run(
            [sys.executable, "-m", "ccstack", "build", service],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        timings[service] = round(time.monotonic() - start, 1)
        assert r.returncode == 0, f"building {service} failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    print(f"image build times (s): {timings}")
    return timings


@pytest.fixture(scope="session")
def llama_image() -> str:
    """Build (or find in the layer cache) ccsandbox/llama-server:local; a failure fails the test."""
    script = REPO / "scripts" / "build-llama-server.sh"
    assert script.exists(), f"{script} is missing"
    r = subprocess.run([str(script)], capture_output=True, text=True, check=False, timeout=3000)
    assert r.returncode == 0, f"building the llama-server image failed:\n{r.stderr[-4000:]}"
    return "ccsandbox/llama-server:local"


@pytest.fixture
def stack(tmp_path: Path, images: dict[str, float], docker: Any) -> Iterator[Stack]:
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.down(docker)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty project directory owned by the test's agent user."""
    wd = tmp_path / "project"
    wd.mkdir()
    os.chown(wd, AGENT_UID, AGENT_GID)
    return wd
