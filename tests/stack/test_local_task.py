"""The main job, end to end: `ccstack up local` with its defaults (the default model, prefix prewarm, prompt
layout, profile and tool grammar), then the real Claude Code CLI in the sandbox does one task of the task
suite (bench/tasks/catalog.py) in a throwaway git repository, judged by that task's own verifier.

The default model is small and samples: a task it does in most runs of the suite (bench/results/tasks)
may still fail one run. The test allows one more attempt, in a fresh repository, and reports both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from stack_helpers import AGENT_GID, AGENT_UID, REPO, Stack

sys.path.insert(0, str(REPO / "bench" / "tasks"))
from catalog import Task, by_name

pytestmark = [pytest.mark.stack, pytest.mark.timeout(3600)]

TASK = "create-file"
"""The suite's task this test runs (the one the default model does most reliably in bench/results/tasks)."""
ATTEMPTS = 2


def repository(task: Task, where: Path) -> Path:
    repo = where / "repo"
    repo.mkdir(parents=True)
    for name, text in task.files.items():
        (repo / name).write_text(text, encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "-C", str(repo)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "task"], check=True)
    for path in [repo, *repo.rglob("*")]:
        os.lchown(path, AGENT_UID, AGENT_GID)
    return repo


def answer_of(stdout: str) -> str:
    for line in reversed(stdout.splitlines()):
        try:
            event: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("type") == "result":
            return str(event.get("result") or "")
    return ""


def test_the_default_model_does_a_task_through_the_real_cli(stack: Stack, tmp_path: Path) -> None:
    up = stack.ccstack("up", "local", timeout=2400)  # default model, prewarm on
    assert "prewarm:" in up.stdout + up.stderr, up.stdout[-2000:]
    task = by_name(TASK)[0]
    outcomes = []
    for attempt in range(1, ATTEMPTS + 1):
        repo = repository(task, tmp_path / f"attempt-{attempt}")
        r = stack.ccstack(
            "claude", str(repo), "-p", task.prompt, "--dangerously-skip-permissions",
            "--output-format", "stream-json", "--verbose", "--max-turns", "8",
            check=False, timeout=1200,
        )  # fmt: skip
        outcome = task.verify(repo, answer_of(r.stdout))
        outcomes.append((attempt, r.returncode, outcome.detail))
        if outcome.ok:
            break
    print(f"{TASK}: {outcomes}")
    assert outcome.ok, f"{TASK} failed {ATTEMPTS} times: {outcomes}"
