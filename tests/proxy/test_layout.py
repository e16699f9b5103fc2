"""Cache-stable prompt layout: over real Claude Code requests recorded in different sessions, on different
days, before and after a commit and in another repository, system text + tools are one byte-identical
prefix; every varying line still reaches the model; turn 2 still starts with turn 1's bytes."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import pytest
from ccproxy import layout
from ccproxy.layout import LAYOUT_VERSION, REMINDER_HEADING, reminder, split_varying, stable_layout
from ccproxy.translate_request import RequestOptions, encode_upstream, to_openai_request
from ccproxy.types_anthropic import parse_messages_request
from imports import imported_roots

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"
SESSIONS = FIXTURES / "sessions"
# recorded in /workspace with the sandbox's settings: day 1 (2 commits, dirty), the next day after a
# commit, six weeks later in a directory that is no git repository (tests/fixtures/claude_code/README.md)
SESSION_DIRS = [SESSIONS / "day1", SESSIONS / "day2-after-commit", SESSIONS / "day3-other-repo"]
EVERY_RECORDING = sorted(p.parent for p in FIXTURES.rglob("*-turn1.json"))
STABLE = RequestOptions()
OFF = RequestOptions(prompt_layout="off")


def raw(directory: Path, kind: str = "turn1") -> dict[str, Any]:
    (path,) = directory.glob(f"[0-9][0-9]-{kind}.json")
    body: dict[str, Any] = json.loads(path.read_text())["body"]
    return body


def translate(body: dict[str, Any], opts: RequestOptions = STABLE) -> dict[str, Any]:
    return to_openai_request(parse_messages_request(body), opts, stream=True)


def prefix(upstream: dict[str, Any]) -> bytes:
    """What a chat template renders first: the system message, then the tools."""
    return encode_upstream({"tools": upstream["tools"], "messages": upstream["messages"][:1]})


def with_env_line(body: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The recorded request with one line of its environment message changed (facts that cannot be
    varied on this machine: the kernel, the working directory, a scratchpad)."""
    text = json.dumps(body)
    assert old in text
    changed: dict[str, Any] = json.loads(text.replace(old, new, 1))
    return changed


def leading_system_lines(body: dict[str, Any]) -> list[str]:
    texts = [b["text"] for b in body["system"] if not b["text"].startswith("x-anthropic-billing-header")]
    for message in body["messages"]:
        if message["role"] == "assistant":
            break
        if message["role"] == "system":
            content = message["content"]
            texts += [content] if isinstance(content, str) else [b["text"] for b in content]
    return [line for text in texts for line in text.split("\n") if line.strip()]


# --- across sessions, days, commits and repositories -----------------------------------------------------


def test_recorded_sessions_differ_where_expected() -> None:
    """The recordings really vary: date, git status and repository; with the layout off the prefix
    differs from the first varying line on (before the tools)."""
    days = [translate(raw(d), OFF)["messages"][0]["content"] for d in SESSION_DIRS]
    assert [text.count("Today's date is 2026-12-01.") for text in days] == [1, 0, 0]
    assert "Is a git repository: false" in days[2]
    assert len({prefix(translate(raw(d), OFF)) for d in SESSION_DIRS}) == 3


def test_system_and_tools_are_byte_identical_across_sessions_days_commits_and_repos() -> None:
    prefixes = {prefix(translate(raw(d))) for d in SESSION_DIRS}
    assert len(prefixes) == 1
    (stable,) = prefixes
    for needle in (b"Today's date", b"Is a git repository", b"/workspace\\n", b"OS Version", b"gitStatus"):
        assert needle not in stable


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (" - OS Version: Linux ", " - OS Version: Linux 9.9.9-other "),
        (" - Primary working directory: /workspace", " - Primary working directory: /home/me/src/project"),
        (
            " - Is a git repository: true",
            " - Is a git repository: true\\n - Additional working directories:\\n  - /srv/data",
        ),
        (" - Shell: bash", " - Shell: bash\\n - Scratchpad directory: /tmp/claude-1234/scratchpad"),
        ("Today's date is 2026-12-01.", "The UTC date is 2026-12-01. The user's local date can differ."),
    ],
)
def test_facts_this_machine_cannot_vary_do_not_change_the_prefix(old: str, new: str) -> None:
    body = raw(SESSION_DIRS[0])
    changed = with_env_line(body, old, new)
    assert prefix(translate(changed)) == prefix(translate(body))
    assert prefix(translate(changed, OFF)) != prefix(translate(body, OFF))
    first_user = translate(changed)["messages"][1]["content"]
    for line in new.replace("\\n", "\n").split("\n"):
        if line != old:
            assert line in first_user


