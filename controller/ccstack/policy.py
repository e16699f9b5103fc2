"""policies/: what the agent may reach (egress.yaml) and what of the host it sees (mounts.yaml).

Parsing is pure: ``parse_mounts(yaml_data, home=...)`` returns a frozen :class:`MountPolicy` or raises
``ValueError`` naming the field (``protected.2: ...``); the egress part is ``ccstack.egress``.
``load_policies(directory)`` is the I/O edge that reads both files.

mounts.yaml::

    protected: [.git/hooks/, .git/config, .claude/, .mcp.json, .devcontainer/]   # "/" = directory
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

# Always protected (compose.yaml mounts these read-only); mounts.yaml may add to them.
DEFAULT_PROTECTED: tuple[str, ...] = (".git/hooks/", ".git/config", ".claude/", ".mcp.json", ".devcontainer/")

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


@dataclass(frozen=True)
class Policies:
    mounts: MountPolicy
    egress: EgressPolicy


def parse_protected(entry: object) -> ProtectedPath:
    """``.git/hooks/`` -> ProtectedPath(".git/hooks", is_dir=True); raises ValueError."""
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError(f"{entry!r}: must be a non-empty path inside the workdir")
    raw = entry.strip()
    is_dir = raw.endswith("/")
    norm = posixpath.normpath(raw)
    if posixpath.isabs(raw) or norm == "." or norm.startswith(".."):
        raise ValueError(f"{entry!r}: must be a relative path inside the workdir")
    return ProtectedPath(norm, is_dir)


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
    return MountPolicy(tuple(protected), tuple(extra))


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
