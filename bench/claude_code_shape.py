"""Claude-Code-shaped requests for the benchmarks: Claude Code 2.1.330's real system prompt, index-1
system message and tools (tests/fixtures/claude_code/), its billing header computed the way the CLI
computes it, a scripted conversation's user turns, and its title side request."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "claude_code"
MODEL_NAME = "claude-opus-4-8"  # what Claude Code sends by default
USER_TURNS = [
    "Look at the repository layout and tell me in one sentence what it is.",
    "Which file holds the entry point? One sentence.",
    "What would you test first? One sentence.",
    "Name one risk in the error handling. One sentence.",
    "Suggest a better name for the main module. One sentence.",
    "Is there any dead code likely? One sentence.",
    "What is the first refactoring you would do? One sentence.",
    "How would you document it? One sentence.",
    "What would a reviewer ask first? One sentence.",
    "Summarise the session in one sentence.",
]
# The second conversation: another first prompt (so another billing-header hash), same system + tools.
USER_TURNS_2 = [
    "Find where the configuration is loaded and describe it in one sentence.",
    "Which setting would you change first? One sentence.",
    "Summarise this conversation in one sentence.",
    "What would you log more? One sentence.",
    "Which test is missing? One sentence.",
]
CLAUDE_CODE_VERSION = "2.1.330"
BILLING_PREFIX = "x-anthropic-billing-header:"
BILLING_SALT = "59cf53e54c78"  # Claude Code 2.1.330's constant for the fingerprint


# --- the Claude-Code-shaped requests --------------------------------------------------------------------


def billing_fingerprint(first_prompt: str, version: str = CLAUDE_CODE_VERSION) -> str:
    """The 3 hex chars of `cc_version=<ver>.<3 hex>`, as Claude Code computes them from the first prompt."""
    chars = "".join(first_prompt[i] if i < len(first_prompt) else "0" for i in (4, 7, 20))
    return hashlib.sha256(f"{BILLING_SALT}{chars}{version}".encode()).hexdigest()[:3]


def with_billing_header(system: list[dict[str, Any]], first_prompt: str) -> list[dict[str, Any]]:
    """`system` with its billing-header block's hash recomputed for this first prompt."""
    blocks = copy.deepcopy(system)
    head = blocks[0]
    if not head.get("text", "").startswith(BILLING_PREFIX):
        raise SystemExit("the fixture's first system block is not the billing header")
    fingerprint = billing_fingerprint(first_prompt)
    head["text"] = re.sub(
        r"cc_version=([0-9.]+)\.[0-9a-f]{3};", rf"cc_version=\g<1>.{fingerprint};", head["text"], count=1
    )
    return blocks


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


@dataclass(frozen=True)
class Session:
    """The fixed parts of the session: main request template and title request template."""

    main: dict[str, Any]
    title: dict[str, Any]
    session_id: str
    user_turns: list[str]

    @classmethod
    def from_fixtures(cls, tools: list[str], reminder_chars: int, user_turns: list[str]) -> Session:
        turn1 = load_fixture("01-turn1.json")["body"]
        side = load_fixture("interactive/02-side.json")["body"]
        by_name = {t["name"]: t for t in turn1["tools"]}
        missing = [t for t in tools if t not in by_name]
        if missing:
            raise SystemExit(f"unknown tools {missing}; the fixture has {sorted(by_name)}")
        reminder = next(m for m in turn1["messages"] if m["role"] == "system")
        reminder = copy.deepcopy(reminder)
        _truncate_text(reminder, reminder_chars)
        main = {
            "model": MODEL_NAME,
            "max_tokens": 48,
            "stream": True,
            # billing header first, as Claude Code sends it, hashed from this conversation's first prompt
            "system": with_billing_header(turn1["system"], user_turns[0]),
            "tools": [by_name[t] for t in tools],
            "metadata": turn1.get("metadata", {}),
            "messages": [],
            "_reminder": reminder,  # Claude Code's system message at index 1 (stripped before sending)
            "temperature": 0,
        }
        title = {k: v for k, v in side.items() if k not in ("messages", "max_tokens")}
        title |= {"model": MODEL_NAME, "max_tokens": 24, "stream": True}
        return cls(main=main, title=title, session_id=str(uuid.uuid4()), user_turns=user_turns)

    @property
    def billing_header(self) -> str:
        text: str = self.main["system"][0]["text"]
        return text

    def main_request(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        body = {k: v for k, v in self.main.items() if not k.startswith("_")}
        messages = list(history)
        messages.insert(1, self.main["_reminder"])  # [user, system, assistant, user, ...]
        body["messages"] = messages
        return body

    def title_request(self, user_text: str) -> dict[str, Any]:
        text = f"<session>\n{user_text}\n</session>\n\nWrite the title in the language of the session."
        system = with_billing_header(self.title["system"], text)  # Claude Code hashes the title's own text
        content = [{"type": "text", "text": text}]
        return {**self.title, "system": system, "messages": [{"role": "user", "content": content}]}


def _truncate_text(message: dict[str, Any], limit: int) -> None:
    content = message["content"]
    if isinstance(content, str):
        message["content"] = content[:limit]
        return
    for block in content:
        if block.get("type") == "text":
            block["text"] = block["text"][:limit]
            limit = max(0, limit - len(block["text"]))
