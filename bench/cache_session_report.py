"""bench/cache_session.py's results: one row per turn, the summary, the Markdown table and the plot."""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Turn:
    conversation: int
    turn: int
    prompt_tokens: int
    processed_tokens: int
    cached_tokens: int
    cached_pct: float
    ttft_s: float | None
    wall_s: float
    output_tokens: int
    side_ok: bool
    side_wall_s: float
    side_processed_tokens: int = 0
    side_cached_tokens: int = 0
    side_error: str = ""
    main_slot: int | None = None  # from llama-server's log
    main_slot_why: str = ""
    side_slot: int | None = None
    side_slot_why: str = ""


@dataclass
class Report:
    date: str
    machine: str
    model: str
    turns: int
    turns2: int
    tools: list[str]
    billing_headers: list[str] = field(default_factory=list)  # conversation 1, conversation 2
    setups: dict[str, list[Turn]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    restarts: dict[str, list[str]] = field(default_factory=dict)
    # the machine's 1-minute load average when each setup started and ended (2 cores shared with others)
    load: dict[str, list[float]] = field(default_factory=dict)

    def rows(self, setup: str, conversation: int) -> list[Turn]:
        return [r for r in self.setups.get(setup, []) if r.conversation == conversation]

    def summary(self, setup: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for conv in (1, 2):
            rows = self.rows(setup, conv)
            later = rows[1:]
            prompt = sum(r.prompt_tokens for r in later)
            cached = sum(r.cached_tokens for r in later)
            ttfts = [r.ttft_s for r in later if r.ttft_s is not None]
            first = rows[0] if rows else None
            out[f"conv{conv}"] = {
                "turns_run": len(rows),
                "turn1_processed_tokens": first.processed_tokens if first else None,
                "turn1_cached_tokens": first.cached_tokens if first else None,
                "turn1_cached_pct": first.cached_pct if first else None,
                "turn1_ttft_s": first.ttft_s if first else None,
                "cached_pct_turns_2_on": round(100 * cached / prompt, 1) if prompt else None,
                "mean_ttft_s_turns_2_on": round(sum(ttfts) / len(ttfts), 2) if ttfts else None,
            }
        rows = self.setups.get(setup, [])
        side = [r for r in rows if r.side_ok]
        side_prompt = sum(r.side_processed_tokens + r.side_cached_tokens for r in side)
        # did a title request run on the slot that held the conversation at the previous turn?
        pairs = [
            (prev, cur)
            for prev, cur in itertools.pairwise(rows)
            if prev.conversation == cur.conversation and prev.main_slot is not None
        ]
        # main requests' prompt time on later turns, split by what the concurrent title request cost
        later = [r for r in rows if r.turn > 1 and r.side_ok and r.ttft_s is not None]
        cold = [
            r.ttft_s for r in later if r.ttft_s is not None and r.side_processed_tokens > r.side_cached_tokens
        ]
        warm = [
            r.ttft_s
            for r in later
            if r.ttft_s is not None and r.side_processed_tokens <= r.side_cached_tokens
        ]
        out["turns_2_on_by_title"] = {
            "title_reprocessed": {
                "turns": len(cold),
                "mean_ttft_s": round(sum(cold) / len(cold), 2) if cold else None,
            },
            "title_from_cache": {
                "turns": len(warm),
                "mean_ttft_s": round(sum(warm) / len(warm), 2) if warm else None,
            },
        }
        out["titles"] = {
            "ok": len(side),
            "failed": len(rows) - len(side),
            "mean_processed_tokens": round(sum(r.side_processed_tokens for r in side) / len(side), 1)
            if side
            else None,
            "cached_pct": round(100 * sum(r.side_cached_tokens for r in side) / side_prompt, 1)
            if side_prompt
            else None,
            "on_previous_main_slot": sum(1 for prev, cur in pairs if cur.side_slot == prev.main_slot),
            "turns_compared": len(pairs),
        }
        out["total_wall_s"] = round(sum(r.wall_s for r in rows), 1)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        fields = {k: v for k, v in data.items() if k not in ("summary", "setups")}
        setups = {name: [Turn(**row) for row in rows] for name, rows in data["setups"].items()}
        return cls(**fields, setups=setups)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = {name: self.summary(name) for name in self.setups}
        return data

    def to_markdown(self) -> str:
        lines = [
            "# KV-cache session benchmark",
            "",
            f"{self.date} · {self.machine} · model `{self.model}` · tools {', '.join(self.tools)} · "
            f"conversation 1: {self.turns} turns, then conversation 2 on the same server: "
            f"{self.turns2} turns "
            "(same system prompt and tools, another first prompt) · a title side request fired with every "
            "main request.",
            "",
            "Billing headers (first system block; Claude Code's hash of the first prompt): "
            + " · ".join(f"conversation {i + 1}: `{h}`" for i, h in enumerate(self.billing_headers))
            + ". Each title request carries the hash of its own text.",
            "Generated by `bench/cache_session.py`; do not edit.",
            "",
            "| setup | conv 1 turn 1: processed / from cache, first token | conv 1 turns 2-N from cache, "
            "mean first token | **conv 2 turn 1**: processed / from cache, first token | conv 2 turns 2-N "
            "from cache | title requests: mean processed, from cache | total main wall |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name in self.setups:
            s = self.summary(name)
            c1, c2, t = s["conv1"], s["conv2"], s["titles"]
            lines.append(
                f"| {name} | {_turn1(c1)} | "
                f"{_pct(c1['cached_pct_turns_2_on'])}, {_sec(c1['mean_ttft_s_turns_2_on'])} "
                f"| {_turn1(c2)} | {_pct(c2['cached_pct_turns_2_on'])} "
                f"| {t['mean_processed_tokens']} tokens, {_pct(t['cached_pct'])} | {s['total_wall_s']} s |"
            )
        lines += [
            "",
            "Title requests on the slot that held the conversation the turn before: "
            + " · ".join(
                f"{name}: {self.summary(name)['titles']['on_previous_main_slot']} of "
                f"{self.summary(name)['titles']['turns_compared']}"
                for name in self.setups
            )
            + " (slots and llama-server's reason for picking them: per-turn tables below).",
            "",
            "Machine load (1-minute load average at the start and end of each setup; the cold turns' times "
            "depend on it): "
            + " · ".join(
                f"{name}: {' → '.join(str(v) for v in self.load.get(name, [])) or '?'}"
                for name in self.setups
            )
            + ".",
            "",
            "Failed main requests: "
            + " · ".join(f"{name}: {len(self.failures.get(name, [])) or 'none'}" for name in self.setups)
            + "; server restarts: "
            + " · ".join(f"{name}: {len(self.restarts.get(name, [])) or 'none'}" for name in self.setups)
            + ".",
            "",
            "Main request's mean time to first token on turns 2+, by what its concurrent title request cost: "
            + " · ".join(
                f"{name}: title mostly re-processed {_sec(b['title_reprocessed']['mean_ttft_s'])} "
                f"({b['title_reprocessed']['turns']} turns), title from cache "
                f"{_sec(b['title_from_cache']['mean_ttft_s'])} ({b['title_from_cache']['turns']} turns)"
                for name in self.setups
                for b in [self.summary(name)["turns_2_on_by_title"]]
            )
            + ".",
        ]
        for name, rows in self.setups.items():
            lines += ["", f"## {name}", ""]
            lines += [f"**Stopped: {failure}**  " for failure in self.failures.get(name, [])]
            lines += [f"**Restarted: {note}**  " for note in self.restarts.get(name, [])]
            lines += [
                "",
                "| conv.turn | prompt | processed | from cache | cached % | first token, s | wall, s "
                "| slot (why) "
                "| title: processed / from cache | title slot (why) | title wall, s |",
                "|---:|---:|---:|---:|---:|---:|---:|:---|---:|:---|---:|",
            ]
            lines += [
                f"| {r.conversation}.{r.turn} | {r.prompt_tokens} | {r.processed_tokens} "
                f"| {r.cached_tokens} | "
                f"{r.cached_pct} | {r.ttft_s} | {r.wall_s} | {_slot(r.main_slot, r.main_slot_why)} | "
                + (f"{r.side_processed_tokens} / {r.side_cached_tokens}" if r.side_ok else r.side_error[:60])
                + f" | {_slot(r.side_slot, r.side_slot_why)} | {r.side_wall_s} |"
                for r in rows
            ]
        return "\n".join(lines) + "\n"

    def plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 4.8))
        gap = self.turns + 1  # conversation 2 starts after a gap
        for index, name in enumerate(self.setups):
            color = f"C{index}"
            s = self.summary(name)
            for conv, offset in ((1, 0), (2, gap)):
                rows = self.rows(name, conv)
                if not rows:
                    continue
                label = (
                    f"{name} ({_pct(s['conv1']['cached_pct_turns_2_on'])} from cache on turns 2+; "
                    f"new conversation: {_pct(s['conv2']['turn1_cached_pct'])} at its turn 1)"
                    if conv == 1
                    else None
                )
                ax.plot(
                    [offset + r.turn for r in rows],
                    [r.ttft_s or 0.0 for r in rows],
                    marker="o" if conv == 1 else "s",
                    color=color,
                    label=label,
                )
        ax.axvline(gap + 0.5, color="grey", linestyle="--", linewidth=1)
        ax.text(
            gap + 0.6,
            0.98,
            "conversation 2\n(new billing header)",
            transform=ax.get_xaxis_transform(),
            va="top",
            fontsize=8,
            color="grey",
        )
        ticks = list(range(1, self.turns + 1)) + [gap + t for t in range(1, self.turns2 + 1)]
        labels = [f"1.{t}" for t in range(1, self.turns + 1)] + [f"2.{t}" for t in range(1, self.turns2 + 1)]
        ax.set_xticks(ticks, labels)
        ax.set_xlabel("conversation.turn")
        ax.set_ylabel("prompt time: seconds to first token")
        ax.set_yscale("log")
        ax.set_title(f"Claude-Code-shaped sessions, {self.model}, {self.machine}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value} %"


def _sec(value: float | None) -> str:
    return "-" if value is None else f"{value} s"


def _turn1(conv: dict[str, Any]) -> str:
    if conv["turn1_processed_tokens"] is None:
        return "not run"
    return f"{conv['turn1_processed_tokens']} / {conv['turn1_cached_tokens']}, {_sec(conv['turn1_ttft_s'])}"


def _slot(slot: int | None, why: str) -> str:
    return "?" if slot is None else f"{slot} ({why})"


def write(report: Report, out: Path) -> None:
    (out / "cache_session.json").write_text(json.dumps(report.to_json(), indent=1) + "\n")
    (out / "cache_session.md").write_text(report.to_markdown())
    report.plot(out / "cache_session.png")
