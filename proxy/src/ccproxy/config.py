"""Proxy settings: one home per value, resolved as CLI flag > env var > YAML config file > default.

`load_settings(flags, environ)` takes the parsed flags (None = not given) and the environment as plain
mappings, so tests pass dicts. Every problem raises `ConfigError` naming the key and where it came from.
"""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import yaml

from ccproxy import config_values as parse
from ccproxy.budget import DEFAULT_PRICES, Budget, Price, parse_prices
from ccproxy.config_values import BackendFeatures, OnOff, TextToolCalls, UpstreamAuth, UpstreamKind
from ccproxy.layout import PromptLayout
from ccproxy.model_map import ModelMap, ModelRule
from ccproxy.profile import PromptProfile

ToolGrammar = OnOff
RepeatHint = OnOff

MAX_PING_INTERVAL = 10.0


class ConfigError(ValueError):
    """A setting is missing, malformed or inconsistent; the message names it."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8787
    upstream: str = field(default="http://127.0.0.1:8080/v1", repr=False)  # may hold credentials
    upstream_kind: UpstreamKind = "openai"
    upstream_key_file: Path | None = None
    upstream_key: str | None = field(default=None, repr=False)
    upstream_auth: UpstreamAuth = "x-api-key"
    """anthropic kind: how the upstream key travels, `x-api-key` (API keys) or `Authorization: Bearer`
    (the OAuth token of `claude setup-token`). openai kind: always Bearer."""
    upstream_betas: tuple[str, ...] = ()
    """Betas added to the `anthropic-beta` header of every upstream request (anthropic kind), after
    the client's own (e.g. `oauth-2025-04-20`, which api.anthropic.com wants with an OAuth token)."""
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    model: str | None = None
    """Default upstream model (None: names no rule matches pass through unchanged)."""
    side_model: str | None = None
    model_rules: tuple[ModelRule, ...] = ()
    """`models.rules` from the config file: Claude name patterns -> upstream models, first match wins."""
    max_tokens: int | None = None
    trace_dir: Path | None = None
    log_level: str = "info"
    read_timeout: float = 600.0
    connect_timeout: float = 10.0
    ping_interval: float = 5.0
    stream_start_wait: float = 0.5
    """How long a streaming request waits for the upstream's status before committing to a 200 stream
    (errors seen within it become proper HTTP errors; later ones become an `event: error`)."""
    backend_features: BackendFeatures = "generic"
    text_tool_calls: TextToolCalls = "auto"
    """Recover tool calls the model writes as text (bare JSON, ```json fences) in the proxy, asking the
    backend for plain text (openai kind, tool_choice auto). auto: on with llama-server features when the
    backend's chat template says `ccproxy:text-tool-calls` (ours for the small Qwen coders does)."""
    tool_grammar: ToolGrammar = "on"
    """With text tool calls: send llama-server a grammar (ccproxy.tool_grammar) under which a call can
    only name one of the request's tools, with arguments valid against its schema; prose stays free."""
    repeat_hint: RepeatHint = "off"
    """openai kind: a reminder after the second (third, ...) identical tool call in a row
    (ccproxy.repeat_hint); off until the task suite shows it helps."""
    repeat_limit: int | None = None
    """openai kind: answer the turn with a notice instead of asking the model again once the
    conversation ends with the results of the N-th identical call in a row, identical results included
    (ccproxy.repeat_guard); None: off. The stack's local modes: 3."""
    upstream_pool: OnOff = "off"
    """llama-server features: the upstream is a load balancer over several llama-servers (ccstack's pool
    mode). Each request carries its session key in `X-Claude-Code-Session-Id` (the balancer hashes on
    it, so a session stays on one server); slots stay per session, but the proxy does not queue on them
    (a queue per slot number would serialise different servers) and the prefix cache stays off."""
    side_max_tokens: int | None = 256
    """Clamp for side requests' max_tokens (titles, haiku calls; openai kind); None: no clamp."""
    prompt_layout: PromptLayout = "stable"
    """openai kind: move the session-varying lines of Claude Code's system text (date, working
    directory, OS version, ...) into the first user turn, so system + tools stay one cached prefix."""
    prompt_profile: PromptProfile = "full"
    """openai kind: ``lean`` reduces the system text and long tool descriptions for small local models
    (ccproxy.profile; every tool and schema kept). Default ``full`` until task-suite measurements choose."""
    prefix_cache_min_tokens: int | None = 1024
    """With llama-server started with --slot-save-path: restore (or process once and save) the shared
    prefix of at least this many tokens before a session's first turn (ccproxy.prefix_cache); None: off."""
    budget_session_tokens: int | None = None
    budget_day_tokens: int | None = None
    budget_session_usd: float | None = None
    budget_day_usd: float | None = None
    """The spend guard (ccproxy.budget): limits per session and per UTC day; None: no limit."""
    prices: tuple[tuple[str, Price], ...] = ()
    """Prices (USD per million tokens) from the flag, env var or config file, before the built-in table."""
    config: Path | None = None

    @property
    def budget(self) -> Budget:
        return Budget(
            self.budget_session_tokens, self.budget_day_tokens, self.budget_session_usd, self.budget_day_usd
        )

    @property
    def price_table(self) -> tuple[tuple[str, Price], ...]:
        """The config file's prices, then the built-in ones (the longest matching name wins; a tie: the
        config file's)."""
        return self.prices + DEFAULT_PRICES

    @property
    def upstream_url(self) -> str:
        """The upstream URL without credentials (they travel as a header: `Upstream`)."""
        return split_credentials(self.upstream)[0]

    @property
    def upstream_credentials(self) -> tuple[str, str] | None:
        """(user, password) from an upstream URL like `https://user:pass@host/v1`, decoded."""
        return split_credentials(self.upstream)[1]

    @property
    def upstream_shown(self) -> str:
        """The upstream URL as /health, /metrics and the logs show it: credentials redacted."""
        url, credentials = split_credentials(self.upstream)
        if credentials is None:
            return url
        parts = urlsplit(url)
        return urlunsplit(parts._replace(netloc="[redacted]@" + parts.netloc))

    @property
    def model_map(self) -> ModelMap:
        """The model map of these settings, built once (not on every access)."""
        return _cached_model_map(self.model_rules, self.model, self.side_model)

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)


