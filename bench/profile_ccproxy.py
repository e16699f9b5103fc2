"""Profile ccproxy's CPU on the bench's streamed request: where does a request's CPU time go?

Starts the fake upstream and `ccproxy`, warms it up, attaches `py-spy record` (on-CPU samples only),
drives it with the overhead bench's request at one concurrency, then prints the functions with the
most inclusive and self time as a share of ccproxy's samples, and the CPU per request measured from
/proc. The raw collapsed stacks stay in bench/results/raw/ for flame graphs (e.g. speedscope).

    .venv/bin/pip install -r bench/requirements.txt      # py-spy
    .venv/bin/python bench/profile_ccproxy.py [--requests 2000] [--concurrency 16] [--rate 1000]
    .venv/bin/python bench/profile_ccproxy.py -- --log-level warning     # extra ccproxy flags
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import loadgen
import peers
import procstat
from harness import Process, free_port

RAW = Path(__file__).resolve().parent / "results" / "raw"


def _frame_name(frame: str) -> str:
    """py-spy raw frames look like `func (path/to/file.py:123)`; keep `func (file.py)`."""
    func, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    parts = Path(file).parts
    for anchor in ("site-packages", "src", "lib"):
        if anchor in parts:
            file = "/".join(parts[len(parts) - parts[::-1].index(anchor) :])
            break
    return f"{func} ({file})"


def summarize(collapsed: Path, top: int) -> str:
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_s)
        total += count
        frames = [_frame_name(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        self_time[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    out = [f"{total} samples", "", "inclusive % | self % | function"]
    for name, count in inclusive.most_common(top):
        out.append(f"{100 * count / total:10.1f} | {100 * self_time[name] / total:6.1f} | {name}")
    out += ["", "top self time:", "self % | function"]
    for name, count in self_time.most_common(top):
        out.append(f"{100 * count / total:6.1f} | {name}")
    return "\n".join(out)


async def drive(args: argparse.Namespace, pyspy: str, extra: Sequence[str]) -> int:
    scratch = RAW / ("profile-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ"))
    scratch.mkdir(parents=True, exist_ok=True)
    up_port, port = free_port(), free_port()
    upstream = peers.fake_upstream(scratch, up_port)
    upstream.start()
    collapsed = scratch / "ccproxy.collapsed.txt"
    proxy = peers.ccproxy(scratch, port, f"http://127.0.0.1:{up_port}/v1")
    proxy.argv += list(extra)
    proxy.start()
    endpoint = peers.anthropic_endpoint(port)
    spy: Process | None = None
    try:

        async def alive() -> bool:
            return proxy.alive()

        err = await loadgen.wait_ready(endpoint, 60, alive)
        if err:
            print(f"ccproxy not ready: {err}\n{proxy.tail()}", file=sys.stderr)
            return 1
        await loadgen.run_batch(endpoint, 4, 200)  # warm up: imports, caches, pools
        # attach only now, so start-up and imports stay out of the profile
        spy_argv = [pyspy, "record", "--pid", str(proxy.pid), "--format", "raw", "--rate", str(args.rate)]
        spy = Process("py-spy", [*spy_argv, "--nonblocking", "-o", str(collapsed)], scratch / "py-spy.log")
        spy.start()
        await asyncio.sleep(1.0)
        cpu: dict[str, float] = {}

        def start() -> None:
            cpu["t0"] = procstat.tree_cpu_seconds(proxy.pid)

        def end() -> None:
            cpu["t1"] = procstat.tree_cpu_seconds(proxy.pid)

        t0 = time.monotonic()
        result = await loadgen.run_batch(
            endpoint, args.concurrency, args.requests, on_start=start, on_end=end, max_seconds=300
        )
        n = len(result.samples)
        print(
            f"{n} requests at c={args.concurrency} in {time.monotonic() - t0:.1f} s, "
            f"{len(result.errors)} errors; "
            f"ccproxy CPU {1000 * (cpu['t1'] - cpu['t0']) / max(n, 1):.2f} ms/request "
            "(while sampled by py-spy --nonblocking)"
        )
        assert spy.popen is not None
        spy.popen.send_signal(signal.SIGINT)  # py-spy writes its profile on Ctrl-C
        spy.popen.wait(60)
    finally:
        if spy is not None:
            spy.stop()
        proxy.stop()
        upstream.stop()
    if not collapsed.exists():
        print(f"no profile written; py-spy log:\n{proxy.tail()}", file=sys.stderr)
        return 1
    print(summarize(collapsed, args.top))
    print(f"\ncollapsed stacks: {collapsed}")
    return 0


def main() -> int:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(pyspy).exists():
        print("py-spy not found: .venv/bin/pip install -r bench/requirements.txt", file=sys.stderr)
        return 1
    return asyncio.run(drive(args, pyspy, extra))


if __name__ == "__main__":
    sys.exit(main())
