"""Proxy overhead bench: ccproxy vs LiteLLM's proxy vs claude-code-router vs calling the upstream directly.

One run starts a fast fake OpenAI-compatible upstream (bench/fakeupstream.py) and, side by side, the
three proxies pointed at it. It then sends streamed Claude Code-shaped `/v1/messages` requests
through each proxy, and the equivalent Chat Completions request straight to the upstream ("direct"),
at each concurrency level, measuring time to first byte / first text / last byte per request and each
proxy's CPU time (its process tree's utime+stime from /proc before and after each batch).
Levels are split into rounds and the targets take turns within a round (each sending requests for
`--seconds`, the others paused), so drift in the machine's load hits every target alike.
Overhead = a proxy's percentile minus direct's at the same level.

Results: bench/results/overhead.json and bench/results/overhead.md (logs and scratch configs under
bench/results/raw/, ignored by git). Peers are installed first by bench/setup-peers.sh (idempotent:
instant once they are there; `--no-setup` skips it).

The whole run happens inside a fresh network namespace with only loopback (`unshare --net`, as root
or with an unprivileged user namespace), so no peer can reach the internet; `--no-netns` opts out.

    .venv/bin/python bench/overhead.py                   # full run (~3-4 min on 2 cores)
    .venv/bin/python bench/overhead.py --quick           # smoke run: 0.5 s batches
    .venv/bin/python bench/overhead.py --targets direct,ccproxy --levels 1,16
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import fcntl
import http.client
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import loadgen
import peers
import procstat
import report
from harness import Process, free_port, wait_port
from loadgen import Endpoint, Sample

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
ALL_TARGETS = ("direct", "ccproxy", "litellm", "ccr")
README_START, README_END = "<!-- overhead-results:start -->", "<!-- overhead-results:end -->"


@dataclass
class Target:
    name: str
    endpoint: Endpoint
    proc: Process | None  # None for "direct" (no proxy)


@dataclass
class Cell:
    """Everything measured for one target at one concurrency level, summed over rounds."""

    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    proxy_cpu: float = 0.0
    upstream_cpu: float = 0.0
    client_cpu: float = 0.0
    upstream_connections: int = 0
    other_cpu: float = 0.0  # CPU used by everything else on the machine during the batches
    upstream_requests: int = 0


def _self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _display_path(path: str) -> str:
    """`path` relative to the repository when it is inside it (`.venv/bin/python`)."""
    rel = os.path.relpath(path, BENCH.parent)
    return path if rel.startswith("..") else rel


def _signal_groups(procs: Sequence[Process], sig: signal.Signals) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)


def _upstream_stats(port: int) -> tuple[int, int]:
    """(connections, requests) the fake upstream has accepted so far."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/bench/stats")
        stats = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return int(stats["connections"]), int(stats["requests"])


