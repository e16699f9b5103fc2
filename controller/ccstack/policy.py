"""policies/: what the agent may reach (egress.yaml) and what of the host it sees (mounts.yaml).

Parsing is pure: ``parse_mounts(yaml_data, home=...)`` returns a frozen :class:`MountPolicy` or raises
``ValueError`` naming the field (``protected.2: ...``); the egress part is ``ccstack.egress``.
``load_policies(directory)`` is the I/O edge that reads both files.

mounts.yaml::

    git_metadata: true        # every place git on the host reads config or hooks from (ccstack.protection)
    protected:                # "/" = directory; at the root and wherever a copy exists below it
      - {path: CLAUDE.md, reason: "instructions Claude Code on the host obeys"}
      - Makefile              # a plain string is fine too
    writable: [CLAUDE.md]     # opt a default back out
    extra_readonly:
      - {source: ~/datasets/corpus, target: /data/corpus}
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ccstack.egress import EgressPolicy, parse_policy

WORKDIR = "/workspace"

# Always protected (compose.yaml mounts these read-only too) unless opted out under `writable`;
# policies/mounts.yaml adds the rest of the default deny set, each entry with its reason.
DEFAULT_PROTECTED: tuple[str, ...] = (
    ".git/hooks/",
    ".git/config",
    ".git/modules/",
    ".git/worktrees/",
    ".claude/",
    ".mcp.json",
    ".devcontainer/",
)
DEFAULT_REASONS = {
    ".git/hooks": "git hooks run at commit, checkout, merge, push",
    ".git/config": "git configuration: fsmonitor, hooksPath, aliases, filters, pager run commands",
    ".git/modules": "submodules' git directories: their config, hooks and commondir",
    ".git/worktrees": "linked worktrees' git directories: commondir, gitdir, config.worktree",
    ".claude": "Claude Code project settings, hooks, commands and agents on the host",
    ".mcp.json": "MCP servers Claude Code on the host starts",
    ".devcontainer": "containers and commands an IDE builds and runs",
}

# Host paths (relative to the home directory, or absolute) that may never be mounted, nor any parent.
SECRET_HOME_PATHS: tuple[str, ...] = (
    ".ssh",
    ".claude",
    ".claude.json",
    ".aws",
    ".azure",
    ".config",
    ".docker",
    ".gnupg",
    ".kube",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
)
SECRET_ABSOLUTE_PATHS: tuple[str, ...] = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/etc",
    "/root",
    "/proc",
)
# Container paths an extra mount may not cover.
RESERVED_TARGETS: tuple[str, ...] = (
    WORKDIR,
    "/home/claude",
    "/run",
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/tmp",
)


@dataclass(frozen=True)
class ProtectedPath:
    """A workdir-relative path mounted read-only over the workdir."""

    path: str
    is_dir: bool
    reason: str = "listed in policies/mounts.yaml"
    existing_only: bool = False  # protect copies that exist; never create a placeholder

    @property
    def spec(self) -> str:
        """The form the workdir-init command takes (directories end in ``/``)."""
        return self.path + "/" if self.is_dir else self.path


@dataclass(frozen=True)
class ExtraMount:
    """A host path mounted read-only into the sandbox."""

    source: str
    target: str


@dataclass(frozen=True)
class MountPolicy:
    protected: tuple[ProtectedPath, ...]
    extra_readonly: tuple[ExtraMount, ...] = ()
    writable: tuple[str, ...] = ()  # defaults the user opted back out of (workdir-relative)
    git_metadata: bool = True  # protect git's config and hook locations (ccstack.protection)

    @property
    def baseline(self) -> tuple[ProtectedPath, ...]:
        """The static set compose.yaml and the `up` overlay mount (plain `docker compose run`): the
        defaults that are safe to leave created in a repository, minus the opted-out ones."""
        return tuple(p for p in self.protected if p.spec in DEFAULT_PROTECTED and p.path not in self.writable)


@dataclass(frozen=True)
class Policies:
    mounts: MountPolicy
    egress: EgressPolicy


def parse_protected(entry: object) -> ProtectedPath:
    """``.git/hooks/`` or ``{path: .git/hooks/, reason: ...}`` -> ProtectedPath; raises ValueError."""
    reason, existing_only = None, False
    if isinstance(entry, Mapping):
        if not set(entry) <= {"path", "reason", "existing_only"} or "path" not in entry:
            raise ValueError(f"{dict(entry)!r}: must be a path or a mapping with 'path' and 'reason'")
        reason = entry.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise ValueError(f"reason {reason!r}: must be a string")
        existing_only = entry.get("existing_only", False)
        if not isinstance(existing_only, bool):
            raise ValueError(f"existing_only {existing_only!r}: must be true or false")
        entry = entry["path"]
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError(f"{entry!r}: must be a non-empty path inside the workdir")
    raw = entry.strip()
    is_dir = raw.endswith("/")
    norm = posixpath.normpath(raw)
    if posixpath.isabs(raw) or norm == "." or norm.startswith(".."):
        raise ValueError(f"{entry!r}: must be a relative path inside the workdir")
    why = reason or DEFAULT_REASONS.get(norm, "listed in policies/mounts.yaml")
    return ProtectedPath(norm, is_dir, why, existing_only)


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def check_extra_source(source: str, *, home: str) -> str:
    """The absolute, normalized host path; raises ValueError for the home directory or secrets."""
    expanded = home + source[1:] if source == "~" or source.startswith("~/") else source
    if not posixpath.isabs(expanded):
        raise ValueError(f"source {source!r}: must be an absolute path (or start with ~/)")
    path = posixpath.normpath(expanded)
    forbidden = [posixpath.join(home, p) for p in SECRET_HOME_PATHS] + list(SECRET_ABSOLUTE_PATHS)
    if _inside(home, path):
        raise ValueError(f"source {source!r}: would expose your home directory")
    for secret in forbidden:
        if _inside(path, secret) or _inside(secret, path):
            raise ValueError(f"source {source!r}: would expose {secret}")
    return path


def check_extra_target(target: str) -> str:
    if not isinstance(target, str) or not posixpath.isabs(target):
        raise ValueError(f"target {target!r}: must be an absolute container path")
    path = posixpath.normpath(target)
    if path == "/":
        raise ValueError("target '/': not allowed")
    for reserved in RESERVED_TARGETS:
        if _inside(path, reserved) or _inside(reserved, path):
            raise ValueError(f"target {target!r}: overlaps {reserved}")
    return path


def parse_mounts(data: object, *, home: str) -> MountPolicy:
    """policies/mounts.yaml (parsed YAML) -> MountPolicy; the defaults are always included."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValueError("mounts policy: must be a mapping")
    raw_protected = data.get("protected", [])
    if not isinstance(raw_protected, list):
        raise ValueError("protected: must be a list of paths")
    protected = [parse_protected(p) for p in DEFAULT_PROTECTED]
    for i, entry in enumerate(raw_protected):
        try:
            item = parse_protected(entry)
        except ValueError as e:
            raise ValueError(f"protected.{i}: {e}") from None
        if item.path in {p.path for p in protected}:
            continue
        protected.append(item)
    raw_writable = data.get("writable", []) or []
    if not isinstance(raw_writable, list):
        raise ValueError("writable: must be a list of paths")
    writable = []
    for i, entry in enumerate(raw_writable):
        try:
            writable.append(parse_protected(entry).path)
        except ValueError as e:
            raise ValueError(f"writable.{i}: {e}") from None
    git_metadata = data.get("git_metadata", True)
    if not isinstance(git_metadata, bool):
        raise ValueError("git_metadata: must be true or false")
    raw_extra = data.get("extra_readonly", [])
    if raw_extra is None:
        raw_extra = []
    if not isinstance(raw_extra, list):
        raise ValueError("extra_readonly: must be a list of {source, target}")
    extra = []
    for i, entry in enumerate(raw_extra):
        if not isinstance(entry, Mapping) or set(entry) != {"source", "target"}:
            raise ValueError(f"extra_readonly.{i}: must be a mapping with exactly 'source' and 'target'")
        try:
            source = entry["source"]
            if not isinstance(source, str):
                raise ValueError(f"source {source!r}: must be a string")
            extra.append(
                ExtraMount(check_extra_source(source, home=home), check_extra_target(entry["target"]))
            )
        except ValueError as e:
            raise ValueError(f"extra_readonly.{i}: {e}") from None
    return MountPolicy(tuple(protected), tuple(extra), tuple(writable), git_metadata)


def load_policies(directory: Path, *, home: str | None = None) -> Policies:
    """Read egress.yaml and mounts.yaml from ``directory`` (missing files = defaults)."""
    import yaml

    def read(name: str) -> object:
        path = directory / name
        if not path.exists():
            return None
        return yaml.safe_load(path.read_text(encoding="utf-8"))

    home_dir = home if home is not None else str(Path.home())
    try:
        mounts = parse_mounts(read("mounts.yaml"), home=home_dir)
    except ValueError as e:
        raise ValueError(f"{directory / 'mounts.yaml'}: {e}") from None
    try:
        egress = parse_policy(read("egress.yaml"))
    except ValueError as e:
        raise ValueError(f"{directory / 'egress.yaml'}: {e}") from None
    return Policies(mounts=mounts, egress=egress)
