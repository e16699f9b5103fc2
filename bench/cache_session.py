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
import copy
import hashlib
import itertools
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from ccstack import models
from harness import ccproxy, http_status
from harness.llama import LlamaServer, llama_server

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "claude_code"
RESULTS = REPO / "bench" / "results"
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
# The second conversation: another first prompt (so another billing-header hash), same system + tools.
USER_TURNS_2 = [
    "Find where the configuration is loaded and describe it in one sentence.",
    "Which setting would you change first? One sentence.",
    "Summarise this conversation in one sentence.",
    "What would you log more? One sentence.",
    "Which test is missing? One sentence.",
]
CLAUDE_CODE_VERSION = "2.1.330"
BILLING_PREFIX = "x-anthropic-billing-header:"
BILLING_SALT = "59cf53e54c78"  # Claude Code 2.1.330's constant for the fingerprint


# --- the Claude-Code-shaped requests --------------------------------------------------------------------


def billing_fingerprint(first_prompt: str, version: str = CLAUDE_CODE_VERSION) -> str:
    """The 3 hex chars of `cc_version=<ver>.<3 hex>`, as Claude Code computes them from the first prompt."""
    chars = "".join(first_prompt[i] if i < len(first_prompt) else "0" for i in (4, 7, 20))
    return hashlib.sha256(f"{BILLING_SALT}{chars}{version}".encode()).hexdigest()[:3]


def with_billing_header(system: list[dict[str, Any]], first_prompt: str) -> list[dict[str, Any]]:
    """`system` with its billing-header block's hash recomputed for this first prompt."""
    blocks = copy.deepcopy(system)
    head = blocks[0]
    if not head.get("text", "").startswith(BILLING_PREFIX):
        raise SystemExit("the fixture's first system block is not the billing header")
    fingerprint = billing_fingerprint(first_prompt)
    head["text"] = re.sub(
        r"cc_version=([0-9.]+)\.[0-9a-f]{3};", rf"cc_version=\g<1>.{fingerprint};", head["text"], count=1
    )
    return blocks


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


