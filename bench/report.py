"""Summaries, overheads against the direct baseline, the issue's targets, and the Markdown table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from overhead import Cell

Json = dict[str, Any]

# The targets for ccproxy (issue 2, "What it must show").
CPU_MS_PER_REQUEST_MAX = 1.0
P50_OVERHEAD_MS_AT_C1_MAX = 2.0
OVERHEAD_FRACTION_OF_CCR_MAX = 0.25
PROXIES = ("ccproxy", "litellm", "ccr")
LABELS = {
    "direct": "direct (no proxy)",
    "ccproxy": "ccproxy",
    "litellm": "LiteLLM",
    "ccr": "claude-code-router",
}


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (numpy's default), NaN for no values."""
    if not values:
        return math.nan
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def _ms(x: float) -> float:
    return round(x * 1000, 3) if not math.isnan(x) else math.nan


def summarize(cell: Cell) -> Json:
    n = len(cell.samples)
    out: Json = {"requests": n, "errors": len(cell.errors), "wall_s": round(cell.wall, 3)}
    out["req_per_s"] = round(n / cell.wall, 1) if cell.wall else 0.0
    for metric in ("ttfb", "ttft", "ttlb"):
        values = [getattr(s, metric) for s in cell.samples]
        for p in (50, 99):
            out[f"{metric}_p{p}_ms"] = _ms(percentile(values, p))
    per = max(n, 1)
    out["proxy_cpu_ms_per_req"] = round(cell.proxy_cpu * 1000 / per, 3)
    out["upstream_cpu_ms_per_req"] = round(cell.upstream_cpu * 1000 / per, 3)
    out["client_cpu_ms_per_req"] = round(cell.client_cpu * 1000 / per, 3)
    # cores kept busy by processes outside the bench (other jobs on a shared machine) while measuring
    out["other_load_cores"] = round(cell.other_cpu / cell.wall, 2) if cell.wall else 0.0
    out["upstream_requests"] = cell.upstream_requests
    out["upstream_new_connections_per_req"] = round(cell.upstream_connections / per, 3)
    if cell.errors:
        out["first_errors"] = sorted(set(cell.errors))[:5]
    return out


def build(cells: dict[str, dict[int, Json]], skipped: dict[str, str], meta: Json) -> Json:
    direct = cells.get("direct", {})
    for name, by_level in cells.items():
        if name == "direct":
            continue
        for level, cell in by_level.items():
            base = direct.get(level)
            if base is None:
                continue
            for metric in ("ttfb", "ttft", "ttlb"):
                for p in (50, 99):
                    key = f"{metric}_p{p}_ms"
                    cell[f"overhead_{key}"] = round(cell[key] - base[key], 3)
    return {
        "meta": meta,
        "definitions": {
            "ttfb": "request written -> first response body byte (a proxy's message_start)",
            "ttft": "request written -> first event carrying generated text",
            "ttlb": "request written -> last byte of the stream",
            "overhead": "target percentile minus direct's percentile at the same concurrency",
            "proxy_cpu_ms_per_req": "proxy process tree utime+stime (/proc/<pid>/stat) per measured request",
            "other_load_cores": "cores used by processes outside the bench while measuring (/proc/stat)",
        },
        "skipped": skipped,
        "results": {name: {str(c): v for c, v in by_level.items()} for name, by_level in cells.items()},
        "targets": _checks(cells),
    }


