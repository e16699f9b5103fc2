"""What a user's model server says about itself: its context window and its models.

Readers are pure functions over one endpoint's decoded JSON, each returning a :class:`Window` or None
when the answer does not say:

    llama-server   GET  /props             default_generation_settings.n_ctx (per slot), else n_ctx
    LM Studio      GET  /api/v0/models     loaded_context_length (the loaded instance), else
                                           max_context_length (what the model supports)
    Ollama         POST /api/show {model}  num_ctx of the model's parameters, else the model's
                                           <arch>.context_length (Ollama may run it with less)
    vLLM, SGLang   GET  /v1/models         max_model_len of the model

``ask_server(url, model)`` is the I/O: it asks each endpoint in that order (short timeouts) and returns
:class:`ServerInfo` with the first window found and the served models (``/v1/models``). The URL is the
one the proxy container uses; ``host_view`` turns ``host.docker.internal`` into ``127.0.0.1`` for the
controller, which runs on the host itself.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HOST_ALIAS = "host.docker.internal"
TIMEOUT = 5.0


@dataclass(frozen=True)
class Window:
    tokens: int
    source: str  # the endpoint and field it came from
    note: str | None = None  # a caveat worth showing the user


@dataclass(frozen=True)
class ServerInfo:
    reachable: bool
    window: Window | None = None
    models: tuple[str, ...] = ()
    error: str | None = None  # why the server could not be asked
    asked: tuple[str, ...] = field(default=())  # the endpoints tried, for messages


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def window_from_llama_props(props: Any) -> Window | None:
    """llama-server ``/props``: the context of one slot (what a conversation gets)."""
    if not isinstance(props, dict):
        return None
    settings = props.get("default_generation_settings")
    if isinstance(settings, dict) and (n := _positive_int(settings.get("n_ctx"))):
        return Window(n, "llama-server /props default_generation_settings.n_ctx")
    if n := _positive_int(props.get("n_ctx")):
        return Window(n, "llama-server /props n_ctx")
    return None


def _pick(entries: list[Any], model: str | None, key: str = "id") -> dict[str, Any] | None:
    """The entry for ``model``, else the only one (or the first loaded one)."""
    dicts = [e for e in entries if isinstance(e, dict)]
    if model:
        return next((e for e in dicts if e.get(key) == model), None)
    loaded = [e for e in dicts if e.get("state") == "loaded"]
    candidates = loaded or dicts
    return candidates[0] if len(candidates) == 1 or loaded else None


def window_from_lmstudio_models(data: Any, model: str | None) -> Window | None:
    """LM Studio's REST API ``/api/v0/models``."""
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return None
    entry = _pick([e for e in entries if not isinstance(e, dict) or e.get("type") != "embeddings"], model)
    if entry is None:
        return None
    if n := _positive_int(entry.get("loaded_context_length")):
        return Window(n, "LM Studio /api/v0/models loaded_context_length")
    if n := _positive_int(entry.get("max_context_length")):
        return Window(
            n,
            "LM Studio /api/v0/models max_context_length",
            "the model is not loaded: LM Studio may load it with a smaller context (its load settings)",
        )
    return None


def window_from_ollama_show(show: Any) -> Window | None:
    """Ollama ``/api/show``: num_ctx when the model sets it, else what the model supports."""
    if not isinstance(show, dict):
        return None
    params = show.get("parameters")
    if isinstance(params, str):
        for line in params.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "num_ctx" and parts[1].isdigit() and int(parts[1]) > 0:
                return Window(int(parts[1]), "Ollama /api/show parameters num_ctx")
    info = show.get("model_info")
    if isinstance(info, dict):
        for key, value in info.items():
            if key.endswith(".context_length") and (n := _positive_int(value)):
                return Window(
                    n,
                    f"Ollama /api/show model_info {key}",
                    "Ollama runs models with its own default context (OLLAMA_CONTEXT_LENGTH) unless the "
                    "model sets num_ctx: set one of them, or pass --context-window",
                )
    return None


def window_from_openai_models(data: Any, model: str | None) -> Window | None:
    """vLLM / SGLang ``/v1/models``: ``max_model_len`` of the model."""
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return None
    entry = _pick(entries, model)
    if entry and (n := _positive_int(entry.get("max_model_len"))):
        return Window(n, "/v1/models max_model_len")
    return None


def model_ids(data: Any) -> tuple[str, ...]:
    """The ids of an OpenAI-style ``/v1/models`` answer."""
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return ()
    return tuple(str(e["id"]) for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str))


def root_of(url: str) -> str:
    """The server root of an upstream base URL (``.../v1`` removed)."""
    base = url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def host_view(url: str) -> str:
    """``url`` as this host reaches it: host.docker.internal is the host itself."""
    parts = urlsplit(url)
    if parts.hostname != HOST_ALIAS:
        return url
    netloc = parts.netloc.replace(HOST_ALIAS, "127.0.0.1")
    return urlunsplit(parts._replace(netloc=netloc))


# --- I/O -----------------------------------------------------------------------------------------

Fetch = Callable[[str, bytes | None], Any]
"""(url, JSON body or None for GET) -> decoded JSON; raises OSError/ValueError when it cannot."""


def http_fetch(url: str, body: bytes | None, timeout: float = TIMEOUT) -> Any:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if body is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def ask_server(url: str, model: str | None, fetch: Fetch = http_fetch) -> ServerInfo:
    """Ask the server behind the upstream base URL ``url`` (as this host sees it) for its window."""
    root = root_of(url)
    asked: list[str] = []
    models: tuple[str, ...] = ()
    try:
        models = model_ids(fetch(f"{url.rstrip('/')}/models", None))
        asked.append("/v1/models")
    except (OSError, ValueError) as e:
        if isinstance(e, urllib.error.HTTPError):
            asked.append(f"/v1/models ({e.code})")
        else:
            return ServerInfo(reachable=False, error=f"{url}/models: {e}")
    wanted = model or (models[0] if len(models) == 1 else None)
    readers: list[tuple[str, str, bytes | None, Callable[[Any], Window | None]]] = [
        ("/props", f"{root}/props", None, window_from_llama_props),
        ("/api/v0/models", f"{root}/api/v0/models", None, lambda d: window_from_lmstudio_models(d, wanted)),
    ]
    if wanted:
        body = json.dumps({"model": wanted}).encode()
        readers.append(("/api/show", f"{root}/api/show", body, window_from_ollama_show))
    models_url = f"{url.rstrip('/')}/models"
    readers.append(("/v1/models", models_url, None, lambda d: window_from_openai_models(d, wanted)))
    for name, endpoint, body_, reader in readers:
        try:
            window = reader(fetch(endpoint, body_))
        except (OSError, ValueError):
            continue
        asked.append(name)
        if window is not None:
            return ServerInfo(True, window, models, asked=tuple(asked))
    return ServerInfo(True, None, models, asked=tuple(asked))
