"""ccstack.policy: policies/mounts.yaml parsing and the shipped policy files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ccstack.policy import DEFAULT_PROTECTED, ProtectedPath, load_policies, parse_mounts, parse_protected

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
HOME = "/home/u"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (".git/hooks/", ProtectedPath(".git/hooks", True)),
        (".mcp.json", ProtectedPath(".mcp.json", False)),
        ("./.claude/", ProtectedPath(".claude", True)),
        ("tools/run.sh", ProtectedPath("tools/run.sh", False)),
    ],
)
def test_parse_protected(entry: str, expected: ProtectedPath) -> None:
    got = parse_protected(entry)
    assert (got.path, got.is_dir) == (expected.path, expected.is_dir)
    assert got.reason  # the defaults carry their reason, others say where they come from


def test_parse_protected_mapping_with_reason_and_existing_only() -> None:
    got = parse_protected({"path": ".husky/", "reason": "hooks", "existing_only": True})
    assert got == ProtectedPath(".husky", True, "hooks", True)
    with pytest.raises(ValueError, match="mapping"):
        parse_protected({"path": "x", "why": "typo"})


def test_writable_and_git_metadata_are_parsed() -> None:
    policy = parse_mounts({"writable": ["./CLAUDE.md"], "git_metadata": False}, home=HOME)
    assert policy.writable == ("CLAUDE.md",)
    assert policy.git_metadata is False
    with pytest.raises(ValueError, match="git_metadata"):
        parse_mounts({"git_metadata": "no"}, home=HOME)
    with pytest.raises(ValueError, match=r"writable\.0"):
        parse_mounts({"writable": ["/etc"]}, home=HOME)


def test_baseline_is_the_defaults_minus_the_opted_out() -> None:
    policy = parse_mounts({"protected": ["CLAUDE.md"], "writable": [".devcontainer/"]}, home=HOME)
    assert [p.spec for p in policy.baseline] == [p for p in DEFAULT_PROTECTED if p != ".devcontainer/"]


@pytest.mark.parametrize("entry", ["/etc/passwd", "../x", ".", "", 3, "a/../../b"])
def test_parse_protected_refuses_paths_outside_the_workdir(entry: object) -> None:
    with pytest.raises(ValueError, match="workdir"):
        parse_protected(entry)


def test_defaults_are_always_protected_and_additions_kept_in_order() -> None:
    policy = parse_mounts({"protected": [".mcp.json", "Makefile", "scripts/"]}, home=HOME)
    assert [p.spec for p in policy.protected] == [*DEFAULT_PROTECTED, "Makefile", "scripts/"]


def test_empty_policy_gives_defaults() -> None:
    assert [p.spec for p in parse_mounts(None, home=HOME).protected] == list(DEFAULT_PROTECTED)


def test_extra_readonly_expands_home() -> None:
    policy = parse_mounts({"extra_readonly": [{"source": "~/data/x", "target": "/data/x"}]}, home=HOME)
    assert policy.extra_readonly[0].source == "/home/u/data/x"
    assert policy.extra_readonly[0].target == "/data/x"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("~", "home directory"),
        ("/home", "home directory"),
        ("/", "home directory"),
        ("~/.ssh", ".ssh"),
        ("~/.ssh/id_ed25519", ".ssh"),
        ("~/.claude", ".claude"),
        ("~/.config/gh", ".config"),
        ("/var/run/docker.sock", "docker.sock"),
        ("/run", "docker.sock"),
        ("relative/path", "absolute"),
    ],
)
def test_extra_readonly_refuses_secrets_and_home(source: str, reason: str) -> None:
    with pytest.raises(ValueError, match=r"extra_readonly\.0: .*" + reason.replace(".", r"\.")):
        parse_mounts({"extra_readonly": [{"source": source, "target": "/data"}]}, home=HOME)


@pytest.mark.parametrize(
    "target", ["/workspace", "/workspace/x", "/home/claude/.claude", "/etc/x", "/", "data"]
)
def test_extra_readonly_refuses_reserved_targets(target: str) -> None:
    with pytest.raises(ValueError, match="target"):
        parse_mounts({"extra_readonly": [{"source": "/srv/data", "target": target}]}, home=HOME)


def test_bad_shapes_name_the_field() -> None:
    with pytest.raises(ValueError, match="protected: must be a list"):
        parse_mounts({"protected": ".git"}, home=HOME)
    with pytest.raises(ValueError, match=r"protected\.1"):
        parse_mounts({"protected": ["ok", "/abs"]}, home=HOME)
    with pytest.raises(ValueError, match=r"extra_readonly\.0: must be a mapping"):
        parse_mounts({"extra_readonly": [{"source": "/srv"}]}, home=HOME)


def test_shipped_policies_load_with_registries_off() -> None:
    policies = load_policies(REPO / "policies", home=HOME)
    assert policies.egress.enabled is False
    assert "pypi.org" in policies.egress.domains
    specs = [p.spec for p in policies.mounts.protected]
    assert specs[: len(DEFAULT_PROTECTED)] == list(DEFAULT_PROTECTED)
    assert {"CLAUDE.md", "AGENTS.md", ".gitmodules", ".vscode/"} <= set(specs)
    assert policies.mounts.writable == ()


def test_compose_yaml_protects_exactly_the_default_paths() -> None:
    """The hand-written compose.yaml and workdir-init must agree with the policy defaults."""
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    agent = compose["services"]["claude-sandbox"]
    ro = [
        v["target"] for v in agent["volumes"] if v.get("read_only") and v["target"].startswith("/workspace/")
    ]
    assert ro == [f"/workspace/{p.rstrip('/')}" for p in DEFAULT_PROTECTED]
    assert compose["services"]["workdir-init"]["command"] == ["/workspace", *DEFAULT_PROTECTED]


def test_load_policies_names_the_bad_file(tmp_path: Path) -> None:
    (tmp_path / "mounts.yaml").write_text("protected: [/etc]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"mounts\.yaml: protected\.0"):
        load_policies(tmp_path, home=HOME)
