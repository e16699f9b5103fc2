"""The workdir around a sandbox session (I/O): scan it, create the placeholders its protective mounts
need, remove them afterwards, and quarantine git metadata the agent created.

``ccstack claude`` does, in order::

    session = open_session(paths.sessions, workdir, protection, uid, gid)   # placeholders, snapshot
    ... docker compose run claude-sandbox (the guards as bind mounts, ccstack.protection) ...
    findings = close_session(session, quarantine_dir)                        # audit, cleanup

The decisions are in :mod:`ccstack.protection` (pure); this module only reads and changes files.
One session per workdir, recorded under ``.stack/sessions/`` (guarded by ``flock``): a crashed
session's audit and placeholders are finished by the next one. Guarded paths that are (or lie below)
a symbolic link refuse the session (:func:`links_in_the_way`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccstack.policy import MountPolicy
from ccstack.protection import (
    GIT_DIR_RULES,
    EntryKind,
    Protection,
    WorkdirScan,
    config_paths,
    git_config_values,
    worktree_of,
)

MCP_PLACEHOLDER = '{\n  "mcpServers": {}\n}\n'


def _kind(path: Path) -> EntryKind | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "link"
    return "dir" if stat.S_ISDIR(st.st_mode) else "file"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def walk(root: Path) -> Iterator[tuple[str, list[os.DirEntry[str]]]]:
    """(relative dir, its entries) for every directory below ``root``; never follows symlinks and
    never enters a ``.git``."""
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(root / rel if rel else root) as it:
                listing = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        yield rel, listing
        for e in reversed(listing):
            if e.name != ".git" and e.is_dir(follow_symlinks=False):
                stack.append(f"{rel}/{e.name}" if rel else e.name)


def git_entries(root: Path) -> dict[str, EntryKind]:
    """Every ``.git`` entry in the workdir (the top one included), by relative path."""
    found: dict[str, EntryKind] = {}
    for rel, listing in walk(root):
        for e in listing:
            if e.name == ".git":
                path = f"{rel}/.git" if rel else ".git"
                kind = _kind(root / path)
                if kind is not None:
                    found[path] = kind
    return found


def scan(root: Path, policy: MountPolicy) -> WorkdirScan:
    """What :func:`ccstack.protection.plan` needs: ``.git`` entries, rule matches, the git config."""
    entries: dict[str, EntryKind] = {}
    for rel, listing in walk(root):
        names = {e.name for e in listing}
        if ".git" in names:
            path = f"{rel}/.git" if rel else ".git"
            kind = _kind(root / path)
            if kind is not None:
                entries[path] = kind
        for rule in policy.protected:
            if rule.path.split("/", 1)[0] not in names:
                continue
            path = f"{rel}/{rule.path}" if rel else rule.path
            kind = _kind(root / path)
            if kind is not None:
                entries[path] = kind
    git_config = commondir = None
    nested: dict[str, str] = {}
    for gitdir in _nested_gitdirs(root, entries):
        text = _read(root / gitdir / "config")
        if text is not None:
            nested[gitdir] = text
            values = git_config_values(text)
            for path, _d, _r in config_paths(values, gitdir, worktree_of(gitdir, values)):
                kind = _kind(root / path)
                if kind is not None:
                    entries[path] = kind
    if entries.get(".git") == "dir":
        git_config = _read(root / ".git" / "config")
        commondir = _read(root / ".git" / "commondir")
        candidates = [f".git/{name}" for name, _d, _r in GIT_DIR_RULES]
        candidates += [".git/config.worktree", ".git/commondir"]
        candidates += [p for p, _d, _r in config_paths(git_config_values(git_config or ""))]
        if commondir:
            common = os.path.normpath(os.path.join(".git", commondir.strip()))
            candidates += [f"{common}/{name}" for name, _d, _r in GIT_DIR_RULES]
        for path in candidates:
            kind = _kind(root / path) if not path.startswith("..") else None
            if kind is not None:
                entries[path] = kind
    return WorkdirScan(entries=entries, git_config=git_config, commondir=commondir, nested_configs=nested)


def _nested_gitdirs(root: Path, entries: dict[str, EntryKind]) -> list[str]:
    """Every git directory in the workdir but the top one: submodules' under .git/modules (nested
    ones included) and embedded repositories' ``.git`` directories."""
    found = [p for p, k in entries.items() if k == "dir" and p.endswith("/.git")]
    modules = root / ".git" / "modules"
    if modules.is_dir() and not modules.is_symlink():
        for dirpath, dirnames, filenames in os.walk(modules):
            if "HEAD" in filenames and "config" in filenames:
                found.append(str(Path(dirpath).relative_to(root)))
            dirnames[:] = [d for d in dirnames if d not in ("objects", "refs", "logs", "hooks", "info")]
    return sorted(found)


