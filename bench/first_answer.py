"""First answer: how long a newcomer waits for the first output token, through the real stack and CLI.

Three moments of a user's life, each a new Claude Code session in the same small git repository,
driven through the real CLI in the sandbox both ways a user runs it — ``claude -p`` (stream-json with
partial messages: the first ``content_block_delta``) and the interactive TUI in tmux (the first ``⏺``/``●``
line of the answer after Enter):

  a  the first session after the first-ever ``ccstack up local`` (no slot files yet); ``up``'s own
     duration (prewarm included) is measured too;
  b  a new session after ``ccstack down && ccstack up local``;
  c  a new session after a commit in the workdir, on another date (the agent's TZ set to a zone where
     it is already tomorrow — the real CLI then writes another "Today's date").

Side by side, in the same run: llama.cpp's native ``/v1/messages`` (a second llama-server container, same
image, model, template and flags, no proxy), sent the very request the CLI sent in each case (captured
by the proxy's trace, `ccstack up --trace`), after a fresh start (a), a restart (b), and without restart (c).

    python bench/first_answer.py [--model qwen2.5-coder-0.5b] [--skip-native] [--skip-tui]
    -> bench/results/first_answer.{json,md,png}
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness.cli_stack import REPO, Stack, Tmux, chown_tree, git, make_repo, print_mode_args  # noqa: E402
from native_messages import NativeServer  # noqa: E402

RESULTS = REPO / "bench" / "results"
STACK = Stack("ccsbx-first", Path("/tmp/ccsbx-first-answer"))
PROMPT = "Fix the bug in calc.py so that the test in test_calc.py passes."
FILES = {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "test_calc.py": "import unittest\n\nfrom calc import add\n\n\nclass T(unittest.TestCase):\n"
    "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n",
}
TOMORROW_TZ = "Pacific/Kiritimati"  # UTC+14: the local date is tomorrow's for most of the UTC day
TZ_OVERLAY = """services:
  claude-sandbox:
    environment:
      TZ: {tz}
