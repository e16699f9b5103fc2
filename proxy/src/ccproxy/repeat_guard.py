"""The repeat guard: a turn stuck on one call ends with a notice instead of another copy (pure).

Small models in Claude Code's loop send the very same tool call again and again — the same ``Edit``
of a file that does not exist, the same ``Write`` — and get the very same result each time, until the
CLI's turn limit, or for as long as the user lets it run (an unattended ``claude -p`` has no limit).
In the task suite's 108 recorded runs (bench/results/tasks), 46 reached three identical calls in a row
with identical results, and none of them went on to anything that changed its outcome (one tried
another call afterwards and still failed; the 7 that succeeded had done the work with the first copy).

With ``--repeat-limit N`` (the stack's local modes: 3), when the request's conversation ends with the
results of the N-th identical call in a row — same tools, same arguments, same results, with nothing
from the user in between — the proxy does not ask the model again. It answers the turn itself with a
short text that says so (``stop_reason: end_turn``): the CLI shows it and hands control back to the
user, whose next message starts a new count. Calls whose results change (polling a build, re-running
tests after an edit) never count as repeats.

    stuck = repeated_call(messages, limit=3)      # None, or what repeats
    text = notice(stuck) if stuck else None
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ccproxy.repeat_hint import call_signature, first_line, is_tool_side
from ccproxy.types_openai import ChatMessage

__all__ = ["GUARD_VERSION", "Repeat", "notice", "repeated_call"]

GUARD_VERSION = "guard-1"
NOTICE_PREFIX = "[ccproxy] "


@dataclass(frozen=True)
class Repeat:
    """A call repeated with the same results: its tools, how often in a row, and its first result."""

    names: tuple[str, ...]
    times: int
    result: str


def repeated_call(messages: Sequence[ChatMessage], *, limit: int) -> Repeat | None:
    """What the conversation repeats when it ends with the results of the ``limit``-th (or later)
    identical call in a row, identical results included; None otherwise."""
    units: list[tuple[object, ...]] = []  # since the user last spoke: each call with its results
    names: tuple[str, ...] = ()
    for message in messages:
        if message["role"] == "assistant":
            signature = call_signature(message)
            if signature is None:
                units = []  # an answer without a call ends the run
            else:
                units.append((signature,))
                names = tuple(name for name, _ in signature)
        elif message["role"] == "tool":
            if units:
                units[-1] += (message["content"],)
        elif message["role"] == "user" and not is_tool_side(message):
            units = []  # the user spoke: a new count
    if not units or len(units[-1]) < 2 or messages[-1]["role"] == "assistant":
        return None  # the conversation does not end with a call's results
    last = units[-1]
    times = 0
    for unit in reversed(units):
        if unit != last:
            break
        times += 1
    if times < limit:
        return None
    first = last[1]
    return Repeat(names=names, times=times, result=first_line(first) if isinstance(first, str) else "")


def notice(repeat: Repeat) -> str:
    """The text the proxy answers with in place of another copy of the call."""
    tools = ", ".join(dict.fromkeys(repeat.names))
    result = f" ({repeat.result})" if repeat.result else ""
    return (
        f"{NOTICE_PREFIX}Stopped: the model called {tools} with the same arguments {repeat.times} times in "
        f"a row and got the same result each time{result}; it would only repeat it again. Tell it what "
        "to do differently, or use a stronger model. (The proxy's repeat guard, --repeat-limit.)"
    )
