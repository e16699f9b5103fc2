"""The replay's PNG: prompt processing, first token, total and generation tokens/s per trace and target,
with the tool calls' validity written over the totals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PANELS = (
    ("prompt_s", "prompt processing (s)"),
    ("first_token_s", "first token (s)"),
    ("total_s", "total (s)"),
    ("tokens_per_s", "generation (tokens/s)"),
)


def plot(results: Sequence[Mapping[str, Any]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(dict.fromkeys(str(r["target"]) for r in results))
    traces = list(dict.fromkeys(str(r["trace"]) for r in results))
    by_key = {(str(r["target"]), str(r["trace"])): r for r in results}
    width = 0.8 / max(1, len(targets))
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for ax, (key, label) in zip(axes.flat, PANELS, strict=True):
        for i, target in enumerate(targets):
            xs = [j + (i - (len(targets) - 1) / 2) * width for j in range(len(traces))]
            values = [_value(by_key.get((target, t)), key) for t in traces]
            bars = ax.bar(xs, values, width, label=target)
            if key == "total_s":
                for bar, t in zip(bars, traces, strict=True):
                    ax.annotate(
                        _calls(by_key.get((target, t))),
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center",
                        va="bottom",
                        fontsize=8,
                    )
        ax.set_title(label)
        ax.set_xticks(range(len(traces)), [_short(t) for t in traces], fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(
        title + "\n(over the totals: tool calls valid against the request's tools / made)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _value(r: Mapping[str, Any] | None, key: str) -> float:
    value = None if r is None else r.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def _calls(r: Mapping[str, Any] | None) -> str:
    if r is None or r.get("status") != 200:
        return "failed"
    checks = r.get("tool_calls") or []
    if not checks:
        return "no call"
    return f"calls {sum(1 for c in checks if c['valid'])}/{len(checks)}"


def _short(name: str) -> str:
    stem = name.removesuffix(".json")
    return stem if len(stem) <= 24 else stem[:11] + "…" + stem[-12:]
