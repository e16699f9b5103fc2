"""Table and plot of bench/first_answer.py's results (bench/results/first_answer.json).

python bench/first_answer_report.py     # re-renders first_answer.{md,png} from the JSON
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_S = 15.0
CASES = {
    "a": "first session after the first-ever up",
    "b": "new session after down + up",
    "c": "new session after a commit, next day",
}


def _s(value: object) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _first(run: dict[str, Any]) -> str:
    """A run's first-token time; without one, when and how its stream ended."""
    if run.get("first_token_s") is not None or run.get("total_s") is None:
        return _s(run.get("first_token_s"))
    return f"none (stream ended after {run['total_s']:.1f} s without a delta)"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| case | stack: `claude -p` | stack: interactive TUI | llama.cpp native `/v1/messages` |",
        "|---|---|---|---|",
    ]
    for case in results["cases"]:
        native = case.get("native") or {}
        lines.append(
            f"| ({case['case']}) {CASES[case['case']]} | {_s(case['print'].get('first_token_s'))} "
            f"| {_s((case.get('tui') or {}).get('first_token_s'))} | {_first(native)} |"
        )
    up = results.get("up_first_ever_s")
    first = results["cases"][0]["print"].get("first_token_s") if results["cases"] else None
    total = None if up is None or first is None else up + first
    lines += [
        "",
        f"Time to the first output token; target ≤ {TARGET_S:.0f} s each. `ccstack up local` the first time "
        f"ever (prewarm included): {_s(up)}; up + first token of (a): {_s(total)} (target ≤ 120 s). "
        f"Up again after down: {_s(results.get('up_again_s'))}.",
    ]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = results["cases"]
    labels = [f"({c['case']}) {CASES[c['case']]}" for c in cases]
    series = {
        "stack, claude -p": [c["print"].get("first_token_s") for c in cases],
        "stack, TUI": [(c.get("tui") or {}).get("first_token_s") for c in cases],
        "native /v1/messages": [(c.get("native") or {}).get("first_token_s") for c in cases],
    }
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        xs = [j + i * width for j in range(len(cases))]
        ax.bar(xs, [v or 0 for v in values], width, label=name)
        for x, v in zip(xs, values, strict=True):
            ax.annotate("n/a" if v is None else f"{v:.0f}", (x, v or 0), ha="center", va="bottom", fontsize=8)
    ax.axhline(TARGET_S, color="#c44e52", linestyle="--", linewidth=1, label=f"target {TARGET_S:.0f} s")
    ax.set_xticks([j + width for j in range(len(cases))], labels, fontsize=8)
    ax.set_ylabel("seconds to the first output token")
    ax.set_ylim(0, max([TARGET_S * 1.3] + [v or 0 for vs in series.values() for v in vs]) * 1.1)
    up = results.get("up_first_ever_s")
    if up is not None:
        ax.text(0.01, 0.97, f"(a) ccstack up local, first time ever (prewarm included): {up:.0f} s",
                transform=ax.transAxes, va="top", fontsize=8)  # fmt: skip
    ax.legend(fontsize=8)
    ax.set_title("First answer on 2 CPU cores: the stack vs llama.cpp's native /v1/messages")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    results = json.loads((RESULTS / "first_answer.json").read_text())
    (RESULTS / "first_answer.md").write_text(markdown(results))
    plot(results, RESULTS / "first_answer.png")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
