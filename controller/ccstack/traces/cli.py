"""The `trace` and `replay` subcommands (registered by ccstack.cli with `add_parsers`).

    ccstack trace list [--dir D]                     the traces of ccproxy's trace directory
    ccstack trace analyze TRACE [-v] [--backend URL|auto|none]  token breakdown (-v: per tool), cache, timings
    ccstack trace compare [DIR] [--backend URL|auto|none]      one row per request: tokens, cache, timings
    ccstack replay TRACE... --to MODE|URL [--model M] [--to ...]   through ccproxy; table, JSON, MD, PNG
All take --json (machine-readable on stdout). The trace directory: --dir, $CCPROXY_TRACE_DIR, .stack/traces.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ccstack.traces import reading, render
from ccstack.traces.analysis import Breakdown, anthropic_parts, breakdown, openai_parts
from ccstack.traces.counting import Counter, make_counter
from ccstack.traces.spend import SpendRow, spend_rows, utc_day


class _TargetAction(argparse.Action):
    """`--to` starts a target; a `--model` after it belongs to it (before any --to: to all)."""

    def __call__(self, parser: Any, ns: argparse.Namespace, value: Any, option: Any = None) -> None:
        targets = getattr(ns, "targets", None) or []
        if self.dest == "targets":
            targets.append([value, None])
        elif targets:
            targets[-1][1] = value
        else:
            ns.default_model = value
        ns.targets = targets


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("trace", help="read ccproxy's traces: list, analyze TRACE, compare DIR")
    p.add_argument("action", choices=("list", "analyze", "compare"))
    p.add_argument("trace", nargs="?", help="analyze: a trace file or request id; compare: a directory")
    p.add_argument("--dir", type=Path, help="the trace directory (default $CCPROXY_TRACE_DIR, .stack/traces)")
    p.add_argument("-v", "--verbose", action="store_true", help="analyze: one row per tool")
    p.add_argument(
        "--backend",
        default=os.environ.get("CCSTACK_TRACE_BACKEND", "auto"),
        help="a llama-server URL: exact counts with its tokenizer and template; auto (default): the running "
        "stack's llama-server if any; none: tiktoken o200k_base ($CCSTACK_TRACE_BACKEND)",
    )
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    p.set_defaults(traces_run=run_trace)
    p = sub.add_parser("replay", help="send captured requests through ccproxy to other backends, compare")
    p.add_argument("traces", nargs="+", help="trace files (ccproxy traces or recorded requests), in order")
    p.add_argument(
        "--to",
        dest="targets",
        action=_TargetAction,
        required=True,
        metavar="MODE|URL",
        help="a target (repeatable): an OpenAI-compatible base URL, or local | mlx | openrouter | anthropic",
    )
    p.add_argument("--model", dest="model", action=_TargetAction, help="the upstream model of the last --to")
    p.add_argument("--out", type=Path, help="result folder (default replays/<time>)")
    p.add_argument("--max-tokens", type=int, default=512, help="clamp for max_tokens (default 512)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per request (default 1800)")
    p.add_argument("--json", action="store_true", help="the results as JSON on stdout")
    p.set_defaults(traces_run=run_replay, default_model=None)


def guarded(args: argparse.Namespace) -> int:
    """Run the subcommand; a trace that cannot be read is a one-line error, exit status 1."""
    try:
        code: int = args.traces_run(args)
    except reading.TraceError as exc:
        render.console(stderr=True).print(f"ccstack: {exc}", highlight=False, markup=False)
        return 1
    return code


def _dir(args: argparse.Namespace) -> Path:
    return Path(args.dir) if args.dir else reading.default_dir()


def analyze(trace: reading.Trace, counter: Counter, *, per_tool: bool) -> Breakdown:
    """The breakdown of what the model got (the translated request) or, without one, of what Claude
    Code sent."""
    if trace.upstream_request is not None:
        parts, source = openai_parts(trace.upstream_request), "upstream"
        total = counter.total(trace.upstream_request)
    else:
        parts, source, total = anthropic_parts(trace.request), "client", None
    counts = counter.count([p.text for p in parts])
    return breakdown(parts, counts, source=source, counter=counter.name, total=total, per_tool=per_tool)


def run_trace(args: argparse.Namespace) -> int:
    console = render.console()
    if args.action == "list":
        traces = reading.load_many(reading.trace_files(_dir(args)))
        if args.json:
            print(json.dumps([_summary(t) for t in traces], indent=1))
        else:
            console.print(render.list_table(traces))
        return 0
    counter, warning = make_counter(args.backend, getattr(args, "project", None))
    if warning:  # on stderr: stdout stays JSON with --json
        render.console(stderr=True).print(f"[yellow]{warning}[/yellow]", highlight=False)
    if args.action == "analyze":
        if not args.trace:
            raise reading.TraceError("analyze needs a TRACE (a file, or a request id in the trace directory)")
        trace = reading.load(reading.resolve(args.trace, _dir(args)))
        b = analyze(trace, counter, per_tool=args.verbose)
        turn, checks = trace.turn(), trace.tool_checks()
        spend = [] if trace.recorded else _spend_so_far(trace)
        if args.json:
            out = {**_summary(trace), "breakdown": b.to_json(), "turn": turn.to_json(), "tool_calls": checks}
            out["spend"] = [r.to_json() for r in spend]
            print(json.dumps(out, indent=1, default=lambda o: o.__dict__))
            return 0
        what = (
            "the translated request (what the model got)"
            if b.source == "upstream"
            else "Claude Code's request"
        )
        console.print(render.breakdown_table(b, f"{trace.file.name}: {what}"))
        if not trace.recorded:
            console.print(render.turn_table(turn, checks))
            title = "spend of its session and its UTC day, up to this request (this trace's directory)"
            console.print(render.spend_table(spend, title))
        return 0
    directory = Path(args.trace) if args.trace else _dir(args)
    traces = [t for t in reading.load_many(reading.trace_files(directory)) if t.is_messages]
    rows = [render.compare_row(t, analyze(t, counter, per_tool=False)) for t in traces]
    spend = spend_rows(traces)
    if args.json:
        spent = [r.to_json() for r in spend]
        print(json.dumps({"counter": counter.name, "requests": rows, "spend": spent}, indent=1))
    else:
        console.print(render.compare_table(rows, counter.name))
        console.print(render.spend_table(spend, "spend per session and per UTC day"))
    return 0


def _spend_so_far(trace: reading.Trace) -> list[SpendRow]:
    """The spend of the trace's session and UTC day up to it, from the traces beside it."""
    try:
        beside = reading.load_many(reading.trace_files(trace.file.parent))
    except reading.TraceError:
        beside = [trace]
    upto = [t for t in beside if (t.time or 0) <= (trace.time or 0)] or [trace]
    rows = spend_rows(upto)
    session = trace.session or "-"
    wanted = (("session", session), ("day", utc_day(trace.time)))
    return [r for r in rows if (r.scope, r.key) in wanted]


