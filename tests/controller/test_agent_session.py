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
