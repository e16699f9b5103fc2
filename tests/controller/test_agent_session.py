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


def test_sighup_and_sigterm_end_the_session_through_its_finally_blocks() -> None:
    import signal

    before = signal.getsignal(signal.SIGHUP)
    for signum in agent_session.ENDING_SIGNALS:
        cleaned: list[int] = []

        def session(signum: int = signum, cleaned: list[int] = cleaned) -> None:
            try:
                os.kill(os.getpid(), signum)
                pytest.fail("the signal did not interrupt the session")
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # a second signal during cleanup is ignored
                cleaned.append(signum)

        with pytest.raises(agent_session.SessionSignal) as raised, agent_session.ended_by_signals():
            session()
        assert raised.value.signum == signum
        assert cleaned == [signum]
    assert signal.getsignal(signal.SIGHUP) is before


def test_a_signalled_session_removes_its_container_before_the_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    from ccstack.state import State

    paths = Paths(repo=REPO, state_dir=tmp_path / "state")
    paths.state_dir.mkdir()
    wd = (tmp_path / "proj").resolve()
    wd.mkdir()
    state = State("local", "ccsbx-t", [], [], [], {"CCSANDBOX_UID": str(ME[0]), "CCSANDBOX_GID": str(ME[1])})
    events: list[str] = []
    monkeypatch.setattr(agent_session, "check_docker", lambda: None)
    monkeypatch.setattr(agent_session, "load_state", lambda _p: state)
    monkeypatch.setattr(agent_session, "require_runtime", lambda _r: [])

    def run_compose(_paths: Paths, _state: State, args: list[str], **_kw: object) -> None:
        events.append(f"run {args[args.index('--name') + 1]}")
        assert (wd / ".mcp.json").exists()  # the placeholders are in place while the agent runs
        os.kill(os.getpid(), signal.SIGHUP)  # the terminal closes

    monkeypatch.setattr(agent_session, "run_compose", run_compose)
    monkeypatch.setattr(agent_session, "remove_container", lambda name: events.append(f"rm {name}"))
    real_finish = agent_session.finish

    def finish(p: Paths, prepared: agent_session.Prepared) -> list[object]:
        events.append("audit")
        return list(real_finish(p, prepared))

    monkeypatch.setattr(agent_session, "finish", finish)

    assert agent_session.claude(paths, str(wd), ["-p", "hi"], tty=False) == 128 + signal.SIGHUP
    name = events[0].removeprefix("run ")
    assert name.startswith("ccsbx-t-agent-")
    assert events == [f"run {name}", f"rm {name}", "audit"]
    assert list(wd.iterdir()) == []  # placeholders removed
    assert list(paths.state_dir.glob("session-*")) == []
