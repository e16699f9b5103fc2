"""The stack's modes: which backend the proxy talks to, and what that needs (pure data).

    local       llama-server in a container (profile ``local``) with a GGUF model; no internet
    mlx         mlx_lm.server running natively on the host (a Mac), reached via host.docker.internal
    openrouter  openrouter.ai over the egress network; key from OPENROUTER_API_KEY or a key file
    anthropic   the Anthropic API itself (pass-through); key from ANTHROPIC_API_KEY or a key file
    subscription  the Anthropic API on your Claude plan: the OAuth token of `claude setup-token`
                (CLAUDE_CODE_OAUTH_TOKEN or a key file) held by the proxy, sent as Bearer
    openai      any OpenAI- (or, with --upstream-kind anthropic, Anthropic-) compatible server on the
                host or the LAN: --upstream URL; the context window and model read from the server
    lmstudio    openai with LM Studio's default port (host, 1234)
    ollama      openai with Ollama's default port (host, 11434)
    pool        several llama-servers behind HAProxy (ccstack.pool): --replicas N in the stack (the local
                model), --backend URL of servers elsewhere; a session sticks to one server (consistent
                hashing on its id), health checks and failover
    split       local, with the model's layers on llama.cpp rpc-servers (ccstack.split): --rpc-workers N
                containers, --rpc HOST:PORT elsewhere
    test        the scripted upstream (profile ``test``), for the stack tests

``parse_mode("openrouter")`` returns the frozen :class:`Mode`; an unknown name raises ``ValueError``
listing the known ones.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

UpstreamKind = Literal["openai", "anthropic"]
BackendFeatures = Literal["llama-server", "generic"]
UpstreamAuth = Literal["x-api-key", "bearer"]


@dataclass(frozen=True)
class SpendBudget:
    """The proxy's spend guard (`ccstack up MODE --budget-...`): limits per Claude Code session and per
    UTC day, in tokens and USD; None: no limit. Rendered as the proxy's CCPROXY_BUDGET_* variables."""

    session_tokens: int | None = None
    day_tokens: int | None = None
    session_usd: float | None = None
    day_usd: float | None = None
    prices: tuple[str, ...] = ()
    """`MODEL=IN/OUT[/CACHE_READ[/CACHE_WRITE]]` (USD per million tokens) beyond the proxy's table."""

    def proxy_env(self) -> dict[str, str]:
        values = {
            "CCPROXY_BUDGET_SESSION_TOKENS": self.session_tokens,
            "CCPROXY_BUDGET_DAY_TOKENS": self.day_tokens,
            "CCPROXY_BUDGET_SESSION_USD": self.session_usd,
            "CCPROXY_BUDGET_DAY_USD": self.day_usd,
        }
        env = {
            name: f"{value:g}" if isinstance(value, float) else str(value)
            for name, value in values.items()
            if value is not None
        }
        if self.prices:
            env["CCPROXY_PRICES"] = ",".join(self.prices)
        return env


