"""ccstack.agent_session: what `ccstack claude` refuses before anything is mounted (no Docker)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ccstack import agent_session
from ccstack.errors import StackError
from ccstack.state import Paths

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
ME = (os.getuid(), os.getgid())


def test_a_workdir_holding_the_state_directory_is_refused(tmp_path: Path) -> None:
    paths = Paths(repo=REPO, state_dir=tmp_path / "proj" / ".stack")
    (tmp_path / "proj").mkdir()
    with pytest.raises(StackError, match="state directory"):
        agent_session.prepare(paths, (tmp_path / "proj").resolve(), *ME)
    with pytest.raises(StackError, match="state directory"):
        agent_session.prepare(paths, tmp_path.resolve(), *ME)


def test_a_session_mounts_the_list_of_its_placeholders_for_git_and_removes_it_after(tmp_path: Path) -> None:
    import yaml

    paths = Paths(repo=REPO, state_dir=tmp_path / "state")
    paths.state_dir.mkdir()
    wd = (tmp_path / "proj").resolve()
    wd.mkdir()
    (wd / "CLAUDE.md").write_text("the user's own\n")  # exists: mounted read-only, not a placeholder
    prepared = agent_session.prepare(paths, wd, *ME)
    excludes = agent_session.excludes_file(paths, prepared.session)
    listed = excludes.read_text().splitlines()[1:]
    assert "/.mcp.json" in listed
    assert "/.git/config" in listed
    assert "/CLAUDE.md" not in listed
    assert listed == sorted(listed)
    assert all((wd / p[1:]).is_file() for p in listed)
    mounts = yaml.safe_load(prepared.overlay.read_text().replace("!override", ""))
    vols = mounts["services"]["claude-sandbox"]["volumes"]
    assert {"type": "bind", "source": str(excludes), "target": "/etc/ccsandbox/placeholders.gitignore",
            "read_only": True} in vols  # fmt: skip
    agent_session.finish(paths, prepared)
    assert not excludes.exists()
    assert not prepared.overlay.exists()
