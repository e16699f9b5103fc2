"""Request bodies for the overhead bench: a Claude Code-shaped streamed Messages request and the
OpenAI Chat Completions request a translating proxy sends upstream for it (the direct baseline).

The Anthropic body mirrors what Claude Code sends (shared/CLAUDE_CODE_WIRE.md), scaled down: three
system blocks (~5 KB with the billing header), two tools with real-looking JSON schemas (Bash, Read),
`cache_control`, `metadata.user_id`, `max_tokens` 32000, `stream: true`. Kept within what every
peer accepts (no `role: system` message inside `messages`, no `thinking`), so all three proxies
are measured on the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

Json = dict[str, Any]

_SYSTEM_INTRO = (
    "You are Claude Code, Anthropic's official CLI for Claude. You are an interactive CLI tool that helps "
    "users with software engineering tasks. Use the instructions below and the tools available to you "
    "to assist the user.\n\n"
)
_SYSTEM_RULES = "".join(
    f"# Rule {i}\n- Keep responses short and to the point; prefer editing existing files over creating "
    f"new ones; never commit unless asked; run the project's linters and tests after every change "
    f"(rule {i} of the bench system prompt, padding the prompt to a Claude Code-like size).\n"
    for i in range(24)
)
_ENV = (
    "<env>\nWorking directory: /workspace\nIs directory a git repo: Yes\nPlatform: linux\n"
    "OS Version: Linux 6.1.0\nToday's date: 2026-11-22\n</env>\n"
)

_TOOLS: list[Json] = [
    {
        "name": "Bash",
        "description": (
            "Executes a given bash command in a persistent shell session with optional timeout, ensuring "
            "proper handling and security measures. Before executing the command, verify the directory "
            "exists; always quote file paths that contain spaces; avoid interactive commands. " * 3
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The command to execute"},
                "timeout": {"type": "number", "description": "Optional timeout in milliseconds (max 600000)"},
                "description": {
                    "type": "string",
                    "description": "Clear, concise description of what this command does in 5-10 words",
                },
                "run_in_background": {
                    "type": "boolean",
                    "description": "Set to true to run this command in the background.",
                },
            },
            "required": ["command"],
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
    },
    {
        "name": "Read",
        "description": (
            "Reads a file from the local filesystem. You can access any file directly by using this tool. "
            "The file_path parameter must be an absolute path, not a relative path. By default, it reads "
            "up to 2000 lines starting from the beginning of the file. " * 2
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "file_path": {"type": "string", "description": "The absolute path to the file to read"},
                "offset": {"type": "number", "description": "The line number to start reading from"},
                "limit": {"type": "number", "description": "The number of lines to read"},
            },
            "required": ["file_path"],
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
    },
]

USER_PROMPT = "List the Python files in this repository and tell me which one defines the CLI entry point."
MAX_TOKENS = 32000


def anthropic_request(model: str = "claude-sonnet-4-5-20250929") -> Json:
    return {
        "model": model,
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "system": [
            {
                "type": "text",
                "text": "x-anthropic-billing-header: cc_version=2.1.330.a1b; cc_entrypoint=sdk-cli;",
            },
            {"type": "text", "text": _SYSTEM_INTRO, "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": _SYSTEM_RULES + _ENV, "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": USER_PROMPT, "cache_control": {"type": "ephemeral"}}],
            }
        ],
        "tools": _TOOLS,
        "metadata": {"user_id": json.dumps({"device_id": "bench", "session_id": "bench-session"})},
    }


def openai_request(model: str = "fake") -> Json:
    """What a translating proxy sends upstream for `anthropic_request()` (billing header dropped)."""
    return {
        "model": model,
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": _SYSTEM_INTRO + "\n\n" + _SYSTEM_RULES + _ENV},
            {"role": "user", "content": USER_PROMPT},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t["description"],
                    "parameters": t["input_schema"],
                },
            }
            for t in _TOOLS
        ],
    }


def encode(body: Json) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
