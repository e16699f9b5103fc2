"""The isolation suite's fixtures: the real stack (openrouter mode against a fake OpenRouter) plus the
fake internet (compose.fakenet.yaml), a host listener, and a session-wide table of probe results.

The whole suite runs once per agent runtime: ``iso`` is parametrized over RUNTIMES (``runc``, Docker's
default, then ``runsc``, gVisor), so every test that uses it — or a fixture built on it — runs under
both, with the runtime in its name (``test_privileges[runsc]``). ``CCSANDBOX_ISO_RUNTIMES=runc``
restricts the run (e.g. on a machine without gVisor); ``-k runsc`` picks one pass. The probe table
is written per runtime.

The stack comes up through the controller's own code (``ccstack.commands.prepare`` with the test overlays
as extra Compose files), the way ``ccstack up openrouter`` brings it up, with:
  - the upstream pointed at the scripted upstream standing in for OpenRouter (it records the
    ``Authorization`` it receives: the positive control of the key probes), a random upstream key;
  - the registries policy on, with an allowlist of fake names (registry.fake.test ...);
  - every resolver of the stack forwarding to the fake DNS and the egress network made internal,
    so no probe can leave the machine whatever the outcome.
Docker missing or broken is a loud failure, never a skip.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ccstack import probes, runtime
from ccstack.commands import UpRequest, prepare
from ccstack.compose import run_compose
from ccstack.egress import render_squid_conf
from ccstack.state import Paths, State, save_state
from harness import Process, free_port
from harness.containers import ContainerError, docker_client, image_exists, require_image

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PROJECT = "ccsandbox-iso"
OVERLAYS = (HERE / "compose.fakenet.yaml", HERE / "compose.fakenet-egress.yaml")
TEST_ALLOWLIST = ("registry.fake.test", "allowed-canary.fake.test", "rebind.fake.test")
AGENT_UID = 1000
FAKE_SERVICES = ["canary", "fake-dns", "fake-registry", "control"]
REPORT = REPO / ".stack" / "isolation-report.txt"

NET = probes.FakeInternet(
    canary=probes.Endpoint(f"{PROJECT}-canary-1", "198.18.0.10", "2001:db8:18::10"),
    dns=probes.Endpoint(f"{PROJECT}-fake-dns-1", "198.18.0.53", "2001:db8:18::53"),
    registry=probes.Endpoint(f"{PROJECT}-fake-registry-1", "198.18.0.20", "2001:db8:18::20"),
    canary_private_ipv4="10.213.0.10",
)

RUNTIMES = tuple(
    r.strip() for r in os.environ.get("CCSANDBOX_ISO_RUNTIMES", "runc,runsc").split(",") if r.strip()
)

COLLECTED: list[tuple[str, probes.ProbeResult]] = []  # (agent runtime, result)
_ACTIVE: dict[str, str] = {}  # "runtime": the runtime of the stack the tests run against right now


class Recorder:
    """Adds probe results to the session table (printed at the end and written to REPORT), under the
    runtime of the stack that is up (pytest runs one ``iso`` instance at a time)."""

    def __call__(self, *results: probes.ProbeResult) -> None:
        COLLECTED.extend((_ACTIVE.get("runtime", "-"), r) for r in results)


@pytest.fixture(scope="session")
def record() -> Recorder:
    return Recorder()


@pytest.fixture(scope="session")
def net() -> probes.FakeInternet:
    return NET


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not COLLECTED:
        return
    sections = []
    for rt in dict.fromkeys(r for r, _ in COLLECTED):
        table = probes.format_table([res for r, res in COLLECTED if r == rt], width=160)
        terminalreporter.write_sep("=", f"isolation probes, agent runtime {rt}")
        terminalreporter.write_line(table)
        sections.append(f"agent runtime: {rt}\n{table}\n")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(sections), encoding="utf-8")
    terminalreporter.write_line(f"(written to {REPORT})")


def _run(*cmd: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and r.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r


def _base(var: str, official: str, local: str) -> str:
    """The base image for a build: the env var, else a local stand-in when the official one is absent."""
    if os.environ.get(var):
        return os.environ[var]
    if not image_exists(official) and image_exists(local):
        return local
    return official


@pytest.fixture(scope="session")
def docker_ready() -> None:
    try:
        docker_client()
        for image in (
            "ccsandbox/proxy:local",
            "ccsandbox/claude-sandbox:local",
            "ccsandbox/scripted-upstream:local",
        ):
            require_image(image)
    except ContainerError as e:
        pytest.fail(f"the isolation suite: {e}", pytrace=False)


def _build_test_images() -> None:
    """The fake internet's image and (if missing) the egress proxy's, from local bases when needed."""
    python = _base("PYTHON_IMAGE", "python:3.12-slim-bookworm", "local/python:3.11-bookworm")
    _run(
        "docker",
        "build",
        "-q",
        "--build-arg",
        f"PYTHON_IMAGE={python}",
        "-t",
        "ccsandbox-test/fakenet:local",
        str(HERE / "fakenet"),
    )
    if not image_exists("ccsandbox/egress-proxy:local"):
        debian = _base("DEBIAN_IMAGE", "debian:bookworm-slim", "local/debian:bookworm")
        _run(
            "docker",
            "build",
            "-q",
            "--build-arg",
            f"DEBIAN_IMAGE={debian}",
            "-t",
            "ccsandbox/egress-proxy:local",
            str(REPO / "egress-proxy"),
        )


@dataclass
class IsoStack:
    paths: Paths
    state: State
    sandbox: probes.Sandbox
    workdir: Path
    key: str
    token: str
    control: str
    proxy: str
    upstream: str
    egress: str
    runtime: str  # the agent's OCI runtime (runc, runsc)

    def compose(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_compose(self.paths, self.state, list(args), capture=True, env=env)


def _wait_running(container: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = _run("docker", "inspect", "-f", "{{.State.Running}}", container, check=False)
        if r.stdout.strip() == "true":
            return
        time.sleep(0.5)
    logs = _run("docker", "logs", container, check=False)
    pytest.fail(f"{container} is not running:\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}")


def _require_runtime(name: str) -> None:
    try:
        runtime.check_registered(name)
    except runtime.RuntimeNotRegistered as e:
        pytest.fail(
            f"the isolation suite runs the agent under {name} as well: {e}\n"
            "(scripts/test.sh installs it when run as root; CCSANDBOX_ISO_RUNTIMES=runc skips that pass)",
            pytrace=False,
        )


@pytest.fixture(scope="session", params=RUNTIMES)
def iso(
    request: pytest.FixtureRequest, docker_ready: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IsoStack]:
    """The stack with the agent under ``request.param`` (one instance up at a time)."""
    agent_runtime: str = request.param
    _require_runtime(agent_runtime)
    _build_test_images()
    state_dir = tmp_path_factory.mktemp("iso-state")
    workdir = tmp_path_factory.mktemp("iso-work")
    _run("git", "init", "-q", str(workdir))
    (workdir / "README.md").write_text("isolation test workdir\n", encoding="utf-8")
    key = "sk-or-v1-" + secrets.token_hex(24)
    key_file = state_dir / "upstream-key-input"
    key_file.write_text(key + "\n", encoding="utf-8")
    environ = {**os.environ, "CCSANDBOX_UID": str(AGENT_UID), "CCSANDBOX_GID": str(AGENT_UID)}
    if os.getuid() == 0:
        for p in [workdir, *workdir.rglob("*")]:
            os.lchown(p, AGENT_UID, AGENT_UID)
    paths = Paths(repo=REPO, state_dir=state_dir)
    req = UpRequest(
        mode="openrouter",
        upstream="http://scripted-upstream:8080/v1",
        model="scripted",
        key_file=str(key_file),
        project=PROJECT,
        extra_files=tuple(str(o) for o in OVERLAYS),
        runtime=agent_runtime,
    )
    _mode, _rendered, state = prepare(paths, req, environ)
    key_file.unlink()
    paths.squid_conf.parent.mkdir(parents=True, exist_ok=True)
    paths.squid_conf.write_text(render_squid_conf(TEST_ALLOWLIST), encoding="utf-8")
    for profile in ("test", "registries", "agent"):
        if profile not in state.profiles:
            state.profiles.append(profile)
    state.env.update({"CCSANDBOX_UID": str(AGENT_UID), "CCSANDBOX_GID": str(AGENT_UID)})
    save_state(paths, state)  # what `ccstack verify --state-dir` reads
    run_env = {"CCSANDBOX_WORKDIR": str(workdir)}
    agent = f"{PROJECT}-agent"
    try:
        run_compose(
            paths,
            state,
            ["down", "--volumes", "--remove-orphans", "-t", "1"],
            capture=True,
            env=run_env,
            check=False,
        )
        _run("docker", "rm", "-f", agent, check=False)
        r = run_compose(
            paths,
            state,
            [
                "up",
                "--detach",
                "--wait",
                "--wait-timeout",
                "300",
                "proxy",
                "scripted-upstream",
                "egress-proxy",
                *FAKE_SERVICES,
            ],
            capture=True,
            env=run_env,
            check=False,
        )
        if r.returncode != 0:
            ps = run_compose(paths, state, ["ps", "-a"], capture=True, env=run_env, check=False)
            pytest.fail(f"the stack did not come up:\n{r.stderr[-4000:]}\n{ps.stdout}")
        # The agent, started the way `ccstack claude` starts it (compose run), with a long-lived command.
        r = run_compose(
            paths,
            state,
            ["run", "--detach", "--name", agent, "claude-sandbox", "sleep", "infinity"],
            capture=True,
            env=run_env,
            check=False,
        )
        if r.returncode != 0:
            pytest.fail(f"could not start the agent container:\n{r.stderr[-4000:]}")
        _wait_running(agent)
        token = (state_dir / "secrets" / "proxy_token").read_text(encoding="utf-8").strip()
        sandbox = probes.Sandbox(
            agent=agent,
            proxy=f"{PROJECT}-proxy-1",
            host_workdir=workdir,
            expected_uid=AGENT_UID,
            extra_mounts=(
                "/etc/claude-code/managed-settings.json",
                "/home/claude/.claude",
                "/run/secrets/proxy_token",
            ),
            agent_network=f"{PROJECT}_agent",
        )
        _ACTIVE["runtime"] = agent_runtime
        yield IsoStack(
            paths=paths,
            state=state,
            sandbox=sandbox,
            workdir=workdir,
            key=key,
            token=token,
            control=f"{PROJECT}-control-1",
            proxy=f"{PROJECT}-proxy-1",
            upstream=f"{PROJECT}-scripted-upstream-1",
            egress=f"{PROJECT}-egress-proxy-1",
            runtime=agent_runtime,
        )
    finally:
        _ACTIVE.clear()
        if os.environ.get("CCSANDBOX_ISO_KEEP") != "1":
            _run("docker", "rm", "-f", agent, check=False)
            run_compose(
                paths,
                state,
                ["down", "--volumes", "--remove-orphans", "-t", "1"],
                capture=True,
                env=run_env,
                check=False,
            )


# --- the host listener ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def host_listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[probes.HostListener]:
    """A logging listener on the host's 0.0.0.0 and [::] (TCP and UDP), like a local model server."""
    work = tmp_path_factory.mktemp("host-listener")
    log = work / "events.jsonl"
    port = free_port("::")  # free on every IPv4 and IPv6 address
    argv = [sys.executable, "-u", str(HERE / "fakenet" / "fakenet.py"), "canary"]
    argv += ["--bind", "0.0.0.0", "--bind", "::", "--tcp", str(port), "--udp", str(port), "--log", str(log)]
    proc = Process("host-listener", argv, work / "listener.out").start()
    listener = probes.HostListener(port=port, log_path=log)
    try:
        deadline = time.monotonic() + 10
        while not listener.log.alive():
            if not proc.alive() or time.monotonic() > deadline:
                pytest.fail(f"the host listener did not start: {proc.tail()}")
            time.sleep(0.1)
        yield listener
    finally:
        proc.stop()
