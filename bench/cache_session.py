"""KV-cache benchmark: a 10-turn Claude-Code-shaped session against a real llama-server.

Each turn sends the fixed prefix (Claude Code 2.1.330's real system prompt, its index-1 system message
and a subset of its real tools, from tests/fixtures/claude_code/) plus the conversation so far, streamed,
and at the same moment a title side request (Claude Code's real one: `tools: []` + a JSON-schema
`output_config.format`), as the interactive CLI does. Two setups, one after the other, each on a fresh
llama-server container with the real Qwen2.5-Coder-0.5B model:

  proxy   Anthropic client -> ccproxy (--backend-features llama-server) -> llama-server as the stack runs
          it (our image's entrypoint: 2 slots, --jinja, our template); session -> slot affinity, side
          requests on the other slot, billing header dropped, deterministic rendering.
  native  Anthropic client -> llama-server's own /v1/messages, llama-server's default settings (no flags
          but the model), billing header left in.

Per turn: prompt tokens processed vs read from the cache (the `usage` each returns, which llama-server
fills from its own counts), time to the first streamed token (prompt processing + queueing), and wall
time. Writes bench/results/cache_session.{json,md,png}.

    python bench/cache_session.py [--turns 10] [--tools Bash,Edit,Read,Write] [--setups proxy,native]

Needs Docker, ccsandbox/llama-server:local (scripts/build-llama-server.sh), the model
(`python -m ccstack.models fetch`) and matplotlib (bench/requirements.txt).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from ccstack import models

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "claude_code"
RESULTS = REPO / "bench" / "results"
IMAGE = os.environ.get("CCSANDBOX_LLAMA_IMAGE", "ccsandbox/llama-server:local")
CCPROXY = Path(sys.executable).with_name("ccproxy")
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


# --- the Claude-Code-shaped requests --------------------------------------------------------------------


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


@dataclass(frozen=True)
class Session:
    """The fixed parts of the session: main request template and title request template."""

    main: dict[str, Any]
    title: dict[str, Any]
    session_id: str

    @classmethod
    def from_fixtures(cls, tools: list[str], reminder_chars: int) -> Session:
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
            "system": turn1["system"],  # billing header first, as Claude Code sends it
            "tools": [by_name[t] for t in tools],
            "metadata": turn1.get("metadata", {}),
            "messages": [],
            "_reminder": reminder,  # Claude Code's system message at index 1 (stripped before sending)
            "temperature": 0,
        }
        title = {k: v for k, v in side.items() if k not in ("messages", "max_tokens")}
        title |= {"model": MODEL_NAME, "max_tokens": 24, "stream": True}
        return cls(main=main, title=title, session_id=str(uuid.uuid4()))

    def main_request(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        body = {k: v for k, v in self.main.items() if not k.startswith("_")}
        messages = list(history)
        messages.insert(1, self.main["_reminder"])  # [user, system, assistant, user, ...]
        body["messages"] = messages
        return body

    def title_request(self, user_text: str) -> dict[str, Any]:
        text = f"<session>\n{user_text}\n</session>\n\nWrite the title in the language of the session."
        return {**self.title, "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}


def _truncate_text(message: dict[str, Any], limit: int) -> None:
    content = message["content"]
    if isinstance(content, str):
        message["content"] = content[:limit]
        return
    for block in content:
        if block.get("type") == "text":
            block["text"] = block["text"][:limit]
            limit = max(0, limit - len(block["text"]))


# --- streaming client -----------------------------------------------------------------------------------


@dataclass
class Result:
    ok: bool
    wall_s: float
    ttft_s: float | None
    input_tokens: int  # processed (not from cache)
    cache_read_tokens: int
    output_tokens: int
    text: str
    error: str = ""


def stream_message(client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]) -> Result:
    start = time.monotonic()
    ttft: float | None = None
    usage: dict[str, int] = {}
    text: list[str] = []
    try:
        with client.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != 200:
                error = response.read().decode(errors="replace")[:300]
                return Result(
                    False, time.monotonic() - start, None, 0, 0, 0, "", f"{response.status_code} {error}"
                )
            event = ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                    continue
                if not line.startswith("data:"):
                    continue
                data = json.loads(line[5:])
                kind = data.get("type", event)
                if kind == "message_start":
                    _merge_usage(usage, data["message"].get("usage") or {})
                elif kind == "content_block_delta":
                    if ttft is None:
                        ttft = time.monotonic() - start
                    delta = data.get("delta") or {}
                    text.append(delta.get("text") or delta.get("partial_json") or "")
                elif kind == "message_delta":
                    _merge_usage(usage, data.get("usage") or {})
                elif kind == "error":
                    return Result(False, time.monotonic() - start, ttft, 0, 0, 0, "", json.dumps(data)[:300])
    except httpx.HTTPError as exc:
        return Result(False, time.monotonic() - start, ttft, 0, 0, 0, "", repr(exc))
    return Result(
        ok=True,
        wall_s=time.monotonic() - start,
        ttft_s=ttft,
        input_tokens=usage.get("input_tokens", 0),
        cache_read_tokens=usage.get("cache_read_input_tokens", 0),
        output_tokens=usage.get("output_tokens", 0),
        text="".join(text),
    )


def _merge_usage(into: dict[str, int], usage: dict[str, Any]) -> None:
    """message_delta's usage is final; message_start's may hold estimates (or zeros) the delta replaces."""
    for key in ("input_tokens", "cache_read_input_tokens", "output_tokens"):
        value = usage.get(key)
        if isinstance(value, int) and (value or key not in into):
            into[key] = value


@dataclass
class Turn:
    turn: int
    prompt_tokens: int
    processed_tokens: int
    cached_tokens: int
    cached_pct: float
    ttft_s: float | None
    wall_s: float
    output_tokens: int
    side_ok: bool
    side_wall_s: float
    side_error: str = ""


def run_session(base_url: str, session: Session, turns: int, failures: list[str]) -> list[Turn]:
    """The session: per turn, the main request and the title request fired at the same moment."""
    headers = {
        "anthropic-version": "2023-06-01",
        "x-api-key": "bench-local",
        "x-claude-code-session-id": session.session_id,
        "x-app": "cli",
    }
    url = base_url + "/v1/messages?beta=true"
    history: list[dict[str, Any]] = []
    results: list[Turn] = []
    timeout = httpx.Timeout(900, connect=10)
    with httpx.Client(timeout=timeout) as main_client, httpx.Client(timeout=timeout) as side_client:
        for i in range(turns):
            user = USER_TURNS[i % len(USER_TURNS)]
            history.append({"role": "user", "content": [{"type": "text", "text": user}]})
            barrier = threading.Barrier(2)

            def fire(client: httpx.Client, body: dict[str, Any], b: threading.Barrier = barrier) -> Result:
                b.wait()
                return stream_message(client, url, body, headers)

            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                main_f = pool.submit(fire, main_client, session.main_request(history))
                side_f = pool.submit(fire, side_client, session.title_request(user))
                main, side = main_f.result(), side_f.result()
            if not main.ok:
                print(f"  turn {i + 1}: main request failed: {main.error}", file=sys.stderr, flush=True)
                failures.append(f"turn {i + 1}: {main.error}")
                break
            prompt = main.input_tokens + main.cache_read_tokens
            results.append(
                Turn(
                    turn=i + 1,
                    prompt_tokens=prompt,
                    processed_tokens=main.input_tokens,
                    cached_tokens=main.cache_read_tokens,
                    cached_pct=round(100 * main.cache_read_tokens / prompt, 1) if prompt else 0.0,
                    ttft_s=round(main.ttft_s, 3) if main.ttft_s is not None else None,
                    wall_s=round(main.wall_s, 3),
                    output_tokens=main.output_tokens,
                    side_ok=side.ok,
                    side_wall_s=round(side.wall_s, 3),
                    side_error=side.error,
                )
            )
            print(f"  turn {i + 1}: {asdict(results[-1])}", file=sys.stderr, flush=True)
            history.append({"role": "assistant", "content": [{"type": "text", "text": main.text or "OK."}]})
    return results


# --- processes -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ok(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {seconds} s")


@contextmanager
def llama_server(model_file: Path, *, native: bool, log_file: Path) -> Iterator[str]:
    """A llama-server container on 127.0.0.1; yields its root URL. Its log ends up in log_file."""
    name = f"ccsandbox-bench-llama-{uuid.uuid4().hex[:8]}"
    command = ["docker", "run", "-d", "--name", name, "-p", "127.0.0.1::8080"]
    command += ["-v", f"{model_file}:/models/model.gguf:ro"]
    if native:  # llama-server's defaults: no flags but the model and the listen address
        command += ["--entrypoint", "/app/llama-server", IMAGE]
        command += ["-m", "/models/model.gguf", "--host", "0.0.0.0", "--port", "8080"]
    else:  # the stack's settings (see compose.yaml / the image's entrypoint)
        command += ["-e", "LLAMA_CHAT_TEMPLATE=qwen2.5-coder-tools", IMAGE]
    subprocess.run(command, check=True, capture_output=True)
    try:
        port = subprocess.run(
            ["docker", "port", name, "8080/tcp"], check=True, capture_output=True, text=True
        ).stdout.split()[0]
        url = "http://127.0.0.1:" + port.rsplit(":", 1)[1]
        wait_ok(url + "/health", 180)
        yield url
    finally:
        with log_file.open("wb") as log:
            subprocess.run(["docker", "logs", name], stdout=log, stderr=subprocess.STDOUT)
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


@contextmanager
def ccproxy(upstream: str, log_file: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCPROXY_")}
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [
                *(str(CCPROXY), "--port", str(port), "--upstream", upstream + "/v1"),
                *("--backend-features", "llama-server", "--model", models.DEFAULT_MODEL),
                *("--log-level", "warning"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            wait_ok(f"http://127.0.0.1:{port}/health", 30)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- report ----------------------------------------------------------------------------------------------


@dataclass
class Report:
    date: str
    machine: str
    model: str
    turns: int
    tools: list[str]
    setups: dict[str, list[Turn]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)

    def summary(self, setup: str) -> dict[str, float]:
        if not self.setups[setup]:
            return {
                "cached_pct_turns_2_on": 0.0,
                "mean_ttft_s_turns_2_on": 0.0,
                "turn1_ttft_s": 0.0,
                "total_wall_s": 0.0,
            }
        rows = self.setups[setup][1:]
        prompt = sum(r.prompt_tokens for r in rows)
        cached = sum(r.cached_tokens for r in rows)
        ttfts = [r.ttft_s for r in rows if r.ttft_s is not None]
        return {
            "cached_pct_turns_2_on": round(100 * cached / prompt, 1) if prompt else 0.0,
            "mean_ttft_s_turns_2_on": round(sum(ttfts) / len(ttfts), 2) if ttfts else 0.0,
            "turn1_ttft_s": self.setups[setup][0].ttft_s or 0.0,
            "total_wall_s": round(sum(r.wall_s for r in self.setups[setup]), 1),
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = {name: self.summary(name) for name in self.setups}
        return data

    def to_markdown(self) -> str:
        lines = [
            "# KV-cache session benchmark",
            "",
            f"{self.date} · {self.machine} · model `{self.model}` · {self.turns} turns · tools "
            f"{', '.join(self.tools)} · a title side request fired with every main request.",
            "Generated by `bench/cache_session.py`; do not edit.",
            "",
            "| setup | turns 2-N from cache | mean time to first token, turns 2-N | turn 1 | total wall |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in self.setups:
            s = self.summary(name)
            lines.append(
                f"| {name} | {s['cached_pct_turns_2_on']} % | {s['mean_ttft_s_turns_2_on']} s | "
                f"{s['turn1_ttft_s']} s | {s['total_wall_s']} s |"
            )
        for name, rows in self.setups.items():
            lines += ["", f"## {name}", ""]
            lines += [f"**Stopped: {failure}**" for failure in self.failures.get(name, [])]
            lines += [
                "",
                "| turn | prompt | processed | from cache | cached % | first token, s | wall, s | side |",
                "|---:|---:|---:|---:|---:|---:|---:|:---:|",
            ]
            lines += [
                f"| {r.turn} | {r.prompt_tokens} | {r.processed_tokens} | {r.cached_tokens} | "
                f"{r.cached_pct} | {r.ttft_s} | {r.wall_s} | {'ok' if r.side_ok else r.side_error[:60]} |"
                for r in rows
            ]
        return "\n".join(lines) + "\n"

    def plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4.5))
        for name, rows in self.setups.items():
            ax.plot(
                [r.turn for r in rows],
                [r.ttft_s or 0.0 for r in rows],
                marker="o",
                label=f"{name} ({self.summary(name)['cached_pct_turns_2_on']} % from cache, turns 2+)",
            )
        ax.set_xlabel("turn")
        ax.set_ylabel("prompt time: seconds to first token")
        ax.set_yscale("log")
        ax.set_title(f"10-turn Claude-Code-shaped session, {self.model}, 2 CPU cores")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--tools", default="Bash,Edit,Read,Write", help="tools of the fixture to send")
    parser.add_argument("--reminder-chars", type=int, default=2000, help="size of the index-1 system message")
    parser.add_argument("--setups", default="proxy,native")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    model_file = models.fetch(models.DEFAULT_MODEL)
    tools = args.tools.split(",")
    report = Report(
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs",
        model=models.DEFAULT_MODEL,
        turns=args.turns,
        tools=tools,
    )
    raw = args.out / "raw"  # git-ignored: logs
    raw.mkdir(parents=True, exist_ok=True)
    for setup in args.setups.split(","):
        session = Session.from_fixtures(tools, args.reminder_chars)
        print(f"{setup}:", file=sys.stderr, flush=True)
        failures = report.failures.setdefault(setup, [])
        log = raw / f"cache_session.{setup}.llama-server.log"
        with llama_server(model_file, native=setup == "native", log_file=log) as llama:
            if setup == "proxy":
                with ccproxy(llama, raw / "cache_session.ccproxy.log") as proxy_url:
                    report.setups[setup] = run_session(proxy_url, session, args.turns, failures)
            elif setup == "native":
                report.setups[setup] = run_session(llama, session, args.turns, failures)
            else:
                raise SystemExit(f"unknown setup {setup!r}")
        write(report, args.out)  # after each setup: a later failure keeps the earlier results
    print(report.to_markdown())
    return 0


def write(report: Report, out: Path) -> None:
    (out / "cache_session.json").write_text(json.dumps(report.to_json(), indent=1) + "\n")
    (out / "cache_session.md").write_text(report.to_markdown())
    report.plot(out / "cache_session.png")


if __name__ == "__main__":
    raise SystemExit(main())
