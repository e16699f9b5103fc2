"""policies/toolchain.yaml: extra packages baked into the sandbox image (claude-sandbox).

The image already carries the everyday toolchain (claude-sandbox/Dockerfile: Python 3 with venv, pip and
pytest, make, gcc/g++, curl, jq, ...). What a project needs beyond that is listed here and installed at
build time, as the image's last layers, by ``ccstack build`` (``just build``, scripts/build-images.sh)::

    apt: [postgresql-client, libpq-dev]   # Debian bookworm packages
    pip: ["ruff==0.8.4", requests]        # PyPI requirements, into /usr/local (python3 imports them)
    npm: [typescript@5.7.2]               # npm packages, installed globally (their commands on PATH)

Parsing is pure: ``parse_toolchain(yaml_data)`` returns a frozen :class:`Toolchain` or raises
``ValueError`` naming the entry (``pip.1: ...``); ``build_args`` turns it into the Dockerfile's
``EXTRA_*_PACKAGES`` build arguments. Entries are package names with an optional version: nothing a
shell would read as an option, a path, a URL or a second command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SERVICE = "claude-sandbox"
POLICY_FILE = "toolchain.yaml"

# Debian package names (policy manual 5.6.1), optionally =version or /release.
APT_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+|/[a-z0-9-]+)?$")
# A PEP 508 name with optional extras and version specifiers (no URLs, markers or spaces).
PIP_REQUIREMENT = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?"
    r"(\[[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*\])?"
    r"((===|==|!=|~=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+(,(===|==|!=|~=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+)*)?$"
)
# An npm package name (optionally scoped) with an optional @version or @tag.
NPM_SPEC = re.compile(r"^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*(@[A-Za-z0-9.^~<>=*+_-]+)?$")

KINDS: dict[str, re.Pattern[str]] = {"apt": APT_NAME, "pip": PIP_REQUIREMENT, "npm": NPM_SPEC}
BUILD_ARGS = {"apt": "EXTRA_APT_PACKAGES", "pip": "EXTRA_PIP_PACKAGES", "npm": "EXTRA_NPM_PACKAGES"}


@dataclass(frozen=True)
class Toolchain:
    apt: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    npm: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.apt or self.pip or self.npm)


def parse_toolchain(data: object) -> Toolchain:
    """policies/toolchain.yaml (parsed YAML; None = an empty file) -> Toolchain."""
    if data is None:
        return Toolchain()
    if not isinstance(data, dict):
        raise ValueError("must be a mapping with the keys apt, pip, npm")
    unknown = sorted(set(data) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(str, unknown))} (expected apt, pip, npm)")
    lists: dict[str, tuple[str, ...]] = {}
    for kind, pattern in KINDS.items():
        entries = data.get(kind) or []
        if not isinstance(entries, list):
            raise ValueError(f"{kind}: must be a list of package names")
        seen: list[str] = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, str) or not pattern.match(entry.strip()):
                raise ValueError(f"{kind}.{i}: {entry!r} is not a {kind} package name (optionally versioned)")
            if entry.strip() not in seen:
                seen.append(entry.strip())
        lists[kind] = tuple(seen)
    return Toolchain(apt=lists["apt"], pip=lists["pip"], npm=lists["npm"])


def build_args(toolchain: Toolchain) -> dict[str, str]:
    """The Dockerfile's build arguments (every one present, empty = nothing extra)."""
    return {arg: " ".join(getattr(toolchain, kind)) for kind, arg in BUILD_ARGS.items()}


def describe(toolchain: Toolchain) -> str:
    return "; ".join(f"{kind}: {' '.join(getattr(toolchain, kind)) or '-'}" for kind in KINDS)


def load_toolchain(directory: Path, name: str = POLICY_FILE) -> Toolchain:
    """Read ``directory``/toolchain.yaml (a missing file = nothing extra)."""
    import yaml

    path = directory / name
    if not path.exists():
        return Toolchain()
    try:
        return parse_toolchain(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
