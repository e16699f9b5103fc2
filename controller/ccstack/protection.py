"""What of the workdir is read-only inside the sandbox, decided from a scan of it (pure: data in, data out).

The agent may write the workdir, but not what a program on the host later runs or trusts without
asking. Two sources of such paths:

* **git** (rules derived from git's documentation: gitrepository-layout(5), git-config(1) FILES and
  ``include``, githooks(5) and ``core.hooksPath``, gitsubmodules(7), git-worktree(1)):

  - ``$GIT_DIR/config`` (fsmonitor, hooksPath, aliases, filters, pagers, editors: all run commands)
    and the files it includes (``include.path``, ``includeIf.*.path``);
  - ``$GIT_DIR/config.worktree`` when ``extensions.worktreeConfig`` is on;
  - ``$GIT_DIR/hooks/``, or the ``core.hooksPath`` directory when it lies inside the workdir (for
    husky, the whole ``.husky/`` that its ``_/`` scripts source);
  - ``$GIT_DIR/modules/``: every submodule's (and nested submodule's) own git directory, with its
    config, hooks and ``commondir``;
  - ``$GIT_DIR/worktrees/``: every linked worktree's git directory (``commondir``, ``gitdir``,
    ``config.worktree``);
  - ``$GIT_DIR/commondir`` when present (then the common directory's files as well);
  - every ``.git`` entry below the root (a submodule's gitfile, an embedded repository, a worktree):
    git on the host enters them from a plain ``git status`` of the superproject;
  - the ``.git`` directory itself and every directory on the way to a protected path are *pinned*
    (bind-mounted onto themselves, read-write): a mount point cannot be renamed or removed, so the
    agent cannot move a protected path aside and put its own in its place.

* **the policy** (``policies/mounts.yaml``): sandbox-runtime's default deny set, the instruction files
  other agents on the host obey, and the user's additions; each protected at the workdir's root
  (created empty for the session when absent) and wherever a copy exists below it.

What cannot be covered by a mount is what does not exist yet and cannot be created in advance without
breaking git: a new repository (``.git``) anywhere in the workdir, or ``$GIT_DIR/commondir``. Those are
found by ``ccstack.workdir.audit`` when the session ends and moved to a quarantine.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ccstack.policy import DEFAULT_PROTECTED, MountPolicy, ProtectedPath

EntryKind = Literal["file", "dir", "link"]
GuardKind = Literal["ro", "pin"]

MAX_GUARDS = 600  # one bind mount each; a workdir needing more is refused with the reason

GIT_DIR_RULES: tuple[tuple[str, bool, str], ...] = (
    ("config", False, "git configuration: fsmonitor, hooksPath, aliases, filters, pager run commands"),
    ("hooks", True, "git hooks run at commit, checkout, merge, push"),
    ("modules", True, "submodules' git directories: their config, hooks and commondir"),
    ("worktrees", True, "linked worktrees' git directories: commondir, gitdir, config.worktree"),
)


@dataclass(frozen=True)
class WorkdirScan:
    """What the protection needs to know about a workdir (``ccstack.workdir.scan`` reads it).

    ``entries`` maps workdir-relative paths to their kind, for every ``.git`` entry below the root and
    every existing path that a policy rule names (at the root or below); ``git_config`` is the text of
    the top repository's ``.git/config``; ``commondir`` the content of ``.git/commondir``, if any;
    ``nested_configs`` the config text of every other git directory in the workdir (submodules' under
    ``.git/modules``, embedded repositories'), by git directory.
    """

    entries: Mapping[str, EntryKind]
    git_config: str | None = None
    commondir: str | None = None
    nested_configs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Guard:
    """One bind mount over the workdir: ``ro`` (read-only) or ``pin`` (onto itself, read-write)."""

    path: str
    kind: GuardKind
    is_dir: bool
    reason: str
    create: bool = False  # absent now: created empty for the session, removed after it

    @property
    def target(self) -> str:
        return f"/workspace/{self.path}"


@dataclass(frozen=True)
class Protection:
    guards: tuple[Guard, ...]

    @property
    def read_only(self) -> tuple[Guard, ...]:
        return tuple(g for g in self.guards if g.kind == "ro")

    @property
    def created(self) -> tuple[Guard, ...]:
        return tuple(g for g in self.guards if g.create)


# --- git configuration: the few keys that name other files ---------------------------------------------

_SECTION = re.compile(r'^\s*\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]\s*(.*)$')
_KEY = re.compile(r"^\s*([A-Za-z][A-Za-z0-9-]*)\s*(?:=\s*(.*?))?\s*$")


def _unquote(value: str) -> str:
    out, quoted, i = [], False, 0
    while i < len(value):
        c = value[i]
        if c == '"':
            quoted = not quoted
        elif c == "\\" and i + 1 < len(value):
            i += 1
            out.append({"n": "\n", "t": "\t", "b": "\b"}.get(value[i], value[i]))
        elif c in "#;" and not quoted:
            break
        else:
            out.append(c)
        i += 1
    return "".join(out).strip()


def git_config_values(text: str) -> list[tuple[str, str]]:
    """``[("core.hookspath", ".husky/_"), ("includeif.gitdir:~/w/.path", "x"), ...]`` from config text.

    Section and key names are lowercased (git's are case-insensitive); subsections keep their case.
    Enough of git-config(1)'s syntax for the keys that matter here; values with line continuations
    are read up to the first line.
    """
    out: list[tuple[str, str]] = []
    section = ""
    for raw in text.splitlines():
        line = raw
        m = _SECTION.match(line)
        if m:
            name, sub, rest = m.group(1).lower(), m.group(2), m.group(3)
            section = f"{name}.{sub}" if sub is not None else name
            line = rest
            if not line.strip():
                continue
        k = _KEY.match(line)
        if k and section and not line.lstrip().startswith(("#", ";")):
            value = _unquote(k.group(2)) if k.group(2) is not None else "true"
            out.append((f"{section}.{k.group(1).lower()}", value))
    return out


def _inside(rel: str) -> str | None:
    """A normalized workdir-relative path, or None when it leaves the workdir."""
    norm = posixpath.normpath(rel)
    if norm in (".", "") or norm.startswith("../") or norm == ".." or posixpath.isabs(norm):
        return None
    return norm


def worktree_of(gitdir: str, values: Iterable[tuple[str, str]]) -> str | None:
    """The working tree a git directory serves (workdir-relative; "" = the root), or None if unknown:
    ``X/.git`` serves ``X``; a submodule's directory under ``.git/modules`` names it in core.worktree."""
    if gitdir == ".git" or gitdir.endswith("/.git"):
        return posixpath.dirname(gitdir)
    for key, value in values:
        if key == "core.worktree" and value and not posixpath.isabs(value):
            norm = posixpath.normpath(posixpath.join(gitdir, value))
            return "" if norm == "." else _inside(norm)
    return None


def config_paths(
    values: Iterable[tuple[str, str]], gitdir: str = ".git", worktree: str | None = ""
) -> list[tuple[str, bool, str]]:
    """Workdir-relative paths a git directory's config points at: hooksPath (relative to its working
    tree, where hooks run) and included files (relative to the including file)."""
    found: list[tuple[str, bool, str]] = []
    for key, value in values:
        if not value or value.startswith("~") or posixpath.isabs(value):
            continue  # outside the workdir: not mounted, not writable by the agent
        if key == "core.hookspath":
            rel = _inside(posixpath.join(worktree, value)) if worktree is not None else None
            if rel is not None:
                parent, name = posixpath.split(rel)
                if name == "_" and posixpath.basename(parent) == ".husky":
                    found.append((parent, True, "husky hooks (core.hooksPath): its _/ scripts source these"))
                else:
                    found.append((rel, True, "git hooks directory (core.hooksPath)"))
        elif key == "include.path" or (key.startswith("includeif.") and key.endswith(".path")):
            rel = _inside(posixpath.join(gitdir, value))
            if rel is not None:
                found.append((rel, False, f"included by {gitdir}/config"))
    return found


def _truthy(value: str) -> bool:
    return value.lower() in ("true", "yes", "on", "1")


# --- the plan ------------------------------------------------------------------------------------------


def _rule_copies(entries: Mapping[str, EntryKind], rule: ProtectedPath) -> list[str]:
    """Existing paths matching the rule: at the root, and ``…/<rule path>`` below it."""
    suffix = "/" + rule.path
    return sorted(p for p in entries if p == rule.path or p.endswith(suffix))


def plan(scan: WorkdirScan, policy: MountPolicy) -> Protection:
    """Every guard for this workdir: read-only paths, placeholders to create, and pins.

    Raises ValueError when the workdir would need more than MAX_GUARDS mounts.
    """
    entries = scan.entries
    ro: dict[str, Guard] = {}

    def add(path: str, is_dir: bool, reason: str, *, create_if_absent: bool) -> None:
        kind = entries.get(path)
        if kind is None and not create_if_absent:
            return
        exists_as_dir = kind == "dir" if kind is not None else is_dir
        if path not in ro:
            ro[path] = Guard(path, "ro", exists_as_dir, reason, create=kind is None)

    top = entries.get(".git")
    if policy.git_metadata:
        if top == "dir":
            values = git_config_values(scan.git_config or "")
            for name, is_dir, reason in GIT_DIR_RULES:
                add(f".git/{name}", is_dir, reason, create_if_absent=True)
            worktree_config = any(k == "extensions.worktreeconfig" and _truthy(v) for k, v in values)
            add(".git/config.worktree", False, "per-worktree config", create_if_absent=worktree_config)
            add(".git/commondir", False, "points git at another common directory", create_if_absent=False)
            if scan.commondir is not None:
                common = _inside(posixpath.join(".git", scan.commondir.strip()))
                if common is not None and common != ".git":
                    for name, is_dir, reason in GIT_DIR_RULES:
                        add(f"{common}/{name}", is_dir, f"common directory: {reason}", create_if_absent=False)
            for rel, is_dir, reason in config_paths(values):
                add(rel, is_dir, reason, create_if_absent=True)
        elif top is None:
            # Not a repository (yet): an agent-made .git at the root would get an empty, read-only
            # config and hooks directory, so nothing it plants there runs on the host.
            for name, is_dir, reason in GIT_DIR_RULES:
                add(f".git/{name}", is_dir, reason, create_if_absent=True)
        else:
            add(".git", False, "gitfile: which git directory this checkout uses", create_if_absent=False)
        for gitdir, text in sorted(scan.nested_configs.items()):
            nested = git_config_values(text)
            for rel, is_dir, reason in config_paths(nested, gitdir, worktree_of(gitdir, nested)):
                add(rel, is_dir, reason, create_if_absent=True)
        for path, kind in sorted(entries.items()):
            if posixpath.basename(path) == ".git" and path != ".git":
                reason = "a nested repository's git metadata (submodule, worktree)"
                add(path, kind == "dir", reason, create_if_absent=False)

    writable = set(policy.writable)
    for rule in policy.protected:
        if rule.path in writable:
            continue
        if rule.path.startswith(".git/") and (
            top not in ("dir", None) or (not policy.git_metadata and rule.spec in DEFAULT_PROTECTED)
        ):
            continue  # git's own directory: the git rules above decide (or it is not a directory)
        add(rule.path, rule.is_dir, rule.reason, create_if_absent=not rule.existing_only)
        for copy in _rule_copies(entries, rule):
            add(copy, rule.is_dir, rule.reason, create_if_absent=False)

    kept = {p: g for p, g in ro.items() if p not in writable}
    # Nothing below a read-only directory needs a mount of its own.
    ro_dirs = sorted(p for p, g in kept.items() if g.is_dir)
    kept = {p: g for p, g in kept.items() if not any(p != d and p.startswith(d + "/") for d in ro_dirs)}
    pins: dict[str, Guard] = {}
    if policy.git_metadata and (top == "dir" or top is None):
        pins[".git"] = Guard(".git", "pin", True, "the repository's git directory: cannot be moved aside")
    for path in kept:
        parts = path.split("/")
        for i in range(1, len(parts)):
            anc = "/".join(parts[:i])
            if anc not in kept and anc not in pins:
                pins[anc] = Guard(anc, "pin", True, f"on the way to {path}: cannot be moved aside")
    if ".git" in kept:
        pins.pop(".git", None)
    guards = tuple(sorted([*kept.values(), *pins.values()], key=lambda g: (g.path.count("/"), g.path)))
    if len(guards) > MAX_GUARDS:
        raise ValueError(
            f"the workdir needs {len(guards)} protective mounts (limit {MAX_GUARDS}): mount a smaller "
            "directory, or list paths the agent may write under `writable` in policies/mounts.yaml"
        )
    return Protection(guards)


def compose_volumes(protection: Protection, source_root: str) -> list[dict[str, object]]:
    """The guards as Compose long-syntax bind mounts (``source_root`` = the workdir on the host)."""
    return [
        {
            "type": "bind",
            "source": f"{source_root}/{g.path}",
            "target": g.target,
            "read_only": g.kind == "ro",
        }
        for g in protection.guards
    ]


GIT_EXCLUDES_TARGET = "/etc/ccsandbox/placeholders.gitignore"
"""Where the session's list of placeholders sits in the sandbox: the image's ``/etc/gitconfig`` names it
as ``core.excludesFile``, so ``git status`` there (the agent's, and the snapshot Claude Code puts in its
prompt) does not list a dozen empty files that exist only for the session's read-only mounts."""


def _gitignore_literal(path: str) -> str:
    # Anchored at the root; glob characters, a leading `#`/`!` and trailing blanks taken literally.
    escaped = re.sub(r"([\\*?\[])", r"\\\1", path)
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return "/" + escaped


def git_excludes(placeholder_files: Iterable[str]) -> str:
    """A gitignore naming exactly the placeholder *files* this session created (paths relative to the
    workdir). Directories are not listed: the agent may put real files into one (``.github/``), and git
    does not show a directory that holds only ignored files anyway."""
    lines = ["# placeholders created for this session's read-only mounts (ccstack; gone after it)"]
    lines += [_gitignore_literal(p) for p in sorted(placeholder_files)]
    return "\n".join(lines) + "\n"
