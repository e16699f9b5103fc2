"""The agent's OCI runtime (runc / gVisor's runsc): policy parsing, the --runtime option, rendering,
the registration check, and the pure parts of the gVisor-aware probes (no Docker)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ccstack import checks, cli, commands, gvisor_probes, runtime
from ccstack.egress import EgressPolicy
from ccstack.errors import StackError
from ccstack.modes import MODES, parse_mode
from ccstack.overlay import plain
from ccstack.policy import Policies, parse_mounts
from ccstack.render import RenderOptions, render, to_yaml
from ccstack.state import Paths

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
RUNSC_ENTRY = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=host"]}


# --- policies/sandbox.yaml and --runtime ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [(None, "runc"), ({}, "runc"), ({"runtime": None}, "runc"), ({"runtime": "runsc"}, "runsc")],
)
def test_parse_sandbox_policy(data: object, expected: str) -> None:
    assert runtime.parse_sandbox_policy(data) == runtime.SandboxPolicy(runtime=expected)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["runsc"], "must be a mapping"),
        ({"runtime": "run sc"}, "runtime: 'run sc' is not a runtime name"),
        ({"runtime": 1}, "runtime: 1 is not a runtime name"),
        ({"runtime": "runsc", "kernel": "gvisor"}, "unknown key"),
    ],
)
def test_parse_sandbox_policy_names_the_problem(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        runtime.parse_sandbox_policy(data)


def test_shipped_sandbox_policy_is_runc() -> None:
    assert runtime.load_sandbox_policy(REPO / "policies").runtime == "runc"
    text = (REPO / "policies" / "sandbox.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(text) == {"runtime": "runc"}


def test_load_sandbox_policy_names_the_file(tmp_path: Path) -> None:
    assert runtime.load_sandbox_policy(tmp_path) == runtime.SandboxPolicy()  # no file: runc
    (tmp_path / "sandbox.yaml").write_text("runtime: [runsc]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"sandbox\.yaml: runtime:"):
        runtime.load_sandbox_policy(tmp_path)


def test_flag_wins_over_the_policy() -> None:
    policy = runtime.SandboxPolicy(runtime="runsc")
    assert runtime.resolve_runtime(None, policy) == "runsc"
    assert runtime.resolve_runtime("runc", policy) == "runc"
    with pytest.raises(ValueError, match="--runtime"):
        runtime.resolve_runtime("runsc; rm -rf /", policy)


@pytest.mark.parametrize("cmd", ["up", "render"])
def test_cli_runtime_option(cmd: str) -> None:
    parser = cli.build_parser()
    assert cli._up_request(parser.parse_args([cmd, "local", "--runtime", "runsc"])).runtime == "runsc"
    assert cli._up_request(parser.parse_args([cmd, "local"])).runtime is None


# --- rendering ---------------------------------------------------------------------------------------


def _policies() -> Policies:
    return Policies(mounts=parse_mounts(None, home="/home/u"), egress=EgressPolicy(enabled=False, domains=()))


def _render(mode: str, rt: str) -> dict[str, Any]:
    opts = RenderOptions(uid=1000, gid=1000, state_dir="/s", model_file="/m.gguf", runtime=rt)
    overlay: dict[str, Any] = plain(render(parse_mode(mode), opts, _policies()).overlay)
    return overlay


@pytest.mark.parametrize("mode", list(MODES))
def test_runsc_is_set_on_the_agent_only(mode: str) -> None:
    services = _render(mode, "runsc")["services"]
    assert services["claude-sandbox"]["runtime"] == "runsc"
    assert [name for name, svc in services.items() if "runtime" in svc] == ["claude-sandbox"]


def test_runc_renders_no_runtime_key() -> None:
    """runc is Docker's default: the overlay stays as it was without the option."""
    assert all("runtime" not in svc for svc in _render("local", "runc")["services"].values())
    assert RenderOptions(uid=1, gid=1, state_dir="/s").runtime == "runc"


def test_runtime_in_the_yaml_and_the_state(tmp_path: Path) -> None:
    paths = Paths(repo=REPO, state_dir=tmp_path)
    req = commands.UpRequest(mode="anthropic", fetch=False, runtime="runsc")
    mode, rendered, state = commands.prepare(paths, req, {"CCSANDBOX_UID": "1000"})
    text = paths.overlay("anthropic").read_text(encoding="utf-8")
    assert text == to_yaml(rendered, mode)
    assert "\n    runtime: runsc\n" in text[text.index("\n  claude-sandbox:\n") :]
    assert text.count("runtime:") == 1
    assert state.extra["runtime"] == "runsc"
    _m, _r, state = commands.prepare(
        paths, commands.UpRequest(mode="anthropic", fetch=False), {"CCSANDBOX_UID": "1"}
    )
    assert state.extra["runtime"] == "runc"  # policies/sandbox.yaml


