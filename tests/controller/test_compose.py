"""ccstack.compose: the command line and environment every `docker compose` call gets (no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ccstack import compose
from ccstack.state import Paths, State

pytestmark = pytest.mark.unit

STATE = State(
    mode="local",
    project="p1",
    files=["/r/compose.yaml", "/s/compose.local.yaml"],
    profiles=["local"],
    services=["proxy", "llama-server"],
    env={"CCSANDBOX_UID": "1000"},
)


def test_explicit_files_project_and_profiles() -> None:
    paths = Paths(repo=Path("/r"), state_dir=Path("/s"))
    assert compose.compose_base(paths, STATE) == [
        *("docker", "compose", "--project-name", "p1", "--project-directory", "/r"),
        *("-f", "/r/compose.yaml", "-f", "/s/compose.local.yaml", "--profile", "local"),
    ]


def test_the_callers_compose_settings_do_not_leak_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPOSE_PROFILES", "registries")
    monkeypatch.setenv("COMPOSE_FILE", "other.yaml")
    env = compose.compose_env(STATE, {"CCSANDBOX_WORKDIR": "/w"})
    assert "COMPOSE_PROFILES" not in env
    assert "COMPOSE_FILE" not in env
    assert (env["CCSANDBOX_UID"], env["CCSANDBOX_WORKDIR"]) == ("1000", "/w")


@pytest.mark.parametrize(
    "out",
    [
        '[{"Service": "proxy", "State": "running", "Health": "healthy"}]',
        '{"Service": "proxy", "State": "running", "Health": "healthy"}\n',
    ],
)
def test_ps_output_of_old_and_new_compose(out: str) -> None:
    rows = compose.parse_ps(out)
    assert rows == [{"Service": "proxy", "State": "running", "Health": "healthy"}]
    assert compose.format_services(rows).splitlines()[1].split() == ["proxy", "running", "healthy"]
    assert compose.parse_ps("  \n") == []
