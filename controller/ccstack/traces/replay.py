"""`ccstack replay`: captured requests sent again, through a real ccproxy process, to other backends.

Per target: a ccproxy on a free loopback port (its own trace directory, no slot files), then each trace's
request in order, streamed, with the session ids of the capture mapped to fresh ones (turns of one session
share a slot, so later turns hit the cache the way they did live). Measured per request: the first token
(the upstream's first answer byte in the proxy's trace of the replay; else the client's first content
delta), the total, llama-server's own prompt processing time and tokens/s (from that trace too) and
whether each tool call names a tool of the request and has input valid against its input_schema.
Results in a folder: results.json, replay.md, replay.png.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ccstack.checks import free_port
from ccstack.traces.analysis import check_tool_calls, message_from_events
from ccstack.traces.reading import Trace, TraceError, load

SESSION_HEADER = "x-claude-code-session-id"
FORWARDED = ("anthropic-version", "anthropic-beta", "user-agent", "x-app")


@dataclass(frozen=True)
class Target:
    spec: str
    url: str
    """The upstream base URL, including /v1."""
    kind: str = "openai"
    features: str = "generic"
    model: str | None = None
    key_env: str | None = None
    auth: str = "x-api-key"
    """anthropic kind: how the key travels (bearer: the subscription mode's OAuth token)."""
    betas: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        if self.model:
            return self.model
        return urlsplit(self.url).netloc if self.spec.startswith(("http://", "https://")) else self.spec


def target_from_url(url: str, model: str | None) -> Target:
    """An OpenAI-compatible server; llama-server when its /props answers (slots, exact counts)."""
    if not re.match(r"^https?://", url):
        raise TraceError(f"{url}: a mode (local, mlx, openrouter, anthropic) or an http(s):// URL expected")
    base = url.rstrip("/")
    base = base if base.endswith("/v1") else base + "/v1"
    features = "generic"
    try:
        props = httpx.get(base.removesuffix("/v1") + "/props", timeout=5)
        if props.status_code == 200 and "default_generation_settings" in props.json():
            features = "llama-server"
    except (httpx.HTTPError, ValueError):
        pass
    return Target(spec=url, url=base, features=features, model=model)


def target_from_mode(name: str, model: str | None, project: str | None = None) -> Target:
    """A mode of the stack, reached from this host: local = the running stack's llama-server (its address
    on the backend network, Linux; `test`: its scripted upstream), mlx = mlx_lm.server on 127.0.0.1, cloud
    modes with their key."""
    from ccstack.modes import parse_mode

    mode = parse_mode(name)
    if mode.needs_upstream:
        raise TraceError(f"{name}: give the server's URL instead (--to http://HOST:PORT/v1)")
    url = mode.upstream.replace("host.docker.internal", "127.0.0.1")
    if mode.backend_services:  # a container of the stack (local: llama-server; test: the scripted one)
        service = mode.backend_services[0]
        ip = stack_service_ip(service, "backend", project)
        if ip is None:
            raise TraceError(f"{name}: no running {service} of the stack (just up {name}), or give its URL")
        url = url.replace(f"//{urlsplit(url).hostname}:", f"//{ip}:", 1)
    if mode.key_env and not os.environ.get(mode.key_env):
        raise TraceError(f"{name}: set {mode.key_env} (the upstream key) to replay against it")
    return Target(
        spec=name,
        url=url,
        kind=mode.upstream_kind,
        features=mode.backend_features,
        model=model or (None if mode.backend_services else mode.default_model),
        key_env=mode.key_env,
        auth=mode.upstream_auth,
        betas=mode.upstream_betas,
    )


def stack_service_ip(service: str, network: str, project: str | None = None) -> str | None:
    """The address of the running stack's service on one of its networks (reachable from a Linux host)."""
    import docker

    project = project or os.environ.get("CCSANDBOX_PROJECT", "ccsandbox")
    labels = [f"com.docker.compose.project={project}", f"com.docker.compose.service={service}"]
    for container in docker.from_env().containers.list(filters={"label": labels}):
        net = container.attrs["NetworkSettings"]["Networks"].get(f"{project}_{network}") or {}
        if net.get("IPAddress"):
            return str(net["IPAddress"])
    return None


def resolve_target(spec: str, model: str | None, project: str | None = None) -> Target:
    """A mode (of the Compose project `project`, default $CCSANDBOX_PROJECT) or a URL."""
    from ccstack.modes import MODES

    return target_from_mode(spec, model, project) if spec in MODES else target_from_url(spec, model)


@contextmanager
def running_proxy(target: Target, work: Path, *, max_tokens: int) -> Iterator[tuple[str, Path]]:
    """A ccproxy process for the target; yields its URL and trace directory."""
    exe = shutil.which("ccproxy", path=str(Path(sys.executable).parent)) or shutil.which("ccproxy")
    if exe is None:
        raise TraceError("the ccproxy command is missing (pip install ./proxy)")
    port, traces = free_port(), work / "traces"
    args = [exe, "--port", str(port), "--upstream", target.url, "--upstream-kind", target.kind]
    args += ["--backend-features", target.features, "--max-tokens", str(max_tokens)]
    args += ["--prefix-cache-min-tokens", "off", "--trace-dir", str(traces)]
    if target.model:
        args += ["--model", target.model]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCPROXY_")}
    with tempfile.TemporaryDirectory() as secrets:
        if target.key_env:
            key_file = Path(secrets) / "key"
            key_file.write_text(os.environ[target.key_env])
            key_file.chmod(0o600)
            args += ["--upstream-key-file", str(key_file), "--upstream-auth", target.auth]
            if target.betas:
                args += ["--upstream-betas", ",".join(target.betas)]
        work.mkdir(parents=True, exist_ok=True)
        with (work / "ccproxy.log").open("wb") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise TraceError(f"ccproxy exited ({process.returncode}); see {work / 'ccproxy.log'}")
                try:
                    httpx.head(url + "/", timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise TraceError(f"ccproxy did not start; see {work / 'ccproxy.log'}") from None
                    time.sleep(0.2)
            yield url, traces
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data:"):
            data = line[5:].strip()
            if data:
                event = json.loads(data)
                if isinstance(event, dict):
                    yield event


def replay_one(client: httpx.Client, url: str, trace: Trace, session: str, max_tokens: int) -> dict[str, Any]:
    """Send one captured request (streamed); the client-side measurements and the answer."""
    body = dict(trace.request)
    body["stream"] = True
    body["max_tokens"] = min(int(body.get("max_tokens") or max_tokens), max_tokens)
    headers = {k: v for k, v in trace.headers.items() if k.lower() in FORWARDED}
    headers[SESSION_HEADER] = session
    started = time.monotonic()
    first: float | None = None
    events: list[dict[str, Any]] = []
    with client.stream("POST", url + "/v1/messages", json=body, headers=headers) as response:
        if response.status_code != 200:
            text = response.read().decode("utf-8", "replace")[:500]
            return {"status": response.status_code, "error": text, "total_s": time.monotonic() - started}
        for event in sse_events(response.iter_lines()):
            if first is None and event.get("type") == "content_block_delta":
                first = time.monotonic()
            events.append(event)
    total = time.monotonic() - started
    message = message_from_events(events)
    tools = [t for t in trace.request.get("tools") or () if isinstance(t, dict)]
    usage = message.get("usage") or {}
    text = "".join(str(b.get("text", "")) for b in message["content"] if b.get("type") == "text")
    return {
        "status": 200,
        "error": json.dumps(message["error"]) if message.get("error") else None,
        "first_token_s": None if first is None else first - started,
        "first_delta_s": None if first is None else first - started,
        "total_s": total,
        "output_tokens": usage.get("output_tokens"),
        "prompt_tokens": int(usage.get("input_tokens") or 0) + int(usage.get("cache_read_input_tokens") or 0),
        "cached_tokens": usage.get("cache_read_input_tokens"),
        "stop_reason": message.get("stop_reason"),
        "tool_calls": [asdict(c) for c in check_tool_calls(tools, message)],
        "answer": text[:300],
        "calls": [
            {"name": b.get("name"), "input": b.get("input")}
            for b in message["content"]
            if b.get("type") == "tool_use"
        ],
    }


def with_backend_timings(result: dict[str, Any], trace_dir: Path, seen: set[Path]) -> None:
    """Add llama-server's own timings from the proxy's trace of this request (written as it ended)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        new = [p for p in sorted(trace_dir.glob("*.json")) if p not in seen] if trace_dir.is_dir() else []
        for path in new:
            try:
                replayed = load(path)
            except TraceError:  # still being written
                continue
            seen.add(path)
            if not replayed.is_messages:
                continue
            timings = replayed.upstream_timings or {}
            if timings.get("prompt_ms") is not None:
                result["prompt_s"] = float(timings["prompt_ms"]) / 1000
                result["prompt_tokens"] = int(timings.get("prompt_n", 0)) + int(timings.get("cache_n", 0))
                result["cached_tokens"] = timings.get("cache_n")
            if timings.get("predicted_per_second") is not None:
                result["tokens_per_s"] = float(timings["predicted_per_second"])
            if replayed.first_byte_seconds is not None:
                # the model's first token: the upstream's first byte of the answer, as the proxy saw it
                # (the client's first content delta comes later when the proxy recovers a tool call
                # from text: only once the call is complete)
                result["first_token_s"] = replayed.first_byte_seconds
            result["replay_trace"] = path.name
            return
        time.sleep(0.1)


def replay(
    traces: Sequence[Trace], targets: Sequence[Target], out: Path, *, max_tokens: int, timeout: float
) -> list[dict[str, Any]]:
    """Every trace against every target (targets one after the other); one result per pair."""
    results: list[dict[str, Any]] = []
    for index, target in enumerate(targets):
        work = out / f"{index + 1}-{re.sub(r'[^A-Za-z0-9._-]+', '_', target.label)}"
        sessions: dict[str | None, str] = {}
        with (
            running_proxy(target, work, max_tokens=max_tokens) as (url, trace_dir),
            httpx.Client(timeout=httpx.Timeout(timeout, connect=10)) as client,
        ):
            seen: set[Path] = set()
            for trace in traces:
                session = sessions.setdefault(trace.session, str(uuid.uuid4()))
                try:
                    result = replay_one(client, url, trace, session, max_tokens)
                except (httpx.HTTPError, ValueError) as exc:  # no answer, or not SSE
                    result = {"status": None, "error": f"{type(exc).__name__}: {exc}"}
                if result.get("status") == 200:
                    with_backend_timings(result, trace_dir, seen)
                    if result.get("tokens_per_s") is None:
                        result["tokens_per_s"] = _client_rate(result)
                result.update(target=target.label, url=target.url, trace=trace.file.name)
                results.append(result)
                print(f"  {target.label} {trace.file.name}: {_brief(result)}", file=sys.stderr, flush=True)
    return results


def _client_rate(r: dict[str, Any]) -> float | None:
    out, total, first = r.get("output_tokens"), r.get("total_s"), r.get("first_token_s")
    if not out or total is None or first is None or total <= first:
        return None
    return float(out) / (float(total) - float(first))


def _brief(r: dict[str, Any]) -> str:
    if r.get("status") != 200:
        return f"failed: {r.get('error')}"
    return (
        f"{r.get('total_s', 0):.1f} s, {r.get('output_tokens')} tokens out, {len(r['tool_calls'])} tool calls"
    )