"""


def print_session(repo: Path, timeout: float) -> dict[str, Any]:
    """One ``claude -p`` session: seconds from the command to the first output token, and in all."""
    args = ["claude", str(repo), *print_mode_args(PROMPT, "--include-partial-messages", "--max-turns", "1")]
    start = time.monotonic()
    process = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "ccstack"), *args],
        env=STACK.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    first: float | None = None
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if first is None and '"content_block_delta"' in line:
                first = time.monotonic() - start
            if time.monotonic() - start > timeout:
                break
    finally:
        process.kill()
        process.wait()
        STACK.kill_agents()
    return {"first_token_s": _round(first), "total_s": _round(time.monotonic() - start)}


def tui_session(repo: Path, timeout: float) -> dict[str, Any]:
    """One interactive session in tmux: seconds from Enter to the first line of the answer."""
    command = [str(REPO / ".venv" / "bin" / "ccstack"), "claude", str(repo)]
    tmux = Tmux("ccsbx-first-answer", command, STACK.env())
    try:
        started = time.monotonic()
        if tmux.wait_for(lambda s: "? for shortcuts" in s or "\u276f" in s, timeout=120) is None:
            return {"first_token_s": None, "ready_s": None, "error": "the TUI did not become ready"}
        ready = time.monotonic() - started
        time.sleep(1.0)
        tmux.type(PROMPT)
        time.sleep(0.5)
        tmux.send("Enter")
        sent = time.monotonic()
        screen = tmux.wait_for(_answer_started, timeout=timeout, poll=0.25)
        first = time.monotonic() - sent if screen is not None else None
        return {"first_token_s": _round(first), "ready_s": _round(ready), "screen": (screen or "")[-1500:]}
    finally:
        tmux.send("C-c")
        tmux.send("C-c")
        time.sleep(1)
        tmux.close()
        STACK.kill_agents()


ANSWER_BULLETS = ("\u23fa", "\u25cf")
"""How the TUI marks an answer line (text or a tool call): ⏺, or ● where the terminal lacks that glyph."""


def _answer_started(screen: str) -> bool:
    """The TUI shows the answer: a bulleted line (text or a tool call) below the prompt line."""
    after = screen.split(PROMPT[:30], 1)[-1] if PROMPT[:30] in screen else ""
    return any(line.lstrip().startswith(ANSWER_BULLETS) for line in after.splitlines())


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def latest_request(traces: Path, after: float) -> dict[str, Any] | None:
    """The last main-conversation request (with tools) the proxy traced after ``after`` (epoch s)."""
    files = sorted(
        (p for p in traces.glob("*.json") if p.stat().st_mtime >= after), key=lambda p: p.stat().st_mtime
    )
    for path in reversed(files):
        record = json.loads(path.read_text())
        body = record.get("request_body") or record.get("request", {}).get("body")
        if isinstance(body, dict) and body.get("tools"):
            return body
    return None


def proxy_lines(since: float) -> list[str]:
    keep = ("prefix cache", "status=", "prefill")
    return [ln for ln in STACK.logs("proxy", since=since).splitlines() if any(k in ln for k in keep)][-12:]


def case(name: str, repo: Path, args: argparse.Namespace, native: NativeServer | None) -> dict[str, Any]:
    out: dict[str, Any] = {"case": name}
    since = time.time()
    out["print"] = print_session(repo, args.timeout)
    print(f"[first-answer] {name} -p: {out['print']}", flush=True)
    request = latest_request(STACK.state_dir / "traces", since)
    if not args.skip_tui:
        out["tui"] = tui_session(repo, args.timeout)
        print(f"[first-answer] {name} TUI: first token {out['tui'].get('first_token_s')} s", flush=True)
    out["proxy_log"] = proxy_lines(since)
    if native is not None and request is not None:
        if name in ("a", "b"):
            out["native_start_s"] = native.restart()
        out["native"] = native.first_token(request, timeout=args.native_timeout)
        print(f"[first-answer] {name} native /v1/messages: {out['native']}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="ccstack up --model (default: the stack's default)")
    parser.add_argument("--up-arg", action="append", default=[], help="more `ccstack up local` arguments")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for a first token")
    parser.add_argument("--native-timeout", type=float, default=1200)
    parser.add_argument("--skip-native", action="store_true")
    parser.add_argument("--skip-tui", action="store_true")
    args = parser.parse_args(argv)

    tz_file = STACK.overlay("tz.yaml", TZ_OVERLAY.format(tz=TOMORROW_TZ))
    images = STACK.pinned_images()
    up_args = [
        "local",
        "-f",
        str(images),
        "--trace",
        *(["--model", args.model] if args.model else []),
        *args.up_arg,
    ]
    repo = make_repo(FILES, STACK.work / "workdir")
    native = None if args.skip_native else NativeServer.for_stack(STACK, args.model)
    results: dict[str, Any] = {"prompt": PROMPT, "up_args": up_args, "cases": []}
    try:
        STACK.down("--volumes")  # the first-ever up: no slot files, no agent state
        results["up_first_ever_s"] = round(STACK.up(*up_args), 1)
        results["cases"].append(case("a", repo, args, native))

        STACK.down()
        results["up_again_s"] = round(STACK.up(*up_args), 1)
        results["cases"].append(case("b", repo, args, native))

        (repo / "NOTES.md").write_text("A commit between two sessions.\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "another commit")
        chown_tree(repo)
        results["up_tz_s"] = round(STACK.up(*up_args, "-f", str(tz_file)), 1)
        results["cases"].append(case("c", repo, args, native))
    finally:
        STACK.down()
        if native is not None:
            native.stop()
    write(results)
    return 0


def write(results: dict[str, Any]) -> None:
    from first_answer_report import markdown, plot

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "first_answer.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "first_answer.md").write_text(markdown(results))
    plot(results, RESULTS / "first_answer.png")
    print(markdown(results))


if __name__ == "__main__":
    raise SystemExit(main())
