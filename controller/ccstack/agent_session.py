"""One agent session (`ccstack claude DIR`): protect the workdir, run Claude Code in the sandbox,
then audit what the agent left that git on the host would trust.

    prepare(...)  scan the workdir, plan its guards (ccstack.protection), create placeholders, write
                  the session's Compose overlay (its mounts), snapshot the git metadata
    run compose   `docker compose run claude-sandbox` with that overlay
    finish(...)   quarantine new git metadata, remove untouched placeholders, delete the overlay

A session ended by its terminal closing (SIGHUP) or by `kill` (SIGTERM) ends the same way: the agent's
container is removed first — nothing may write into the workdir once the audit starts — then finish.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from ccstack import protection, workdir
from ccstack.checks import check_docker, require_runtime
from ccstack.compose import run_compose
from ccstack.errors import StackError
from ccstack.overlay import SESSION_HEADER, dump_yaml, session_overlay
from ccstack.policy import Policies, load_policies
from ccstack.state import Paths, State, load_state


@dataclass(frozen=True)
class Prepared:
    session: workdir.Session
    protection: protection.Protection
    overlay: Path
    leftovers: tuple[workdir.Finding, ...]  # what a crashed earlier session left, now quarantined


def prepare(paths: Paths, wd: Path, uid: int, gid: int, policies: Policies | None = None) -> Prepared:
    """Everything before `compose run`: raises StackError when the workdir cannot be protected."""
    state_dir = paths.state_dir.resolve()
    if state_dir == wd or wd in state_dir.parents:
        raise StackError(
            f"refusing to mount {wd}: it holds the stack's state directory {state_dir} (its secrets, "
            "the upstream key, the quarantine). Mount a project directory, or set CCSANDBOX_STATE_DIR "
            "outside it."
        )
    policies = policies or load_policies(paths.repo / "policies")
    try:
        plan = protection.plan(workdir.scan(wd, policies.mounts), policies.mounts)
    except ValueError as e:
        raise StackError(str(e)) from None
    links = workdir.links_in_the_way(wd, plan)
    if links:
        raise StackError(
            f"protected paths of {wd} that are (or lie below) a symbolic link or a file: {', '.join(links)}. "
            "A read-only mount would follow the link out of the workdir, and a link cannot be made "
            "read-only. Replace each by a copy (a real file or directory), or let the agent write it "
            "(`writable:` in policies/mounts.yaml)."
        )
    try:
        session, leftovers = workdir.open_session(paths.sessions, wd, plan, uid, gid, paths.quarantine)
    except workdir.WorkdirBusy as e:
        raise StackError(str(e)) from None
    overlay = paths.state_dir / f"session-{session.session_id}.yaml"
    excludes = excludes_file(paths, session)
    excludes.write_text(protection.git_excludes(session.placeholder_files), encoding="utf-8")
    excludes.chmod(0o644)  # the agent's uid reads it through the bind mount
    volumes = protection.compose_volumes(plan, str(wd))
    data = session_overlay(
        volumes,
        policies,
        workdir=str(wd),
        managed_settings=str(paths.repo / "claude-sandbox" / "managed-settings.json"),
        git_excludes=str(excludes),
    )
    overlay.write_text(dump_yaml(data, SESSION_HEADER), encoding="utf-8")
    return Prepared(session, plan, overlay, tuple(leftovers))


def excludes_file(paths: Paths, session: workdir.Session) -> Path:
    """The host file behind the sandbox's ``core.excludesFile`` for this session."""
    return paths.state_dir / f"session-{session.session_id}.gitignore"


def finish(paths: Paths, prepared: Prepared) -> list[workdir.Finding]:
    """Everything after the session: the audit's findings (already moved to the quarantine)."""
    try:
        return workdir.close_session(prepared.session, paths.quarantine)
    finally:
        prepared.overlay.unlink(missing_ok=True)
        excludes_file(paths, prepared.session).unlink(missing_ok=True)


def session_state(state: State, prepared: Prepared) -> State:
    """The stack's state with the session overlay as the last Compose file."""
    return State(**{**state.__dict__, "files": [*state.files, str(prepared.overlay)]})


def report(findings: Sequence[workdir.Finding], *, when: str) -> str:
    if not findings:
        return ""
    lines = [f"ccstack: {when}, the agent had created git metadata that git on your host would trust:"]
    lines += [f"  {f.path}: {f.what}\n    moved to {f.moved_to}" for f in findings]
    lines.append("  Inspect it before you move anything back (its config and hooks run commands).")
    return "\n".join(lines)


class SessionSignal(Exception):
    """SIGHUP or SIGTERM arrived while the agent ran."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


ENDING_SIGNALS = (signal.SIGHUP, signal.SIGTERM)


@contextlib.contextmanager
def ended_by_signals() -> Iterator[None]:
    """SIGHUP/SIGTERM raise SessionSignal (so `finally` blocks run); later ones are ignored, so that
    the cleanup they started cannot itself be cut short."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        for s in ENDING_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        raise SessionSignal(signum)

    previous = {s: signal.signal(s, handler) for s in ENDING_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def agent_container(state: State, prepared: Prepared) -> str:
    """The name of the session's sandbox container (`compose run --name`), unique per session."""
    return f"{state.project}-agent-{prepared.session.session_id}"


def remove_container(name: str) -> None:
    """Remove the agent's container if it still exists (a no-op after a normal `run --rm`)."""
    subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)


def claude(paths: Paths, wd_arg: str, claude_args: Sequence[str], *, tty: bool | None = None) -> int:
    """Run the agent in the sandbox with the workdir mounted at /workspace; returns its exit code."""
    check_docker()
    state = load_state(paths)
    # e.g. runsc unregistered since `up`
    for warning in require_runtime(state.extra.get("runtime") or "runc"):
        print(f"ccstack: warning: {warning}", file=sys.stderr)
    wd = Path(wd_arg).expanduser().resolve()
    if not wd.is_dir():
        raise StackError(f"workdir {wd_arg} is not a directory")
    if wd == Path.home().resolve() or wd == Path("/"):
        raise StackError(f"refusing to mount {wd}: mount a project directory, not your home or /")
    uid, gid = int(state.env["CCSANDBOX_UID"]), int(state.env["CCSANDBOX_GID"])
    with ended_by_signals():
        try:
            return _run(paths, state, wd, uid, gid, claude_args, tty)
        except SessionSignal as e:
            with contextlib.suppress(OSError):  # stderr may be the terminal that just closed
                print(f"ccstack: {e} received: the session's container was removed", file=sys.stderr)
            return 128 + e.signum


def _run(
    paths: Paths, state: State, wd: Path, uid: int, gid: int, claude_args: Sequence[str], tty: bool | None
) -> int:
    prepared = prepare(paths, wd, uid, gid)
    if prepared.leftovers:
        when = "after an earlier session that did not end cleanly"
        print(report(prepared.leftovers, when=when), file=sys.stderr)
    interactive = sys.stdin.isatty() and sys.stdout.isatty() if tty is None else tty
    name = agent_container(state, prepared)
    args = ["run", "--rm", "--name", name] + ([] if interactive else ["-T"]) + ["claude-sandbox"]
    if claude_args:
        args += ["claude", *claude_args]
    try:
        r = run_compose(
            paths, session_state(state, prepared), args, env={"CCSANDBOX_WORKDIR": str(wd)}, check=False
        )
    finally:
        remove_container(name)
        findings = finish(paths, prepared)
        if findings:
            with contextlib.suppress(OSError):
                print(report(findings, when="when the session ended"), file=sys.stderr)
    return r.returncode
