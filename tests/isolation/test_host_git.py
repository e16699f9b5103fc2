"""Nothing the agent writes runs on the host: git metadata (superproject, submodule, worktree), the
sandbox-runtime deny set and other agents' instruction files.

The agent runs the way `ccstack claude` runs it (ccstack.agent_session: the workdir's guards as
mounts, placeholders, the audit at the end) in a workdir with a submodule and a linked worktree. It
tries every attack of ``git_attacks.ATTACKS``; then the workdir's owner runs everyday git commands on
the host (status, log, submodule update, checkout; in the superproject, the submodule and the
worktree). A probe passes when no planted command ran AND the same attack, done on the host against a
fresh copy of the repositories, did run its command through the same git commands (the positive
control that keeps the probe honest).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ccstack import agent_session, probes, workdir
from ccstack.compose import run_compose
from git_attacks import ATTACKS, Attack, Owner, make_repositories, markers, run_host_commands

pytestmark = pytest.mark.isolation

UID = 1000
# Writes the agent tries on the deny set and instruction files (paths relative to the workdir).
PROTECTED_WRITES = (
    "CLAUDE.md",
    "CLAUDE.local.md",
    "AGENTS.md",
    "AI_INSTRUCTIONS.md",
    "GEMINI.md",
    "docs/CLAUDE.md",
    ".cursorrules",
    ".cursor/rules/planted.mdc",
    ".github/copilot-instructions.md",
    ".claude/settings.json",
    ".claude/commands/planted.md",
    ".claude/agents/planted.md",
    ".mcp.json",
    ".claude.json",
    ".vscode/tasks.json",
    ".idea/workspace.xml",
    ".devcontainer/devcontainer.json",
    ".gitmodules",
    ".gitconfig",
    ".bashrc",
    ".zshrc",
    ".profile",
    ".ripgreprc",
)
MOVES = (("docs", "docs.moved"), (".github", "github.moved"), ("libs", "libs.moved"), (".git", "git.moved"))


@dataclass
class SandboxRun:
    base: Path
    owner: Owner
    marker_dir: Path
    plants: dict[str, str]  # attack -> what happened inside the agent
    writes: dict[str, str]  # protected path -> what happened
    moves: dict[str, str]
    control_write: str
    before: dict[str, str | None]  # protected path -> sha256 on the host before the session
    after: dict[str, str | None]
    findings: list[workdir.Finding]
    host_commands: list[str]
    mountpoints: set[str]


def _digest(path: Path) -> str | None:
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return "dir" if path.is_dir() else None


def _sh(agent: str, script: str, marker_dir: Path) -> str:
    r = probes.docker(
        "exec", "-u", f"{UID}:{UID}", "-e", "R=/workspace", "-e", f"M={marker_dir}", agent, "sh", "-c", script
    )
    err = (r.stderr.strip().splitlines() or [""])[-1][:140]
    return f"exit {r.returncode}{': ' + err if err else ''}"


@pytest.fixture(scope="module")
def sandbox_run(iso) -> Iterator[SandboxRun]:
    # Not under pytest's (0700, root's) temp directory: the owner must reach the repositories.
    base = Path(tempfile.mkdtemp(prefix="ccsandbox-host-git-"))
    base.chmod(0o755)
    owner = Owner(UID, base / "home")
    work = make_repositories(base, owner)
    marker_dir = base / "markers"
    marker_dir.mkdir()
    owner.chown(marker_dir)
    before = {p: _digest(work / p) for p in PROTECTED_WRITES}

    prepared = agent_session.prepare(iso.paths, work, UID, UID)
    agent = f"ccsandbox-iso-git-{secrets.token_hex(4)}"
    state = agent_session.session_state(iso.state, prepared)
    findings: list[workdir.Finding] = []
    try:
        r = run_compose(
            iso.paths,
            state,
            ["run", "--detach", "--name", agent, "claude-sandbox", "sleep", "infinity"],
            capture=True,
            env={"CCSANDBOX_WORKDIR": str(work)},
            check=False,
        )
        assert r.returncode == 0, r.stderr[-3000:]
        mountinfo = probes.exec_op(agent, {"op": "read", "path": "/proc/self/mountinfo"})
        mountpoints = {m[0] for m in probes.parse_mountinfo(mountinfo.get("text", ""))}
        plants = {a.name: _sh(agent, a.script, marker_dir) for a in ATTACKS}
        writes = {
            p: _sh(agent, f'mkdir -p "$(dirname "$R/{p}")" && printf "planted\\n" >> "$R/{p}"', marker_dir)
            for p in PROTECTED_WRITES
        }
        moves = {f"{a} -> {b}": _sh(agent, f'mv "$R/{a}" "$R/{b}"', marker_dir) for a, b in MOVES}
        control_write = _sh(agent, 'printf "fine\\n" > "$R/notes.md"', marker_dir)
    finally:
        probes.docker("rm", "-f", agent)
        findings = agent_session.finish(iso.paths, prepared)
    after = {p: _digest(work / p) for p in PROTECTED_WRITES}
    host_commands = run_host_commands(base, owner)
    yield SandboxRun(
        base,
        owner,
        marker_dir,
        plants,
        writes,
        moves,
        control_write,
        before,
        after,
        findings,
        host_commands,
        mountpoints,
    )
    if os.environ.get("CCSANDBOX_ISO_KEEP") != "1":
        shutil.rmtree(base, ignore_errors=True)


def _control(attack: Attack, base: Path, owner: Owner) -> set[str]:
    """The attack done by the owner on the host against fresh repositories: which markers appear."""
    root = base / f"control-{attack.name}"
    work = make_repositories(root, owner)
    marker_dir = root / "markers"
    marker_dir.mkdir()
    owner.chown(marker_dir)
    owner.run(["sh", "-c", attack.script], root, env={"R": str(work), "M": str(marker_dir)})
    run_host_commands(root, owner)
    return markers(marker_dir)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_nothing_planted_in_git_metadata_runs_on_the_host(
    sandbox_run: SandboxRun, attack: Attack, record
) -> None:
    control = _control(attack, sandbox_run.base, sandbox_run.owner)
    ran = attack.name in markers(sandbox_run.marker_dir)
    detail = (
        f"{attack.what}; in the agent: {sandbox_run.plants[attack.name]}; "
        f"host git afterwards ran it: {'YES' if ran else 'no'}"
    )
    record(
        probes.ProbeResult(f"host-git-{attack.name}", "host code", not ran, detail, attack.name in control)
    )
    assert attack.name in control, f"positive control: the attack does not work on the host ({control})"
    assert not ran, detail


def test_host_git_commands_really_ran(sandbox_run: SandboxRun) -> None:
    """Git on the host did not refuse the repositories (which would make the probes vacuous). The
    agent's gitlink stays in the index (its repository is quarantined), so the submodule commands may
    complain about it; status, log and checkout must succeed everywhere."""
    lines = sandbox_run.host_commands
    refusals = ("dubious ownership", "not a git repository", "denied")
    refused = [x for x in lines if any(s in x for s in refusals)]
    assert not refused, refused
    for line in lines:
        if " submodule " not in line:
            assert " -> 0" in line, line


def test_agent_made_git_metadata_is_quarantined(sandbox_run: SandboxRun, record) -> None:
    moved = {f.path for f in sandbox_run.findings}
    ok = {"evilnest/.git", ".git/commondir"} <= moved and all(f.moved_to for f in sandbox_run.findings)
    record(
        probes.ProbeResult("quarantine-new-git-metadata", "host code", ok, f"quarantined: {sorted(moved)}")
    )
    assert ok, sandbox_run.findings


def test_deny_set_and_instruction_files_are_read_only(sandbox_run: SandboxRun, record) -> None:
    written = {p: w for p, w in sandbox_run.writes.items() if w.startswith("exit 0")}
    changed = [p for p in PROTECTED_WRITES if sandbox_run.before[p] != sandbox_run.after[p]]
    moved = {m: r for m, r in sandbox_run.moves.items() if r.startswith("exit 0")}
    control = sandbox_run.control_write.startswith("exit 0")
    detail = (
        f"{len(PROTECTED_WRITES) - len(written)} of {len(PROTECTED_WRITES)} writes refused; "
        f"changed on the host: {changed or 'none'}; moved aside: {sorted(moved) or 'none'}; "
        f"unprotected write: {sandbox_run.control_write}"
    )
    record(
        probes.ProbeResult(
            "write-deny-set", "files", not written and not changed and not moved, detail, control
        )
    )
    assert control, "positive control: the agent cannot write the workdir at all"
    assert not written, written
    assert not changed, changed
    assert not moved, moved


def test_placeholders_are_gone_and_existing_files_untouched(sandbox_run: SandboxRun) -> None:
    work = sandbox_run.base / "work"
    for p in ("CLAUDE.md", "AGENTS.md", ".vscode", ".github", ".cursor", ".bashrc", ".mcp.json"):
        assert not (work / p).exists(), f"placeholder {p} left behind"
    assert (work / "docs" / "CLAUDE.md").read_text() == "be careful\n"
    assert (work / "notes.md").read_text() == "fine\n"


def test_guards_are_mount_points_in_the_agent(sandbox_run: SandboxRun) -> None:
    for p in (
        ".git",
        ".git/config",
        ".git/hooks",
        ".git/modules",
        ".git/worktrees",
        "libs",
        "libs/sub",
        "libs/sub/.git",
        "docs/CLAUDE.md",
        "CLAUDE.md",
        ".gitmodules",
        "project.gitconfig",
        "libs/hooked/.githooks",
    ):
        assert f"/workspace/{p}" in sandbox_run.mountpoints, p