# --- placeholders ---------------------------------------------------------------------------------------


def links_in_the_way(root: Path, protection: Protection) -> list[str]:
    """Guarded paths that are, or lie below, a symbolic link or a non-directory.

    A bind mount follows links: mounting such a path would put whatever the link names (anything on
    the host) into the sandbox, and creating a placeholder through it would write outside the
    workdir. And a link itself cannot be made read-only (the agent could replace it). So the
    session refuses to start instead, naming them.
    """
    bad = []
    for g in protection.guards:
        parts = g.path.split("/")
        for i in range(1, len(parts) + 1):
            kind = _kind(root.joinpath(*parts[:i]))
            if kind is None:
                break
            if kind == "link" or (i < len(parts) and kind != "dir"):
                bad.append("/".join(parts[:i]))
                break
    return sorted(set(bad))


def _chown(path: Path, uid: int, gid: int) -> None:
    if os.getuid() == 0:
        os.lchown(path, uid, gid)


def create_placeholders(root: Path, protection: Protection, uid: int, gid: int) -> list[str]:
    """Create every guarded path that is missing (and missing parents), as ``uid:gid``; returns the
    created paths, parents first."""
    created: list[str] = []
    for g in protection.guards:
        parts = g.path.split("/")
        for i in range(1, len(parts)):
            d = root.joinpath(*parts[:i])
            if _kind(d) is None:
                d.mkdir()
                _chown(d, uid, gid)
                created.append("/".join(parts[:i]))
        target = root / g.path
        if _kind(target) is not None:
            continue
        if g.is_dir:
            target.mkdir()
        else:
            # O_EXCL | O_NOFOLLOW: never through a link that appeared since the check.
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(MCP_PLACEHOLDER if target.name == ".mcp.json" else "")
        _chown(target, uid, gid)
        created.append(g.path)
    return created


def _is_placeholder(path: Path) -> bool:
    kind = _kind(path)
    if kind == "dir":
        return not any(path.iterdir())
    if kind == "file":
        size = path.stat().st_size
        return size == 0 or (path.name == ".mcp.json" and _read(path) == MCP_PLACEHOLDER)
    return False


def remove_placeholders(root: Path, created: Sequence[str]) -> list[str]:
    """Remove the placeholders that are still untouched (empty), children first; returns what stayed.

    Inside a ``.git`` that became a repository during the session (it has a HEAD), the placeholders
    stay: they are that repository's (empty, harmless) config and hooks directory.
    """
    kept = []
    # Only a .git the session created can have become the agent's repository.
    repo_now = ".git" in created and (root / ".git" / "HEAD").exists()
    for rel in sorted(created, key=lambda p: p.count("/"), reverse=True):
        path = root / rel
        if repo_now and (rel == ".git" or rel.startswith(".git/")):
            kept.append(rel)
            continue
        if _kind(path) is None:
            continue
        if not _is_placeholder(path):
            kept.append(rel)
            continue
        try:
            path.rmdir() if path.is_dir() else path.unlink()
        except OSError:
            kept.append(rel)
    return kept


# --- the audit --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    path: str  # workdir-relative
    what: str
    moved_to: str | None = None


