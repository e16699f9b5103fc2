"""The prefix-cache harness, shared by tests/backend/test_prefix_cache.py and bench/prefix_restore.py: a real
llama-server with a slot-file directory and the real ccproxy in front, Claude Code's recorded first
request, one streamed session turn with its timings, the proxy's prefix-cache counters and log figures."""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
from harness import Ccproxy
from harness.llama import LlamaServer, llama_server
from llama_helpers import CTX_PER_SLOT, REPO, STACK_ENV, backend_proxy

FIXTURES = REPO / "tests" / "fixtures" / "claude_code"
# Claude Code 2.1.330 -p in /workspace with the sandbox's settings (21 tools)
SESSION_FIXTURE = FIXTURES / "sessions" / "day1" / "01-turn1.json"
_DATE = re.compile(r"Today's date is \d{4}-\d{2}-\d{2}\.")


def claude_code_request(
    date: str, prompt: str, *, tools: tuple[str, ...] | None = None, max_tokens: int = 8
) -> dict[str, Any]:
    """Claude Code's first request of a session on `date` asking `prompt`; `tools` keeps only those."""
    body = copy.deepcopy(json.loads(SESSION_FIXTURE.read_text())["body"])
    if tools is not None:
        body["tools"] = [t for t in body["tools"] if t["name"] in tools]
    text = json.dumps(body["messages"])
    assert _DATE.search(text), "the recorded request has no date line"
    body["messages"] = json.loads(_DATE.sub(f"Today's date is {date}.", text))
    body["messages"][0]["content"][-1]["text"] = prompt
    body["max_tokens"] = max_tokens
    for key in ("thinking", "context_management", "output_config", "stream"):
        body.pop(key, None)
    return body


@dataclass(frozen=True)
class Turn:
    ttft: float  # request -> first content block: the prefix ready and the first token out
    total: float
    input_tokens: int  # processed (not read from the cache), as the Anthropic API counts them
    cache_read: int


def ask(proxy: Ccproxy, body: dict[str, Any], session: str | None = None) -> Turn:
    """One streamed turn of a new session (or `session`) through the proxy."""
    client = anthropic.Anthropic(
        base_url=proxy.url,
        api_key="unused-local",
        max_retries=0,
        timeout=1800,
        default_headers={"X-Claude-Code-Session-Id": session or str(uuid.uuid4())},
    )
    started = time.monotonic()
    ttft = None
    with client.messages.stream(**body) as stream:
        for event in stream:
            if ttft is None and event.type == "content_block_start":
                ttft = time.monotonic() - started
        usage = stream.get_final_message().usage
    return Turn(
        ttft=ttft if ttft is not None else float("nan"),
        total=time.monotonic() - started,
        input_tokens=usage.input_tokens,
        cache_read=usage.cache_read_input_tokens or 0,
    )


def prefix_counts(proxy: Ccproxy) -> dict[str, float]:
    """The proxy's ccproxy_prefix_cache_total counters by result."""
    text = httpx.get(proxy.url + "/metrics", timeout=10).text
    pattern = r'^ccproxy_prefix_cache_total\{[^}]*result="(\w+)"[^}]*\} ([0-9.e+]+)$'
    return {m.group(1): float(m.group(2)) for m in re.finditer(pattern, text, re.MULTILINE)}


def log_number(proxy: Ccproxy, pattern: str) -> float:
    """The number captured by `pattern` in the proxy's log (its last match)."""
    matches = re.findall(pattern, proxy.log.read_text())
    assert matches, f"{pattern!r} not in the proxy log:\n{proxy.log.read_text()[-3000:]}"
    return float(matches[-1])


@contextmanager
def llama_stack(
    model_file: Path, slots: Path, work: Path, name: str, *, ctx_per_slot: int = CTX_PER_SLOT
) -> Iterator[tuple[LlamaServer, Ccproxy]]:
    """llama-server (our entrypoint, LLAMA_SLOT_SAVE_PATH on `slots`) and ccproxy; both stopped after."""
    env = STACK_ENV | {"LLAMA_CTX_PER_SLOT": str(ctx_per_slot), "LLAMA_SLOT_SAVE_PATH": "/slots"}
    with (
        llama_server(
            model_file, env=env, mounts={str(slots): "/slots"}, name_prefix="ccsandbox-test-prefix"
        ) as server,
        backend_proxy(server.url + "/v1", work / f"ccproxy-{name}.log") as proxy,
    ):
        yield server, proxy
