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

Every request carries Claude Code's billing header as its first system block, with the 3 hex chars
computed the way Claude Code 2.1.330 computes them (`billing_fingerprint`: sha256 over a salt, 3
characters of the conversation's first user prompt and the version; it reproduces the fixtures' `f73`
and `f6c`). So the header is constant within a conversation but differs between conversations and
between title requests. After the first conversation (`--turns`, 10) a second one starts on the same
server (`--turns2`, 3): a different first prompt, hence a different header, with the same system prompt
and tools. Its turn 1 shows whether the shared system + tools prefix is reused across conversations.

Per turn: prompt tokens processed vs read from the cache (the `usage` each returns, which llama-server
fills from its own counts), time to the first streamed token (prompt processing + queueing), and wall
time; the same for the title request; and, from llama-server's log, which slot each request ran on and
why llama-server picked it (`id` = ccproxy's `id_slot`; `LCP similarity` / `LRU` = its own choice).
If a server dies mid-run its state is recorded and, only if it is dead, it is restarted for the second
conversation (the results say so). Writes bench/results/cache_session.{json,md,png}.

    python bench/cache_session.py [--turns 10] [--turns2 3] [--tools Bash,Edit,Read,Write]
                                  [--setups proxy,native]

Needs Docker, ccsandbox/llama-server:local (scripts/build-llama-server.sh), the model
(`python -m ccstack.models fetch`) and matplotlib (bench/requirements.txt).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from cache_session_report import Report, Turn, write
from ccstack import models
from claude_code_shape import USER_TURNS, USER_TURNS_2, Session
from harness import ccproxy, http_status
from harness.llama import LlamaServer, llama_server

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"

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


# llama-server's slot lines (verbosity 3, the default):
#   slot get_availabl: id  0 | task -1 | selected slot by LCP similarity, f_sim_best = 0.958 (> ...
#   slot launch_slot_: id  0 | task 109 | processing task, is_child = 0
#   slot      release: id  0 | task 109 | stop processing: n_tokens = 741, truncated = 0
SELECTED = re.compile(r"get_availabl: id +(\d+) \| task -?\d+ \| selected slot by (.*)$")
LAUNCHED = re.compile(r"launch_slot_: id +(\d+) \| task (\d+) \|")
RELEASED = re.compile(r"release: id +(\d+) \| task (\d+) \| stop processing: n_tokens = (\d+)")


@dataclass
class SlotUse:
    slot: int
    why: str
    n_tokens: int | None = None


def slot_uses(lines: list[str]) -> list[SlotUse]:
    """The tasks llama-server launched in these log lines, in order: slot, why that slot, final tokens."""
    why: dict[int, str] = {}
    tasks: dict[int, SlotUse] = {}
    for line in lines:
        if m := SELECTED.search(line):
            reason = m.group(2)
            if reason.startswith("LCP similarity"):
                sim = re.search(r"f_sim_best = ([0-9.]+)", reason)
                reason = f"LCP {sim.group(1)}" if sim else "LCP"
            elif reason.startswith("LRU"):
                reason = "LRU"
            why[int(m.group(1))] = reason.strip()
        elif m := LAUNCHED.search(line):
            slot = int(m.group(1))
            tasks[int(m.group(2))] = SlotUse(slot, why.pop(slot, "?"))
        elif (m := RELEASED.search(line)) and int(m.group(2)) in tasks:
            tasks[int(m.group(2))].n_tokens = int(m.group(3))
    return list(tasks.values())


class LogTail:
    """New lines of a container's log since the last call."""

    def __init__(self, container: LlamaServer) -> None:
        self.container = container
        self.seen = 0

    def new_lines(self) -> list[str]:
        lines = self.container.logs(0).splitlines()
        new, self.seen = lines[self.seen :], len(lines)
        return new


def run_session(
    base_url: str,
    session: Session,
    turns: int,
    failures: list[str],
    *,
    conversation: int = 1,
    log: LogTail | None = None,
    on_failure: Callable[[], str] | None = None,
) -> list[Turn]:
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
    if log is not None:
        log.new_lines()  # skip what came before this conversation
    with httpx.Client(timeout=timeout) as main_client, httpx.Client(timeout=timeout) as side_client:
        for i in range(turns):
            user = session.user_turns[i % len(session.user_turns)]
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
                state = on_failure() if on_failure is not None else ""
                message = f"conversation {conversation} turn {i + 1}: {main.error}" + (
                    f"; {state}" if state else ""
                )
                print(f"  main request failed: {message}", file=sys.stderr, flush=True)
                failures.append(message)
                break
            prompt = main.input_tokens + main.cache_read_tokens
            turn = Turn(
                conversation=conversation,
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
                side_processed_tokens=side.input_tokens,
                side_cached_tokens=side.cache_read_tokens,
                side_error=side.error,
            )
            if log is not None:
                time.sleep(0.3)  # the release lines follow the last streamed bytes
                _attach_slots(turn, slot_uses(log.new_lines()))
            results.append(turn)
            print(f"  turn {conversation}.{i + 1}: {asdict(turn)}", file=sys.stderr, flush=True)
            history.append({"role": "assistant", "content": [{"type": "text", "text": main.text or "OK."}]})
    return results


def _attach_slots(turn: Turn, uses: list[SlotUse]) -> None:
    """Which task was the main request: the one whose final size is nearest its prompt + output."""
    if not uses:
        return
    size = turn.prompt_tokens + turn.output_tokens
    main = min(uses, key=lambda u: abs((u.n_tokens if u.n_tokens is not None else 0) - size))
    turn.main_slot, turn.main_slot_why = main.slot, main.why
    others = [u for u in uses if u is not main]
    if others:
        turn.side_slot, turn.side_slot_why = others[0].slot, others[0].why


def healthy(url: str) -> bool:
    try:
        return http_status(url + "/health", timeout=5) == 200
    except OSError:
        return False


def start_setup(
    stack: ExitStack, setup: str, model_file: Path, raw: Path, tag: str
) -> tuple[LlamaServer, str]:
    """The setup's llama-server (and ccproxy in front for `proxy`): the container and the URL to use.
    `native`: llama-server's defaults (no flags but the model); `proxy`: the stack's settings (see
    compose.yaml / the image's entrypoint) and ccproxy as the stack runs it."""
    if setup not in ("proxy", "native"):
        raise SystemExit(f"unknown setup {setup!r}")
    server = stack.enter_context(
        llama_server(
            model_file,
            env={} if setup == "native" else {"LLAMA_CHAT_TEMPLATE": "qwen2.5-coder-tools"},
            native=setup == "native",
            name_prefix="ccsandbox-bench-llama",
            log_file=raw / f"cache_session.{setup}{tag}.llama-server.log",
        )
    )
    if setup == "native":
        return server, server.url
    flags = ("--backend-features", "llama-server", "--model", models.DEFAULT_MODEL, "--log-level", "warning")
    log = raw / f"cache_session.ccproxy{tag}.log"
    return server, stack.enter_context(ccproxy(server.url + "/v1", *flags, log=log)).url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=10, help="turns of conversation 1")
    parser.add_argument("--turns2", type=int, default=3, help="turns of conversation 2 (0: none)")
    parser.add_argument("--tools", default="Bash,Edit,Read,Write", help="tools of the fixture to send")
    parser.add_argument("--reminder-chars", type=int, default=2000, help="size of the index-1 system message")
    parser.add_argument("--setups", default="proxy,native")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md/.png from the .json")
    args = parser.parse_args()
    if args.render_only:
        write(Report.from_json(json.loads((args.out / "cache_session.json").read_text())), args.out)
        return 0

    model_file = models.fetch(models.DEFAULT_MODEL)
    tools = args.tools.split(",")
    first = Session.from_fixtures(tools, args.reminder_chars, USER_TURNS)
    second = Session.from_fixtures(tools, args.reminder_chars, USER_TURNS_2)
    if first.billing_header == second.billing_header:
        raise SystemExit("the two conversations must have different billing headers")
    report = Report(
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs",
        model=models.DEFAULT_MODEL,
        turns=args.turns,
        turns2=args.turns2,
        tools=tools,
        billing_headers=[first.billing_header, second.billing_header][: 2 if args.turns2 else 1],
    )
    raw = args.out / "raw"  # git-ignored: logs
    raw.mkdir(parents=True, exist_ok=True)
    for setup in args.setups.split(","):
        print(f"{setup}:", file=sys.stderr, flush=True)
        failures = report.failures.setdefault(setup, [])
        rows = report.setups.setdefault(setup, [])
        report.load[setup] = [round(os.getloadavg()[0], 2)]
        # each setup gets its own session ids, as two separate Claude Code sessions would
        sessions = [
            replace(first, session_id=str(uuid.uuid4())),
            replace(second, session_id=str(uuid.uuid4())),
        ]
        with ExitStack() as stack:
            server, url = start_setup(stack, setup, model_file, raw, "")
            log = LogTail(server)
            rows += run_session(url, sessions[0], args.turns, failures, log=log, on_failure=server.state)
            write(report, args.out)
            if args.turns2:
                if not healthy(url):
                    note = (
                        f"after conversation 1 the server was not answering ({server.state()}); "
                        "conversation 2 ran on a freshly started one, so its turn 1 began with an empty "
                        "cache whatever the header"
                    )
                    print(f"  {note}", file=sys.stderr, flush=True)
                    report.restarts.setdefault(setup, []).append(note)
                    stack.close()
                    server, url = start_setup(stack, setup, model_file, raw, ".restart")
                    log = LogTail(server)
                rows += run_session(
                    url, sessions[1], args.turns2, failures, conversation=2, log=log, on_failure=server.state
                )
        report.load[setup].append(round(os.getloadavg()[0], 2))
        write(report, args.out)  # after each setup: a later failure keeps the earlier results
    print(report.to_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
