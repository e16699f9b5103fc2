"""CPU time of a process tree, read from /proc/<pid>/stat (Linux).

`tree_cpu_seconds(pid)` sums utime + stime (all threads) of `pid` and every live descendant, plus
cutime + cstime (children already exited and reaped, so a worker that dies mid-batch still counts). Read it
before and after a measured batch: the difference is the CPU the process tree spent on the batch.
Resolution is one clock tick (usually 10 ms), so batches should cost well over 100 ms in total.
"""

from __future__ import annotations

import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields after `(comm)` in /proc/<pid>/stat: index 0 is field 3 (state) of proc(5)."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rindex(b")") + 2 :].decode().split()


def descendants(root: int) -> list[int]:
    """`root` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # utime (14), stime (15), cutime (16), cstime (17)
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / CLK_TCK


def tree_cpu_seconds(root: int) -> float:
    return sum(cpu_seconds(pid) for pid in descendants(root))


def system_busy_seconds() -> float:
    """CPU time all CPUs spent busy since boot (user+nice+system+irq+softirq+steal), from /proc/stat."""
    fields = (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK
