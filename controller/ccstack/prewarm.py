"""`ccstack prewarm` (`ccstack up local --prewarm`): Claude Code's prefix processed once and saved.

Claude Code's first request of a session carries its system prompt and tools (~20 k tokens), which a
CPU needs minutes to prefill. The proxy keeps that prefix in llama-server's slot files (ccproxy's
prefix cache): the first session ever processes and saves it, later sessions and restarts restore it
in a second. Prewarming moves that first, slow time to `up`, where it shows progress:

1. Run the sandbox's real CLI in its interactive mode (as `ccstack claude` does, through a
   pseudo-terminal) on an empty throwaway workdir with a one-line prompt, then as `claude -p` and as
   `claude -p --dangerously-skip-permissions` (each has a prefix of its own: RUNS). Its first request
   is exactly what a session sends: same CLI, settings, system prompt and tools. Its state (sessions, prompt
   history) goes to a tmpfs, not to the agent's state volume.
2. Watch the proxy's `ccproxy_prefix_cache_total` counter: once it reports the prefix restored, saved or
   already in the slot, stop the CLI (Ctrl-C), before anything is generated.

The prefix only matches later sessions when it does not vary between them (ccproxy's default prompt
layout moves the date, working directory and git status after it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from ccstack.compose import compose_base, compose_env, run_compose
from ccstack.errors import StackError
from ccstack.modes import MODES, parse_mode
from ccstack.overlay import SESSION_HEADER, Override, dump_yaml, session_overlay
from ccstack.policy import load_policies
from ccstack.state import Paths, State, load_state

PROMPT = "Reply with the single word OK."
RUNS = (
    ("interactive", ("claude", PROMPT)),
    ("claude -p", ("claude", "-p", PROMPT)),
    ("claude -p --dangerously-skip-permissions", ("claude", "-p", "--dangerously-skip-permissions", PROMPT)),
)
"""The CLI's ways of running, each with a prefix of its own: interactive and ``-p`` differ in the first
line of the system text, and bypass permissions (how ``-p`` runs tools unattended) adds a note to the
environment message and shortens the Bash tool's description (tests/fixtures/claude_code/
permission_modes). The prompt layout leaves that note where the CLI puts it: moved next to the user's
prompt, it steered the 0.5B model to `cat` and `sed` (bench/results/tasks/archive)."""
_POLL = 2.0
"""Seconds between two reads of the proxy's counters."""
READY = ("restored", "saved", "warm", "kept")
"""Outcomes after which the prefix is in a slot (and, except warm/kept, in a file)."""
FAILED = ("save_failed", "save_skipped", "error", "unsupported")
MESSAGES = {
    "restored": "restored from its slot file",
    "saved": "processed and saved: later sessions and restarts restore it",
    "warm": "already in llama-server's slot",
    "kept": "the slot already holds a prompt at least as long (left as is)",
    "save_failed": "processed, but the slot file could not be saved (see `ccstack logs proxy`)",
    "save_skipped": "processed, but not saved: the proxy saved its maximum of prefixes in this run",
    "error": "the proxy could not prepare the prefix (see `ccstack logs proxy`)",
    "unsupported": "llama-server runs without a slot-save path: nothing to keep",
}
_COUNTER = re.compile(r'^ccproxy_prefix_cache_total\{[^}]*result="(\w+)"[^}]*\} ([0-9.e+]+)$', re.MULTILINE)
_READ_METRICS = (
    "import urllib.request as u; "
    "print(u.urlopen('http://127.0.0.1:8787/metrics', timeout=10).read().decode())"
)
_ANSI = re.compile(
    rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>]"
)


def prefix_counts(metrics: str) -> dict[str, float]:
    """ccproxy's prefix-cache counters from its /metrics text."""
    return {m.group(1): float(m.group(2)) for m in _COUNTER.finditer(metrics)}


def outcome(before: Mapping[str, float], after: Mapping[str, float]) -> str | None:
    """The first ready or failed outcome counted since `before` (None: still working)."""
    for result in (*READY, *FAILED):
        if after.get(result, 0.0) > before.get(result, 0.0):
            return result
    return None


def screen_text(output: bytes, limit: int = 1500) -> str:
    """The end of what the CLI printed, without terminal control sequences."""
    return _ANSI.sub(b"", output).decode("utf-8", "replace")[-limit:].strip()


