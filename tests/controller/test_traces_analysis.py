"""ccstack.traces.analysis: parts of recorded Claude Code requests, breakdowns, turns, tool-call checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ccstack.traces.analysis import (
    Part,
    anthropic_parts,
    breakdown,
    check_tool_calls,
    message_from_events,
    openai_parts,
    turn_stats,
)

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DAY1 = FIXTURES / "claude_code" / "sessions" / "day1"


def recorded(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((DAY1 / name).read_text())["body"]
    return body


def test_anthropic_parts_of_a_recorded_turn() -> None:
    body = recorded("02-turn2-tool-result.json")
    parts = anthropic_parts(body)
    tools = [p.label for p in parts if p.group == "tools"]
    assert tools == [t["name"] for t in body["tools"]]
    assert len(tools) == 21
    labels = {p.label for p in parts if p.group == "messages"}
    assert labels == {
        "user reminder",
        "user text",
        "system-role message",
        "assistant text",
        "assistant tool_use",
        "user tool_result",
    }
    system = "".join(p.text for p in parts if p.group == "system")
    assert system == "".join(b["text"] for b in body["system"])
    write = next(p for p in parts if p.label == "Write")
    assert (
        json.loads(write.text)["input_schema"]
        == next(t for t in body["tools"] if t["name"] == "Write")["input_schema"]
    )


def test_openai_parts_put_the_first_system_message_in_system() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "<system-reminder>x"}, {"type": "text", "text": "hi"}],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"function": {"name": "Write", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "1", "content": "ok"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:"}}]},
        ],
        "tools": [{"type": "function", "function": {"name": "Write", "parameters": {}}}],
    }
    parts = openai_parts(body)
    assert [(p.group, p.label, p.text) for p in parts] == [
        ("system", "system text", "be brief"),
        ("tools", "Write", json.dumps(body["tools"][0])),
        ("messages", "user reminder", "<system-reminder>x"),
        ("messages", "user text", "hi"),
        ("messages", "assistant tool_calls", "Write{}"),
        ("messages", "tool result", "ok"),
        ("messages", "user image_url", ""),
    ]


def test_breakdown_groups_and_template_overhead() -> None:
    parts = [
        Part("system", "system text", "aaaa"),
        Part("tools", "Bash", "bb"),
        Part("tools", "Write", "ccc"),
        Part("messages", "user text", "d"),
        Part("messages", "user text", "ee"),
    ]
    counts = [len(p.text) for p in parts]
    short = breakdown(parts, counts, source="client", counter="len", total=None, per_tool=False)
    assert [(r.label, r.parts, r.tokens) for r in short.rows] == [
        ("system text", 1, 4),
        ("tool definitions (2)", 2, 5),
        ("user text", 2, 3),
    ]
    assert short.template_overhead is None
    long = breakdown(parts, counts, source="upstream", counter="len", total=20, per_tool=True)
    assert [r.label for r in long.rows if r.group == "tools"] == ["Bash", "Write"]
    assert long.parts_total == 12
    assert long.template_overhead == 8
    assert long.to_json()["groups"] == {"system": 4, "tools": 5, "messages": 3}
    with pytest.raises(ValueError, match="one count per part"):
        breakdown(parts, counts[:1], source="client", counter="len", total=None, per_tool=False)


def test_turn_from_llama_server_timings() -> None:
    timings = {
        "cache_n": 900,
        "prompt_n": 100,
        "prompt_ms": 2000.0,
        "predicted_n": 40,
        "predicted_per_second": 8.0,
    }
    turn = turn_stats({"output_tokens": 40}, timings, first_byte_s=2.1, total_s=7.2)
    assert turn.prompt_tokens == 1000
    assert turn.cached_tokens == 900
    assert turn.cache_share == pytest.approx(0.9)
    assert turn.prompt_ms == 2000.0
    assert turn.tokens_per_s == 8.0
    assert turn.timings_from == "llama-server timings"


def test_turn_from_usage_only() -> None:
    usage = {"input_tokens": 100, "cache_read_input_tokens": 300, "output_tokens": 50}
    turn = turn_stats(usage, None, first_byte_s=1.0, total_s=6.0)
    assert (turn.prompt_tokens, turn.cached_tokens, turn.cache_share) == (400, 300, 0.75)
    assert turn.tokens_per_s == pytest.approx(10.0)
    assert turn.timings_from == "usage"
    none = turn_stats(None, None, first_byte_s=None, total_s=None)
    assert (none.prompt_tokens, none.cache_share, none.tokens_per_s, none.timings_from) == (
        None,
        None,
        None,
        "none",
    )


def test_tool_call_checks_against_the_request_tools() -> None:
    tools = recorded("01-turn1.json")["tools"]
    message = {
        "content": [
            {"type": "text", "text": "ok"},
            {
                "type": "tool_use",
                "name": "Write",
                "input": {"file_path": "/workspace/hello.txt", "content": "hi"},
            },
            {"type": "tool_use", "name": "Write", "input": {"path": "hello.txt"}},
            {"type": "tool_use", "name": "write_file", "input": {}},
            {"type": "tool_use", "name": "Bash", "input": "not json {"},
        ]
    }
    checks = check_tool_calls(tools, message)
    assert [(c.name, c.valid) for c in checks] == [
        ("Write", True),
        ("Write", False),
        ("write_file", False),
        ("Bash", False),
    ]
    assert checks[0].problem is None
    assert "required" in (checks[1].problem or "")
    assert checks[2].problem == "not a tool of the request"
    assert "object" in (checks[3].problem or "")
    assert check_tool_calls(tools, None) == []


def test_message_from_events_rebuilds_text_and_tool_input() -> None:
    events = [
        {"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 10, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Wri"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ting"}},
        {"type": "ping"},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "name": "Write", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"a":'},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": " 1}"},
        },
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 7}},
        {"type": "message_stop"},
    ]
    message = message_from_events(events)
    assert message["id"] == "m"
    assert message["content"] == [
        {"type": "text", "text": "Writing"},
        {"type": "tool_use", "name": "Write", "input": {"a": 1}},
    ]
    assert message["usage"] == {"input_tokens": 10, "output_tokens": 7}
    assert message["stop_reason"] == "tool_use"
