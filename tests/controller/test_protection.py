"""ccstack.protection: which workdir paths are read-only or pinned in the sandbox (pure, over scans)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ccstack.policy import parse_mounts
from ccstack.protection import (
    MAX_GUARDS,
    Guard,
    WorkdirScan,
    compose_volumes,
    config_paths,
    git_config_values,
    plan,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SHIPPED = parse_mounts(yaml.safe_load((REPO / "policies" / "mounts.yaml").read_text()), home="/home/u")
BARE = parse_mounts({}, home="/home/u")  # the code's floor only
REPO_DIRS = {".git": "dir", ".git/config": "file", ".git/hooks": "dir"}


def guards(scan: WorkdirScan, policy=SHIPPED) -> dict[str, Guard]:
    return {g.path: g for g in plan(scan, policy).guards}


def test_a_plain_repository_gets_git_config_hooks_modules_worktrees_and_a_pinned_git_dir() -> None:
    g = guards(WorkdirScan(REPO_DIRS, git_config="[core]\n\tbare = false\n"), BARE)
    assert g[".git"].kind == "pin"
    for path in (".git/config", ".git/hooks", ".git/modules", ".git/worktrees"):
        assert g[path].kind == "ro", path
    assert not g[".git/config"].create
    assert not g[".git/hooks"].create
    assert g[".git/modules"].create
    assert g[".git/modules"].is_dir
    assert ".git/config.worktree" not in g  # not read unless extensions.worktreeConfig is on
    assert ".git/commondir" not in g  # absent: cannot be made in advance (the audit covers it)


def test_worktree_config_is_protected_when_the_extension_is_on() -> None:
    cfg = "[core]\n\trepositoryformatversion = 1\n[extensions]\n\tworktreeConfig = true\n"
    g = guards(WorkdirScan(REPO_DIRS, git_config=cfg), BARE)
    assert g[".git/config.worktree"].kind == "ro"
    assert g[".git/config.worktree"].create


def test_commondir_and_the_common_directory_it_names_are_protected() -> None:
    entries = {**REPO_DIRS, ".git/commondir": "file", "shared/config": "file", "shared/hooks": "dir"}
    g = guards(WorkdirScan(entries, git_config="", commondir="../shared\n"), BARE)
    assert g[".git/commondir"].kind == "ro"
    assert g["shared/config"].kind == "ro"
    assert g["shared/hooks"].kind == "ro"
    assert g["shared"].kind == "pin"


def test_submodules_and_nested_repositories_are_read_only_and_their_parents_pinned() -> None:
    entries = {
        **REPO_DIRS,
        ".git/modules": "dir",
        "libs/sub/.git": "file",  # a submodule's gitfile
        "vendor/embedded/.git": "dir",  # an embedded repository
    }
    g = guards(WorkdirScan(entries, git_config=""), BARE)
    assert g["libs/sub/.git"] == Guard("libs/sub/.git", "ro", False, g["libs/sub/.git"].reason)
    assert g["vendor/embedded/.git"].kind == "ro"
    assert g["vendor/embedded/.git"].is_dir
    for pin in ("libs", "libs/sub", "vendor", "vendor/embedded"):
        assert g[pin].kind == "pin", pin


def test_hooks_path_and_included_files_inside_the_workdir_are_protected() -> None:
    cfg = (
        "[core]\n\thooksPath = .githooks\n"
        '[include]\n\tpath = ../config/git.inc ; a comment\n[includeIf "gitdir:~/work/"]\n\tpath = ~/x.inc\n'
    )
    g = guards(WorkdirScan(REPO_DIRS, git_config=cfg), BARE)
    assert g[".githooks"].kind == "ro"
    assert g[".githooks"].is_dir
    assert g[".githooks"].create
    assert g["config/git.inc"].kind == "ro"
    assert not g["config/git.inc"].is_dir
    assert g["config"].kind == "pin"
    assert not any(p.endswith("x.inc") for p in g)  # outside the workdir: not mounted at all


def test_husky_hooks_path_protects_all_of_husky() -> None:
    assert config_paths([("core.hookspath", ".husky/_")]) == [
        (".husky", True, "husky hooks (core.hooksPath): its _/ scripts source these")
    ]


def test_git_config_values_handles_sections_subsections_comments_and_quotes() -> None:
    text = (
        '# comment\n[Core]\n\tFSMonitor = "touch x" # trailing\n'
        '[includeIf "gitdir:/a/"]\n\tpath = "b c.inc"\n[alias] co = checkout\n\tflag\n'
    )
    assert git_config_values(text) == [
        ("core.fsmonitor", "touch x"),
        ("includeif.gitdir:/a/.path", "b c.inc"),
        ("alias.co", "checkout"),
        ("alias.flag", "true"),
    ]


def test_a_workdir_that_is_a_linked_worktree_protects_its_gitfile() -> None:
    g = guards(WorkdirScan({".git": "file"}), BARE)
    assert g[".git"].kind == "ro"
    assert not g[".git"].is_dir
    assert ".git/config" not in g


def test_a_workdir_without_git_gets_an_empty_read_only_config_and_hooks() -> None:
    g = guards(WorkdirScan({}), BARE)
    assert g[".git/config"].create
    assert g[".git/hooks"].create
    assert g[".git"].kind == "pin"


def test_the_shipped_deny_set_covers_sandbox_runtime_and_instruction_files() -> None:
    paths = {p.path for p in SHIPPED.protected}
    floor = {".gitconfig", ".gitmodules", ".bashrc", ".bash_profile", ".zshrc", ".zprofile", ".profile"}
    floor |= {".ripgreprc", ".mcp.json", ".claude.json", ".vscode", ".idea", ".claude", ".devcontainer"}
    instructions = {"CLAUDE.md", "CLAUDE.local.md", "AGENTS.md", "AI_INSTRUCTIONS.md", ".cursor"}
    instructions |= {".github/copilot-instructions.md"}
    assert floor | instructions <= paths
    assert all(p.reason and p.reason != "listed in policies/mounts.yaml" for p in SHIPPED.protected)


def test_policy_paths_at_the_root_are_created_and_copies_below_protected() -> None:
    entries = {**REPO_DIRS, "docs/CLAUDE.md": "file", "pkg/a/.vscode": "dir", ".husky": "dir"}
    g = guards(WorkdirScan(entries, git_config=""))
    assert g["CLAUDE.md"].create
    assert g["CLAUDE.md"].kind == "ro"
    assert g["docs/CLAUDE.md"].kind == "ro"
    assert not g["docs/CLAUDE.md"].create
    assert g["pkg/a/.vscode"].kind == "ro"
    assert g["pkg/a"].kind == "pin"
    assert g["pkg"].kind == "pin"
    assert g[".github/copilot-instructions.md"].create
    assert g[".github"].kind == "pin"
    assert g[".husky"].kind == "ro"  # existing_only, and it exists
    assert ".pre-commit-config.yaml" not in g  # existing_only, absent: no placeholder


def test_writable_opts_a_default_out_everywhere() -> None:
    policy = parse_mounts({"writable": ["CLAUDE.md", ".claude/"]}, home="/home/u")
    g = guards(WorkdirScan({**REPO_DIRS, "docs/CLAUDE.md": "file"}, git_config=""), policy)
    assert "CLAUDE.md" not in g
    assert "docs/CLAUDE.md" not in g
    assert ".claude" not in g
    assert ".mcp.json" in g


def test_nothing_below_a_read_only_directory_gets_its_own_mount() -> None:
    entries = {**REPO_DIRS, ".claude": "dir", ".claude/CLAUDE.md": "file", ".git/modules": "dir"}
    g = guards(WorkdirScan(entries, git_config=""))
    assert ".claude/CLAUDE.md" not in g


def test_git_protection_can_be_turned_off() -> None:
    policy = parse_mounts({"git_metadata": False, "writable": [".git/hooks/", ".git/config"]}, home="/h")
    g = guards(WorkdirScan({**REPO_DIRS, "sub/.git": "file"}, git_config=""), policy)
    assert not any(p.startswith(".git") or p.startswith("sub") for p in g)


def test_too_many_mounts_is_an_error_naming_the_way_out() -> None:
    entries = {**REPO_DIRS, **{f"d{i}/CLAUDE.md": "file" for i in range(MAX_GUARDS)}}
    with pytest.raises(ValueError, match="writable"):
        plan(WorkdirScan(entries, git_config=""), SHIPPED)


def test_guards_are_ordered_parents_first_and_become_compose_binds() -> None:
    p = plan(WorkdirScan({**REPO_DIRS, "a/b/.git": "file"}, git_config=""), BARE)
    depths = [g.path.count("/") for g in p.guards]
    assert depths == sorted(depths)
    vols = {v["target"]: v for v in compose_volumes(p, "/home/u/proj")}
    assert vols["/workspace/a/b/.git"] == {
        "type": "bind",
        "source": "/home/u/proj/a/b/.git",
        "target": "/workspace/a/b/.git",
        "read_only": True,
    }
    assert vols["/workspace/a"]["read_only"] is False