@pytest.mark.parametrize("directory", EVERY_RECORDING, ids=lambda p: str(p.relative_to(FIXTURES)) or ".")
def test_nothing_is_lost(directory: Path) -> None:
    """Every line of the leading system text reaches the model, in the system message or, verbatim, in
    the reminder that opens the first user turn; only the reminder's heading and tags are added."""
    body = raw(directory)
    upstream = translate(body)["messages"]
    system, first_user = upstream[0]["content"], upstream[1]["content"]
    assert upstream[1]["role"] == "user"
    moved: list[str] = []
    if first_user.startswith("<system-reminder>\n" + REMINDER_HEADING):
        block = first_user.split("\n</system-reminder>", 1)[0]
        moved = [line for line in block.split("\n")[2:] if line.strip()]
    after = [line for line in system.split("\n") if line.strip()] + moved
    assert collections.Counter(after) == collections.Counter(leading_system_lines(body))
    # the user's own turn follows unchanged
    assert first_user.endswith(translate(body, OFF)["messages"][1]["content"])


@pytest.mark.parametrize("directory", EVERY_RECORDING, ids=lambda p: str(p.relative_to(FIXTURES)) or ".")
def test_every_recording_moves_the_date_out_of_the_system_message(directory: Path) -> None:
    upstream = translate(raw(directory))["messages"]
    assert "Today's date is" not in upstream[0]["content"]
    assert "Today's date is 20" in upstream[1]["content"]
    assert " - Primary working directory: " in upstream[1]["content"]


# tool_search/: turn 2 loads a tool (appended to the tool list), a prefix change of its own
TWO_TURNS = [
    d for d in EVERY_RECORDING if list(d.glob("*-turn2-tool-result.json")) and d.name != "tool_search"
]


@pytest.mark.parametrize("directory", TWO_TURNS, ids=lambda p: str(p.relative_to(FIXTURES)) or ".")
def test_turn_two_starts_with_turn_ones_bytes(directory: Path) -> None:
    """The in-conversation cache stays hot: turn 2's upstream bytes begin with turn 1's, up to the end
    of turn 1's messages (Claude Code repeats the environment message unchanged)."""
    first = encode_upstream(translate(raw(directory)))
    second = encode_upstream(translate(raw(directory, "turn2-tool-result")))
    end = first.index(b'],"max_tokens"')
    assert second[:end] == first[:end]


def test_the_layout_is_deterministic() -> None:
    body = raw(SESSION_DIRS[1])
    assert len({encode_upstream(translate(body)) for _ in range(3)}) == 1


def test_off_keeps_the_system_text_as_sent() -> None:
    body = raw(SESSION_DIRS[0])
    env = body["messages"][1]["content"][0]["text"]
    upstream = translate(body, OFF)["messages"]
    assert upstream[0]["content"].endswith("\n\n" + env)
    assert not upstream[1]["content"].startswith("<system-reminder>\n" + REMINDER_HEADING)


def test_the_reminder_of_a_recorded_session() -> None:
    first_user = translate(raw(SESSION_DIRS[0]))["messages"][1]["content"]
    os_line = next(line for line in first_user.split("\n") if line.startswith(" - OS Version: "))
    assert first_user.startswith(
        "<system-reminder>\n"
        "# Environment of this session\n"
        " - Primary working directory: /workspace\n"
        " - Is a git repository: true\n"
        f"{os_line}\n"
        "\n"
        "Today's date is 2026-12-01.\n"
        "</system-reminder>\n"
        "\n"
        "<system-reminder>\n"
        "As you answer the user's questions, you can use the following context:\n"
        "# gitStatus\n"
    )


# --- the line rules ---------------------------------------------------------------------------------------

ENV = (
    "# Environment\n"
    "You have been invoked in the following environment: \n"
    " - Primary working directory: /workspace\n"
    " - Is a git repository: true\n"
    " - Additional working directories:\n"
    "  - /srv/a\n"
    "  - /srv/b\n"
    " - Platform: linux\n"
    " - Shell: bash\n"
    " - OS Version: Linux 6.1\n"
    " - In `curl`, send untrusted values with `--form-string`, not `-F`.\n"
    "\n"
    "You are powered by the model qwen.\n"
    "\n"
    "Today's date is 2026-12-01."
)


