"""`ccproxy`: run the proxy with uvicorn.

    ccproxy --upstream http://127.0.0.1:8080/v1 --backend-features llama-server
    ccproxy --host 0.0.0.0 --token-file /run/secrets/proxy_token --upstream https://openrouter.ai/api/v1 \\
            --upstream-key-file /run/secrets/openrouter_key --model qwen/qwen3-coder

Every flag also has an env var (CCPROXY_*) and a key in the YAML config file (--config); a flag beats
the env var, which beats the file, which beats the default.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from ccproxy import __version__
from ccproxy.config import FIELDS, ConfigError, Settings, load_settings
from ccproxy.layout import LAYOUT_VERSION
from ccproxy.profile import PROFILE_VERSION
from ccproxy.repeat_guard import GUARD_VERSION
from ccproxy.tool_grammar import GRAMMAR_VERSION

HELP: dict[str, str] = {
    "host": "listen address (default 127.0.0.1; a non-loopback address needs a token)",
    "port": "listen port (default 8787)",
    "upstream": "upstream base URL including /v1 (default http://127.0.0.1:8080/v1)",
    "upstream_kind": "openai (Chat Completions, translated) or anthropic (pass-through); default openai",
    "upstream_key_file": "file holding the upstream API key (injected upstream; never sent by the client)",
    "upstream_auth": "anthropic kind: how the upstream key travels, x-api-key (default; API keys) or bearer "
    "(Authorization: Bearer, e.g. the OAuth token of `claude setup-token`)",
    "upstream_betas": "anthropic kind: comma-separated betas added to every upstream request's "
    "anthropic-beta header after the client's (e.g. oauth-2025-04-20)",
    "token": "client token the proxy accepts (Authorization: Bearer or x-api-key)",
    "token_file": "file holding the client token",
    "model": "default upstream model for names no mapping rule matches",
    "side_model": "upstream model for side requests (titles, haiku, max_tokens=1)",
    "max_tokens": "clamp max_tokens sent upstream to this",
    "trace_dir": "write one redacted JSON trace per request here (dir 0700, files 0600)",
    "log_level": "critical|error|warning|info|debug (default info)",
    "read_timeout": "seconds of upstream silence before giving up (default 600)",
    "connect_timeout": "seconds to connect to the upstream (default 10)",
    "ping_interval": "seconds between SSE pings while the upstream is silent, <= 10 (default 5)",
    "stream_start_wait": "seconds a stream waits for the upstream's status before starting (default 0.5)",
    "backend_features": "llama-server (slots, /tokenize, /props, id_slot) or generic (default)",
    "text_tool_calls": "recover tool calls written as text in the proxy: auto (default: when the "
    "llama-server chat template asks for it), on, off",
    "tool_grammar": "with text tool calls: on (default: a llama-server grammar lets a call name only the "
    "request's tools, with schema-valid arguments; prose stays free) or off",
    "repeat_hint": "on: a reminder after the 2nd, 3rd... identical tool call in a row (small models "
    "repeat failing calls); off (default, until measured)",
    "repeat_limit": "N: once the conversation ends with the results of the N-th identical tool call in a "
    "row (same arguments, same results), answer the turn with a notice instead of asking the model "
    "again; off (default)",
    "upstream_pool": "on: the upstream balances several llama-servers (ccstack pool mode): the session key "
    "travels as X-Claude-Code-Session-Id, no queue per slot, no prefix cache; off (default)",
    "side_max_tokens": "clamp max_tokens of side requests (titles, haiku) to this (default 256; off)",
    "prompt_layout": "stable (default: session-varying lines of the system prompt open the first user "
    "turn, so system + tools stay one cached prefix; openai kind) or off",
    "prompt_profile": "full (default, until task-suite measurements choose) or lean (reduced system text "
    "and tool descriptions for small local models; every tool and schema kept; openai kind)",
    "prefix_cache_min_tokens": "llama-server with --slot-save-path: keep shared prefixes of at least this "
    "many tokens in slot files, restored before a session's first turn (default 1024; off)",
    "budget_session_tokens": "spend guard: tokens (prompt, cached or not, + output) one Claude Code session "
    "may use; then 402 billing_error (default off)",
    "budget_day_tokens": "spend guard: tokens all sessions may use per UTC day (default off)",
    "budget_session_usd": "spend guard: USD one session may spend (the upstream's reported cost, else the "
    "price table; default off)",
    "budget_day_usd": "spend guard: USD all sessions may spend per UTC day (default off)",
    "prices": "USD per million tokens of models the built-in table lacks or gets wrong: "
    "MODEL=IN/OUT[/CACHE_READ[/CACHE_WRITE]],... (the config file: a mapping)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccproxy",
        description="Anthropic Messages API proxy for Claude Code over OpenAI-compatible "
        "or Anthropic upstreams.",
        epilog="Each option can also be set by its env var or a key of the YAML --config file "
        "(flag > env > file > default).",
    )
    parser.add_argument("--version", action="version", version=f"ccproxy {__version__}")
    parser.add_argument("--config", metavar="FILE", help="YAML config file [env CCPROXY_CONFIG]")
    for name, (env, _parse) in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(
            flag, dest=name, default=None, metavar=name.upper(), help=f"{HELP[name]} [env {env}]"
        )
    return parser


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every upstream request at INFO; ccproxy's own line per request says more.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings: Settings = load_settings(vars(args), os.environ)
    except ConfigError as exc:
        print(f"ccproxy: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)

    import uvicorn

    from ccproxy.app import create_app
    from ccproxy.http_server import guarded_protocol

    log = logging.getLogger("ccproxy")
    layout = LAYOUT_VERSION if settings.prompt_layout == "stable" else "off"
    profile = (
        PROFILE_VERSION
        if settings.prompt_profile == "lean"
        else "full (the proxy's default; the stack's local-model modes run lean)"
    )
    log.info(
        "ccproxy %s on %s:%d -> %s (%s, %s, prompt layout %s, prompt profile %s, tool grammar %s, "
        "repeat guard %s)%s",
        __version__,
        settings.host,
        settings.port,
        settings.upstream_shown,
        settings.upstream_kind,
        settings.backend_features,
        layout if settings.upstream_kind == "openai" else "n/a",
        profile if settings.upstream_kind == "openai" else "n/a",
        GRAMMAR_VERSION if settings.tool_grammar == "on" else "off",
        f"{GUARD_VERSION} at {settings.repeat_limit}" if settings.repeat_limit is not None else "off",
        "" if settings.token else " (no client token: loopback only)",
    )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        timeout_keep_alive=75,
        http=guarded_protocol(),  # header size limit, header and body-idle timeouts (http_server.py)
        lifespan="on",
        proxy_headers=False,  # X-Forwarded-* are not used; the middleware costs a layer per request
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
