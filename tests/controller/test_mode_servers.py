"""The modes for a server the user names (openai, lmstudio, ollama) and the subscription mode: their
rendering and what `up` asks the server (ccstack.server_info faked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ccstack import commands, server_info
from ccstack.egress import EgressPolicy
from ccstack.errors import StackError
from ccstack.modes import parse_mode
from ccstack.overlay import plain
from ccstack.policy import MountPolicy, Policies, parse_mounts
from ccstack.render import RenderOptions, render
from ccstack.state import REPO, Paths

pytestmark = pytest.mark.unit

ENV = {"CCSANDBOX_UID": "1000"}


def rendered(mode: str, **kw: Any) -> dict[str, Any]:
    mounts = parse_mounts(None, home="/home/u")
    policies = Policies(
        mounts=MountPolicy(mounts.protected, ()), egress=EgressPolicy(enabled=False, domains=())
    )
    opts = RenderOptions(uid=1000, gid=1000, state_dir="/s", **kw)
    out: dict[str, Any] = plain(render(parse_mode(mode), opts, policies).overlay)
    return out


def test_subscription_gives_the_proxy_the_token_as_bearer_with_the_oauth_beta() -> None:
    overlay = rendered("subscription")
    proxy = overlay["services"]["proxy"]
    env = proxy["environment"]
    assert env["CCPROXY_UPSTREAM"] == "https://api.anthropic.com/v1"
    assert env["CCPROXY_UPSTREAM_KIND"] == "anthropic"
    assert env["CCPROXY_UPSTREAM_AUTH"] == "bearer"
    assert env["CCPROXY_UPSTREAM_BETAS"] == "oauth-2025-04-20"
    assert env["CCPROXY_UPSTREAM_KEY_FILE"] == "/run/secrets/upstream_key"
    assert proxy["secrets"] == ["proxy_token", "upstream_key"]
    assert "egress" in proxy["networks"]
    sandbox = overlay["services"]["claude-sandbox"]
    assert "secrets" not in sandbox  # compose.yaml's proxy_token only
    assert not any("OAUTH" in k or "UPSTREAM" in k for k in sandbox["environment"])


def test_the_anthropic_mode_keeps_x_api_key() -> None:
    env = rendered("anthropic")["services"]["proxy"]["environment"]
    assert "CCPROXY_UPSTREAM_AUTH" not in env
    assert "CCPROXY_UPSTREAM_BETAS" not in env


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_server_on_the_host_like_mlx(kind: str) -> None:
    overlay = rendered(
        "openai", upstream="http://host.docker.internal:8000/v1", upstream_kind=kind, context_window=8192
    )
    proxy = overlay["services"]["proxy"]
    assert proxy["environment"]["CCPROXY_UPSTREAM_KIND"] == kind
    assert proxy["environment"]["CCPROXY_UPSTREAM"] == "http://host.docker.internal:8000/v1"
    assert proxy["extra_hosts"] == ["host.docker.internal:host-gateway"]
    assert proxy["networks"] == ["agent", "backend", "egress"]
    assert "secrets" not in proxy
    sandbox = overlay["services"]["claude-sandbox"]["environment"]
    assert sandbox["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "8192"
    assert sandbox["ENABLE_TOOL_SEARCH"] == "false"
    assert int(sandbox["API_TIMEOUT_MS"]) > 600_000  # a local server's long first prefill


def test_a_key_file_for_a_server_that_wants_one() -> None:
    proxy = rendered("lmstudio", upstream_key=True)["services"]["proxy"]
    assert proxy["secrets"] == ["proxy_token", "upstream_key"]
    assert proxy["environment"]["CCPROXY_UPSTREAM_KEY_FILE"] == "/run/secrets/upstream_key"


def paths(tmp_path: Path) -> Paths:
    return Paths(repo=REPO, state_dir=tmp_path / "state")


def test_openai_needs_an_upstream(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="needs --upstream URL"):
        commands.prepare(paths(tmp_path), commands.UpRequest(mode="openai"), ENV)


def test_upstream_kind_is_for_a_named_server(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="--upstream-kind is for a server you name"):
        commands.prepare(
            paths(tmp_path), commands.UpRequest(mode="openrouter", upstream_kind="anthropic"), ENV
        )


def fake_server(
    monkeypatch: pytest.MonkeyPatch, info: server_info.ServerInfo
) -> list[tuple[str, str | None]]:
    asked: list[tuple[str, str | None]] = []

    def ask(url: str, model: str | None, fetch: Any = None) -> server_info.ServerInfo:
        asked.append((url, model))
        return info

    monkeypatch.setattr(server_info, "ask_server", ask)
    return asked


def test_up_reads_window_and_model_from_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = server_info.Window(16384, "LM Studio /api/v0/models loaded_context_length")
    asked = fake_server(monkeypatch, server_info.ServerInfo(True, window, ("qwen2.5-coder-7b",)))
    _mode, out, state = commands.prepare(paths(tmp_path), commands.UpRequest(mode="lmstudio"), ENV)
    assert asked == [("http://127.0.0.1:1234/v1", None)]  # the host's view of host.docker.internal
    env = plain(out.overlay)["services"]["claude-sandbox"]["environment"]
    assert env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "16384"
    assert env["ANTHROPIC_MODEL"] == "qwen2.5-coder-7b"
    assert state.extra["context_window"] == 16384
    assert state.extra["warnings"] == []


def test_flags_win_and_nothing_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = fake_server(monkeypatch, server_info.ServerInfo(False, error="refused"))
    req = commands.UpRequest(mode="ollama", model="qwen2.5-coder:7b", context_window=8192)
    _mode, _out, state = commands.prepare(paths(tmp_path), req, ENV)
    assert asked == []
    assert state.extra["context_window"] == 8192
    assert state.extra["model"] == "qwen2.5-coder:7b"


@pytest.mark.parametrize(
    ("info", "warning"),
    [
        (server_info.ServerInfo(False, error="refused"), "cannot ask"),
        (server_info.ServerInfo(True, None, ("a", "b")), "serves 2 models"),
        (server_info.ServerInfo(True, None, ("a",), asked=("/v1/models",)), "pass --context-window N"),
        (
            server_info.ServerInfo(True, server_info.Window(32768, "Ollama", "a caveat"), ("a",)),
            "a caveat",
        ),
    ],
)
def test_what_stays_unknown_is_warned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, info: server_info.ServerInfo, warning: str
) -> None:
    fake_server(monkeypatch, info)
    req = commands.UpRequest(mode="openai", upstream="http://192.168.1.20:8000/v1")
    _mode, _out, state = commands.prepare(paths(tmp_path), req, ENV)
    assert any(warning in w for w in state.extra["warnings"]), state.extra["warnings"]


def test_subscription_reads_the_token_from_its_variable(tmp_path: Path) -> None:
    p = paths(tmp_path)
    commands.prepare(
        p, commands.UpRequest(mode="subscription"), ENV | {"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-x"}
    )
    assert p.upstream_key.read_text(encoding="utf-8") == "sk-ant-oat01-x"
    with pytest.raises(StackError, match="needs a token: set CLAUDE_CODE_OAUTH_TOKEN"):
        commands.prepare(p, commands.UpRequest(mode="subscription"), ENV)
