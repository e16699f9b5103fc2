"""ccstack.state: paths, state.json, .env, secrets and the upstream key (no Docker)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from ccstack import state
from ccstack.errors import StackError
from ccstack.modes import parse_mode

pytestmark = pytest.mark.unit


def test_missing_key_says_what_to_set() -> None:
    with pytest.raises(StackError, match="set OPENROUTER_API_KEY or pass --key-file"):
        state.resolve_key(parse_mode("openrouter"), None, {})
    assert state.resolve_key(parse_mode("openrouter"), None, {"OPENROUTER_API_KEY": " k \n"}) == "k"


def test_key_file(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text("sk-1\n", encoding="utf-8")
    assert state.resolve_key(parse_mode("anthropic"), str(f), {}) == "sk-1"
    f.write_text("", encoding="utf-8")
    with pytest.raises(StackError, match="empty"):
        state.resolve_key(parse_mode("anthropic"), str(f), {})
    with pytest.raises(StackError, match="cannot read"):
        state.resolve_key(parse_mode("anthropic"), str(tmp_path / "nope"), {})


def test_secret_files_live_in_a_private_directory(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "proxy_token"
    state.write_secret(path, "t0k")
    assert path.read_text(encoding="utf-8") == "t0k"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_invoking_ids() -> None:
    assert state.invoking_ids({"CCSANDBOX_UID": "1234", "CCSANDBOX_GID": "99"}) == (1234, 99)
    assert state.invoking_ids({"CCSANDBOX_UID": "1234"}) == (1234, 1234)


def test_state_round_trip_and_not_up(tmp_path: Path) -> None:
    paths = state.Paths(repo=tmp_path, state_dir=tmp_path / ".stack")
    with pytest.raises(StackError, match="the stack is not up"):
        state.load_state(paths)
    saved = state.State("local", "p", ["a.yaml"], ["local"], ["proxy"], {"K": "v"}, 9000, {"model": "m"})
    state.save_state(paths, saved)
    assert state.load_state(paths) == saved


def test_dotenv_is_ours_or_left_alone(tmp_path: Path) -> None:
    paths = state.Paths(repo=tmp_path, state_dir=tmp_path / ".stack")
    st = state.State("test", "p", ["/r/compose.yaml", "/r/o.yaml"], [], [], {"CCSANDBOX_UID": "1000"})
    assert state.write_dotenv(paths, st) is None
    text = paths.dotenv.read_text(encoding="utf-8")
    assert text.startswith(state.DOTENV_HEADER)
    assert "COMPOSE_FILE=/r/compose.yaml:/r/o.yaml\n" in text
    state.remove_dotenv(paths)
    assert not paths.dotenv.exists()
    paths.dotenv.write_text("MINE=1\n", encoding="utf-8")
    notice = state.write_dotenv(paths, st)
    assert notice is not None
    assert "leaving your" in notice
    state.remove_dotenv(paths)
    assert paths.dotenv.read_text(encoding="utf-8") == "MINE=1\n"
    elsewhere = state.Paths(repo=tmp_path / "r2", state_dir=tmp_path / "other")
    assert state.write_dotenv(elsewhere, st) is None
    assert not elsewhere.dotenv.exists()