@dataclass(frozen=True)
class Session:
    """The fixed parts of the session: main request template and title request template."""

    main: dict[str, Any]
    title: dict[str, Any]
    session_id: str
    user_turns: list[str]

    @classmethod
    def from_fixtures(cls, tools: list[str], reminder_chars: int, user_turns: list[str]) -> Session:
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
            # billing header first, as Claude Code sends it, hashed from this conversation's first prompt
            "system": with_billing_header(turn1["system"], user_turns[0]),
            "tools": [by_name[t] for t in tools],
            "metadata": turn1.get("metadata", {}),
            "messages": [],
            "_reminder": reminder,  # Claude Code's system message at index 1 (stripped before sending)
            "temperature": 0,
        }
        title = {k: v for k, v in side.items() if k not in ("messages", "max_tokens")}
        title |= {"model": MODEL_NAME, "max_tokens": 24, "stream": True}
        return cls(main=main, title=title, session_id=str(uuid.uuid4()), user_turns=user_turns)

    @property
    def billing_header(self) -> str:
        text: str = self.main["system"][0]["text"]
        return text

    def main_request(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        body = {k: v for k, v in self.main.items() if not k.startswith("_")}
        messages = list(history)
        messages.insert(1, self.main["_reminder"])  # [user, system, assistant, user, ...]
        body["messages"] = messages
        return body

    def title_request(self, user_text: str) -> dict[str, Any]:
        text = f"<session>\n{user_text}\n</session>\n\nWrite the title in the language of the session."
        system = with_billing_header(self.title["system"], text)  # Claude Code hashes the title's own text
        content = [{"type": "text", "text": text}]
        return {**self.title, "system": system, "messages": [{"role": "user", "content": content}]}


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
    conversation: int
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
    side_processed_tokens: int = 0
    side_cached_tokens: int = 0
    side_error: str = ""
    main_slot: int | None = None  # from llama-server's log
    main_slot_why: str = ""
    side_slot: int | None = None
    side_slot_why: str = ""


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


# --- report ----------------------------------------------------------------------------------------------


@dataclass
class Report:
    date: str
    machine: str
    model: str
    turns: int
    turns2: int
    tools: list[str]
    billing_headers: list[str] = field(default_factory=list)  # conversation 1, conversation 2
    setups: dict[str, list[Turn]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    restarts: dict[str, list[str]] = field(default_factory=dict)
    # the machine's 1-minute load average when each setup started and ended (2 cores shared with others)
    load: dict[str, list[float]] = field(default_factory=dict)

    def rows(self, setup: str, conversation: int) -> list[Turn]:
        return [r for r in self.setups.get(setup, []) if r.conversation == conversation]

    def summary(self, setup: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for conv in (1, 2):
            rows = self.rows(setup, conv)
            later = rows[1:]
            prompt = sum(r.prompt_tokens for r in later)
            cached = sum(r.cached_tokens for r in later)
            ttfts = [r.ttft_s for r in later if r.ttft_s is not None]
            first = rows[0] if rows else None
            out[f"conv{conv}"] = {
                "turns_run": len(rows),
                "turn1_processed_tokens": first.processed_tokens if first else None,
                "turn1_cached_tokens": first.cached_tokens if first else None,
                "turn1_cached_pct": first.cached_pct if first else None,
                "turn1_ttft_s": first.ttft_s if first else None,
                "cached_pct_turns_2_on": round(100 * cached / prompt, 1) if prompt else None,
                "mean_ttft_s_turns_2_on": round(sum(ttfts) / len(ttfts), 2) if ttfts else None,
            }
        rows = self.setups.get(setup, [])
        side = [r for r in rows if r.side_ok]
        side_prompt = sum(r.side_processed_tokens + r.side_cached_tokens for r in side)
        # did a title request run on the slot that held the conversation at the previous turn?
        pairs = [
            (prev, cur)
            for prev, cur in itertools.pairwise(rows)
            if prev.conversation == cur.conversation and prev.main_slot is not None
        ]
        # main requests' prompt time on later turns, split by what the concurrent title request cost
        later = [r for r in rows if r.turn > 1 and r.side_ok and r.ttft_s is not None]
        cold = [
            r.ttft_s for r in later if r.ttft_s is not None and r.side_processed_tokens > r.side_cached_tokens
        ]
        warm = [
            r.ttft_s
            for r in later
            if r.ttft_s is not None and r.side_processed_tokens <= r.side_cached_tokens
        ]
        out["turns_2_on_by_title"] = {
            "title_reprocessed": {
                "turns": len(cold),
                "mean_ttft_s": round(sum(cold) / len(cold), 2) if cold else None,
            },
            "title_from_cache": {
                "turns": len(warm),
                "mean_ttft_s": round(sum(warm) / len(warm), 2) if warm else None,
            },
        }
        out["titles"] = {
            "ok": len(side),
            "failed": len(rows) - len(side),
            "mean_processed_tokens": round(sum(r.side_processed_tokens for r in side) / len(side), 1)
            if side
            else None,
            "cached_pct": round(100 * sum(r.side_cached_tokens for r in side) / side_prompt, 1)
            if side_prompt
            else None,
            "on_previous_main_slot": sum(1 for prev, cur in pairs if cur.side_slot == prev.main_slot),
            "turns_compared": len(pairs),
        }
        out["total_wall_s"] = round(sum(r.wall_s for r in rows), 1)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        fields = {k: v for k, v in data.items() if k not in ("summary", "setups")}
        setups = {name: [Turn(**row) for row in rows] for name, rows in data["setups"].items()}
        return cls(**fields, setups=setups)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = {name: self.summary(name) for name in self.setups}
        return data

    def to_markdown(self) -> str:
        lines = [
            "# KV-cache session benchmark",
            "",
            f"{self.date} · {self.machine} · model `{self.model}` · tools {', '.join(self.tools)} · "
            f"conversation 1: {self.turns} turns, then conversation 2 on the same server: "
            f"{self.turns2} turns "
            "(same system prompt and tools, another first prompt) · a title side request fired with every "
            "main request.",
            "",
            "Billing headers (first system block; Claude Code's hash of the first prompt): "
            + " · ".join(f"conversation {i + 1}: `{h}`" for i, h in enumerate(self.billing_headers))
            + ". Each title request carries the hash of its own text.",
            "Generated by `bench/cache_session.py`; do not edit.",
            "",
            "| setup | conv 1 turn 1: processed / from cache, first token | conv 1 turns 2-N from cache, "
            "mean first token | **conv 2 turn 1**: processed / from cache, first token | conv 2 turns 2-N "
            "from cache | title requests: mean processed, from cache | total main wall |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name in self.setups:
            s = self.summary(name)
            c1, c2, t = s["conv1"], s["conv2"], s["titles"]
            lines.append(
                f"| {name} | {_turn1(c1)} | "
                f"{_pct(c1['cached_pct_turns_2_on'])}, {_sec(c1['mean_ttft_s_turns_2_on'])} "
                f"| {_turn1(c2)} | {_pct(c2['cached_pct_turns_2_on'])} "
                f"| {t['mean_processed_tokens']} tokens, {_pct(t['cached_pct'])} | {s['total_wall_s']} s |"
            )
        lines += [
            "",
            "Title requests on the slot that held the conversation the turn before: "
            + " · ".join(
                f"{name}: {self.summary(name)['titles']['on_previous_main_slot']} of "
                f"{self.summary(name)['titles']['turns_compared']}"
                for name in self.setups
            )
            + " (slots and llama-server's reason for picking them: per-turn tables below).",
            "",
            "Machine load (1-minute load average at the start and end of each setup; the cold turns' times "
            "depend on it): "
            + " · ".join(
                f"{name}: {' → '.join(str(v) for v in self.load.get(name, [])) or '?'}"
                for name in self.setups
            )
            + ".",
            "",
            "Failed main requests: "
            + " · ".join(f"{name}: {len(self.failures.get(name, [])) or 'none'}" for name in self.setups)
            + "; server restarts: "
            + " · ".join(f"{name}: {len(self.restarts.get(name, [])) or 'none'}" for name in self.setups)
            + ".",
            "",
            "Main request's mean time to first token on turns 2+, by what its concurrent title request cost: "
            + " · ".join(
                f"{name}: title mostly re-processed {_sec(b['title_reprocessed']['mean_ttft_s'])} "
                f"({b['title_reprocessed']['turns']} turns), title from cache "
                f"{_sec(b['title_from_cache']['mean_ttft_s'])} ({b['title_from_cache']['turns']} turns)"
                for name in self.setups
                for b in [self.summary(name)["turns_2_on_by_title"]]
            )
            + ".",
        ]
        for name, rows in self.setups.items():
            lines += ["", f"## {name}", ""]
            lines += [f"**Stopped: {failure}**  " for failure in self.failures.get(name, [])]
            lines += [f"**Restarted: {note}**  " for note in self.restarts.get(name, [])]
            lines += [
                "",
                "| conv.turn | prompt | processed | from cache | cached % | first token, s | wall, s "
                "| slot (why) "
                "| title: processed / from cache | title slot (why) | title wall, s |",
                "|---:|---:|---:|---:|---:|---:|---:|:---|---:|:---|---:|",
            ]
            lines += [
                f"| {r.conversation}.{r.turn} | {r.prompt_tokens} | {r.processed_tokens} "
                f"| {r.cached_tokens} | "
                f"{r.cached_pct} | {r.ttft_s} | {r.wall_s} | {_slot(r.main_slot, r.main_slot_why)} | "
                + (f"{r.side_processed_tokens} / {r.side_cached_tokens}" if r.side_ok else r.side_error[:60])
                + f" | {_slot(r.side_slot, r.side_slot_why)} | {r.side_wall_s} |"
                for r in rows
            ]
        return "\n".join(lines) + "\n"

    def plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 4.8))
        gap = self.turns + 1  # conversation 2 starts after a gap
        for index, name in enumerate(self.setups):
            color = f"C{index}"
            s = self.summary(name)
            for conv, offset in ((1, 0), (2, gap)):
                rows = self.rows(name, conv)
                if not rows:
                    continue
                label = (
                    f"{name} ({_pct(s['conv1']['cached_pct_turns_2_on'])} from cache on turns 2+; "
                    f"new conversation: {_pct(s['conv2']['turn1_cached_pct'])} at its turn 1)"
                    if conv == 1
                    else None
                )
                ax.plot(
                    [offset + r.turn for r in rows],
                    [r.ttft_s or 0.0 for r in rows],
                    marker="o" if conv == 1 else "s",
                    color=color,
                    label=label,
                )
        ax.axvline(gap + 0.5, color="grey", linestyle="--", linewidth=1)
        ax.text(
            gap + 0.6,
            0.98,
            "conversation 2\n(new billing header)",
            transform=ax.get_xaxis_transform(),
            va="top",
            fontsize=8,
            color="grey",
        )
        ticks = list(range(1, self.turns + 1)) + [gap + t for t in range(1, self.turns2 + 1)]
        labels = [f"1.{t}" for t in range(1, self.turns + 1)] + [f"2.{t}" for t in range(1, self.turns2 + 1)]
        ax.set_xticks(ticks, labels)
        ax.set_xlabel("conversation.turn")
        ax.set_ylabel("prompt time: seconds to first token")
        ax.set_yscale("log")
        ax.set_title(f"Claude-Code-shaped sessions, {self.model}, {self.machine}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value} %"


def _sec(value: float | None) -> str:
    return "-" if value is None else f"{value} s"


def _turn1(conv: dict[str, Any]) -> str:
    if conv["turn1_processed_tokens"] is None:
        return "not run"
    return f"{conv['turn1_processed_tokens']} / {conv['turn1_cached_tokens']}, {_sec(conv['turn1_ttft_s'])}"


def _slot(slot: int | None, why: str) -> str:
    return "?" if slot is None else f"{slot} ({why})"


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


def write(report: Report, out: Path) -> None:
    (out / "cache_session.json").write_text(json.dumps(report.to_json(), indent=1) + "\n")
    (out / "cache_session.md").write_text(report.to_markdown())
    report.plot(out / "cache_session.png")


if __name__ == "__main__":
    raise SystemExit(main())