def _checks(cells: dict[str, dict[int, Json]]) -> list[Json]:
    ours = cells.get("ccproxy")
    if not ours:
        return [{"target": "all", "pass": None, "detail": "ccproxy not measured"}]
    checks: list[Json] = []
    worst_cpu = max(c["proxy_cpu_ms_per_req"] for c in ours.values())
    checks.append(
        {
            "target": f"proxy CPU <= {CPU_MS_PER_REQUEST_MAX} ms per streamed request (every level)",
            "pass": worst_cpu <= CPU_MS_PER_REQUEST_MAX,
            "detail": ", ".join(f"c={lv}: {c['proxy_cpu_ms_per_req']:.2f} ms" for lv, c in ours.items()),
        }
    )
    if 1 in ours and "overhead_ttlb_p50_ms" in ours[1]:
        ov = ours[1]["overhead_ttlb_p50_ms"]
        checks.append(
            {
                "target": f"p50 overhead (last byte) <= {P50_OVERHEAD_MS_AT_C1_MAX} ms at c=1",
                "pass": ov <= P50_OVERHEAD_MS_AT_C1_MAX,
                "detail": f"{ov:.2f} ms (first byte {ours[1]['overhead_ttfb_p50_ms']:.2f} ms)",
            }
        )
    ccr = cells.get("ccr")
    if ccr:
        parts, ok = [], True
        for level, cell in ours.items():
            theirs = ccr.get(level)
            if theirs is None or "overhead_ttlb_p50_ms" not in cell:
                continue
            mine, peer = cell["overhead_ttlb_p50_ms"], theirs["overhead_ttlb_p50_ms"]
            ok = ok and mine <= OVERHEAD_FRACTION_OF_CCR_MAX * peer
            ratio = f"{mine / peer:.2f}x" if peer > 0 else "n/a"
            parts.append(f"c={level}: {mine:.2f} vs {peer:.2f} ms ({ratio})")
        checks.append(
            {
                "target": "p50 overhead (last byte) <= 1/4 of claude-code-router's (every level)",
                "pass": ok,
                "detail": "; ".join(parts),
            }
        )
    return checks


def _f(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def markdown(data: Json) -> str:
    meta = data["meta"]
    v = meta["versions"]
    cells = [c for by in data["results"].values() for c in by.values()]
    wall = sum(c["wall_s"] for c in cells)
    other = sum(c["other_load_cores"] * c["wall_s"] for c in cells) / wall if wall else 0.0
    lines = [
        "# Proxy overhead (streamed `/v1/messages`, fake upstream)",
        "",
        f"Run {meta['date']} on {meta['host']['cpus']} shared cores "
        f"(other jobs kept {other:.1f} cores busy on average while measuring); "
        f"ccproxy {v['ccproxy']}, LiteLLM {v['litellm']}, claude-code-router {v['claude-code-router']} "
        f"(Node {v['node']}), Python {v['python']}. Each target sends requests for "
        f"{meta['seconds_per_batch']:g} s per level in each of {meta['rounds']} interleaved rounds; "
        f"run took {meta['duration_s']} s.",
        "",
        "Latencies in ms. Overhead = target minus direct at the same percentile and concurrency. "
        "CPU = the proxy's process tree (utime+stime) per request; on a shared 2-core machine it is the "
        "figure that travels, latencies are noisy. New upstream conns/req: TCP connections the fake "
        "upstream accepted per request (0 = the proxy reuses pooled connections).",
        "",
        "| c | target | req/s | first byte p50 / p99 | last byte p50 / p99 | overhead last byte p50 / p99 "
        "| proxy CPU ms/req | new upstream conns/req | errors |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    results = data["results"]
    levels = sorted({int(lv) for by in results.values() for lv in by})
    for level in levels:
        extra = sorted(set(results) - {"direct", *PROXIES})
        for name in ("direct", *PROXIES, *extra):
            cell = results.get(name, {}).get(str(level))
            if cell is None:
                continue
            overhead = (
                f"{_f(cell.get('overhead_ttlb_p50_ms'))} / {_f(cell.get('overhead_ttlb_p99_ms'))}"
                if name != "direct"
                else "—"
            )
            cpu = _f(cell["proxy_cpu_ms_per_req"]) if name != "direct" else "—"
            lines.append(
                f"| {level} | {LABELS.get(name, name)} | {_f(cell['req_per_s'], 0)} "
                f"| {_f(cell['ttfb_p50_ms'])} / {_f(cell['ttfb_p99_ms'])} "
                f"| {_f(cell['ttlb_p50_ms'])} / {_f(cell['ttlb_p99_ms'])} | {overhead} | {cpu} "
                f"| {_f(cell['upstream_new_connections_per_req'])} | {cell['errors']} |"
            )
    lines += ["", "Targets (ccproxy):", ""]
    for check in data["targets"]:
        mark = {True: "PASS", False: "FAIL", None: "n/a"}[check["pass"]]
        lines.append(f"- **{mark}** {check['target']}: {check['detail']}")
    if data["skipped"]:
        lines += ["", "Skipped:", ""]
        lines += [f"- {name}: {why.splitlines()[0]}" for name, why in data["skipped"].items()]
    lines += ["", f"Reproduce: `{meta['command']}` (see bench/README.md).", ""]
    return "\n".join(lines)
