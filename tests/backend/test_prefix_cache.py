"""Claude Code's prefix survives a llama-server restart (the real server and model, the real ccproxy).

The server runs with our entrypoint's LLAMA_SLOT_SAVE_PATH (a host directory here, the `llama-slots`
volume in the stack). The first session's first turn finds no slot file: ccproxy processes the prefix
(Claude Code's real system prompt and four of its real tools, ~4 k tokens) alone, saves it, and the turn
reuses it. After both processes restart, a new session on another day restores the file into its slot
before its first turn and is served from it. A truncated file is ignored (a log line, a counter), the
turn is answered, and the file is written again. Figures are printed (`-s`).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from llama_helpers import (
    CTX_PER_SLOT,
    REPO,
    LlamaServer,
    Proxy,
    start_llama_server,
    start_proxy,
    stop_container,
    stop_proxy,
)

pytestmark = pytest.mark.backend

FIXTURE = REPO / "tests" / "fixtures" / "claude_code" / "tool_search_off" / "01-turn1.json"
TOOLS = ("Bash", "Edit", "Read", "Write")
RECORDED_DATE = "Today's date is 2026-11-22."


def claude_code_request(date: str, prompt: str) -> dict[str, Any]:
    """Claude Code 2.1.330's first request (-p, tool search off) with four of its tools, on `date`."""
    body = copy.deepcopy(json.loads(FIXTURE.read_text())["body"])
    body["tools"] = [t for t in body["tools"] if t["name"] in TOOLS]
    text = json.dumps(body["messages"])
    assert RECORDED_DATE in text
    body["messages"] = json.loads(text.replace(RECORDED_DATE, f"Today's date is {date}."))
    body["messages"][0]["content"][-1]["text"] = prompt
    body.update(max_tokens=8, stream=True)
    for key in ("thinking", "context_management", "output_config"):
        body.pop(key, None)
    return body


@dataclass(frozen=True)
class Turn:
    ttft: float  # request -> first content block (the prefix is ready, the first token out)
    total: float
    input_tokens: int
    cache_read: int


def ask(proxy: Proxy, body: dict[str, Any]) -> Turn:
    client = anthropic.Anthropic(
        base_url=proxy.url,
        api_key="unused-local",
        max_retries=0,
        timeout=600,
        default_headers={"X-Claude-Code-Session-Id": str(uuid.uuid4())},
    )
    started = time.monotonic()
    ttft = None
    params = {k: v for k, v in body.items() if k != "stream"}
    with client.messages.stream(**params) as stream:
        for event in stream:
            if ttft is None and event.type == "content_block_start":
                ttft = time.monotonic() - started
        message = stream.get_final_message()
    usage = message.usage
    return Turn(
        ttft=ttft if ttft is not None else float("nan"),
        total=time.monotonic() - started,
        input_tokens=usage.input_tokens,
        cache_read=usage.cache_read_input_tokens or 0,
    )


def prefix_counts(proxy: Proxy) -> dict[str, float]:
    text = httpx.get(proxy.url + "/metrics", timeout=10).text
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(
            r'^ccproxy_prefix_cache_total\{[^}]*result="(\w+)"[^}]*\} ([0-9.e+]+)$', text, re.M
        )
    }


def log_seconds(proxy: Proxy, pattern: str) -> float:
    """Seconds from a prefix-cache log line (`... in 12.3 s ...`)."""
    match = re.search(pattern, proxy.log.read_text())
    assert match, proxy.log.read_text()[-3000:]
    return float(match.group(1))


@contextmanager
def stack(model_file: Path, slots: Path, work: Path, name: str) -> Iterator[tuple[LlamaServer, Proxy]]:
    """llama-server (slot files in `slots`) and ccproxy in front of it; both stopped afterwards."""
    server = start_llama_server(
        model_file,
        env={
            "LLAMA_CHAT_TEMPLATE": "qwen2.5-coder-tools",
            "LLAMA_PARALLEL": "2",
            "LLAMA_CTX_PER_SLOT": str(CTX_PER_SLOT),
            "LLAMA_THREADS": "2",
            "LLAMA_SLOT_SAVE_PATH": "/slots",
        },
        name_prefix="ccsandbox-test-prefix",
        mounts=(f"{slots}:/slots",),
    )
    try:
        proxy = start_proxy(server.url + "/v1", work / f"ccproxy-{name}.log")
        try:
            yield server, proxy
        finally:
            stop_proxy(proxy)
    finally:
        stop_container(server.container)


def test_prefix_survives_a_restart_and_a_corrupt_file_is_replaced(model_file: Path, tmp_path: Path) -> None:
    slots = tmp_path / "slots"
    slots.mkdir()
    slots.chmod(0o777)  # the container's user writes there

    # 1. the first session ever: no file; the prefix is processed alone, saved, then reused by the turn
    with stack(model_file, slots, tmp_path, "cold") as (_, proxy):
        cold = ask(proxy, claude_code_request("2026-11-22", "Create hello.txt containing hi."))
        assert prefix_counts(proxy) == {"restore_failed": 1.0, "saved": 1.0}
        prefill_s = log_seconds(proxy, r"processed the \d+-token prefix on slot \d in ([0-9.]+) s")
        prefix_tokens = int(log_seconds(proxy, r"processed the (\d+)-token prefix"))
    files = list(slots.glob("*/ccproxy-prefix-*.bin"))
    assert len(files) == 1, files
    size = files[0].stat().st_size
    assert prefix_tokens > 2000
    assert cold.cache_read >= prefix_tokens - 1  # the turn itself reused what was just processed

    # 2. `down` + `up`: both restart; a new session, the next day (the layout keeps the prefix identical)
    with stack(model_file, slots, tmp_path, "restored") as (server, proxy):
        warm = ask(proxy, claude_code_request("2026-11-23", "List the files here."))
        assert prefix_counts(proxy) == {"restored": 1.0}
        restore_s = log_seconds(proxy, r"restored \d+ tokens .* in ([0-9.]+) s")
        # a file that a crash cut short: truncated from inside (the container's user owns it)
        truncate = [
            "docker",
            "exec",
            server.container,
            "truncate",
            "-s",
            str(size // 2),
            f"/slots/{files[0].parent.name}/{files[0].name}",
        ]
        subprocess.run(truncate, check=True)
    assert warm.cache_read >= prefix_tokens - 1
    assert warm.input_tokens < 300  # processed: only the new session's own turn (input_tokens: not cached)
    print(
        f"\nprefix {prefix_tokens} tokens, slot file {size / 1e6:.0f} MB: cold prefill {prefill_s:.1f} s "
        f"(first token {cold.ttft:.1f} s); after a restart: restore {restore_s:.2f} s, first token "
        f"{warm.ttft:.1f} s, {warm.cache_read} of {warm.cache_read + warm.input_tokens} prompt tokens from "
        "the restored cache"
    )
    assert warm.ttft < cold.ttft / 3

    # 3. the truncated file: ignored with a log line and a counter, the turn answered, the file rewritten
    with stack(model_file, slots, tmp_path, "corrupt") as (_, proxy):
        again = ask(proxy, claude_code_request("2026-11-24", "Say hi."))
        assert prefix_counts(proxy) == {"restore_failed": 1.0, "saved": 1.0}
        assert "not restored (missing, truncated, corrupt" in proxy.log.read_text()
    assert again.cache_read >= prefix_tokens - 1
    assert files[0].stat().st_size == size
