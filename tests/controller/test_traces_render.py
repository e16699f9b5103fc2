"""Replay output (Markdown, PNG), the `--to`/`--model` pairing and the SSE reader: no sockets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ccstack import cli
from ccstack.traces import plot, render, replay

pytestmark = pytest.mark.unit


def result(target: str, trace: str, **extra: Any) -> dict[str, Any]:
    base = {"target": target, "trace": trace, "status": 200, "prompt_tokens": 500, "cached_tokens": 0}
    base.update(prompt_s=2.0, first_token_s=2.5, total_s=6.0, output_tokens=30, tokens_per_s=9.5)
    return {**base, "tool_calls": [], **extra}


RESULTS = [
    result("small", "01.json", tool_calls=[{"name": "Write", "valid": True, "problem": None}]),
    result("small", "02.json"),
    result("big", "01.json", tool_calls=[{"name": "Write", "valid": False, "problem": "content: required"}]),
    {"target": "big", "trace": "02.json", "status": 529, "error": "overloaded", "tool_calls": []},
]


def test_markdown_table() -> None:
    md = render.replay_markdown(RESULTS, ["a note"])
    lines = md.splitlines()
    assert lines[2].startswith("| target | trace | status | prompt tokens |")
    assert "| small | 01.json | 200 | 500 | 0 | 2.00 | 2.50 | 6.00 | 30 | 9.5 | 1/1 valid |" in lines
    assert "| small | 02.json | 200 | 500 | 0 | 2.00 | 2.50 | 6.00 | 30 | 9.5 | none |" in lines
    assert "| big | 02.json | 529 | - | - | - | - | - | - | - | - |" in lines
    assert "- big 01.json: Write: content: required" in lines
    assert "- big 02.json: overloaded" in lines
    assert "a note" in lines


def test_plot_writes_a_png(tmp_path: Path) -> None:
    path = plot.plot(RESULTS, tmp_path / "r.png", "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_to_and_model_pair_up() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(
        ["replay", "t.json", "--model", "all", "--to", "a", "--to", "b", "--model", "mb"]
    )
    assert args.targets == [["a", None], ["b", "mb"]]
    assert args.default_model == "all"
    with pytest.raises(SystemExit):
        parser.parse_args(["replay", "t.json"])


def test_a_target_is_a_mode_or_a_url() -> None:
    with pytest.raises(Exception, match="a mode"):
        replay.resolve_target("ftp://x", None)


def test_sse_events() -> None:
    lines = iter(["event: ping", 'data: {"type": "ping"}', "", "data: ", 'data: {"type": "message_stop"}'])
    assert [e["type"] for e in replay.sse_events(lines)] == ["ping", "message_stop"]


def test_modes_as_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "stack_service_ip", lambda service, network, project=None: "172.18.0.5")
    local = replay.resolve_target("local", "qwen")
    assert (local.url, local.kind, local.features, local.model) == (
        "http://172.18.0.5:8080/v1",
        "openai",
        "llama-server",
        "qwen",
    )
    assert replay.resolve_target("local", None).label == "local"
    scripted = replay.resolve_target("test", None)
    assert scripted.url == "http://172.18.0.5:8080/v1"
    mlx = replay.resolve_target("mlx", None)
    assert mlx.url.startswith("http://127.0.0.1:")
    assert mlx.features == "generic"
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    with pytest.raises(Exception, match="set OPENROUTER_API_KEY"):
        replay.resolve_target("openrouter", None)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    anthropic = replay.resolve_target("anthropic", None)
    assert (anthropic.kind, anthropic.key_env) == ("anthropic", "ANTHROPIC_API_KEY")
    monkeypatch.setattr(replay, "stack_service_ip", lambda service, network, project=None: None)
    with pytest.raises(Exception, match="just up local"):
        replay.resolve_target("local", None)


def test_server_and_subscription_modes_as_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    lmstudio = replay.resolve_target("lmstudio", "qwen2.5-coder-7b")
    assert (lmstudio.url, lmstudio.model) == ("http://127.0.0.1:1234/v1", "qwen2.5-coder-7b")
    with pytest.raises(Exception, match="give the server's URL"):
        replay.resolve_target("openai", None)
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-x")
    sub = replay.resolve_target("subscription", None)
    assert (sub.kind, sub.key_env, sub.auth, sub.betas) == (
        "anthropic",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "bearer",
        ("oauth-2025-04-20",),
    )
