"""Pool benchmark: sessions/s and the share of prompt tokens read from the cache behind HAProxy.

Three setups, one after the other, each a fresh ``ccstack up pool`` in its own Compose project with the
real Qwen2.5-Coder-0.5B model, the proxy in the stack (``--upstream-pool on``) and HAProxy in front:

  1 replica              --replicas 1
  2 replicas, session    --replicas 2 --balance session      consistent hashing on the session id
  2 replicas, roundrobin --replicas 2 --balance roundrobin   no affinity: the anchor

Load: ``--sessions`` sessions (8) of ``--turns`` turns (3), ``--concurrency`` at a time (4), each turn a
non-streamed /v1/messages through the proxy with the session header Claude Code sends. Each session opens
with a document of its own (~300 tokens), so nothing is shared between sessions: what a turn reads from
the cache is what its own earlier turns left on the server it lands on. Per setup: sessions/s (sessions
over the wall time of the whole load), the hit share of turns 2+ (prompt tokens read from the cache over
all their prompt tokens, from the usage each answer returns) and the p50/p95 turn time.

On one machine the replicas share its cores: the second replica adds cache room (slots), not compute.
On separate machines the same configuration adds both.

    python bench/pool.py [--sessions 8] [--turns 3] [--concurrency 4] [--setups 1,2-session,2-rr]

Needs Docker, the images (scripts/build-images.sh), the model (`python -m ccstack.models fetch`) and
matplotlib (bench/requirements.txt). Writes bench/results/pool.{json,md,png}.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from harness.cli_stack import Stack  # noqa: E402

RESULTS = REPO / "bench" / "results"
SETUPS: dict[str, tuple[str, ...]] = {
    "1": ("--replicas", "1"),
    "2-session": ("--replicas", "2", "--balance", "session"),
    "2-rr": ("--replicas", "2", "--balance", "roundrobin"),
}
LABELS = {
    "1": "1 replica",
    "2-session": "2 replicas, by session",
    "2-rr": "2 replicas, round robin",
}
WINDOW = 2048
WORDS = ("parser", "buffer", "socket", "thread", "module", "config", "branch", "commit", "schema", "token")
WORDS += ("cache", "slot", "stream", "request", "answer", "header", "server", "client", "window", "prefix")
QUESTIONS = ("Summarise the document in five words.", "Which item is first?", "Which item is last?")


@dataclass
class Turn:
    setup: str
    session: int
    turn: int
    prompt_tokens: int
    cached_tokens: int
    seconds: float


def document(session: int, words: int = 220) -> str:
    """A session's own text (deterministic per session number; no two sessions share a prefix)."""
    rng = random.Random(session)
    lines = [f"Notes {session}:"]
    for item in range(words // 11):
        lines.append(f"Item {item}: " + " ".join(rng.choice(WORDS) for _ in range(10)) + ".")
    return "\n".join(lines)


def run_session(client: httpx.Client, setup: str, number: int, turns: int) -> list[Turn]:
    sid = secrets.token_hex(8)
    messages: list[dict[str, Any]] = [{"role": "user", "content": document(number) + "\n\n" + QUESTIONS[0]}]
    out: list[Turn] = []
    for turn in range(turns):
        start = time.monotonic()
        r = client.post(
            "/v1/messages",
            json={"model": "claude-sonnet-4-5", "max_tokens": 8, "temperature": 0, "messages": messages},
            headers={"X-Claude-Code-Session-Id": sid},
        )
        r.raise_for_status()
        msg = r.json()
        usage = msg["usage"]
        cached = usage.get("cache_read_input_tokens") or 0
        out.append(
            Turn(setup, number, turn + 1, usage["input_tokens"] + cached, cached, time.monotonic() - start)
        )
        text = "".join(b.get("text", "") for b in msg["content"]) or "..."
        messages += [
            {"role": "assistant", "content": text},
            {"role": "user", "content": QUESTIONS[(turn + 1) % len(QUESTIONS)]},
        ]
    return out


def run_setup(setup: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    stack = Stack(project=f"ccsbx-pool-{setup}-{secrets.token_hex(2)}", work=work / setup)
    slots = str(args.sessions + 2)  # a slot per session (and the warm-up's), + the side slot
    try:
        up = stack.up("pool", *SETUPS[setup], "--slots", slots, "--context-window", str(WINDOW))
        url = f"http://{stack.container_ip('proxy')}:8787"
        token = (stack.state_dir / "secrets" / "proxy_token").read_text().strip()
        headers = {"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01"}
        with (
            httpx.Client(base_url=url, headers=headers, timeout=600) as client,
            concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool,
        ):
            client.post(  # the first answer loads what the proxy learns once (/props); not timed
                "/v1/messages",
                json={"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]},
            ).raise_for_status()
            start = time.monotonic()
            futures = [pool.submit(run_session, client, setup, n, args.turns) for n in range(args.sessions)]
            turns = [t for f in futures for t in f.result()]
            wall = time.monotonic() - start
    finally:
        stack.down("--volumes")
    later = [t for t in turns if t.turn > 1]
    times = sorted(t.seconds for t in turns)
    return {
        "setup": setup,
        "label": LABELS[setup],
        "up_seconds": round(up, 1),
        "wall_seconds": round(wall, 1),
        "sessions_per_s": round(args.sessions / wall, 4),
        "hit_share_later_turns": round(
            sum(t.cached_tokens for t in later) / sum(t.prompt_tokens for t in later), 3
        ),
        "hit_share_all_turns": round(
            sum(t.cached_tokens for t in turns) / sum(t.prompt_tokens for t in turns), 3
        ),
        "turn_p50_s": round(statistics.median(times), 2),
        "turn_p95_s": round(times[min(len(times) - 1, int(len(times) * 0.95))], 2),
        "turns": [asdict(t) for t in turns],
    }


def hit_share(turns: list[Turn]) -> float:
    """Prompt tokens read from the cache over all prompt tokens of these turns."""
    return round(sum(t.cached_tokens for t in turns) / max(1, sum(t.prompt_tokens for t in turns)), 3)


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Pool: sessions/s and cache hits behind HAProxy",
        "",
        f"{meta['sessions']} sessions x {meta['turns']} turns, {meta['concurrency']} at a time, through the "
        f"proxy in the stack; Qwen2.5-Coder-0.5B, {meta['machine']}. `python bench/pool.py` "
        f"({meta['date']}). Hit share: prompt tokens of turns 2+ read from the cache.",
        "",
        "| setup | sessions/s | hit share, turns 2+ | hit share, all | turn p50 s | turn p95 s | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['label']} | {r['sessions_per_s']:.3f} | {r['hit_share_later_turns']:.0%} | "
            f"{r['hit_share_all_turns']:.0%} | {r['turn_p50_s']} | {r['turn_p95_s']} | {r['wall_seconds']} |"
        )
    lines += [
        "",
        "One machine: the replicas share its cores, so a second replica adds cache room, not compute.",
        "",
    ]
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["label"].replace(", ", "\n") for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.bar(labels, [r["sessions_per_s"] for r in results], color=["#888", "#2a7", "#c55"][: len(results)])
    left.set_title("sessions / s")
    right.bar(labels, [100 * r["hit_share_later_turns"] for r in results], color=["#888", "#2a7", "#c55"])
    right.set_title("prompt tokens from cache, turns 2+ (%)")
    right.set_ylim(0, 100)
    for ax in (left, right):
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--setups", default=",".join(SETUPS))
    args = parser.parse_args()
    build = subprocess.run(
        [str(REPO / ".venv" / "bin" / "ccstack"), "build", "proxy", "haproxy"], capture_output=True, text=True
    )
    if build.returncode != 0:
        raise SystemExit(f"building the proxy and haproxy images failed:\n{build.stderr[-3000:]}")
    results = []
    with tempfile.TemporaryDirectory(prefix="ccsbx-pool-") as tmp:
        for setup in args.setups.split(","):
            print(f"[pool] {LABELS[setup]} ...", file=sys.stderr)
            results.append(run_setup(setup, args, Path(tmp)))
            r = results[-1]
            print(
                f"[pool]   {r['sessions_per_s']:.3f} sessions/s, hit share {r['hit_share_later_turns']:.0%}",
                file=sys.stderr,
            )
    meta = {
        "sessions": args.sessions,
        "turns": args.turns,
        "concurrency": args.concurrency,
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pool.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    (RESULTS / "pool.md").write_text(markdown(results, meta))
    plot(results, RESULTS / "pool.png")
    print(markdown(results, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