def _summary(t: reading.Trace) -> dict[str, Any]:
    return {
        "file": str(t.file),
        "id": t.id,
        "time": t.time,
        "endpoint": t.endpoint,
        "session": t.session,
        "model": t.model,
        "messages": len(t.request.get("messages") or ()),
        "tools": len(t.request.get("tools") or ()),
        "status": t.status,
        "seconds": t.seconds,
        "recorded": t.recorded,
    }


def run_replay(args: argparse.Namespace) -> int:
    from ccstack.traces import plot, replay

    loaded = [reading.load(reading.resolve(name, reading.default_dir())) for name in args.traces]
    traces = [t for t in loaded if t.is_messages]
    if len(traces) < len(loaded):
        skipped = len(loaded) - len(traces)
        print(f"skipped {skipped} traces that are not /v1/messages requests", file=sys.stderr)
    if not traces:
        raise reading.TraceError("nothing to replay: no /v1/messages request among the traces")
    project = getattr(args, "project", None)
    targets = [
        replay.resolve_target(spec, model or args.default_model, project) for spec, model in args.targets
    ]
    out = args.out or Path("replays") / time.strftime("%Y%m%dT%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    results = replay.replay(traces, targets, out, max_tokens=args.max_tokens, timeout=args.timeout)
    notes = [
        f"Traces: {', '.join(t.file.name for t in traces)}; max_tokens clamped to {args.max_tokens}.",
        "Targets: " + "; ".join(f"{t.label} = {t.url} ({t.kind}, {t.features})" for t in targets) + ".",
        "Prompt processing and tokens/s: llama-server's own timings where the target is one, else "
        "client-side.",
    ]
    meta = {"traces": [str(t.file) for t in traces], "max_tokens": args.max_tokens, "notes": notes}
    meta["targets"] = [
        {"label": t.label, "url": t.url, "kind": t.kind, "features": t.features} for t in targets
    ]
    (out / "results.json").write_text(json.dumps({**meta, "results": results}, indent=1) + "\n")
    (out / "replay.md").write_text(render.replay_markdown(results, notes))
    plot.plot(results, out / "replay.png", "ccstack replay: " + ", ".join(t.label for t in targets))
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        render.console().print(render.replay_table(results))
        print(f"results in {out}/ (results.json, replay.md, replay.png)")
    return 0 if all(r.get("status") == 200 for r in results) else 1