@functools.lru_cache(maxsize=16)
def _cached_model_map(rules: tuple[ModelRule, ...], default: str | None, side: str | None) -> ModelMap:
    return ModelMap(rules, default=default, side=side)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """`https://user:pass@host/v1` -> (`https://host/v1`, ("user", "pass")); other URLs unchanged."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=hostport)), (unquote(user), unquote(password))


# name -> (env var, parser); the config-file key is the name itself.
FIELDS: dict[str, tuple[str, Callable[[object], Any]]] = {
    "host": ("CCPROXY_HOST", parse.string),
    "port": ("CCPROXY_PORT", parse.integer),
    "upstream": ("CCPROXY_UPSTREAM", parse.string),
    "upstream_kind": ("CCPROXY_UPSTREAM_KIND", parse.upstream_kind),
    "upstream_key_file": ("CCPROXY_UPSTREAM_KEY_FILE", parse.path),
    "upstream_auth": ("CCPROXY_UPSTREAM_AUTH", parse.upstream_auth),
    "upstream_betas": ("CCPROXY_UPSTREAM_BETAS", parse.betas),
    "token": ("CCPROXY_TOKEN", parse.string),
    "token_file": ("CCPROXY_TOKEN_FILE", parse.path),
    "model": ("CCPROXY_MODEL", parse.string),
    "side_model": ("CCPROXY_SIDE_MODEL", parse.string),
    "max_tokens": ("CCPROXY_MAX_TOKENS", parse.integer),
    "trace_dir": ("CCPROXY_TRACE_DIR", parse.path),
    "log_level": ("CCPROXY_LOG_LEVEL", parse.log_level),
    "read_timeout": ("CCPROXY_READ_TIMEOUT", parse.number),
    "connect_timeout": ("CCPROXY_CONNECT_TIMEOUT", parse.number),
    "ping_interval": ("CCPROXY_PING_INTERVAL", parse.number),
    "stream_start_wait": ("CCPROXY_STREAM_START_WAIT", parse.number),
    "backend_features": ("CCPROXY_BACKEND", parse.backend_features),
    "text_tool_calls": ("CCPROXY_TEXT_TOOL_CALLS", parse.text_tool_calls),
    "tool_grammar": ("CCPROXY_TOOL_GRAMMAR", parse.on_off),
    "repeat_hint": ("CCPROXY_REPEAT_HINT", parse.on_off),
    "upstream_pool": ("CCPROXY_UPSTREAM_POOL", parse.on_off),
    "repeat_limit": ("CCPROXY_REPEAT_LIMIT", parse.optional_int),
    "side_max_tokens": ("CCPROXY_SIDE_MAX_TOKENS", parse.optional_int),
    "prompt_layout": ("CCPROXY_PROMPT_LAYOUT", parse.prompt_layout),
    "prompt_profile": ("CCPROXY_PROMPT_PROFILE", parse.prompt_profile),
    "prefix_cache_min_tokens": ("CCPROXY_PREFIX_CACHE_MIN_TOKENS", parse.optional_int),
    "budget_session_tokens": ("CCPROXY_BUDGET_SESSION_TOKENS", parse.optional_int),
    "budget_day_tokens": ("CCPROXY_BUDGET_DAY_TOKENS", parse.optional_int),
    "budget_session_usd": ("CCPROXY_BUDGET_SESSION_USD", parse.optional_float),
    "budget_day_usd": ("CCPROXY_BUDGET_DAY_USD", parse.optional_float),
    "prices": ("CCPROXY_PRICES", parse_prices),
}
CONFIG_ENV = "CCPROXY_CONFIG"
FILE_ONLY_KEYS = ("models",)


def _read_secret(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror or exc}") from exc
    if not text:
        raise ConfigError(f"{what}: {path} is empty")
    return text


def _read_config_file(path: Path) -> dict[str, object]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config: {path} must hold a mapping of settings")
    unknown = sorted(set(data) - set(FIELDS) - set(FILE_ONLY_KEYS))
    if unknown:
        raise ConfigError(f"config: {path}: unknown key(s) {', '.join(map(str, unknown))}")
    return {str(k): v for k, v in data.items()}


def _model_map(value: object, default: object, side: object) -> ModelMap:
    """`models:` holds `rules` (list of {match, upstream} or {pattern: upstream}), `default`, `side`."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError("config: models must be a mapping with rules, default, side")
    unknown = sorted(set(value) - {"rules", "default", "side"})
    if unknown:
        raise ConfigError(f"config: models: unknown key(s) {', '.join(map(str, unknown))}")
    try:
        return ModelMap.from_config(
            value.get("rules"),
            default=default if default is not None else value.get("default"),
            side=side if side is not None else value.get("side"),
        )
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from exc