def _loopback_up() -> None:
    """Bring `lo` up (a new network namespace starts with it down), without needing iproute2."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, siocgifflags, ifreq))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH22x", b"lo", flags | iff_up))


def _reexec_in_netns() -> None:
    """Re-run this script in a new loopback-only network namespace; returns only if that is impossible."""
    unshare = shutil.which("unshare")
    if unshare is None:
        print("bench: `unshare` not found; running WITHOUT network isolation", file=sys.stderr)
        return
    prefix = [unshare, "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        why = probe.stderr.decode(errors="replace").strip()
        print(f"bench: cannot create a network namespace ({why}); running WITHOUT isolation", file=sys.stderr)
        return
    env = {**os.environ, "BENCH_IN_NETNS": "1"}
    os.execve(unshare, [*prefix, "--", sys.executable, *sys.argv], env)


async def _measure(
    targets: Sequence[Target],
    upstream: Process,
    upstream_port: int,
    levels: Sequence[int],
    rounds: int,
    seconds: float,
    max_requests: int,
    freeze: bool,
    log: Callable[[str], None],
) -> dict[str, dict[int, Cell]]:
    cells = {t.name: {c: Cell() for c in levels} for t in targets}
    for concurrency in levels:
        for r in range(rounds):
            order = list(targets[r % len(targets) :]) + list(targets[: r % len(targets)])
            for target in order:
                cell = cells[target.name][concurrency]
                snap: dict[str, float] = {}

                def start(target: Target = target, snap: dict[str, float] = snap) -> None:
                    snap["proxy"] = procstat.tree_cpu_seconds(target.proc.pid) if target.proc else 0.0
                    snap["upstream"] = procstat.tree_cpu_seconds(upstream.pid)
                    snap["client"] = _self_cpu()
                    snap["system"] = procstat.system_busy_seconds()
                    snap["conns"], snap["reqs"] = _upstream_stats(upstream_port)

                def end(target: Target = target, cell: Cell = cell, snap: dict[str, float] = snap) -> None:
                    system = procstat.system_busy_seconds() - snap["system"]
                    proxy = procstat.tree_cpu_seconds(target.proc.pid) - snap["proxy"] if target.proc else 0.0
                    up = procstat.tree_cpu_seconds(upstream.pid) - snap["upstream"]
                    client = _self_cpu() - snap["client"]
                    cell.proxy_cpu += proxy
                    cell.upstream_cpu += up
                    cell.client_cpu += client
                    cell.other_cpu += max(0.0, system - proxy - up - client)
                    conns, reqs = _upstream_stats(upstream_port)
                    cell.upstream_connections += int(conns - snap["conns"]) - 1  # minus this stats call
                    cell.upstream_requests += int(reqs - snap["reqs"])

                # Pause the other proxies while this one is measured, so their leftover background
                # work (LiteLLM's post-request callbacks, ...) runs in their own turn, not in this one.
                paused = [t.proc for t in targets if t.proc and t is not target] if freeze else []
                _signal_groups(paused, signal.SIGSTOP)
                try:
                    result = await loadgen.run_batch(
                        target.endpoint,
                        concurrency,
                        max_requests,
                        on_start=start,
                        on_end=end,
                        max_seconds=seconds,
                    )
                finally:
                    _signal_groups(paused, signal.SIGCONT)
                cell.samples += result.samples
                cell.errors += result.errors
                cell.wall += result.wall
                ok = len(result.samples)
                p50 = report.percentile([s.ttlb for s in result.samples], 50) * 1000 if ok else float("nan")
                log(
                    f"  c={concurrency:<3} round {r + 1}/{rounds} {target.name:<8} {ok:>4} ok "
                    f"{len(result.errors):>3} err  {ok / result.wall if result.wall else 0:7.1f} req/s  "
                    f"ttlb p50 {p50:7.2f} ms"
                )
    return cells


async def _start_targets(
    names: Sequence[str],
    variants: dict[str, list[str]],
    scratch: Path,
    upstream_port: int,
    log: Callable[[str], None],
) -> tuple[list[Target], dict[str, str]]:
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    targets: list[Target] = [Target("direct", peers.openai_endpoint(upstream_port), None)]
    skipped: dict[str, str] = {}
    factories = {"ccproxy": peers.ccproxy, "litellm": peers.litellm, "ccr": peers.claude_code_router}
    missing = {
        "ccproxy": peers.ccproxy_available(),
        "litellm": None if (peers.LITELLM_VENV / "bin/litellm").exists() else "run bench/setup-peers.sh",
        "ccr": None if peers.CCR_CLI.exists() else "run bench/setup-peers.sh",
    }
    for name in names:
        if name == "direct":
            continue
        if missing[name]:
            skipped[name] = f"not available: {missing[name]}"
            continue
        port = free_port()
        proc = factories[name](scratch, port, upstream_url)
        proc.start()
        targets.append(Target(name, peers.anthropic_endpoint(port), proc))
    for name, cmd in variants.items():
        port = free_port()
        proc = peers.ccproxy(scratch, port, upstream_url, name=name, cmd=cmd)
        proc.start()
        targets.append(Target(name, peers.anthropic_endpoint(port), proc))

    async def ready(target: Target) -> None:
        assert target.proc is not None
        proc = target.proc

        async def alive() -> bool:
            return proc.alive()

        t0 = time.monotonic()
        err = await loadgen.wait_ready(target.endpoint, 120, alive)
        if err is None:
            log(f"  {target.name} ready in {time.monotonic() - t0:.1f} s (pid {proc.pid})")
        else:
            skipped[target.name] = f"did not become ready: {err}; log tail:\n{proc.tail()}"
            proc.stop()

    await asyncio.gather(*(ready(t) for t in targets if t.proc))
    return [t for t in targets if t.name not in skipped], skipped


def _versions() -> dict[str, str]:
    def run(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, timeout=30, check=False).stdout.decode().strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        return out.splitlines()[-1] if out else "?"

    meta_py = "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))"
    return {
        "python": platform.python_version(),
        "ccproxy": run([sys.executable, "-c", meta_py, "ccproxy"]),
        "litellm": run([str(peers.LITELLM_VENV / "bin/python"), "-c", meta_py, "litellm"]),
        "claude-code-router": run(
            ["node", "-p", f"require('{peers.CCR_CLI.parent.parent}/package.json').version"]
        ),
        "node": run(["node", "--version"]),
    }


async def _run(args: argparse.Namespace) -> report.Json | None:
    names = [n for n in ALL_TARGETS if n in args.targets]
    levels: list[int] = args.levels
    seconds: float = 0.5 if args.quick else args.seconds
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    scratch = RESULTS / "raw" / stamp
    scratch.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, flush=True)

    if os.environ.get("BENCH_IN_NETNS"):
        _loopback_up()
        log("bench: running in a loopback-only network namespace")

    upstream_port = free_port()
    upstream = peers.fake_upstream(scratch, upstream_port)
    upstream.start()
    started: list[Process] = [upstream]
    t_begin = time.monotonic()
    try:
        if not wait_port(upstream_port, 20):
            log(f"fake upstream did not start:\n{upstream.tail()}")
            return None
        log(f"bench: starting {', '.join(n for n in names if n != 'direct')} ...")
        targets, skipped = await _start_targets(names, args.variant, scratch, upstream_port, log)
        started += [t.proc for t in targets if t.proc]
        for name, why in skipped.items():
            log(f"  SKIPPED {name}: {why}")
        if args.require_all and skipped:
            return None
        log("bench: warm-up")
        for target in targets:
            await loadgen.run_batch(target.endpoint, 4, args.warmup, max_seconds=60)
        log(f"bench: measuring levels {levels} x {args.rounds} rounds, {seconds:g} s per target and round")
        cells = await _measure(
            targets,
            upstream,
            upstream_port,
            levels,
            args.rounds,
            seconds,
            args.max_requests,
            not args.no_pause,
            log,
        )
    finally:
        for proc in reversed(started):
            proc.stop()
    return report.build(
        cells={
            name: {c: report.summarize(cell) for c, cell in by_level.items()}
            for name, by_level in cells.items()
        },
        skipped=skipped,
        meta={
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join([_display_path(sys.executable), *sys.argv]),
            "host": {"cpus": os.cpu_count(), "loadavg_end": os.getloadavg(), "kernel": platform.release()},
            "netns": bool(os.environ.get("BENCH_IN_NETNS")),
            "versions": _versions(),
            "levels": levels,
            "seconds_per_batch": seconds,
            "rounds": args.rounds,
            "duration_s": round(time.monotonic() - t_begin, 1),
            "scratch": str(scratch.relative_to(BENCH.parent)),
        },
    )


def _write(data: report.Json, out: Path, readme: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "overhead.json").write_text(json.dumps(data, indent=2) + "\n")
    md = report.markdown(data)
    (out / "overhead.md").write_text(md)
    print()
    print(md)
    if readme is not None:
        text = readme.read_text()
        start, end = text.find(README_START), text.find(README_END)
        if start < 0 or end < start:
            print(f"bench: {readme} has no {README_START} ... {README_END} section", file=sys.stderr)
            return
        body = md.split("\n", 2)[2].strip()  # without the "# ..." title
        readme.write_text(text[: start + len(README_START)] + "\n" + body + "\n" + text[end:])
        print(f"bench: results copied into {_display_path(str(readme))}")


class _Variant(argparse.Action):
    def __call__(
        self, parser: argparse.ArgumentParser, ns: argparse.Namespace, value: Any, option: str | None = None
    ) -> None:
        name, sep, cmd = str(value).partition("=")
        if not sep or not name or not cmd.strip() or name in ALL_TARGETS:
            parser.error(f"--variant wants NAME=COMMAND with a new NAME, got {value!r}")
        getattr(ns, self.dest)[name] = shlex.split(cmd)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", type=lambda s: s.split(","), default=list(ALL_TARGETS))
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per level (default 3)")
    parser.add_argument(
        "--seconds",
        type=float,
        default=3.0,
        help="how long each target sends requests per level and round (default 3; in-flight ones finish)",
    )
    parser.add_argument("--max-requests", type=int, default=100_000, help="cap on requests per batch")
    parser.add_argument("--warmup", type=int, default=60, help="warm-up requests per target (default 60)")
    parser.add_argument("--quick", action="store_true", help="few requests: a smoke run of the harness")
    parser.add_argument(
        "--no-pause", action="store_true", help="do not SIGSTOP the other proxies while one is measured"
    )
    parser.add_argument("--no-setup", action="store_true", help="do not run bench/setup-peers.sh first")
    parser.add_argument("--require-all", action="store_true", help="fail if any target cannot start")
    parser.add_argument(
        "--no-netns", action="store_true", help="do not isolate the run in a network namespace"
    )
    parser.add_argument("--out", default=str(RESULTS), help="directory for overhead.json / overhead.md")
    parser.add_argument(
        "--update-readme", action="store_true", help="also copy the results table into bench/README.md"
    )
    parser.add_argument(
        "--variant",
        action=_Variant,
        default={},
        metavar="NAME=COMMAND",
        help="also measure another ccproxy build/launcher as target NAME (repeatable), e.g. "
        "--variant 'patched=.venv/bin/python /tmp/launcher.py' (A/B a fix in the same run)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.targets) - set(ALL_TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {ALL_TARGETS}")
    in_netns = bool(os.environ.get("BENCH_IN_NETNS"))
    if not args.no_setup and not in_netns and {"litellm", "ccr"} & set(args.targets):
        # before entering the namespace: installing needs the package registries
        setup = subprocess.run(["bash", str(BENCH / "setup-peers.sh")], check=False)
        if setup.returncode != 0:
            print(
                "bench: bench/setup-peers.sh failed; peers that are missing will be skipped", file=sys.stderr
            )
    if not args.no_netns and not in_netns:
        _reexec_in_netns()
    try:
        import uvloop
    except ImportError:
        data = asyncio.run(_run(args))
    else:
        data = uvloop.run(_run(args))
    if data is None:
        return 1
    _write(data, Path(args.out), BENCH / "README.md" if args.update_readme else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
