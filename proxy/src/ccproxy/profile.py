"""Lean prompt profile for small local models: deterministic, versioned reductions (pure).

Profile ``lean`` (version :data:`PROFILE_VERSION`) shortens what a small local model reads before the
conversation, on ``openai``-kind upstreams, by fixed rules derived from the recorded Claude Code 2.1.330
requests (``tests/fixtures/claude_code``). Profile ``full`` (the default) changes nothing. The rules are
pure functions of the text, so the output is byte-stable across sessions; they run on the leading system
text *before* the cache-stable layout (``layout.py``) and never touch the lines the layout moves, so
system + tools stay one byte-identical prefix with the layout on.

Kept, always: every tool, its name and its ``input_schema`` byte for byte (structure, types, required,
enums and the properties' descriptions — they are short and are what a model reads to fill arguments);
the ``# Harness`` section (how tool calls, permissions, hooks and pasted content work: the tool-use
instructions), the security (``IMPORTANT: Assist with authorized security testing…``), privacy,
confirmation and copyright text, ``# Session-specific guidance``, ``# Context management``, and the whole
environment message (working directory, platform, shell, OS, date, the sandbox's untrusted-download
rules, the model name, the agent types and skills the Agent and Skill tools take).

System-text rules (on each part of the leading system text; nothing else in it changes):

1. The ``# Memory`` section (heading to the next ``# `` heading) is dropped: it documents an optional
   feature (a file format for persistent memories, ~600 tokens) that a small model does not need to do
   the task, and it names a directory that depends on the working directory outside the sandbox.
2. Bullets `` - The most recent Claude models are …``, `` - Claude Code is available as …`` and
   `` - Fast mode for Claude Code …`` are dropped (product information about Anthropic's models and
   apps; nothing the model acts on in the sandbox). A ``# `` heading left without a body goes too.
   The environment message's own ``# Environment`` heading keeps its body and so stays.
A blank line left doubled or trailing by a removal goes with it.

Message rule (user turns; nothing is dropped):

4. In Claude Code's context reminder (a ``<system-reminder>`` that opens with ``As you answer the
   user's questions, you can use the following context:``) the heading ``# gitStatus`` reads
   ``# Git status``. Small models took the identifier for a path: the task suite's transcripts have
   ``Edit /workspace/gitStatus`` and ``Read gitStatus`` in 10 of 78 runs, with both models.

Tool-description rule (every tool; the name and the input schema are not touched):

3. A description longer than :data:`DESCRIPTION_BUDGET` characters is cut to the budget: its first
   paragraph (a leading markdown heading counts with it), then whole further paragraphs (blocks apart
   by a blank line outside a ````` ``` ````` fence) while they fit, then whole lines of the next paragraph
   while they fit (list items of usage notes), unless it holds a fence. A fenced code block is never
   cut inside. When the first paragraph alone is longer than the budget it is cut after its last
   sentence end (``. `` / ``.\\n``, outside backticks) within the budget, or kept whole when it has
   none (so a few descriptions stay longer). A markdown heading or a line ending in ``:`` left last
   (it would introduce what was cut) goes too. The first paragraph of Claude Code's tool descriptions
   says what the tool does; the rest is usage detail, most of it also in the schema's property
   descriptions, which stay.
"""

from __future__ import annotations

from typing import Literal

from ccproxy.types_openai import ChatMessage, ContentPart

__all__ = [
    "CONTEXT_HEADINGS",
    "CONTEXT_REMINDER",
    "DESCRIPTION_BUDGET",
    "DROPPED_BULLETS",
    "DROPPED_SECTIONS",
    "PROFILE_VERSION",
    "PromptProfile",
    "lean_context_text",
    "lean_description",
    "lean_messages",
    "lean_system_parts",
    "lean_system_text",
]

PromptProfile = Literal["full", "lean"]
PROFILE_VERSION = "lean-2"
"""Changes whenever the lean profile would render a recorded request differently."""

DESCRIPTION_BUDGET = 600
DROPPED_SECTIONS = ("# Memory",)
DROPPED_BULLETS = (
    " - The most recent Claude models are ",
    " - Claude Code is available as ",
    " - Fast mode for Claude Code ",
)
CONTEXT_REMINDER = (
    "<system-reminder>\nAs you answer the user's questions, you can use the following context:\n"
)
CONTEXT_HEADINGS = {"# gitStatus": "# Git status"}
_FENCE = "```"


