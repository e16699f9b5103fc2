"""Cache-stable prompt layout: what varies between sessions moves after what does not (pure).

A chat template renders the system message first and the tools right after it, so every byte of the
system text sits in front of ~64 k characters of tool definitions. Claude Code's system text carries
facts that change between sessions of one workdir (today's date, the OS version) and between workdirs
(the working directory, whether it is a git repository), about a third of the way in: without this
layout a new day, a kernel update or another repository re-prefills nearly the whole prompt.

Layout ``stable`` (version :data:`LAYOUT_VERSION`) takes those lines out of the leading system text,
verbatim and complete, and puts them into one ``<system-reminder>`` at the start of the first user
turn, where Claude Code already puts the git status, CLAUDE.md and memory. The system text and the tools
then form a byte-identical prefix across sessions, days, commits and repositories (the sandbox mounts
every workdir at /workspace). Nothing is dropped or rewritten; later turns repeat the first user turn
unchanged, so the in-conversation cache stays hot. Layout ``off`` leaves the text as it is.

Lines moved (matched per line; everything else stays in place, byte for byte):
- environment bullets `` - Primary working directory: …``, `` - Is a git repository: …``,
  `` - Version control system: …``, `` - Additional working directories…``, `` - OS Version: …``,
  `` - Scratchpad directory: …``, `` - The runner's note for this start…`` and the ``  - `` items nested
  under any of them (``Platform`` and ``Shell`` stay: they are fixed per machine);
- date lines ``Today's date is YYYY-MM-DD.`` and ``The UTC date is YYYY-MM-DD. …`` (with a ``# currentDate``
  heading right above one);
- a ``gitStatus:`` or ``# gitStatus`` section (older CLIs put it in the system prompt) up to the end of
  that part of the system text.
A blank line left doubled or trailing by a removal goes with it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from ccproxy.types_openai import ChatMessage, ContentPart, UserMessage

__all__ = [
    "LAYOUT_VERSION",
    "MovedText",
    "PromptLayout",
    "reminder",
    "split_parts",
    "split_varying",
    "stable_layout",
]

PromptLayout = Literal["stable", "off"]
LAYOUT_VERSION = "stable-1"
"""Changes whenever the layout would render a recorded request differently (saved caches keyed by it)."""

MOVED_BULLETS = (
    "Primary working directory:",
    "Is a git repository:",
    "Version control system:",
    "Additional working directories",
    "OS Version:",
    "Scratchpad directory:",
    "The runner's note for this start",
)
_BULLET = " - "
_NESTED = "  - "
_DATE = re.compile(r"(?:Today's date is|The UTC date is) \d{4}-\d{2}-\d{2}\b")
_DATE_HEADING = "# currentDate"
_GIT_STATUS = ("gitStatus:", "# gitStatus")
REMINDER_HEADING = "# Environment of this session"


@dataclass(frozen=True)
class MovedText:
    """The system text without its varying lines, and those lines as runs of adjacent lines."""

    stable: str
    runs: tuple[str, ...]


def _marks(lines: Sequence[str]) -> list[bool]:
    """Which lines move. Dispatches on a line's first character (the hot path runs it over the whole
    system text on every request): bullets start with a space, dates with ``T``, git status with ``g``
    or ``#``; any other line cannot move and ends a moved bullet's nested items."""
    moved = [False] * len(lines)
    parent_moved = False
    for i, line in enumerate(lines):
        first = line[:1]
        if first == " ":
            if line.startswith(_NESTED):
                moved[i] = parent_moved
                continue
            parent_moved = line.startswith(_BULLET) and line[len(_BULLET) :].startswith(MOVED_BULLETS)
            if parent_moved:
                moved[i] = True
            continue
        parent_moved = False
        if first == "T":
            if _DATE.match(line):
                moved[i] = True
                if i > 0 and lines[i - 1] == _DATE_HEADING:
                    moved[i - 1] = True
        elif (first == "g" or first == "#") and line.startswith(_GIT_STATUS):
            moved[i:] = [True] * (len(lines) - i)
            break
    return moved


def split_varying(text: str) -> MovedText:
    """Split one part of the system text into its stable text and the varying lines (in order)."""
    lines = text.split("\n")
    moved = _marks(lines)
    if not any(moved):
        return MovedText(text, ())
    runs: list[str] = []
    run: list[str] = []
    kept: list[str] = []
    for line, is_moved in zip(lines, moved, strict=True):
        if is_moved:
            run.append(line)
            continue
        if run:
            runs.append("\n".join(run).strip("\n"))
            run = []
            if line == "" and (not kept or kept[-1] == ""):
                continue  # the removal would leave a doubled (or leading) blank line
        kept.append(line)
    if run:
        runs.append("\n".join(run).strip("\n"))
        while kept and kept[-1] == "":
            kept.pop()  # the removal would leave trailing blank lines
    return MovedText("\n".join(kept), tuple(r for r in runs if r))


def split_parts(parts: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split each part of the leading system text: (stable parts, moved runs of all parts, in order).
    A part that was nothing but varying lines disappears."""
    stable: list[str] = []
    runs: list[str] = []
    for part in parts:
        split = split_varying(part)
        if split.stable.strip() or not split.runs:
            stable.append(split.stable)
        runs.extend(split.runs)
    return stable, runs


def reminder(runs: Sequence[str]) -> str:
    """The moved lines as the reminder that opens the first user turn: bullets of one list stay one
    list, other runs are apart by a blank line, as they were."""
    body = runs[0] if runs else ""
    for previous, run in pairwise(runs):
        same_list = previous.rpartition("\n")[2].startswith((_BULLET, _NESTED)) and run.startswith(_BULLET)
        body += ("\n" if same_list else "\n\n") + run
    return f"<system-reminder>\n{REMINDER_HEADING}\n{body}\n</system-reminder>"


def _opened(message: UserMessage, text: str) -> UserMessage:
    content = message["content"]
    if isinstance(content, str):
        return {"role": "user", "content": f"{text}\n\n{content}" if content else text}
    parts: list[ContentPart] = [{"type": "text", "text": text}, *content]
    return {"role": "user", "content": parts}


def stable_layout(
    system_parts: Sequence[str], messages: Sequence[ChatMessage]
) -> tuple[list[str], list[ChatMessage]]:
    """Layout ``stable`` over a translated request: the leading system text's parts without their
    varying lines, and the messages (after the system message) with those lines opening the first user
    turn (a user message of their own when the conversation does not start with one)."""
    stable, runs = split_parts(system_parts)
    if not runs:
        return list(system_parts), list(messages)
    text = reminder(runs)
    out = list(messages)
    first = out[0] if out else None
    if first is not None and first["role"] == "user":
        out[0] = _opened(first, text)
    else:
        out.insert(0, {"role": "user", "content": text})
    return stable, out