@dataclass(frozen=True)
class Mode:
    """What a mode means for Compose: profiles, the proxy's upstream, networks and secrets."""

    name: str
    summary: str
    upstream: str
    upstream_kind: UpstreamKind
    backend_features: BackendFeatures
    profiles: tuple[str, ...] = ()
    # The proxy joins the egress network (internet, or the host gateway for mlx).
    egress: bool = False
    # The proxy gets host.docker.internal (host-gateway): a server on the host.
    host_gateway: bool = False
    # Environment variable holding the upstream API key (None: no key).
    key_env: str | None = None
    # The upstream model name the proxy sends by default (None: the client's names pass through).
    default_model: str | None = None
    # The backend's context window (None: leave Claude Code's own assumption).
    context_window: int | None = None
    # The backend reports its real window through the proxy's /health (llama-server: n_ctx per slot):
    # the sandbox reads it at start unless --context-window overrides it.
    window_from_backend: bool = False
    # Clamp for max_tokens (None: no clamp).
    max_output_tokens: int | None = None
    # Compose services of the mode's backend, started by `up` beside the proxy.
    backend_services: tuple[str, ...] = ()
    # The mode runs a GGUF model in llama-server: --model is a file, hf: reference or registry name that
    # the controller resolves (and fetches), not an upstream model name.
    local_model: bool = False
    # `ccstack prewarm` / `up --prewarm` can process and save Claude Code's prefix (llama-server slots).
    prewarm: bool = False
    # The built-in tools the agent's CLI offers (`claude --tools=...`); None: the CLI's default set.
    # Every tool costs prompt tokens on each request (Claude Code 2.1.330's 21 default tools: ~15 k
    # tokens) and is one more wrong choice for a small model.
    agent_tools: str | None = None
    # Claude Code's background tasks (Bash `run_in_background`, and the notifications that resume the
    # agent when one ends). Off: CLAUDE_CODE_DISABLE_BACKGROUND_TASKS=1 — a small model that sets the
    # flag on every call turns a `claude -p` into an endless loop of notifications (bench/tasks).
    background_tasks: bool = True
    # Claude Code's silent-turn reminder: after 5 tool turns without text it adds "The user hasn't heard
    # from you in a while…" to the next request. Off: CLAUDE_CODE_SILENT_TURN_REMINDER=0 — a small model
    # echoes it through Bash instead of doing the task (bench/tasks transcripts).
    silent_turn_reminder: bool = True
    # Claude Code's auto memory (a memory directory per project, loaded into every later session). Off:
    # CLAUDE_CODE_DISABLE_AUTO_MEMORY=1 — every workdir is /workspace in the sandbox, so all of them share
    # one memory, and a small model writes its mistakes there (bench/tasks: a stale MEMORY.md sent the
    # 0.5B model's first call to /workspace/memory/MEMORY.md in 10 of 18 runs).
    auto_memory: bool = True
    # The proxy's prompt profile (CCPROXY_PROMPT_PROFILE) unless --prompt-profile says one; None: the
    # proxy's (full). The task suite (bench/results/tasks, 3 runs per task) has the 0.5B model at 2/18
    # runs with `full` and 3/18 with `lean`, whose saved prefix is also ~1 k tokens shorter.
    prompt_profile: str | None = None
    # The proxy's repeat guard (CCPROXY_REPEAT_LIMIT; None: off): after the N-th identical call with the
    # same result in a row the proxy ends the turn with a notice. In the task suite's 108 runs, 46 reached
    # 3 such calls and none of them did anything afterwards that changed its outcome.
    repeat_limit: int | None = None
    # What to do when the proxy's upstream does not answer, shown by `ccstack status`.
    unreachable_hint: str | None = None
    # Offered on the command line's help (the test mode is not).
    listed: bool = True
    # anthropic kind: how the proxy sends the key (x-api-key: API keys; bearer: an OAuth token).
    upstream_auth: UpstreamAuth = "x-api-key"
    # anthropic kind: betas the proxy adds to every upstream request's anthropic-beta header.
    upstream_betas: tuple[str, ...] = ()
    # A server the user names (--upstream; --upstream-kind anthropic allowed): `up` asks it for its
    # context window and model (ccstack.server_info) unless --context-window / --model say them.
    user_server: bool = False
    # `up` refuses to start without --upstream (no default server to assume).
    needs_upstream: bool = False
    # The proxy talks to HAProxy over a pool of llama-servers (ccstack.pool: the controller writes its
    # configuration and the replicas); the proxy runs with --upstream-pool on.
    pool: bool = False
    # llama-server spreads the model's layers over llama.cpp RPC servers (ccstack.split: rpc-server
    # containers, or rpc-servers elsewhere).
    split: bool = False


LOCAL_CONTEXT = 32768
LOCAL_AGENT_TOOLS = "Bash,Edit,Read,Write"
"""The local mode's tools: a shell and the file tools (bench/results/tasks measures this choice)."""
OAUTH_BETA = "oauth-2025-04-20"
"""The beta api.anthropic.com wants beside an OAuth token (see README, subscription mode)."""
LMSTUDIO_URL = "http://host.docker.internal:1234/v1"
OLLAMA_URL = "http://host.docker.internal:11434/v1"

LOCAL = Mode(
    name="local",
    summary="llama-server in a container with a local GGUF model (default: Qwen2.5-Coder-0.5B)",
    upstream="http://llama-server:8080/v1",
    upstream_kind="openai",
    backend_features="llama-server",
    profiles=("local",),
    default_model="local",
    context_window=LOCAL_CONTEXT,
    window_from_backend=True,
    max_output_tokens=4096,
    backend_services=("llama-server",),
    local_model=True,
    prewarm=True,
    agent_tools=LOCAL_AGENT_TOOLS,
    background_tasks=False,
    silent_turn_reminder=False,
    auto_memory=False,
    prompt_profile="lean",
    repeat_limit=3,
)
"""The local model's mode; `pool` and `split` are it with the servers arranged differently."""

MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        LOCAL,
        Mode(
            name="mlx",
            summary="mlx_lm.server on the host (backends/mlx/run-mlx-server.sh), via host.docker.internal",
            upstream="http://host.docker.internal:8080/v1",
            upstream_kind="openai",
            backend_features="generic",
            egress=True,
            host_gateway=True,
            # mlx_lm.server serves the model it was started with under this name (any other name
            # makes it try to load that model).
            default_model="default_model",
            context_window=LOCAL_CONTEXT,
            max_output_tokens=4096,
            unreachable_hint=(
                "start the server on the host: backends/mlx/run-mlx-server.sh (`just mlx-server`)"
            ),
        ),
        Mode(
            name="openrouter",
            summary="OpenRouter (openrouter.ai) over the egress network; key in OPENROUTER_API_KEY",
            upstream="https://openrouter.ai/api/v1",
            upstream_kind="openai",
            backend_features="generic",
            egress=True,
            key_env="OPENROUTER_API_KEY",
            default_model="qwen/qwen3-coder",
            # Claude Code assumes 32k for names it does not know; --context-window for other models.
            context_window=131072,
        ),
        Mode(
            name="anthropic",
            summary="the Anthropic API (pass-through); key in ANTHROPIC_API_KEY",
            upstream="https://api.anthropic.com/v1",
            upstream_kind="anthropic",
            backend_features="generic",
            egress=True,
            key_env="ANTHROPIC_API_KEY",
        ),
        Mode(
            name="subscription",
            summary="the Anthropic API on your Claude plan; the OAuth token of `claude setup-token` in "
            "CLAUDE_CODE_OAUTH_TOKEN (held by the proxy, never by the sandbox)",
            upstream="https://api.anthropic.com/v1",
            upstream_kind="anthropic",
            backend_features="generic",
            egress=True,
            key_env="CLAUDE_CODE_OAUTH_TOKEN",
            upstream_auth="bearer",
            upstream_betas=(OAUTH_BETA,),
        ),
        *(
            Mode(
                name=name,
                summary=summary,
                upstream=upstream,
                upstream_kind="openai",
                backend_features="generic",
                egress=True,
                host_gateway=True,
                max_output_tokens=4096,
                user_server=True,
                needs_upstream=not upstream,
                unreachable_hint=hint,
            )
            for name, summary, upstream, hint in (
                (
                    "openai",
                    "any OpenAI-compatible server on the host or LAN (vLLM, SGLang, llama-server, ...): "
                    "--upstream URL; --upstream-kind anthropic for servers speaking /v1/messages",
                    "",
                    "start the server, and give --upstream as the proxy container sees it "
                    "(the host: http://host.docker.internal:PORT/v1)",
                ),
                (
                    "lmstudio",
                    "LM Studio's server on the host (port 1234); --upstream to override",
                    LMSTUDIO_URL,
                    "start LM Studio's server (Developer tab, or `lms server start`) with a model loaded",
                ),
                (
                    "ollama",
                    "Ollama on the host (port 11434); --model NAME of a pulled model",
                    OLLAMA_URL,
                    "start Ollama (`ollama serve`) listening beyond loopback (OLLAMA_HOST=0.0.0.0)",
                ),
            )
        ),
        replace(
            LOCAL,
            name="pool",
            summary="llama-servers behind HAProxy, one server per session (consistent hashing), health "
            "checks, failover: --replicas N in the stack, --backend URL elsewhere (policies/backends.yaml)",
            upstream="http://haproxy:8080/v1",
            profiles=("pool",),
            backend_services=("haproxy",),
            prewarm=False,  # slot files are off behind a pool (ccproxy --upstream-pool on)
            unreachable_hint="every server of the pool is down: `ccstack logs haproxy` names them",
            pool=True,
        ),
        replace(
            LOCAL,
            name="split",
            summary="local, with the model's layers spread over llama.cpp rpc-servers: --rpc-workers N "
            "containers (default 2), --rpc HOST:PORT elsewhere; needs LLAMA_DOCKERFILE=Dockerfile.source",
            profiles=("local", "split"),
            prewarm=False,  # slot save/restore not measured over RPC
            split=True,
        ),
        Mode(
            name="test",
            summary="the scripted upstream (tests only)",
            upstream="http://scripted-upstream:8080/v1",
            upstream_kind="openai",
            backend_features="generic",
            profiles=("test",),
            default_model="scripted",
            context_window=LOCAL_CONTEXT,
            max_output_tokens=4096,
            backend_services=("scripted-upstream",),
            listed=False,
        ),
    )
}


def parse_mode(name: str) -> Mode:
    """The mode called ``name``; raises ValueError naming the known modes."""
    try:
        return MODES[name]
    except KeyError:
        raise ValueError(f"unknown mode {name!r}: choose one of {', '.join(MODES)}") from None
