"""ccstack.workdir: scanning real repositories (made with the real git), placeholders, the audit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from ccstack import workdir
from ccstack.policy import parse_mounts
from ccstack.protection import plan

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
POLICY = parse_mounts(yaml.safe_load((REPO / "policies" / "mounts.yaml").read_text()), home="/home/u")
ME = (os.getuid(), os.getgid())


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(cwd),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    r = subprocess.run(
        ["git", "-c", "protocol.file.allow=always", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return r.stdout


@pytest.fixture
def superproject(tmp_path: Path) -> Path:
    """A repository with a submodule (libs/sub) and a linked worktree outside the workdir."""
    lib = tmp_path / "lib"
    lib.mkdir()
    git(lib, "init", "-q")
    (lib / "l.txt").write_text("lib\n")
    git(lib, "add", ".")
    git(lib, "commit", "-qm", "lib")
    sup = tmp_path / "work"
    sup.mkdir()
    git(sup, "init", "-q")
    (sup / "README.md").write_text("hi\n")
    (sup / "docs").mkdir()
    (sup / "docs" / "CLAUDE.md").write_text("be nice\n")
    git(sup, "add", ".")
    git(sup, "commit", "-qm", "init")
    git(sup, "submodule", "add", "-q", str(lib), "libs/sub")
    git(sup, "commit", "-qm", "sub")
    git(sup, "worktree", "add", "-q", str(tmp_path / "wt"))
    return sup


def test_scan_finds_submodule_gitfiles_modules_worktrees_and_rule_copies(superproject: Path) -> None:
    scan = workdir.scan(superproject, POLICY)
    assert scan.entries[".git"] == "dir"
    assert scan.entries["libs/sub/.git"] == "file"
    assert scan.entries[".git/modules"] == "dir"
    assert scan.entries[".git/worktrees"] == "dir"
    assert scan.entries["docs/CLAUDE.md"] == "file"
    assert scan.entries[".gitmodules"] == "file"
    assert "[core]" in (scan.git_config or "")
    g = {x.path: x for x in plan(scan, POLICY).guards}
    assert {"libs/sub/.git", ".git/modules", ".git/worktrees", ".gitmodules", "docs/CLAUDE.md"} <= set(g)
    assert g["libs/sub"].kind == "pin"
    assert g["libs"].kind == "pin"


def test_placeholders_are_created_and_removed_only_while_untouched(superproject: Path) -> None:
    protection = plan(workdir.scan(superproject, POLICY), POLICY)
    created = workdir.create_placeholders(superproject, protection, *ME)
    assert "CLAUDE.md" in created
    assert ".github" in created
    assert ".github/copilot-instructions.md" in created
    assert (superproject / ".mcp.json").read_text() == workdir.MCP_PLACEHOLDER
    assert "docs/CLAUDE.md" not in created
    assert ".gitmodules" not in created
    (superproject / ".vscode" / "tasks.json").write_text("{}")  # the user, on the host, meanwhile
    kept = workdir.remove_placeholders(superproject, created)
    assert kept == [".vscode"]
    assert not (superproject / "CLAUDE.md").exists()
    assert not (superproject / ".github").exists()
    assert (superproject / "docs" / "CLAUDE.md").read_text() == "be nice\n"
    status = git(superproject, "status", "--porcelain", "--ignore-submodules=none")
    assert status.strip() == "?? .vscode/"


def test_the_audit_quarantines_new_repositories_and_commondir(superproject: Path, tmp_path: Path) -> None:
    before = sorted(workdir.git_entries(superproject))
    assert before == [".git", "libs/sub/.git"]
    evil = superproject / "evil"
    evil.mkdir()
    git(evil, "init", "-q")
    (superproject / ".git" / "commondir").write_text("../evil/.git\n")
    findings = workdir.audit(superproject, before, before_commondir=False)
    assert [f.path for f in findings] == ["evil/.git", ".git/commondir"]
    moved = workdir.quarantine(superproject, findings, tmp_path / "q")
    assert not (evil / ".git").exists()
    assert not (superproject / ".git" / "commondir").exists()
    assert (tmp_path / "q" / "evil" / ".git" / "HEAD").is_file()
    assert all(f.moved_to for f in moved)
    git(superproject, "status")  # the repository works again


def test_one_session_per_workdir_and_it_cleans_up_after_itself(superproject: Path, tmp_path: Path) -> None:
    protection = plan(workdir.scan(superproject, POLICY), POLICY)
    sessions, q = tmp_path / "sessions", tmp_path / "q"
    s1, left1 = workdir.open_session(sessions, superproject, protection, *ME, q)
    assert left1 == []
    assert (superproject / "AGENTS.md").exists()
    with pytest.raises(workdir.WorkdirBusy, match="already running"):
        workdir.open_session(sessions, superproject, protection, *ME, q)
    (superproject / "new").mkdir()
    git(superproject / "new", "init", "-q")
    found = workdir.close_session(s1, q)
    assert [f.path for f in found] == ["new/.git"]
    assert not (superproject / "AGENTS.md").exists()
    s2, _ = workdir.open_session(sessions, superproject, protection, *ME, q)  # free again
    workdir.close_session(s2, q)


def test_links_in_the_way_of_protected_paths(tmp_path: Path) -> None:
    """A link at (or above) a guarded path would make a bind mount follow it out of the workdir."""
    outside = tmp_path / "outside"
    (outside / "secret").mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    (work / ".github").symlink_to(outside / "secret")  # a placeholder would be written through it
    (work / "docs").mkdir()
    (work / "docs" / "CLAUDE.md").symlink_to("../../outside/secret")
    (work / ".cursor").write_text("not a directory")
    protection = plan(workdir.scan(work, POLICY), POLICY)
    bad = workdir.links_in_the_way(work, protection)
    assert ".github" in bad
    assert "docs/CLAUDE.md" in bad
    assert ".cursor" not in bad  # a file where a directory rule expects one: mounted read-only as is
    assert not list((outside / "secret").iterdir())


def test_a_crashed_session_is_finished_by_the_next_one(superproject: Path, tmp_path: Path) -> None:
    protection = plan(workdir.scan(superproject, POLICY), POLICY)
    sessions, q = tmp_path / "sessions", tmp_path / "q"
    crashed, _ = workdir.open_session(sessions, superproject, protection, *ME, q)
    record = crashed.record.read_text().replace(f'"pid": {os.getpid()}', '"pid": 999999999')
    crashed.record.write_text(record)
    (superproject / "planted").mkdir()
    (superproject / "planted" / ".git").write_text("gitdir: ../x\n")
    s, leftovers = workdir.open_session(sessions, superproject, protection, *ME, q)
    assert [f.path for f in leftovers] == ["planted/.git"]
    workdir.close_session(s, q)
    assert not (superproject / "CLAUDE.md").exists()


def test_a_workdir_without_git_gets_placeholders_and_an_agent_made_repo_keeps_them(tmp_path: Path) -> None:
    protection = plan(workdir.scan(tmp_path, POLICY), POLICY)
    created = workdir.create_placeholders(tmp_path, protection, *ME)
    assert (tmp_path / ".git" / "config").read_text() == ""
    assert (tmp_path / ".git" / "hooks").is_dir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")  # the agent made a repository
    kept = workdir.remove_placeholders(tmp_path, created)
    assert ".git/config" in kept
    assert (tmp_path / ".git" / "config").exists()
    assert not (tmp_path / "CLAUDE.md").exists()


def test_a_plain_repository_is_left_as_it_was(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    before = sorted(p.name for p in (tmp_path / ".git").iterdir())
    protection = plan(workdir.scan(tmp_path, POLICY), POLICY)
    created = workdir.create_placeholders(tmp_path, protection, *ME)
    assert ".git/modules" in created
    assert ".git/worktrees" in created
    assert workdir.remove_placeholders(tmp_path, created) == []
    assert sorted(p.name for p in (tmp_path / ".git").iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".git"]


def test_hooks_paths_and_includes_of_the_top_repository_and_its_submodules(superproject: Path) -> None:
    git(superproject, "config", "include.path", "../project.gitconfig")
    git(superproject / "libs" / "sub", "config", "core.hooksPath", ".husky/_")
    git(superproject / "libs" / "sub", "config", "include.path", "../../../../libs/shared.inc")
    scan = workdir.scan(superproject, POLICY)
    assert set(scan.nested_configs) == {".git/modules/libs/sub"}
    g = {x.path: x for x in plan(scan, POLICY).guards}
    assert g["project.gitconfig"].kind == "ro"  # the top config's include, created empty if absent
    assert g["project.gitconfig"].create
    assert g["libs/sub/.husky"].kind == "ro"  # the submodule's hooks, in its working tree
    assert g["libs/sub/.husky"].is_dir
    assert g["libs/shared.inc"].kind == "ro"  # included by the submodule's config


def test_the_sessions_excludes_hide_its_placeholders_from_git_status_and_nothing_else(
    superproject: Path, tmp_path: Path
) -> None:
    from ccstack.protection import git_excludes

    protection = plan(workdir.scan(superproject, POLICY), POLICY)
    s, _ = workdir.open_session(tmp_path / "sessions", superproject, protection, *ME, tmp_path / "q")
    excludes = tmp_path / "session.gitignore"
    excludes.write_text(git_excludes(s.placeholder_files))
    untracked = git(superproject, "status", "--porcelain", "--untracked-files=all")
    assert "?? CLAUDE.md" in untracked
    assert "?? .mcp.json" in untracked
    assert all(not p.endswith("/") and (superproject / p).is_file() for p in s.placeholder_files)
    # the agent's own new files show, also inside a directory that exists only for a placeholder
    (superproject / "notes.txt").write_text("mine\n")
    (superproject / ".github" / "workflows").mkdir(parents=True)
    (superproject / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    status = git(
        superproject, "-c", f"core.excludesFile={excludes}", "status", "--porcelain", "--untracked-files=all"
    )
    assert sorted(status.splitlines()) == ["?? .github/workflows/ci.yml", "?? notes.txt"]
    workdir.close_session(s, tmp_path / "q")


def test_excludes_take_odd_names_literally() -> None:
    from ccstack.protection import git_excludes

    text = git_excludes(["a*b.md", "#x", "!y", "sp "])
    assert text.splitlines()[1:] == ["/!y", "/#x", "/a\\*b.md", "/sp\\ "]
