"""Tables for people (rich) and Markdown for files. Formatting only: the numbers come from analysis."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from ccstack.traces.analysis import Breakdown, CallCheck, Turn
from ccstack.traces.reading import Trace
from ccstack.traces.spend import SpendRow


def console(stderr: bool = False) -> Console:
    """A terminal's own width; piped output (files, README captures) gets 150 columns, not rich's 80."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 150)


def short_name(name: str) -> str:
    """ccproxy's `20261201T174845-req_724edbe3bdfc…json` as `17:48:45 req_724edb`; other names as they are."""
    m = re.match(r"^\d{8}T(\d\d)(\d\d)(\d\d)-(req_[0-9a-f]{6})", name)
    return f"{m[1]}:{m[2]}:{m[3]} {m[4]}" if m else name.removesuffix(".json")


def num(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def calls_cell(checks: Sequence[CallCheck]) -> str:
    if not checks:
        return "-"
    valid = sum(1 for c in checks if c.valid)
    return f"{valid}/{len(checks)} valid"


def list_table(traces: Sequence[Trace]) -> Table:
    table = Table(title=f"{len(traces)} traces", title_justify="left")
    for column in ("trace", "time", "endpoint", "session", "model", "msgs", "tools", "status", "seconds"):
        table.add_column(column, justify="right" if column in ("msgs", "tools", "seconds") else "left")
    for t in traces:
        table.add_row(
            short_name(t.file.name),
            when(t.time),
            t.endpoint,
            (t.session or "-")[:8],
            t.model,
            str(len(t.request.get("messages") or ())),
            str(len(t.request.get("tools") or ())),
            "recorded" if t.recorded else str(t.status or "-"),
            num(t.seconds, 2),
        )
    return table


def breakdown_table(b: Breakdown, title: str) -> Table:
    table = Table(
        title=title, title_justify="left", caption=f"counted by {b.counter}", caption_justify="left"
    )
    table.add_column("part")
    for column in ("blocks", "chars", "tokens", "share"):
        table.add_column(column, justify="right")
    whole = b.total or b.parts_total or 1
    for group in ("system", "tools", "messages"):
        rows = [r for r in b.rows if r.group == group]
        if not rows:
            continue
        tokens = b.group_total(group)
        chars = sum(r.chars for r in rows)
        table.add_row(
            f"[bold]{group}[/bold]", "", num(chars), f"[bold]{num(tokens)}[/bold]", pct(tokens / whole)
        )
        for r in rows:
            table.add_row(f"  {r.label}", str(r.parts), num(r.chars), num(r.tokens), pct(r.tokens / whole))
    table.add_section()
    table.add_row("sum of the parts", "", "", num(b.parts_total), "")
    if b.total is not None:
        table.add_row("chat template around them", "", "", num(b.template_overhead), "")
        table.add_row("[bold]whole prompt (exact)[/bold]", "", "", f"[bold]{num(b.total)}[/bold]", "100 %")
    return table


def turn_table(turn: Turn, checks: Sequence[CallCheck]) -> Table:
    table = Table(title=f"answer (from {turn.timings_from})", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("prompt tokens", num(turn.prompt_tokens))
    table.add_row("from the cache", f"{num(turn.cached_tokens)} ({pct(turn.cache_share)})")
    table.add_row("prompt processing", "-" if turn.prompt_ms is None else f"{turn.prompt_ms / 1000:.2f} s")
    table.add_row("first byte", "-" if turn.first_byte_s is None else f"{turn.first_byte_s:.2f} s")
    table.add_row("total", "-" if turn.total_s is None else f"{turn.total_s:.2f} s")
    table.add_row("output tokens", num(turn.output_tokens))
    table.add_row("generation tokens/s", num(turn.tokens_per_s, 1))
    for c in checks:
        table.add_row(f"tool call {c.name}", "valid" if c.valid else f"[red]invalid[/red]: {c.problem}")
    return table


COMPARE_COLUMNS = (
    "trace", "session", "msgs", "system", "tools", "messages", "prompt", "cached", "ttfb s", "total s", "out",
    "tok/s", "tool calls",
)  # fmt: skip


def compare_row(t: Trace, b: Breakdown) -> dict[str, Any]:
    turn = t.turn()
    return {
        "trace": t.file.name,
        "session": t.session,
        "messages": len(t.request.get("messages") or ()),
        "tokens": {g: b.group_total(g) for g in ("system", "tools", "messages")},
        "total": b.total,
        "turn": turn.to_json(),
        "tool_calls": [c.__dict__ for c in t.tool_checks()],
    }


def compare_table(rows: Sequence[Mapping[str, Any]], counter: str) -> Table:
    table = Table(
        title=f"{len(rows)} requests",
        title_justify="left",
        caption=f"tokens by {counter}",
        caption_justify="left",
    )
    for column in COMPARE_COLUMNS:
        table.add_column(column, justify="left" if column in ("trace", "session", "tool calls") else "right")
    for r in rows:
        turn, tokens = r["turn"], r["tokens"]
        checks = [CallCheck(**c) for c in r["tool_calls"]]
        table.add_row(
            short_name(r["trace"]),
            (r["session"] or "-")[:8],
            str(r["messages"]),
            num(tokens["system"]),
            num(tokens["tools"]),
            num(tokens["messages"]),
            num(turn["prompt_tokens"]),
            f"{num(turn['cached_tokens'])} ({pct(turn['cache_share'])})",
            num(turn["first_byte_s"], 2),
            num(turn["total_s"], 2),
            num(turn["output_tokens"]),
            num(turn["tokens_per_s"], 1),
            calls_cell(checks),
        )
    return table


REPLAY_COLUMNS = (
    ("target", "target"), ("trace", "trace"), ("status", "status"), ("prompt", "prompt tokens"),
    ("cached", "cached"), ("prompt_s", "prompt processing s"), ("first_token_s", "first token s"),
    ("total_s", "total s"), ("output_tokens", "output tokens"), ("tokens_per_s", "tokens/s"),
    ("tool_calls", "tool calls"),
)  # fmt: skip


def replay_cells(r: Mapping[str, Any]) -> list[str]:
    checks = [CallCheck(**c) for c in r.get("tool_calls") or ()]
    return [
        str(r["target"]),
        str(r["trace"]),
        str(r.get("status")),
        num(r.get("prompt_tokens")),
        num(r.get("cached_tokens")),
        num(r.get("prompt_s"), 2),
        num(r.get("first_token_s"), 2),
        num(r.get("total_s"), 2),
        num(r.get("output_tokens")),
        num(r.get("tokens_per_s"), 1),
        calls_cell(checks) if checks else ("none" if r.get("status") == 200 else "-"),
    ]


def replay_table(results: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="replay", title_justify="left")
    for key, header in REPLAY_COLUMNS:
        table.add_column(header, justify="left" if key in ("target", "trace", "tool_calls") else "right")
    for r in results:
        table.add_row(*replay_cells(r))
    return table


def replay_markdown(results: Sequence[Mapping[str, Any]], notes: Sequence[str]) -> str:
    headers = [h for _, h in REPLAY_COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(replay_cells(r)) + " |" for r in results]
    problems = [
        f"- {r['target']} {r['trace']}: {c['name']}: {c['problem']}"
        for r in results
        for c in r.get("tool_calls") or ()
        if not c["valid"]
    ]
    errors = [f"- {r['target']} {r['trace']}: {r['error']}" for r in results if r.get("error")]
    body = "\n".join(
        ["# Replay", "", *lines, "", *notes, *(["", "Invalid tool calls:", *problems] if problems else [])]
    )
    return body + ("\n\nErrors:\n" + "\n".join(errors) if errors else "") + "\n"


def spend_table(rows: Sequence[SpendRow], title: str) -> Table:
    """Spend per session and per UTC day against the proxy's budgets (when a spend guard was on)."""
    table = Table(title=title, title_justify="left")
    for column in ("scope", "session / day", "requests", "tokens", "token budget", "USD", "USD budget"):
        table.add_column(column, justify="left" if column in ("scope", "session / day") else "right")
    for r in rows:
        usd = ("≥ " if r.unpriced else "") + f"{r.usd:.4f}"
        tokens_budget = "-" if r.token_budget is None else f"{num(r.token_budget)} ({pct(r.token_share)})"
        usd_budget = "-" if r.usd_budget is None else f"{r.usd_budget:.2f} ({pct(r.usd_share)})"
        key = r.key[:8] if r.scope == "session" else r.key
        table.add_row(r.scope, key, num(r.requests), num(r.tokens), tokens_budget, usd, usd_budget)
    return table