def test_bad_runtime_flag_is_a_stack_error(tmp_path: Path) -> None:
    paths = Paths(repo=REPO, state_dir=tmp_path)
    with pytest.raises(StackError, match="--runtime"):
        checks.agent_runtime(paths.repo / "policies", "bad name")


# --- the registration check ----------------------------------------------------------------------------


def test_unregistered_runsc_says_how_to_install_and_register() -> None:
    error, warnings = runtime.registration_problems("runsc", {"runc": {"path": "runc"}})
    assert error is not None
    assert not warnings
    assert "'runsc' is not registered with Docker" in error
    assert "lists: runc" in error
    assert "apt-get install -y runsc" in error
    assert '"runtimeArgs": ["--network=host"]' in error
    assert "kill -HUP $(pidof dockerd)" in error
    assert "scripts/install-gvisor.sh" in error
    assert "--runtime runc" in error


def test_unregistered_other_runtime() -> None:
    error, _ = runtime.registration_problems("kata", {"runc": {}})
    assert error is not None
    assert "daemon.json" in error
    assert "apt-get" not in error


def test_registered_runsc() -> None:
    assert runtime.registration_problems("runsc", {"runc": {}, "runsc": RUNSC_ENTRY}) == (None, [])
    assert runtime.registration_problems("runc", {}) == (None, [])


def test_runsc_with_oci_seccomp_warns() -> None:
    """Debian bookworm's runsc with --oci-seccomp: node cannot create threads in the sandbox."""
    entry = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=host", "--oci-seccomp"]}
    error, warnings = runtime.registration_problems("runsc", {"runsc": entry})
    assert error is None
    assert len(warnings) == 1
    assert "--oci-seccomp" in warnings[0]
    assert "thread creation fail" in warnings[0]


def test_gvisor_by_name_or_binary() -> None:
    assert runtime.is_gvisor("runsc")
    assert runtime.is_gvisor("runsc-kvm")
    assert runtime.is_gvisor("gvisor", {"gvisor": {"path": "/opt/bin/runsc"}})
    assert not runtime.is_gvisor("runc", {"runc": {"path": "runc"}})
    assert not runtime.is_gvisor("kata", {})


def test_check_registered_never_asks_docker_for_runc(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> dict[str, Any]:
        raise AssertionError("docker info called")

    monkeypatch.setattr(runtime, "docker_runtimes", boom)
    assert runtime.check_registered("runc") == []
    monkeypatch.setattr(runtime, "docker_runtimes", lambda: {"runc": {}})
    with pytest.raises(runtime.RuntimeNotRegistered, match="install-gvisor"):
        runtime.check_registered("runsc")
    monkeypatch.setattr(checks, "check_registered", runtime.check_registered)
    with pytest.raises(StackError, match="not registered"):
        checks.require_runtime("runsc")


def test_describe_for_status() -> None:
    assert "Docker's default" in runtime.describe("runc")
    assert "gVisor" in runtime.describe("runsc", {"runsc": RUNSC_ENTRY})
    assert "NOT registered" in runtime.describe("runsc", {})


# --- scripts/install-gvisor.sh merges into daemon.json -------------------------------------------------


def _write_config(daemon: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_DAEMON_JSON": str(daemon), "RUNSC_PATH": "/usr/bin/runsc"}
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "install-gvisor.sh"), "--write-config", *extra],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_install_script_creates_daemon_json(tmp_path: Path) -> None:
    daemon = tmp_path / "docker" / "daemon.json"
    assert _write_config(daemon).returncode == 0
    assert json.loads(daemon.read_text()) == {"runtimes": {"runsc": RUNSC_ENTRY}}