def prewarm(paths: Paths, *, timeout: float = 1800, say: Callable[[str], None] = print) -> list[str]:
    """Prewarm the running stack, for each of RUNS; returns the outcomes (StackError when one fails)."""
    state = load_state(paths)
    if not parse_mode(state.mode).prewarm:
        modes = ", ".join(m.name for m in MODES.values() if m.prewarm)
        raise StackError(
            f"prewarm keeps llama-server's prefix: mode {modes} only (the stack runs {state.mode})"
        )
    workdir = Path(tempfile.mkdtemp(prefix="prewarm-", dir=paths.state_dir))
    overlay = paths.state_dir / f"prewarm-{workdir.name}.yaml"
    results = []
    try:
        uid, gid = int(state.env["CCSANDBOX_UID"]), int(state.env["CCSANDBOX_GID"])
        if os.geteuid() == 0:
            os.chown(workdir, uid, gid)
        overlay.write_text(_overlay(paths, workdir), encoding="utf-8")
        run_state = replace(state, files=[*state.files, str(overlay)])
        env = compose_env(run_state, {"CCSANDBOX_WORKDIR": str(workdir)})
        for label, args in RUNS:
            before = prefix_counts(proxy_metrics(paths, state))
            name = f"{state.project}-prewarm-{uuid.uuid4().hex[:8]}"
            cmd = [*compose_base(paths, run_state), "run", "--rm", "--name", name, "claude-sandbox", *args]
            say(
                f"prewarm: sending Claude Code's first request ({label}: the sandbox's CLI, an empty workdir)"
            )
            results.append(
                _watch(
                    cmd, env, name, lambda: prefix_counts(proxy_metrics(paths, state)), before, timeout, say
                )
            )
    finally:
        overlay.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def _counts(paths: Paths, state: State) -> dict[str, float]:
    return prefix_counts(proxy_metrics(paths, state))


def _overlay(paths: Paths, workdir: Path) -> str:
    """The agent's mounts for the prewarm run: the workdir and managed settings, its state on tmpfs."""
    policies = load_policies(paths.repo / "policies")
    managed = str(paths.repo / "claude-sandbox" / "managed-settings.json")
    data = session_overlay([], policies, workdir=str(workdir), managed_settings=managed)
    sandbox = data["services"]["claude-sandbox"]
    mounts = [m for m in sandbox["volumes"].value if m.get("source") != "claude-state"]
    sandbox["volumes"] = Override([*mounts, {"type": "tmpfs", "target": "/home/claude/.claude"}])
    return dump_yaml(data, SESSION_HEADER)


def _watch(
    cmd: list[str],
    env: Mapping[str, str],
    name: str,
    counts: Callable[[], dict[str, float]],
    before: Mapping[str, float],
    timeout: float,
    say: Callable[[str], None],
) -> str:
    started = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:  # the child: docker compose run, on the pseudo-terminal
        try:
            os.execvpe(cmd[0], cmd, dict(env))
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    output = bytearray()
    result: str | None = None
    exited = False
    next_check, next_report = started + _POLL, started + 30
    try:
        while result is None:
            now = time.monotonic()
            if now - started > timeout:
                raise StackError(f"prewarm: no prefix outcome from the proxy after {timeout:.0f} s")
            if _drain(fd, output) is None:
                exited = True
                break
            if now >= next_check:
                next_check = now + _POLL
                result = outcome(before, counts())
            if result is None and now >= next_report:
                next_report = now + 30
                say(f"prewarm: preparing the prefix ... {now - started:.0f} s (the first time takes minutes)")
        if result is None:
            result = outcome(before, counts())
        if result is None:
            raise StackError(
                f"prewarm: the CLI ended before the proxy saw its prefix:\n{screen_text(bytes(output))}"
            )
    finally:
        if not exited:
            _stop(pid, fd, name, output)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        os.close(fd)
    message = f"prewarm: Claude Code's prefix {MESSAGES[result]} ({time.monotonic() - started:.0f} s)"
    if result in FAILED:
        raise StackError(message)
    say(message)
    return result


def _drain(fd: int, output: bytearray) -> int | None:
    """Read what the CLI printed (kept: the last 64 KB) for up to a second; None once it has exited."""
    ready, _, _ = select.select([fd], [], [], min(1.0, _POLL))
    if not ready:
        return 0
    try:
        data = os.read(fd, 65536)
    except OSError:  # EIO: the other side of the terminal is closed
        return None
    if not data:
        return None
    output += data
    del output[:-65536]
    return len(data)


def _stop(pid: int, fd: int, name: str, output: bytearray) -> None:
    """Ctrl-C until the CLI quits (the first one also cancels its request); then by force."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            os.write(fd, b"\x03")
        for _ in range(2):
            if _drain(fd, output) is None:
                return
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def proxy_metrics(paths: Paths, state: State) -> str:
    """The proxy's /metrics, read inside its container (no host route to the stack's networks needed)."""
    r = run_compose(
        paths, state, ["exec", "-T", "proxy", "python", "-c", _READ_METRICS], capture=True, check=False
    )
    if r.returncode != 0:
        raise StackError(
            f"prewarm: cannot read the proxy's metrics (is the stack up?): {r.stderr.strip()[-500:]}"
        )
    return r.stdout