def load_settings(flags: Mapping[str, object], environ: Mapping[str, str]) -> Settings:
    """Resolve every setting from flags (None = unset), env vars, the YAML file, then defaults."""
    config_value = flags.get("config") or environ.get(CONFIG_ENV) or None
    config_path = parse.path(config_value) if config_value else None
    file_values = _read_config_file(config_path) if config_path else {}

    values: dict[str, Any] = {}
    for name, (env, parser) in FIELDS.items():
        sources = (
            ("--" + name.replace("_", "-"), flags.get(name)),
            (env, environ.get(env) or None),
            (f"config {name}", file_values.get(name)),
        )
        for where, raw in sources:
            if raw is None:
                continue
            try:
                values[name] = parser(raw)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{where}: {exc}") from exc
            break

    model_map = _model_map(file_values.get("models"), values.get("model"), values.get("side_model"))
    values.update(model_rules=model_map.rules, model=model_map.default, side_model=model_map.side)
    values["config"] = config_path

    if values.get("token") is None and values.get("token_file") is not None:
        values["token"] = _read_secret(values["token_file"], "token-file")
    if values.get("upstream_key_file") is not None:
        values["upstream_key"] = _read_secret(values["upstream_key_file"], "upstream-key-file")

    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    if not s.upstream.startswith(("http://", "https://")):
        raise ConfigError(f"upstream: must be an http(s) URL including /v1, got {s.upstream!r}")
    if not 0 < s.port < 65536:
        raise ConfigError(f"port: {s.port} is out of range")
    if not 0 < s.ping_interval <= MAX_PING_INTERVAL:
        raise ConfigError(
            f"ping-interval: must be > 0 and <= {MAX_PING_INTERVAL:g} s, got {s.ping_interval:g}"
        )
    if s.read_timeout <= 0 or s.connect_timeout <= 0:
        raise ConfigError("read-timeout and connect-timeout must be > 0")
    if s.stream_start_wait < 0:
        raise ConfigError("stream-start-wait must be >= 0")
    if s.repeat_limit is not None and s.repeat_limit < 2:
        raise ConfigError(f"repeat-limit: must be >= 2 (or off), got {s.repeat_limit}")
    if s.side_max_tokens is not None and s.side_max_tokens < 1:
        raise ConfigError(f"side-max-tokens: must be >= 1 (or off), got {s.side_max_tokens}")
    if s.prefix_cache_min_tokens is not None and s.prefix_cache_min_tokens < 1:
        raise ConfigError(f"prefix-cache-min-tokens: must be >= 1 (or off), got {s.prefix_cache_min_tokens}")
    if s.max_tokens is not None and s.max_tokens < 1:
        raise ConfigError(f"max-tokens: must be >= 1, got {s.max_tokens}")
    for name in ("budget_session_tokens", "budget_day_tokens", "budget_session_usd", "budget_day_usd"):
        limit = getattr(s, name)
        if limit is not None and limit <= 0:
            raise ConfigError(f"{name.replace('_', '-')}: must be > 0 (or off), got {limit}")
    if not s.token and not s.is_loopback:
        raise ConfigError(
            f"host: refusing to listen on non-loopback {s.host!r} without a client token "
            "(set --token/--token-file or CCPROXY_TOKEN/CCPROXY_TOKEN_FILE)"
        )


def default_environ() -> Mapping[str, str]:
    return os.environ
