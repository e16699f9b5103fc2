#!/usr/bin/env python3
"""Record what the real Claude Code CLI sends, as fixtures for the proxy's unit tests.

Runs the CLI (scripts/install-claude-cli.sh) inside a loopback-only network namespace
(``unshare -n``) against a tiny recording server that speaks canned Anthropic SSE: the first
main request gets a ``Write`` tool_use, the follow-up (carrying the tool_result) gets text.
Every request is saved as ``NN-<kind>.json`` ({method, path, headers (token redacted), body}) into
tests/fixtures/claude_code/ (or ``--out``). Stdlib only; needs root (or user namespaces) for unshare.

``--git N`` makes the workdir a real git repository with N commits (fixed authors and dates) and a dirty
status (a modified and an untracked file); ``--workspace`` runs the CLI in /workspace, as in the sandbox
(a bind mount in a private mount namespace: ``unshare -m -n``; /workspace is created empty if absent);
(and HOME is /home/claude on a tmpfs over /home, CLAUDE_CONFIG_DIR its .claude, as in the sandbox);
``--file PATH=TEXT`` writes a file into the workdir (``~/...``: into HOME) before the run;
``--faketime WHEN`` starts the CLI under libfaketime (Debian ``faketime``), so its clock reads WHEN.

    .venv/bin/python scripts/record_claude_code.py [--out DIR] [--claude PATH] [--git N] [--workspace]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WORKSPACE = Path("/workspace")
SANDBOX_HOME = Path("/home/claude")  # the sandbox's HOME (claude-sandbox/Dockerfile)
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
TOKEN = "recording-token-0123456789"
REDACT_HEADERS = {"authorization", "x-api-key"}
PROMPT = "Create a file named hello.txt containing the word hi. Use the Write tool."


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(
        f"event: {e['type']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n".encode() for e in events
    )


def message_start(msg_id: str, model: str) -> dict[str, Any]:
    usage = {"input_tokens": 100, "output_tokens": 1, "cache_creation_input_tokens": 0}
    usage["cache_read_input_tokens"] = 0
    return {
        "type": "message_start",
        "message": {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        },
    }


def tool_use_stream(model: str, name: str, tool_input: dict[str, Any]) -> bytes:
    args = json.dumps(tool_input)
    half = len(args) // 2
    return sse(
        [
            message_start("msg_rec_1", model),
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "I'll create the file."},
            },
            {"type": "content_block_stop", "index": 0},
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_rec_1", "name": name, "input": {}},
            },
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": args[:half]},
            },
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": args[half:]},
            },
            {"type": "content_block_stop", "index": 1},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 20},
            },
            {"type": "message_stop"},
        ]
    )


def text_stream(model: str, text: str, msg_id: str) -> bytes:
    return sse(
        [
            message_start(msg_id, model),
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
            {"type": "message_stop"},
        ]
    )


def error_body(kind: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def has_tool_result(body: dict[str, Any]) -> bool:
    last = body.get("messages", [{}])[-1]
    content = last.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


class Recorder:
    def __init__(self, out: Path, workdir: Path, first_tool: tuple[str, dict[str, Any]]) -> None:
        self.first_tool = first_tool
        self.out = out
        self.workdir = workdir
        self.lock = threading.Lock()
        self.count = 0
        self.kinds: list[str] = []

    def save(self, kind: str, method: str, path: str, headers: dict[str, str], body: Any) -> None:
        with self.lock:
            self.count += 1
            name = f"{self.count:02d}-{kind}.json"
            self.kinds.append(kind)
        redacted = {
            k.lower(): ("[redacted]" if k.lower() in REDACT_HEADERS else v) for k, v in headers.items()
        }
        record = {"method": method, "path": path, "headers": redacted, "body": body}
        text = json.dumps(record, indent=1, ensure_ascii=False).replace(TOKEN, "[redacted]")
        (self.out / name).write_text(text + "\n")
        print(f"recorded {name}", file=sys.stderr)


def make_handler(rec: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            print("server: " + format % args, file=sys.stderr)

        def _reply(self, status: int, ctype: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def do_HEAD(self) -> None:
            rec.save("head", "HEAD", self.path, dict(self.headers), None)
            self._reply(200, "text/plain", b"")

        def do_GET(self) -> None:
            rec.save("get", "GET", self.path, dict(self.headers), None)
            self._reply(
                404, "application/json", b'{"type":"error","error":{"type":"not_found_error","message":"no"}}'
            )

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length)
            body = json.loads(raw)
            route = self.path.split("?", 1)[0]
            model = body.get("model", "claude")
            if route == "/v1/messages/count_tokens":
                rec.save("count-tokens", "POST", self.path, dict(self.headers), body)
                self._reply(200, "application/json", b'{"input_tokens": 1234}')
                return
            if route != "/v1/messages":
                rec.save("unknown", "POST", self.path, dict(self.headers), body)
                self._reply(404, "application/json", b"{}")
                return
            tools = body.get("tools")
            if not tools:
                kind, data = "side", text_stream(model, '{"title": "Create hello file"}', "msg_side")
            elif has_tool_result(body):
                kind, data = "turn2-tool-result", text_stream(model, "Done: hello.txt created.", "msg_rec_2")
            else:
                name, tool_input = rec.first_tool
                if name == "Write":
                    tool_input = {"file_path": str(rec.workdir / "hello.txt"), "content": "hi\n"}
                kind, data = "turn1", tool_use_stream(model, name, tool_input)
            rec.save(kind, "POST", self.path, dict(self.headers), body)
            if body.get("stream"):
                self._reply(200, "text/event-stream", data)
            else:
                self._reply(
                    500,
                    "application/json",
                    b'{"type":"error","error":{"type":"api_error","message":"recorder only streams"}}',
                )

    return Handler


def make_git_repo(workdir: Path, commits: int) -> None:
    """A repository with ``commits`` commits (fixed names and dates) and a dirty working tree."""
    fixed = {
        "GIT_AUTHOR_NAME": "Recorder",
        "GIT_AUTHOR_EMAIL": "recorder@example.invalid",
        "GIT_COMMITTER_NAME": "Recorder",
        "GIT_COMMITTER_EMAIL": "recorder@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(workdir),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }

    def git(*argv: str, date: str = "") -> None:
        env = {**fixed, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else fixed
        subprocess.run(["git", *argv], cwd=workdir, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    for i in range(1, commits + 1):
        (workdir / "README.md").write_text("".join(f"Change {k}\n" for k in range(1, i + 1)))
        (workdir / f"module{i}.py").write_text(f"VALUE = {i}\n")
        git("add", "README.md", f"module{i}.py")
        git("commit", "-q", "-m", f"Change {i}: add module{i}", date=f"2026-11-{10 + i:02d}T12:00:00+00:00")
    (workdir / "README.md").write_text((workdir / "README.md").read_text() + "Work in progress\n")
    (workdir / "notes.txt").write_text("untracked\n")


def inner(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("[0-9][0-9]-*.json"):
        old.unlink()
    scratch = Path(tempfile.mkdtemp(prefix="cc-record-"))
    workdir, home = scratch / "work", scratch / "home"
    workdir.mkdir()
    home.mkdir()
    if args.workspace:
        # private mount namespace (unshare -m): these mounts are invisible outside this process tree
        subprocess.run(["mount", "--make-rprivate", "/"], check=True)
        subprocess.run(["mount", "--bind", str(workdir), str(WORKSPACE)], check=True)
        home_fs = ["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(SANDBOX_HOME.parent)]
        subprocess.run(home_fs, check=True)
        SANDBOX_HOME.mkdir()
        workdir, home = WORKSPACE, SANDBOX_HOME
    if args.git:
        make_git_repo(workdir, args.git)
    for item in args.file:
        # PATH=TEXT; a leading ~/ is the CLI's HOME, else relative to the workdir
        rel, _, text = item.partition("=")
        target = home / rel[2:] if rel.startswith("~/") else workdir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.replace("\\n", "\n"))
    rec = Recorder(out, workdir, (args.tool, json.loads(args.tool_input)))
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(rec))
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}",
        "ANTHROPIC_AUTH_TOKEN": TOKEN,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_ATTRIBUTION_HEADER": "0" if args.no_attribution else "1",
        "IS_SANDBOX": "1",
    }
    if args.workspace:
        env["CLAUDE_CONFIG_DIR"] = str(home / ".claude")
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    if args.faketime:
        # libfaketime preloaded directly (the `faketime` wrapper's shared memory fails in a netns)
        env |= {
            "LD_PRELOAD": str(LIBFAKETIME),
            "FAKETIME": f"@{args.faketime}",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_DISABLE_SHM": "1",
        }
    cmd = [
        args.claude,
        "-p",
        PROMPT,
        "--output-format",
        "stream-json",
        "--verbose",
        "--dangerously-skip-permissions",
        *args.cli_arg,
    ]
    created = workdir / "hello.txt"
    if args.interactive:
        ok = run_tui(args.claude, workdir, home, env, rec, out)
        server.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
        return 0 if ok and (created.exists() or args.tool != "Write") else 1
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=240)
    (out / "cli-stdout.jsonl").write_text(proc.stdout.replace(str(scratch), "/tmp/cc-record"))
    if args.stderr:
        (out / "cli-stderr.txt").write_text(proc.stderr.replace(str(scratch), "/tmp/cc-record"))
    server.shutdown()
    print(f"claude exit={proc.returncode} hello.txt exists={created.exists()}", file=sys.stderr)
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
    shutil.rmtree(scratch, ignore_errors=True)
    return 0 if proc.returncode == 0 and (created.exists() or args.tool != "Write") else 1


def run_tui(claude: str, workdir: Path, home: Path, env: dict[str, str], rec: Recorder, out: Path) -> bool:
    """Drive the interactive TUI through tmux: one prompt, wait for the tool round trip."""
    (home / ".claude.json").write_text(
        json.dumps(
            {
                "hasCompletedOnboarding": True,
                "bypassPermissionsModeAccepted": True,
                "projects": {str(workdir): {"hasTrustDialogAccepted": True}},
            }
        )
    )
    sock = f"ccrec-{os.getpid()}"
    env = {**env, "TERM": "xterm-256color"}
    exports = " ".join(f"{k}='{v}'" for k, v in env.items())
    launch = f"cd '{workdir}' && env -i {exports} '{claude}' --dangerously-skip-permissions"
    tmux = ["tmux", "-L", sock]
    subprocess.run([*tmux, "new-session", "-d", "-x", "160", "-y", "50", "bash", "-c", launch], check=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "turn1" not in rec.kinds:
            pane = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout
            if ">" in pane or "\u276f" in pane:
                subprocess.run([*tmux, "send-keys", "-l", PROMPT], check=True)
                time.sleep(0.5)
                subprocess.run([*tmux, "send-keys", "Enter"], check=True)
                break
            time.sleep(1)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "turn2-tool-result" not in rec.kinds:
            time.sleep(1)
        time.sleep(3)
        pane = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout
        (out / "tui-pane.txt").write_text(pane)
        return "turn2-tool-result" in rec.kinds
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "tests/fixtures/claude_code"))
    parser.add_argument("--claude", default=str(REPO / ".tools/claude-code/node_modules/.bin/claude"))
    parser.add_argument(
        "--no-attribution",
        action="store_true",
        help="set CLAUDE_CODE_ATTRIBUTION_HEADER=0 (default: keep the billing header to test dropping it)",
    )
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra CLI env")
    parser.add_argument("--tool", default="Write", help="the tool turn 1 calls (default Write)")
    parser.add_argument("--tool-input", default="{}", help="its input as JSON (Write: a hello.txt file)")
    parser.add_argument("--interactive", action="store_true", help="drive the TUI through tmux")
    parser.add_argument("--git", type=int, default=0, metavar="N", help="a git repo with N commits, dirty")
    parser.add_argument("--workspace", action="store_true", help="run the CLI in /workspace (bind mount)")
    parser.add_argument("--faketime", default="", metavar="WHEN", help="clock start: '2027-01-02 09:00:00'")
    parser.add_argument("--cli-arg", action="append", default=[], metavar="ARG", help="extra CLI argument")
    parser.add_argument("--file", action="append", default=[], metavar="PATH=TEXT", help="seed a file")
    parser.add_argument("--stderr", action="store_true", help="also save the CLI's stderr (cli-stderr.txt)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        return inner(args)
    if not Path(args.claude).exists():
        print(f"{args.claude} missing: run scripts/install-claude-cli.sh", file=sys.stderr)
        return 1
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--inner",
        "--out",
        args.out,
        "--claude",
        args.claude,
    ]
    if args.no_attribution:
        argv.append("--no-attribution")
    for item in args.env:
        argv += ["--env", item]
    if args.interactive:
        argv.append("--interactive")
    if args.git:
        argv += ["--git", str(args.git)]
    if args.workspace:
        argv.append("--workspace")
        WORKSPACE.mkdir(exist_ok=True)
    if args.faketime:
        if not LIBFAKETIME.exists():
            print("--faketime needs libfaketime: apt-get install faketime", file=sys.stderr)
            return 1
        argv += ["--faketime", args.faketime]
    if args.stderr:
        argv.append("--stderr")
    for item in args.file:
        argv += ["--file", item]
    for item in args.cli_arg:
        argv.append(f"--cli-arg={item}")
    argv += ["--tool", args.tool, "--tool-input", args.tool_input]
    shell = "ip link set lo up && exec " + shlex.join(argv)
    namespaces = ["-m", "-n"] if args.workspace else ["-n"]
    return subprocess.run(["unshare", *namespaces, "bash", "-c", shell], check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
