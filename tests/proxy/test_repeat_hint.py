"""ccproxy.repeat_hint: a reminder after a tool call that repeats the previous one exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ccproxy.repeat_hint import with_repeat_hints

pytestmark = pytest.mark.unit


def call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        ],
    }


def result(call_id: str, text: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": text}


USER = {"role": "user", "content": "Fix calc.py"}
EDIT = {"file_path": "calc.py", "old_string": "a - b", "new_string": "a + b"}
NOT_FOUND = "Error: <tool_use_error>String to replace not found in file.</tool_use_error>"


def hints(messages: list[Any]) -> list[tuple[int, str]]:
    return [
        (i, m["content"])
        for i, m in enumerate(messages)
        if m["role"] == "user" and m["content"].startswith("<system-reminder>You have now called")
    ]


def test_nothing_repeats_nothing_added() -> None:
    messages = [USER, call("Read", {"file_path": "calc.py"}, "1"), result("1", "def add")]
    messages += [call("Edit", EDIT, "2"), result("2", "ok")]
    assert with_repeat_hints(messages) == messages


def test_the_second_identical_failing_call_gets_a_reminder_after_its_result() -> None:
    messages = [USER, call("Edit", EDIT, "1"), result("1", NOT_FOUND), call("Edit", EDIT, "2")]
    messages += [result("2", NOT_FOUND)]
    out = with_repeat_hints(messages)
    assert out[:5] == messages
    [(index, text)] = hints(out)
    assert index == 5
    assert "Edit with exactly the same arguments 2 times in a row" in text
    assert "it failed each time (Error: <tool_use_error>String to replace not found" in text
    assert "Read the file" in text


def test_argument_order_does_not_hide_a_repeat_and_the_count_grows() -> None:
    reordered = dict(reversed(list(EDIT.items())))
    messages = [USER]
    for i, args in enumerate([EDIT, reordered, EDIT], start=1):
        messages += [call("Edit", args, str(i)), result(str(i), NOT_FOUND)]
    found = hints(with_repeat_hints(messages))
    assert [text.split(" times")[0][-1] for _, text in found] == ["2", "3"]


def test_a_different_call_or_the_user_resets_the_count() -> None:
    messages = [USER, call("Read", {"file_path": "a"}, "1"), result("1", "x")]
    messages += [call("Read", {"file_path": "b"}, "2"), result("2", "y")]
    messages += [{"role": "user", "content": "Now read a again"}, call("Read", {"file_path": "b"}, "3")]
    messages += [result("3", "y")]
    assert hints(with_repeat_hints(messages)) == []


def test_successful_repeats_are_told_to_use_the_results() -> None:
    messages = [USER]
    for i in (1, 2):
        messages += [call("Read", {"file_path": "a"}, str(i)), result(str(i), "line 1")]
    [(_, text)] = hints(with_repeat_hints(messages))
    assert "failed" not in text
    assert "Use what the results above say" in text


def test_stable_across_turns_so_the_prompt_cache_holds() -> None:
    turn = [USER, call("Edit", EDIT, "1"), result("1", NOT_FOUND), call("Edit", EDIT, "2")]
    turn += [result("2", NOT_FOUND)]
    first = with_repeat_hints(turn)
    later = with_repeat_hints([*turn, call("Read", {"file_path": "calc.py"}, "3"), result("3", "def")])
    assert later[: len(first)] == first  # the next request starts with this one's messages
