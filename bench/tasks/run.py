"""The task suite through the real stack: ``ccstack up local`` and the real Claude Code CLI in the sandbox.

For each candidate (model x prompt profile x tool-call option) the stack is brought up once (its own
Compose project and state directory, prefix cache prewarmed, as `just up local --prewarm` does), then
every task runs N times, each in a fresh throwaway git repository, as

    ccstack claude REPO -p PROMPT --dangerously-skip-permissions --output-format stream-json --verbose

and the task's verifier judges what the agent left behind. Each run starts from a fresh agent state
(no sessions, memory or files that earlier runs left under the CLI's project directory).
One JSON line per run goes to
``bench/results/tasks/runs.jsonl`` as soon as the run ends (a rerun skips what is there: the suite can
be stopped and resumed); each run's transcript is kept beside it. ``bench/tasks/report.py`` turns the
lines into the table and plot.

    python bench/tasks/run.py --candidates 0.5b:lean:grammar,0.5b:full:text --runs 3 [--tasks fix-bug,...]

A candidate is MODEL:PROFILE:TOOLS — MODEL a name of ``python -m ccstack.models list`` (``0.5b`` and
``1.5b`` are short for the Qwen2.5-Coder ones), PROFILE ``full`` or ``lean`` (the proxy's prompt
profile), TOOLS ``grammar`` (text tool calls under ccproxy's tool grammar), ``text`` (without it) or
``grammar-hint`` (the grammar, and the proxy's reminder after a repeated call: ``--repeat-hint on``).
Every candidate runs with the local mode's repeat guard (``--repeat-limit 3``: its name ends
``+guard-1@3``) unless ``--repeat-limit 0``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from catalog import Task, by_name  # noqa: E402
from ccproxy.profile import PROFILE_VERSION  # noqa: E402
from ccproxy.repeat_guard import GUARD_VERSION  # noqa: E402
from ccproxy.repeat_hint import HINT_VERSION  # noqa: E402
from ccproxy.tool_grammar import GRAMMAR_VERSION  # noqa: E402
from ccstack.modes import LOCAL  # noqa: E402
from harness.cli_stack import REPO, Stack, make_repo, parse_lines, print_mode_args  # noqa: E402

RESULTS = REPO / "bench" / "results" / "tasks"
STACK = Stack("ccsbx-tasks", Path("/tmp/ccsbx-tasks"))
IMAGES = Path()
"""The overlay pinning this checkout's images (set in main)."""
MODELS = {"0.5b": "qwen2.5-coder-0.5b", "1.5b": "qwen2.5-coder-1.5b"}
COMMIT = subprocess.run(
    ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
).stdout.strip()
"""The checkout measured (its images are built from it: Stack.pinned_images)."""


@dataclass(frozen=True)
class Candidate:
    model: str
    profile: str
    tools: str
    repeat_limit: int = 0
    """The proxy's repeat guard (`ccstack up --repeat-limit`); 0: off."""

    @classmethod
    def parse(cls, spec: str, repeat_limit: int = 0) -> Candidate:
        try:
            model, profile, tools = spec.split(":")
        except ValueError:
            raise SystemExit(f"candidate {spec!r}: want MODEL:PROFILE:TOOLS (0.5b:lean:grammar)") from None
        if profile not in ("full", "lean") or tools not in ("grammar", "text", "grammar-hint"):
            raise SystemExit(f"candidate {spec!r}: PROFILE is full|lean, TOOLS is grammar|text|grammar-hint")
        return cls(model, profile, tools, repeat_limit)

    @property
    def name(self) -> str:
        """MODEL:PROFILE:TOOLS, and the grammar's version with it (results of two versions differ)."""
        version = f"/{GRAMMAR_VERSION}" if self.tools.startswith("grammar") else ""
        version += f"+{HINT_VERSION}" if self.tools.endswith("hint") else ""
        version += f"+{GUARD_VERSION}@{self.repeat_limit}" if self.repeat_limit else ""
        return f"{self.model}:{self.profile}:{self.tools}{version}"

    @property
    def model_name(self) -> str:
        return MODELS.get(self.model, self.model)


def up(candidate: Candidate) -> float:
    """Bring the stack up for this candidate (prefix prewarmed); returns the seconds it took."""
    grammar = "on" if candidate.tools.startswith("grammar") else "off"
    hint = "on" if candidate.tools.endswith("hint") else "off"
    overlay = STACK.overlay(
        f"tools-{candidate.tools}.yaml",
        f'services:\n  proxy:\n    environment:\n      CCPROXY_TOOL_GRAMMAR: "{grammar}"\n'
        f'      CCPROXY_REPEAT_HINT: "{hint}"\n',
    )
    return STACK.up(
        "local", "--model", candidate.model_name, "--prompt-profile", candidate.profile,
        "--repeat-limit", str(candidate.repeat_limit or "off"),
        "-f", str(IMAGES), "-f", str(overlay), "--prewarm",
    )  # fmt: skip


