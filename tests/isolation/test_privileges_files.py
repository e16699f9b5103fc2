"""Privileges, files and mounts of the agent container: no capabilities or new privileges, seccomp on,
not root, read-only root filesystem, protected workdir paths read-only, the workdir writable and owned
by the invoking user, nothing of the host mounted beyond the workdir, no docker socket, no ssh agent."""

from __future__ import annotations

import pytest
from ccstack import probes

pytestmark = pytest.mark.isolation


def test_privileges(iso, record) -> None:
    r = probes.probe_privileges(iso.sandbox)
    record(r)
    assert r.passed, r.detail


def test_no_sudo_su(iso, record) -> None:
    r = probes.probe_no_escalation(iso.sandbox)
    record(r)
    assert r.passed, r.detail


def test_writes(iso, record) -> None:
    results = probes.probe_writes(iso.sandbox)
    record(*results)
    failed = [r for r in results if not r.passed]
    assert not failed, "; ".join(f"{r.name}: {r.detail}" for r in failed)


def test_mounts(iso, record) -> None:
    r = probes.probe_mounts(iso.sandbox)
    record(r)
    assert r.passed, r.detail


def test_no_docker_socket_no_ssh_agent(iso, record) -> None:
    r = probes.probe_sockets_and_agent_env(iso.sandbox)
    record(r)
    assert r.passed, r.detail