def _tidy(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if line == "" and out and out[-1] == "":
            continue
        out.append(line)
    return out


def lean_system_text(text: str) -> str:
    """Rules 1 and 2 over one part of the leading system text."""
    lines = text.split("\n")
    kept: list[str] = []
    dropping = False
    changed = False
    for line in lines:
        if line.startswith("# "):
            dropping = line.rstrip() in DROPPED_SECTIONS
        if dropping or line.startswith(DROPPED_BULLETS):
            changed = True
            continue
        kept.append(line)
    if not changed:
        return text
    # a heading whose body went entirely (followed only by blanks and then another heading or the end)
    result: list[str] = []
    for i, line in enumerate(kept):
        if line.startswith("# "):
            rest = kept[i + 1 :]
            body = next((x for x in rest if x.strip()), None)
            if body is None or body.startswith("# "):
                continue
        result.append(line)
    body = "\n".join(_tidy(result)).rstrip("\n")
    return body + "\n" * (len(text) - len(text.rstrip("\n")))


def lean_system_parts(parts: list[str]) -> list[str]:
    """Rules 1 and 2 over every part of the leading system text (a part left empty disappears)."""
    out = [lean_system_text(p) for p in parts]
    return [p for p, original in zip(out, parts, strict=True) if p.strip() or not original.strip()]


def lean_context_text(text: str) -> str:
    """Rule 4 over one text of a user turn: Claude Code's context headings in plain words."""
    if not text.startswith(CONTEXT_REMINDER):
        return text
    lines = text.split("\n")
    return "\n".join(CONTEXT_HEADINGS.get(line, line) for line in lines)


def _lean_part(part: ContentPart) -> ContentPart:
    if part["type"] == "text":
        return {"type": "text", "text": lean_context_text(part["text"])}
    return part


def lean_messages(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Rule 4 over the user turns (other messages, and user turns without the reminder, unchanged)."""
    out: list[ChatMessage] = []
    for message in messages:
        if message["role"] == "user":
            content = message["content"]
            if isinstance(content, str):
                message = {"role": "user", "content": lean_context_text(content)}
            else:
                message = {"role": "user", "content": [_lean_part(p) for p in content]}
        out.append(message)
    return out


def _paragraphs(text: str) -> list[str]:
    """Blocks apart by blank lines; a fenced code block stays inside one block."""
    blocks: list[str] = []
    current: list[str] = []
    fenced = False
    for line in text.split("\n"):
        if line.lstrip().startswith(_FENCE):
            fenced = not fenced
        if line.strip() == "" and not fenced:
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def _sentence_cut(paragraph: str, budget: int) -> str:
    """The paragraph up to its last sentence end within the budget, outside backticks and fences."""
    if _FENCE in paragraph:
        return paragraph
    best = -1
    ticks = 0
    for i, ch in enumerate(paragraph[:budget]):
        if ch == "`":
            ticks += 1
        elif ch == "." and ticks % 2 == 0 and (i + 1 == len(paragraph) or paragraph[i + 1] in " \n"):
            best = i
    return paragraph[: best + 1] if best >= 0 else paragraph


def _dangling(line: str) -> bool:
    """A line that only introduces what follows it: a markdown heading or a line ending in a colon."""
    stripped = line.strip()
    return stripped.startswith("#") or stripped.endswith(":")


def lean_description(description: str, budget: int = DESCRIPTION_BUDGET) -> str:
    """Rule 3: leading paragraphs, then whole lines, within the budget (at least the first paragraph,
    sentence-cut if too long); no heading or introducing line left dangling at the end."""
    if len(description) <= budget:
        return description
    blocks = _paragraphs(description)
    if not blocks:
        return description
    first = 0
    while first + 1 < len(blocks) and all(_dangling(x) for x in blocks[first].split("\n")):
        first += 1  # a leading heading is not the first paragraph
    head = "\n\n".join(blocks[: first + 1])
    lines = (head if len(head) <= budget else _sentence_cut(head, budget)).split("\n")
    size = len("\n".join(lines))
    for block in blocks[first + 1 :]:
        if size + 2 + len(block) <= budget:
            lines += ["", *block.split("\n")]
            size += 2 + len(block)
            continue
        if _FENCE not in block:
            taken: list[str] = []
            extra = 1
            for line in block.split("\n"):
                if size + extra + len(line) + 1 > budget:
                    break
                taken.append(line)
                extra += len(line) + 1
            if taken:
                lines += ["", *taken]
        break
    while len(lines) > 1 and (lines[-1] == "" or _dangling(lines[-1])):
        lines.pop()
    return "\n".join(lines)
