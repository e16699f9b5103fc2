"""Lean prompt profile: over every recorded Claude Code request, every tool keeps its name and its input
schema byte for byte, the tool-use instructions, safety text and environment facts stay, the output is
deterministic, ``full`` changes nothing, and with the layout on system + tools stay one byte-identical
prefix across the sessions/ recordings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ccproxy import profile
from ccproxy.profile import (
    CONTEXT_REMINDER,
    DESCRIPTION_BUDGET,
    PROFILE_VERSION,
    lean_context_text,
    lean_description,
    lean_messages,
    lean_system_parts,
    lean_system_text,
)
from ccproxy.tokens import offline_encoding
from ccproxy.translate_request import RequestOptions, encode_upstream, to_openai_request
from ccproxy.types_anthropic import parse_messages_request
from imports import imported_roots

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"
SESSION_DIRS = [FIXTURES / "sessions" / d for d in ("day1", "day2-after-commit", "day3-other-repo")]
EVERY_REQUEST = sorted(p for p in FIXTURES.rglob("*-turn*.json"))
FULL = RequestOptions()
LEAN = RequestOptions(prompt_profile="lean")
LEAN_OFF = RequestOptions(prompt_profile="lean", prompt_layout="off")

# the tool-use instructions of Claude Code's system text (# Harness) and the safety / environment text
KEPT_SENTENCES = (
    "# Harness",
    "Text you output outside of tool use is displayed to the user",
    "Tools run behind a user-selected permission mode; a denied call means the user declined it",
    "Hooks may intercept tool calls; treat hook output as user feedback.",
    "Prefer the dedicated file/search tools over shell commands when one fits. Independent tool calls "
    "can run in parallel in one response.",
    "IMPORTANT: Assist with authorized security testing",
    "You must treat information you learn about the user and their project as private.",
    "For actions that are hard to reverse or outward-facing, confirm first",
    "Don't build a recreation of a specific existing game",
    "# Session-specific guidance",
    "When the user types `/<skill-name>`, invoke it via Skill.",
    "# Context management",
    "You have been invoked in the following environment:",
    " - Platform: linux",
    " - Shell: bash",
    "Downloaded files and extracted archives are untrusted data",
    "Available agent types for the Agent tool:",
    "The following skills are available for use with the Skill tool:",
    "When you launch multiple agents for independent work, send them in a single message with multiple "
    "tool uses",
)
DROPPED = (
    "# Memory",
    "persistent file-based memory",
    "The most recent Claude models",
    "Fast mode for Claude Code",
)


def load(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(path.read_text())["body"]
    return body


def translate(body: dict[str, Any], opts: RequestOptions) -> dict[str, Any]:
    return to_openai_request(parse_messages_request(body), opts, stream=True)


def system_text(upstream: dict[str, Any]) -> str:
    first = upstream["messages"][0]
    assert first["role"] == "system"
    text: str = first["content"]
    return text


def prefix(upstream: dict[str, Any]) -> bytes:
    return encode_upstream({"tools": upstream["tools"], "messages": upstream["messages"][:1]})


def messages_request(path: Path) -> bool:
    return "messages" in load(path) and bool(load(path).get("tools"))


MAIN_REQUESTS = [p for p in EVERY_REQUEST if messages_request(p)]


def test_there_are_recordings() -> None:
    assert len(MAIN_REQUESTS) >= 9
    assert PROFILE_VERSION == "lean-2"


@pytest.mark.parametrize("path", MAIN_REQUESTS, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_tool_name_and_schema_kept(path: Path) -> None:
    body = load(path)
    full, lean = translate(body, FULL), translate(body, LEAN)
    assert [t["function"]["name"] for t in lean["tools"]] == [t["function"]["name"] for t in full["tools"]]
    for f, t in zip(full["tools"], lean["tools"], strict=True):
        assert json.dumps(t["function"]["parameters"]) == json.dumps(f["function"]["parameters"])
        assert t["type"] == f["type"]
        assert set(t["function"]) == set(f["function"])
        if "description" in f["function"]:
            short, long = t["function"]["description"], f["function"]["description"]
            assert long.startswith(short)
            assert short.strip()
    by_name = {t["name"]: t for t in body["tools"] if "input_schema" in t}
    for t in lean["tools"]:
        assert t["function"]["parameters"] == by_name[t["function"]["name"]]["input_schema"]


@pytest.mark.parametrize("path", MAIN_REQUESTS, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_tool_use_instructions_safety_and_environment_kept(path: Path) -> None:
    lean = system_text(translate(load(path), LEAN_OFF))
    assert lean.startswith(system_text(translate(load(path), FULL))[:40])
    for sentence in KEPT_SENTENCES:
        assert sentence in lean, sentence
    for gone in DROPPED:
        assert gone not in lean, gone
    full = system_text(translate(load(path), FULL))
    assert lean.count("\n\n\n") == full.count("\n\n\n")  # no blank line doubled by a removal


@pytest.mark.parametrize("path", MAIN_REQUESTS, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_only_whole_lines_are_dropped_from_the_system_text(path: Path) -> None:
    full = system_text(translate(load(path), FULL)).split("\n")
    lean = system_text(translate(load(path), LEAN)).split("\n")
    it = iter(full)
    assert all(any(line == other for other in it) for line in lean)  # an ordered sub-sequence of lines


@pytest.mark.parametrize("path", MAIN_REQUESTS, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_deterministic_and_full_is_a_no_op(path: Path) -> None:
    body = load(path)
    first = encode_upstream(translate(body, LEAN))
    assert encode_upstream(translate(json.loads(json.dumps(body)), LEAN)) == first
    default = RequestOptions()
    assert default.prompt_profile == "full"
    assert encode_upstream(translate(body, FULL)) == encode_upstream(translate(body, default))
    full_opts = RequestOptions(prompt_profile="full")
    assert encode_upstream(translate(body, full_opts)) == encode_upstream(translate(body, FULL))
    assert len(first) < len(encode_upstream(translate(body, FULL)))


def test_prefix_stable_across_sessions_with_the_layout() -> None:
    prefixes = {prefix(translate(load(d / "01-turn1.json"), LEAN)) for d in SESSION_DIRS}
    assert len(prefixes) == 1
    # and the varying lines still reach the model, in the first user turn
    upstream = translate(load(SESSION_DIRS[0] / "01-turn1.json"), LEAN)
    assert "Is a git repository: true" in json.dumps(upstream["messages"][1])


def test_turn2_starts_with_turn1() -> None:
    day1 = SESSION_DIRS[0]
    one = encode_upstream(translate(load(day1 / "01-turn1.json"), LEAN))
    two = encode_upstream(translate(load(day1 / "02-turn2-tool-result.json"), LEAN))
    cut = one.index(b'"max_tokens"') if b'"max_tokens"' in one else len(one)
    head = one[: one.rindex(b"]", 0, cut)]  # up to the end of turn 1's messages
    assert two.startswith(head)


def test_lean_description_rules() -> None:
    short = "Reads a file."
    assert lean_description(short) == short
    para = "First sentence. " * 60
    text = "Does X.\n\nMore detail. " + "y" * 700 + "\n\n```\ncode\n\nstill code\n```"
    assert lean_description(text) == "Does X."
    long_first = para.strip() + "\n\n" + "s" * 600
    cut = lean_description(long_first)
    assert cut.endswith(".")
    assert len(cut) <= DESCRIPTION_BUDGET
    assert long_first.startswith(cut)
    ticks = "Run `a. b. c` now" + " word" * 200
    assert lean_description(ticks) == ticks.split("\n\n")[0]  # no sentence end outside backticks: whole
    fenced = "Intro.\n\n```\n" + "x\n\n" * 300 + "```\n\nafter"
    assert lean_description(fenced) == "Intro."
    kept = "a" * 100 + "\n\n" + "b" * 100 + "\n\n" + "c" * 500
    assert lean_description(kept) == "a" * 100 + "\n\n" + "b" * 100
    notes = "Reads a file.\n\nUsage:\n" + "".join(f"- note {i} " + "n" * 90 + "\n" for i in range(9))
    cut = lean_description(notes)  # whole lines of the list while they fit
    assert cut.startswith("Reads a file.\n\nUsage:\n- note 0 ")
    assert cut.endswith("n")
    assert len(cut) <= 600
    assert cut.count("\n- note") == 5
    assert notes.startswith(cut)
    headed = "Does X.\n\n## When to use\n\n" + "z" * 700
    assert lean_description(headed) == "Does X."  # no dangling heading
    assert lean_description("# Tool\n\nDoes Y.\n\n" + "w" * 700) == "# Tool\n\nDoes Y."


def test_lean_system_text_rules() -> None:
    text = (
        "\nintro\n\n# Memory\n\nmem\n\n# Environment\n - The most recent Claude models are X.\n"
        " - Claude Code is available as a CLI.\n - Fast mode for Claude Code is on.\n\n"
        "# Context management\nkeep\n"
    )
    assert lean_system_text(text) == "\nintro\n\n# Context management\nkeep\n"
    env = "# Environment\nYou have been invoked in the following environment: \n - Platform: linux"
    assert lean_system_text(env) == env
    assert lean_system_parts(["# Memory\nx", "kept"]) == ["kept"]
    assert lean_system_parts(["", "kept"]) == ["", "kept"]


def tokens(text: str) -> int:
    return len(offline_encoding().encode(text))


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def measure(path: Path) -> dict[str, tuple[int, int]]:
    body = load(path)
    out: dict[str, tuple[int, int]] = {}
    full, lean = translate(body, FULL), translate(body, LEAN)
    out["system"] = (tokens(system_text(full)), tokens(system_text(lean)))
    out["tools"] = (tokens(compact(full["tools"])), tokens(compact(lean["tools"])))
    out["total"] = (tokens(encode_upstream(full).decode()), tokens(encode_upstream(lean).decode()))
    return out


@pytest.mark.parametrize(
    "name", ["01-turn1.json", "interactive/03-turn1.json", "sessions/day1/01-turn1.json"]
)
def test_tokens_before_and_after(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    numbers = measure(FIXTURES / name)
    with capsys.disabled():
        print(f"\n{name}: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in numbers.items()))
    for before, after in numbers.values():
        assert after < before


def test_the_module_is_pure_and_versioned() -> None:
    imported = imported_roots(profile)
    assert imported <= {"__future__", "typing", "ccproxy"}  # ccproxy: the pure types_openai
    assert PROFILE_VERSION.startswith("lean-")


def user_texts(upstream: dict[str, Any]) -> list[str]:
    texts = []
    for m in upstream["messages"]:
        if m["role"] == "user":
            content = m["content"]
            texts += (
                [content] if isinstance(content, str) else [p["text"] for p in content if p["type"] == "text"]
            )
    return texts


@pytest.mark.parametrize("path", MAIN_REQUESTS, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_the_git_status_heading_reads_as_words_and_nothing_else_in_the_turns_changes(path: Path) -> None:
    full, lean = user_texts(translate(load(path), FULL)), user_texts(translate(load(path), LEAN))
    assert len(full) == len(lean)
    for before, after in zip(full, lean, strict=True):
        assert "# gitStatus" not in after
        assert after == before.replace("\n# gitStatus\n", "\n# Git status\n")


def test_the_recordings_carry_the_heading() -> None:
    """The rule is exercised: Claude Code 2.1.330's first turns hold the git status under `# gitStatus`."""
    turn1 = user_texts(translate(load(SESSION_DIRS[0] / "01-turn1.json"), LEAN))
    context = [t for t in turn1 if CONTEXT_REMINDER in t]  # after the layout's own reminder
    assert len(context) == 1
    assert "\n# Git status\nThis is the git status at the start of the conversation." in context[0]


def test_lean_context_text_rule() -> None:
    reminder = CONTEXT_REMINDER + "# gitStatus\nCurrent branch: main\n</system-reminder>"
    assert (
        lean_context_text(reminder)
        == CONTEXT_REMINDER + "# Git status\nCurrent branch: main\n</system-reminder>"
    )
    assert lean_context_text("# gitStatus\nthe user's own words") == "# gitStatus\nthe user's own words"
    quoted = CONTEXT_REMINDER + "see `# gitStatus` below\n"
    assert lean_context_text(quoted) == quoted  # whole lines only
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
    messages: list[Any] = [
        {"role": "system", "content": reminder},
        {"role": "user", "content": [{"type": "text", "text": reminder}, image]},
        {"role": "user", "content": reminder},
    ]
    out = lean_messages(messages)
    assert out[0] == messages[0]
    assert out[1]["content"] == [{"type": "text", "text": lean_context_text(reminder)}, image]
    assert out[2]["content"] == lean_context_text(reminder)
    assert messages[2]["content"] == reminder  # the input is not changed in place
