"""The task suite's table and plot, from ``bench/results/tasks/runs.jsonl`` (written by run.py).

    python bench/tasks/report.py        -> bench/results/tasks/summary.{md,json,png}

Per candidate: runs that succeeded (all tasks and per task), median and total wall time per run, tool
calls made and tool results that were errors; the up time (prewarm included) of each candidate's stack.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from catalog import TASKS  # noqa: E402

RESULTS = HERE.parents[1] / "bench" / "results" / "tasks"


def load(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    # a run repeated (resumed after a crash) counts once: the last record wins
    latest = {(r["candidate"], r["task"], r["run"]): r for r in rows}
    return list(latest.values())


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_candidate: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_candidate[row["candidate"]].append(row)
    out = []
    for candidate, runs in by_candidate.items():
        per_task = {}
        for task in TASKS:
            mine = [r for r in runs if r["task"] == task.name]
            if mine:
                per_task[task.name] = {
                    "ok": sum(r["ok"] for r in mine),
                    "runs": len(mine),
                    "median_wall_s": round(statistics.median(r["wall_s"] for r in mine), 1),
                }
        out.append(
            {
                "candidate": candidate,
                "runs": len(runs),
                "ok": sum(r["ok"] for r in runs),
                "success": round(sum(r["ok"] for r in runs) / len(runs), 3),
                "median_wall_s": round(statistics.median(r["wall_s"] for r in runs), 1),
                "timeouts": sum(bool(r.get("timed_out")) for r in runs),
                "tool_calls_per_run": round(statistics.mean(len(r["tool_calls"]) for r in runs), 1),
                "tool_errors_per_run": round(statistics.mean(r["tool_errors"] for r in runs), 1),
                "tasks": per_task,
            }
        )
    out.sort(key=lambda s: (-s["success"], s["median_wall_s"]))
    return out


def markdown(summary: list[dict[str, Any]], ups: dict[str, float]) -> str:
    names = [t.name for t in TASKS]
    head = ["candidate (model:profile:tools)", "success", *names]
    head += ["median s/run", "calls/run", "tool errors/run", "up s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        cells = [s["candidate"], f"**{s['ok']}/{s['runs']} ({s['success']:.0%})**"]
        for name in names:
            t = s["tasks"].get(name)
            cells.append(f"{t['ok']}/{t['runs']} · {t['median_wall_s']:.0f} s" if t else "-")
        cells += [
            f"{s['median_wall_s']:.0f}",
            f"{s['tool_calls_per_run']}",
            f"{s['tool_errors_per_run']}",
            f"{ups[s['candidate']]:.0f}" if s["candidate"] in ups else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(summary: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s["candidate"] for s in summary]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.6 * len(names) + 1.8))
    left.barh(names, [100 * s["success"] for s in summary], color="#4c72b0")
    left.axvline(80, color="#c44e52", linestyle="--", linewidth=1, label="target 80 %")
    left.set_xlim(0, 100)
    left.set_xlabel("runs that succeeded (%)")
    left.invert_yaxis()
    left.legend(loc="lower right")
    right.barh(names, [s["median_wall_s"] for s in summary], color="#55a868")
    right.set_xlabel("median wall time per run (s)")
    right.invert_yaxis()
    right.set_yticklabels([])
    fig.suptitle("Task suite: real Claude Code CLI in the sandbox, real llama-server (2 CPU cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    rows = load(RESULTS / "runs.jsonl")
    ups: dict[str, float] = {}
    ups_file = RESULTS / "ups.jsonl"
    if ups_file.exists():
        for line in ups_file.read_text().splitlines():
            u = json.loads(line)
            ups[u["candidate"]] = u["up_s"]  # the last up of each candidate
    summary = summarize(rows)
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS / "summary.md").write_text(markdown(summary, ups))
    plot(summary, RESULTS / "summary.png")
    print(markdown(summary, ups))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
