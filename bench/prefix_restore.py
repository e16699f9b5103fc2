"""Prefix cache benchmark: Claude Code's prefix processed cold vs restored from a slot file after a restart.

For each prefix size (Claude Code 2.1.330's real first request, recorded in /workspace with the sandbox's
settings: its system prompt and a subset of its tools, or all 21), on a fresh slot directory:

  cold      llama-server + ccproxy start; a new session's first turn: no file, so the proxy processes the
            prefix alone and saves it (the turn then reuses it). Prefill and save time, file size, time
            to the first token.
  restored  both processes restart (`just down && just up`); a new session on the next day: the proxy
            restores the file into the slot, then the turn runs. Restore time, first token, tokens
            processed vs read from the cache.
  disk      the same after evicting the file from the page cache first (a reboot, a cold disk).
  in slot   a second new session on the same running server: the slot already holds the prefix.

The real llama-server image (our entrypoint, LLAMA_SLOT_SAVE_PATH) and the real Qwen2.5-Coder-0.5B, the
real ccproxy, the official anthropic SDK (streamed turns, max_tokens 8). Writes
bench/results/prefix_restore.{json,md}.

    python bench/prefix_restore.py [--sizes Bash,Edit,Read,Write all] [--ctx 32768]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "backend"))

from ccstack import models  # noqa: E402
from prefix_helpers import Turn, ask, claude_code_request, llama_stack, log_number, prefix_counts  # noqa: E402

RESULTS = REPO / "bench" / "results"


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache (this file only)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def measure(model_file: Path, tools: tuple[str, ...] | None, ctx: int, work: Path) -> dict[str, Any]:
    slots = work / "slots"
    slots.mkdir(parents=True)
    slots.chmod(0o777)
    row: dict[str, Any] = {"tools": "all" if tools is None else ",".join(tools)}

    def request(day: int) -> dict[str, Any]:
        return claude_code_request(f"2026-12-{day:02d}", "List the files here.", tools=tools)

    with llama_stack(model_file, slots, work, "cold", ctx_per_slot=ctx) as (_, proxy):
        cold = ask(proxy, request(1))
        row["prefix_tokens"] = int(log_number(proxy, r"processed the (\d+)-token prefix"))
        row["prefill_s"] = log_number(proxy, r"-token prefix on slot \d in ([0-9.]+) s")
        row["save_s"] = log_number(proxy, r"saved \S+ \(\d+ MB\) in ([0-9.]+) s")
        in_slot = ask(proxy, request(2))
        row["counts_cold"] = prefix_counts(proxy)
    (file,) = slots.glob("*/ccproxy-prefix-*.bin")
    row["file_mb"] = round(file.stat().st_size / 1e6, 1)
    turns: dict[str, Turn] = {"cold": cold, "in slot": in_slot}
    for name, day, drop in (("restored", 3, False), ("disk", 4, True)):
        if drop:
            evict(file)
        with llama_stack(model_file, slots, work, name, ctx_per_slot=ctx) as (_, proxy):
            turns[name] = ask(proxy, request(day))
            row[f"restore_s_{name}"] = log_number(proxy, r"restored \d+ tokens .* in ([0-9.]+) s")
            row[f"counts_{name}"] = prefix_counts(proxy)
    row["turns"] = {k: asdict(v) for k, v in turns.items()}
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| tools | prefix tokens | slot file | cold: prefill / save / first token | in slot: first token "
        "| after a restart: restore / first token | page cache dropped: restore / first token |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        t = r["turns"]
        lines.append(
            f"| {r['tools']} | {r['prefix_tokens']:,} | {r['file_mb']:.0f} MB "
            f"| {r['prefill_s']:.1f} s / {r['save_s']:.2f} s / {t['cold']['ttft']:.1f} s "
            f"| {t['in slot']['ttft']:.1f} s "
            f"| {r['restore_s_restored']:.2f} s / {t['restored']['ttft']:.1f} s "
            f"| {r['restore_s_disk']:.2f} s / {t['disk']['ttft']:.1f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", nargs="+", default=["Bash,Edit,Read,Write", "all"], help="tool subsets")
    parser.add_argument("--ctx", type=int, default=32768, help="context per slot")
    args = parser.parse_args(argv)
    model_file = models.fetch(models.DEFAULT_MODEL)
    rows = []
    started = time.time()
    for size in args.sizes:
        tools = None if size == "all" else tuple(size.split(","))
        with tempfile.TemporaryDirectory(prefix="prefix-bench-") as work:
            row = measure(model_file, tools, args.ctx, Path(work))
        print(json.dumps(row), flush=True)
        rows.append(row)
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "model": models.DEFAULT_MODEL,
        "command": "python bench/prefix_restore.py " + " ".join(argv or sys.argv[1:]),
    }
    (RESULTS / "prefix_restore.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    text = f"# Prefix cache: cold vs restored ({meta['when']} UTC, {meta['machine']}, {meta['model']})\n\n"
    (RESULTS / "prefix_restore.md").write_text(text + table(rows) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