def audit(root: Path, before_git: Sequence[str], before_commondir: bool) -> list[Finding]:
    """Git metadata that appeared since the snapshot and that git on the host would trust."""
    findings = []
    old = set(before_git)
    for path in sorted(git_entries(root)):
        if path not in old and path != ".git":
            findings.append(Finding(path, "a new repository's git metadata (git on the host would enter it)"))
    if not before_commondir and _kind(root / ".git" / "commondir") is not None:
        findings.append(Finding(".git/commondir", "points git at another directory's config and hooks"))
    return findings


def quarantine(root: Path, findings: Sequence[Finding], into: Path) -> list[Finding]:
    """Move each finding under ``into`` (keeping its relative path); returns them with ``moved_to``."""
    moved = []
    for f in findings:
        dest = into / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(root / f.path), str(dest))
        moved.append(Finding(f.path, f.what, str(dest)))
    return moved


# --- sessions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    record: Path
    root: Path
    session_id: str
    before_git: tuple[str, ...]
    before_commondir: bool
    placeholder_files: tuple[str, ...] = ()
    """The placeholders created as files (not directories), relative to the root."""


@contextmanager
def _locked(record: Path) -> Iterator[dict[str, Any]]:
    record.parent.mkdir(parents=True, exist_ok=True)
    with open(record.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict[str, Any] = {}
        if record.exists():
            data = json.loads(record.read_text(encoding="utf-8"))
        yield data
        record.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


class WorkdirBusy(RuntimeError):
    """Another session runs on this workdir."""


def _started(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat), so a reused pid is not taken for it."""
    stat_text = _read(Path(f"/proc/{pid}/stat"))
    if stat_text is None:
        return None
    return stat_text.rsplit(")", 1)[-1].split()[19]


def _alive(entry: dict[str, Any]) -> bool:
    pid = entry.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = _started(pid)
    return start is None or entry.get("start") in (None, start)


def open_session(
    sessions_dir: Path, root: Path, protection: Protection, uid: int, gid: int, quarantine_dir: Path
) -> tuple[Session, list[Finding]]:
    """Create placeholders and take the audit's snapshot; finishes a crashed earlier session first
    (its audit and its placeholders). Returns the session and the crashed session's findings.

    One session per workdir: a running agent could swap a path for a link between this session's
    checks and its mounts, so a second session raises :class:`WorkdirBusy`."""
    record = sessions_dir / (hashlib.sha256(str(root).encode()).hexdigest()[:16] + ".json")
    session_id = f"{os.getpid()}-{time.time_ns()}"
    leftovers: list[Finding] = []
    with _locked(record) as data:
        live = {k: v for k, v in dict(data.get("sessions", {})).items() if _alive(v)}
        if live:
            pids = ", ".join(str(v.get("pid")) for v in live.values())
            raise WorkdirBusy(f"a session is already running on {root} (ccstack pid {pids}): one per workdir")
        dead = dict(data.get("sessions", {}))
        for old in dead.values():
            found = audit(root, old.get("before_git", []), bool(old.get("before_commondir")))
            leftovers += quarantine(root, found, quarantine_dir)
        if data.get("created"):
            remove_placeholders(root, list(data["created"]))
        created = create_placeholders(root, protection, uid, gid)
        before = git_entries(root)
        commondir = _kind(root / ".git" / "commondir") is not None
        live[session_id] = {
            "pid": os.getpid(),
            "start": _started(os.getpid()),
            "before_git": sorted(before),
            "before_commondir": commondir,
        }
        data.clear()
        data.update({"workdir": str(root), "created": created, "sessions": live})
    files = tuple(p for p in created if _kind(root / p) == "file")
    return Session(record, root, session_id, tuple(sorted(before)), commondir, files), leftovers


def close_session(session: Session, quarantine_dir: Path) -> list[Finding]:
    """Audit and quarantine what the agent planted, and remove the placeholders it left untouched.
    Returns the findings (already moved)."""
    with _locked(session.record) as data:
        planted = audit(session.root, session.before_git, session.before_commondir)
        found = quarantine(session.root, planted, quarantine_dir)
        kept = remove_placeholders(session.root, list(data.get("created", [])))
        data.update({"created": kept, "sessions": {}})
    return found
