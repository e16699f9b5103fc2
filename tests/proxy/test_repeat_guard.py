"""The repeat guard: the N-th identical call with identical results in a row ends the turn with the
proxy's notice (repeat_guard.py, the plan's stage 3c, the app answering without the upstream)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ccproxy.plan import Session, plan
from ccproxy.repeat_guard import NOTICE_PREFIX, Repeat, notice, repeated_call
from ccproxy.types_anthropic import parse_messages_request
from ccproxy.types_openai import ChatMessage
from fakes import LLAMA

pytestmark = pytest.mark.unit

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code" / "repeat_loop"
ERROR = "Error: <tool_use_error>File does not exist.</tool_use_error>"


def assistant_call(name: str = "Edit", arguments: str = '{"file_path": "a.py"}', i: int = 0) -> ChatMessage:
    call = {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": arguments}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}  # type: ignore[list-item]


def result(content: str = ERROR, i: int = 0) -> ChatMessage:
    return {"role": "tool", "tool_call_id": f"c{i}", "content": content}


def turns(n: int, *, results: list[str] | None = None) -> list[ChatMessage]:
    out: list[ChatMessage] = [{"role": "user", "content": "Fix the bug."}]
    for i in range(n):
        out += [assistant_call(i=i), result(results[i] if results else ERROR, i=i)]
    return out


def test_the_third_identical_call_and_result_in_a_row_is_a_repeat() -> None:
    assert repeated_call(turns(2), limit=3) is None
    assert repeated_call(turns(3), limit=3) == Repeat(names=("Edit",), times=3, result=ERROR)
    assert repeated_call(turns(5), limit=3) == Repeat(names=("Edit",), times=5, result=ERROR)
    assert repeated_call(turns(2), limit=2) == Repeat(names=("Edit",), times=2, result=ERROR)


def test_arguments_compare_as_json_whatever_their_spelling() -> None:
    messages = [*turns(2), assistant_call(arguments='{ "file_path":"a.py" }', i=9), result(i=9)]
    assert repeated_call(messages, limit=3) is not None


@pytest.mark.parametrize(
    "messages",
    [
        turns(3, results=["tick 1", "tick 2", "tick 3"]),  # polling: the results change
        [*turns(2), assistant_call(arguments='{"file_path": "b.py"}', i=9), result(i=9)],
        [*turns(2), {"role": "user", "content": "Try again."}, assistant_call(i=9), result(i=9)],
        [*turns(2), {"role": "assistant", "content": "Done?"}, assistant_call(i=9), result(i=9)],
        [*turns(3), assistant_call(i=9)],  # ends with a call, not its results
        [],
    ],
    ids=["results-change", "other-arguments", "user-spoke", "text-answer", "no-results-yet", "empty"],
)
def test_no_repeat(messages: list[ChatMessage]) -> None:
    assert repeated_call(messages, limit=3) is None


def test_a_reminder_beside_the_results_does_not_restart_the_count() -> None:
    reminder: ChatMessage = {"role": "user", "content": "<system-reminder>noted</system-reminder>"}
    messages = [*turns(2), reminder, assistant_call(i=9), result(i=9)]
    assert repeated_call(messages, limit=3) == Repeat(names=("Edit",), times=3, result=ERROR)


def test_the_notice_says_what_repeated_and_what_to_do() -> None:
    text = notice(Repeat(names=("Edit", "Edit"), times=3, result=ERROR))
    assert text.startswith(NOTICE_PREFIX)
    assert "called Edit with the same arguments 3 times in a row" in text
    assert ERROR in text
    assert "--repeat-limit" in text


def recorded_request(drop_last_repeats: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((RECORDED / "04-third-identical-result.json").read_text())["body"]
    body = copy.deepcopy(body)
    if drop_last_repeats:
        body["messages"] = body["messages"][: -2 * drop_last_repeats]
    return body


def test_a_recorded_loop_of_the_real_cli_is_stopped_at_the_third_repeat() -> None:
    """The real CLI in the sandbox, the 0.5B model repeating an Edit of a file that does not exist."""
    settings = replace(LLAMA, repeat_limit=3)
    stuck = plan(parse_messages_request(recorded_request()), settings, None, Session())
    assert stuck.local_answer is not None
    assert "called Edit with the same arguments 3 times" in stuck.local_answer
    assert "File does not exist" in stuck.local_answer
    before = plan(parse_messages_request(recorded_request(drop_last_repeats=1)), settings, None, Session())
    assert before.local_answer is None
    off = plan(parse_messages_request(recorded_request()), LLAMA, None, Session())
    assert off.local_answer is None  # off by default
