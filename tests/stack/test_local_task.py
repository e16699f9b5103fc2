"""The main job, end to end: `ccstack up local` with its defaults (the default model, prefix prewarm, the
agent's four tools, prompt layout and profile, the tool grammar), then the real Claude Code CLI in the
sandbox works on one task of the task suite (bench/tasks/catalog.py) in a throwaway git repository.

What is asserted is what the stack guarantees: `up` processed and saved Claude Code's prefix, the
session's first request was served from it (the prefix did not vary between the prewarm run and this
session), the CLI got answers and its tool calls were calls of the offered tools that actually ran.
Whether the small default model then *solves* the task is a matter of the model: the task's verifier
verdict is printed here, and its success rate over many runs is measured by the task suite
(`just bench tasks`, bench/results/tasks), which chooses the default."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from harness.cli_stack import make_repo
from stack_helpers import REPO, Stack

sys.path.insert(0, str(REPO / "bench" / "tasks"))
from catalog import by_name

pytestmark = [pytest.mark.stack, pytest.mark.timeout(3600)]

TASK = "fix-bug"
AGENT_TOOLS = {"Bash", "Edit", "Read", "Write"}
CACHE_READ = re.compile(r"messages \S+ slot=\d+ stream=\d status=200 .* cache_read=(\d+)")


def events(stdout: str) -> list[dict[str, Any]]:
    out = []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            out.append(event)
    return out


def blocks(transcript: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    found = []
    for event in transcript:
        content = (event.get("message") or {}).get("content")
        if isinstance(content, list):
            found += [b for b in content if isinstance(b, dict) and b.get("type") == kind]
    return found


def test_a_task_end_to_end_with_the_defaults(stack: Stack, docker: Any, tmp_path: Path) -> None:
    up = stack.ccstack("up", "local", timeout=2400)  # default model, prewarm on
    said = up.stdout + up.stderr
    assert "prewarm: Claude Code's prefix processed and saved" in said, said[-2000:]
    prefix = stack.container(docker, "proxy").logs().decode()
    saved = re.search(r"processed the (\d+)-token prefix", prefix)
    assert saved, prefix[-2000:]
    prefix_tokens = int(saved.group(1))

    task = by_name(TASK)[0]
    repo = make_repo(task.files, tmp_path / "task")  # a fresh folder: make_repo empties it
    started = int(time.time())
    r = stack.ccstack(
        "claude", str(repo), "-p", task.prompt, "--dangerously-skip-permissions",
        "--output-format", "stream-json", "--verbose", "--max-turns", "4",
        check=False, timeout=1800,
    )  # fmt: skip
    transcript = events(r.stdout)
    results = [e for e in transcript if e.get("type") == "result"]
    assert results, f"no result from the CLI (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert results[-1].get("subtype") in ("success", "error_max_turns"), results[-1]

    # The session's first request started from the prewarmed prefix.
    log = stack.container(docker, "proxy").logs(since=started).decode()
    reads = [int(m.group(1)) for m in CACHE_READ.finditer(log)]
    assert reads, log[-2000:]
    # (`-p` and the interactive CLI's prefixes differ by a line: either one saved serves most of it)
    assert reads[0] >= 0.9 * prefix_tokens, (reads, prefix_tokens)

    # The model's calls were calls of the agent's tools, and they ran (a result came back for each).
    calls = blocks(transcript, "tool_use")
    assert calls, "the model made no tool call"
    assert {c["name"] for c in calls} <= AGENT_TOOLS, [c["name"] for c in calls]
    answered = {b.get("tool_use_id") for b in blocks(transcript, "tool_result")}
    assert all(c["id"] in answered for c in calls[:-1])

    outcome = task.verify(repo, str(results[-1].get("result") or ""))
    print(f"{TASK}: solved={outcome.ok} ({outcome.detail}); calls={[c['name'] for c in calls]}")
