"""A reminder after a call that repeats the previous one exactly (pure; ``--repeat-hint on``).

Small models in Claude Code's loop often send the very same tool call again and again — the same
``Edit`` that failed, the same ``Read`` — until the CLI's turn limit. The conversation already holds
the results; nothing new comes of repeating. With the hint, the proxy adds one user message right after
the results of the second (third, ...) identical call in a row:

    <system-reminder>You have now called Edit with exactly the same arguments 2 times in a row, and it
    failed each time (Error: <tool_use_error>String to replace not found ...). Calling it again gives
    the same result. Use what the results above say: ...</system-reminder>

It is a function of the history alone: every later request of the conversation gets the same message at
the same place, so the backend's prompt cache keeps the whole conversation (nothing earlier changes).
What it says is advice; no call is changed, dropped or made up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ccproxy.types_openai import AssistantMessage, ChatMessage, ToolMessage, UserMessage

__all__ = ["HINT_VERSION", "call_signature", "first_line", "is_tool_side", "with_repeat_hints"]

HINT_VERSION = "repeat-1"
_RESULT_CHARS = 240


def call_signature(message: AssistantMessage) -> tuple[tuple[str, str], ...] | None:
    """The message's calls as (name, canonical arguments); None when it makes no call."""
    calls = message.get("tool_calls") or []
    if not calls:
        return None
    out = []
    for call in calls:
        arguments = call["function"]["arguments"]
        try:
            canonical = json.dumps(json.loads(arguments), sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError):
            canonical = arguments
        out.append((call["function"]["name"], canonical))
    return tuple(out)


def first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= _RESULT_CHARS else line[: _RESULT_CHARS - 1] + "…"


def hint(names: Sequence[str], times: int, results: Sequence[ToolMessage]) -> UserMessage:
    """The reminder after the ``times``-th identical call of ``names`` and its ``results``."""
    tools = ", ".join(dict.fromkeys(names))
    failed = [r for r in results if r["content"].startswith("Error")]
    outcome = (
        f", and it failed each time ({first_line(failed[0]['content'])})"
        if failed and len(failed) == len(results)
        else ""
    )
    advice = (
        "Read the file or run a command to see what is really there, then change your arguments"
        if failed
        else "Use what the results above say"
    )
    text = (
        f"<system-reminder>You have now called {tools} with exactly the same arguments {times} times in a "
        f"row{outcome}. Calling it again gives the same result. {advice}, use another tool, or answer "
        "the user.</system-reminder>"
    )
    return {"role": "user", "content": text}


def with_repeat_hints(messages: Sequence[ChatMessage], *, after: int = 2) -> list[ChatMessage]:
    """``messages`` with a reminder after the results of each call that is the ``after``-th (or later)
    identical call in a row. Unchanged (a new list, same messages) when nothing repeats."""
    out: list[ChatMessage] = []
    previous: tuple[tuple[str, str], ...] | None = None
    times = 0
    pending: tuple[list[str], int] | None = None  # a hint to add once the call's results are out
    results: list[ToolMessage] = []
    for message in messages:
        if pending is not None and message["role"] != "tool":
            out.append(hint(pending[0], pending[1], results))
            pending = None
        if message["role"] == "tool":
            results.append(message)
        elif message["role"] == "assistant":
            signature = call_signature(message)
            times = times + 1 if signature is not None and signature == previous else 1
            previous = signature
            results = []
            if signature is not None and times >= after:
                pending = ([name for name, _ in signature], times)
        elif message["role"] == "user" and not is_tool_side(message):
            previous, times = None, 0  # the user spoke: a new attempt starts
        out.append(message)
    if pending is not None:
        out.append(hint(pending[0], pending[1], results))
    return out


def is_tool_side(message: UserMessage) -> bool:
    """A user message that only carries what came with tool results (images, reminders), not the user."""
    content = message["content"]
    if isinstance(content, str):
        return content.startswith("<system-reminder>") or content.startswith("[")
    return all(part.get("type") == "image_url" for part in content)