def test_install_script_merges_and_is_idempotent(tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.json"
    original = {"log-driver": "local", "runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}
    daemon.write_text(json.dumps(original))
    assert _write_config(daemon).returncode == 0
    merged = json.loads(daemon.read_text())
    assert merged == {**original, "runtimes": {**original["runtimes"], "runsc": RUNSC_ENTRY}}
    assert json.loads((tmp_path / "daemon.json.bak").read_text()) == original
    again = _write_config(daemon)
    assert again.returncode == 0
    assert "already has runsc" in again.stderr
    assert json.loads(daemon.read_text()) == merged


def test_install_script_fixes_an_existing_entry_keeping_its_choices(tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.json"
    entry = {"path": "/opt/runsc", "runtimeArgs": ["--platform=kvm", "--oci-seccomp"]}
    daemon.write_text(json.dumps({"runtimes": {"runsc": entry}}))
    r = _write_config(daemon)
    assert r.returncode == 0
    assert "removing --oci-seccomp" in r.stderr
    assert json.loads(daemon.read_text())["runtimes"]["runsc"] == {
        "path": "/opt/runsc",
        "runtimeArgs": ["--platform=kvm", "--network=host"],
    }
    daemon.write_text(
        json.dumps({"runtimes": {"runsc": {"path": "/opt/runsc", "runtimeArgs": ["--network=none"]}}})
    )
    r = _write_config(daemon)
    assert "keeping --network=none" in r.stderr
    assert json.loads(daemon.read_text())["runtimes"]["runsc"]["runtimeArgs"] == ["--network=none"]
    assert _write_config(daemon, "--force").returncode == 0
    assert json.loads(daemon.read_text())["runtimes"]["runsc"] == RUNSC_ENTRY


def test_install_script_refuses_a_broken_daemon_json(tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.json"
    daemon.write_text('["not", "an", "object"]')
    r = _write_config(daemon)
    assert r.returncode != 0
    assert "fix it by hand" in r.stderr
    assert daemon.read_text() == '["not", "an", "object"]'


# --- gVisor-aware probes (pure parts) -------------------------------------------------------------------


def _status(ppid: str, **kw: str) -> dict[str, str]:
    base = {"PPid": ppid, "Uid": "1000\t1000\t1000\t1000", "Seccomp": "2"}
    base |= dict.fromkeys(("CapInh", "CapPrm", "CapEff", "CapBnd"), "0000000000000000")
    return base | kw


def test_process_tree_is_pid_1_and_its_descendants() -> None:
    statuses = {
        "1": _status("0"),
        "2": _status("1"),
        "7": _status("2"),
        "16": _status("0"),
        "17": _status("16"),
    }
    assert gvisor_probes.process_tree(statuses) == ["1", "2", "7"]
    assert gvisor_probes.process_tree({"16": _status("0")}) == []


def test_privilege_problems_under_gvisor() -> None:
    tree = {"1": _status("0", Seccomp="0"), "2": _status("1", Seccomp="0")}  # no OCI seccomp inside
    own = _status("0", Seccomp="0")
    nnp = ["no-new-privileges:true"]
    sentry = {"Name": "exe", "Seccomp": "2"}
    assert gvisor_probes.privilege_problems(tree, own, nnp, sentry) == []
    assert gvisor_probes.privilege_problems(tree, own, [], sentry) == [
        "no-new-privileges not requested from the runtime (security options [])"
    ]
    unfiltered = gvisor_probes.privilege_problems(tree, own, nnp, {"Seccomp": "0"})
    assert unfiltered == ["the gVisor sandbox process runs without a seccomp filter (Seccomp=0)"]
    assert (
        "cannot read the gVisor sandbox process" in gvisor_probes.privilege_problems(tree, own, nnp, None)[0]
    )
    weak = {"1": _status("0"), "2": _status("1", CapEff="00000000a80425fb", Uid="0\t0\t0\t0")}
    problems = gvisor_probes.privilege_problems(weak, own, nnp, sentry)
    assert "pid 2 CapEff=00000000a80425fb" in problems
    assert any("pid 2 runs as uid" in p for p in problems)
    exec_root = gvisor_probes.privilege_problems(tree, _status("0", Uid="0\t0\t0\t0"), nnp, sentry)
    assert any(p.startswith("exec runs as uid") for p in exec_root)
    assert gvisor_probes.privilege_problems({}, own, nnp, sentry) == ["cannot read the status of pid 1"]
    hidden = {"1": {"PPid": "0", "Uid": "1000", "Seccomp": "0"}}
    assert gvisor_probes.privilege_problems(hidden, own, nnp, sentry) == ["pid 1: capability sets not shown"]


def test_ipv6_verdict() -> None:
    lo = "00000000000000000000000000000001 01 80 10 80       lo\n"
    link = "fe80000000000000004242fffeac1202 02 40 20 80     eth0\n"
    assert gvisor_probes.ipv6_verdict("1\n", lo) == (True, [])
    assert gvisor_probes.ipv6_verdict("1\n", "") == (True, [])
    assert gvisor_probes.ipv6_verdict("0\n", "") == (False, [])
    assert gvisor_probes.ipv6_verdict("1\n", lo + link) == (False, ["fe80000000000000004242fffeac1202"])


def test_runtime_verdict() -> None:
    ok, detail = gvisor_probes.runtime_verdict("runsc", True, "4.4.0", "6.1.0-28-amd64", "runsc")
    assert ok
    assert "gVisor's user-space kernel" in detail
    assert "4.4.0" in detail
    ok, detail = gvisor_probes.runtime_verdict("runc", False, "6.1.0", "6.1.0", "runc")
    assert ok
    assert "shared" in detail
    ok, detail = gvisor_probes.runtime_verdict("runc", False, "6.1.0", "6.1.0", "runsc")
    assert not ok
    assert "expected runsc" in detail
    ok, detail = gvisor_probes.runtime_verdict("runsc", True, "6.1.0", "6.1.0", None)
    assert not ok
    assert "the host's is 6.1.0" in detail