def test_split_moves_the_varying_lines_and_keeps_the_rest_byte_for_byte() -> None:
    split = split_varying(ENV)
    assert split.stable == (
        "# Environment\n"
        "You have been invoked in the following environment: \n"
        " - Platform: linux\n"
        " - Shell: bash\n"
        " - In `curl`, send untrusted values with `--form-string`, not `-F`.\n"
        "\n"
        "You are powered by the model qwen."
    )
    assert split.runs == (
        " - Primary working directory: /workspace\n - Is a git repository: true\n"
        " - Additional working directories:\n  - /srv/a\n  - /srv/b",
        " - OS Version: Linux 6.1",
        "Today's date is 2026-12-01.",
    )
    assert reminder(split.runs) == (
        "<system-reminder>\n# Environment of this session\n"
        " - Primary working directory: /workspace\n - Is a git repository: true\n"
        " - Additional working directories:\n  - /srv/a\n  - /srv/b\n"
        " - OS Version: Linux 6.1\n"
        "\n"
        "Today's date is 2026-12-01.\n</system-reminder>"
    )


@pytest.mark.parametrize(
    ("text", "stable", "runs"),
    [
        ("Nothing varies here.\n - Platform: linux", "Nothing varies here.\n - Platform: linux", ()),
        ("A\n\nToday's date is 2026-01-02.\n", "A\n", ("Today's date is 2026-01-02.",)),
        ("Today's date is 2026-01-02.\n\nB", "B", ("Today's date is 2026-01-02.",)),
        (
            "A\n\n# currentDate\nToday's date is 2026-01-02.\n\nB",
            "A\n\nB",
            ("# currentDate\nToday's date is 2026-01-02.",),
        ),
        ("A\n  - nested under nothing moved\nB", "A\n  - nested under nothing moved\nB", ()),
        (
            " - Scratchpad directory: /tmp/s — use it\n - Platform: x",
            " - Platform: x",
            (" - Scratchpad directory: /tmp/s — use it",),
        ),
        (
            "A\n\ngitStatus: snapshot\nCurrent branch: main\n\nStatus:\nM a.py",
            "A",
            ("gitStatus: snapshot\nCurrent branch: main\n\nStatus:\nM a.py",),
        ),
        ("Today's date is tomorrow.", "Today's date is tomorrow.", ()),
    ],
)
def test_line_rules(text: str, stable: str, runs: tuple[str, ...]) -> None:
    split = split_varying(text)
    assert (split.stable, split.runs) == (stable, runs)


def test_a_first_turn_with_images_gets_the_reminder_as_its_first_part() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    parts, messages = stable_layout(
        ["S\nToday's date is 2026-01-02."],
        [{"role": "user", "content": [{"type": "text", "text": "hi"}, image]}],
    )
    assert parts == ["S"]
    assert messages[0]["content"] == [
        {"type": "text", "text": reminder(["Today's date is 2026-01-02."])},
        {"type": "text", "text": "hi"},
        image,
    ]


def test_a_conversation_without_a_leading_user_turn_gets_one() -> None:
    parts, messages = stable_layout(["Today's date is 2026-01-02."], [{"role": "assistant", "content": "a"}])
    assert parts == []
    assert messages == [
        {"role": "user", "content": reminder(["Today's date is 2026-01-02."])},
        {"role": "assistant", "content": "a"},
    ]


def test_later_system_messages_stay_where_they_are() -> None:
    """A system message after the first assistant turn is already behind the cached prefix: it stays a
    reminder at its place, so earlier turns keep their bytes."""
    body = {
        "model": "claude-opus-5-5",
        "max_tokens": 100,
        "system": "S\n\nToday's date is 2026-01-02.",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "system", "content": "The date has changed. Today's date is now 2026-01-03."},
            {"role": "user", "content": "and now?"},
        ],
    }
    messages = translate(body)["messages"]
    assert messages[0] == {"role": "system", "content": "S"}
    assert messages[1]["content"] == reminder(["Today's date is 2026-01-02."]) + "\n\nhi"
    assert messages[3]["content"] == (
        "<system-reminder>\nThe date has changed. Today's date is now 2026-01-03.\n</system-reminder>"
    )


def test_the_module_is_pure_and_versioned() -> None:
    imported = imported_roots(layout)
    assert imported <= {"__future__", "re", "collections", "dataclasses", "itertools", "typing", "ccproxy"}
    assert LAYOUT_VERSION.startswith("stable-")