def summarize(transcript: list[dict[str, Any]]) -> dict[str, Any]:
    """What the stream-json transcript says: final answer, turns, tool calls and failed tool results."""
    calls: list[str] = []
    errors = 0
    answer, result = "", None
    for event in transcript:
        message = event.get("message") or {}
        for block in message.get("content") or [] if isinstance(message.get("content"), list) else []:
            if block.get("type") == "tool_use":
                calls.append(block.get("name", "?"))
            elif block.get("type") == "tool_result" and block.get("is_error"):
                errors += 1
        if event.get("type") == "result":
            result = event
            answer = str(event.get("result") or "")
    return {
        "answer": answer,
        "turns": (result or {}).get("num_turns"),
        "tool_calls": calls,
        "tool_errors": errors,
        "result_subtype": (result or {}).get("subtype"),
    }


def fresh_agent_state() -> None:
    """Every run starts from the same agent state. The CLI keeps sessions, memory and stray files per
    project path, and every run's workdir is /workspace to it: without this a run would see what earlier
    runs (of any candidate) left there — a MEMORY.md, files the model wrote into the memory directory."""
    image = os.environ.get("DEBIAN_IMAGE", "debian:bookworm-slim")
    volume = f"{STACK.project}_claude-state:/state"
    command = ["docker", "run", "--rm", "--user", "0", "-v", volume, image, "rm", "-rf", "/state/projects"]
    subprocess.run(command, check=True, capture_output=True)


def run_once(candidate: Candidate, task: Task, index: int, timeout: float, max_turns: int) -> dict[str, Any]:
    fresh_agent_state()
    where = STACK.work / "runs" / candidate.name.replace(":", "-").replace("/", "-") / f"{task.name}-{index}"
    repo = make_repo(task.files, where)
    args = ["claude", str(repo), *print_mode_args(task.prompt, "--max-turns", str(max_turns))]
    start = time.monotonic()
    timed_out = False
    try:
        r = STACK.run(*args, timeout=timeout, capture=True)
        stdout, stderr, code = r.stdout, r.stderr, r.returncode
    except subprocess.TimeoutExpired as exc:
        timed_out, code = True, None
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        STACK.kill_agents()
    wall = time.monotonic() - start
    transcript = parse_lines(stdout)
    out_dir = RESULTS / "transcripts" / candidate.name.replace(":", "-").replace("/", "-")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{task.name}-{index}.jsonl").write_text(stdout)
    summary = summarize(transcript)
    outcome = task.verify(repo, summary["answer"])
    return {
        "candidate": candidate.name,
        "model": candidate.model_name,
        "profile": candidate.profile,
        "profile_version": PROFILE_VERSION if candidate.profile == "lean" else "full",
        "commit": COMMIT,
        "tools": candidate.tools,
        "repeat_limit": candidate.repeat_limit,
        "task": task.name,
        "run": index,
        "max_turns": max_turns,
        "ok": outcome.ok,
        "detail": outcome.detail,
        "wall_s": round(wall, 1),
        "timed_out": timed_out,
        "exit_code": code,
        "stderr_tail": stderr.strip()[-300:],
        **summary,
    }


def done_runs(path: Path) -> set[tuple[str, str, int]]:
    if not path.exists():
        return set()
    out = set()
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError, KeyError):
            r = json.loads(line)
            out.add((r["candidate"], r["task"], r["run"]))
    return out


def plan(
    candidates: list[Candidate], tasks: tuple[Task, ...], runs: int
) -> Iterator[tuple[Candidate, Task, int]]:
    # Run 1 of every candidate first, then run 2, ...: a partial suite still compares every candidate.
    for index in range(1, runs + 1):
        for candidate in candidates:
            for task in tasks:
                yield candidate, task, index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--candidates", default="0.5b:lean:grammar", help="MODEL:PROFILE:TOOLS,...")
    parser.add_argument("--tasks", help="comma-separated task names (default: all)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run (then: failed)")
    parser.add_argument("--max-turns", type=int, default=8)
    parser.add_argument("--keep-up", action="store_true", help="leave the last candidate's stack running")
    parser.add_argument(
        "--repeat-limit",
        type=int,
        default=LOCAL.repeat_limit or 0,
        help="the proxy's repeat guard for every candidate (default: the local mode's; 0: off)",
    )
    args = parser.parse_args(argv)
    candidates = [Candidate.parse(s, args.repeat_limit) for s in args.candidates.split(",") if s.strip()]
    tasks = by_name(args.tasks)
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / "runs.jsonl"
    done = done_runs(log)
    current: Candidate | None = None
    global IMAGES
    IMAGES = STACK.pinned_images()
    try:
        for candidate, task, index in plan(candidates, tasks, args.runs):
            if (candidate.name, task.name, index) in done:
                continue
            if candidate != current:
                seconds = up(candidate)
                print(f"[tasks] {candidate.name}: up in {seconds:.0f} s", flush=True)
                with (RESULTS / "ups.jsonl").open("a") as f:
                    f.write(json.dumps({"candidate": candidate.name, "up_s": round(seconds, 1)}) + "\n")
                current = candidate
            record = run_once(candidate, task, index, args.timeout, args.max_turns)
            with log.open("a") as f:
                f.write(json.dumps(record) + "\n")
            mark = "ok " if record["ok"] else "FAIL"
            print(
                f"[tasks] {mark} {candidate.name} {task.name} #{index} {record['wall_s']:.0f} s "
                f"calls={','.join(record['tool_calls']) or '-'} {record['detail']}",
                flush=True,
            )
    finally:
        if current is not None and not args.keep_up:
            STACK.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
