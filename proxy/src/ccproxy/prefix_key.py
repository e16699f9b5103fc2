"""What Claude Code's shared prefix is, and the key of its saved KV cache (pure).

Claude Code starts every session with the same 16-22 k tokens: the system prompt and the tools. On a
CPU that costs minutes to prefill; llama-server can save a slot's KV cache to a file and restore it
(`ccproxy.prefix_cache` does the I/O). The file is named after a key of exactly what it holds, so a
file made for another prompt, template or model is never restored:

    probe = probe_body(openai_body)               # the request cut before its first user turn
    text = cut_prefix(rendered(probe))            # rendered by the backend's own template
    key = prefix_key(model_identity(props, models), text)
    filename(key)                                 # "ccproxy-prefix-<32 hex>.bin"

The prefix is the rendered chat up to the content of the first user turn: the leading system message
and the tools as the backend's chat template lays them out (for Qwen-style templates the tools are part
of the system turn). Whatever varies between sessions and comes after it (the first user message, and
with a cache-stable layout the environment block) is not part of the key. It is keyed on the body the
proxy actually sends upstream, so it follows any layout the translation produces.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "FILE_PREFIX",
    "SENTINEL",
    "cut_prefix",
    "filename",
    "model_identity",
    "prefix_key",
    "probe_body",
]

SENTINEL = "\ue000ccproxy-prefix-end\ue000"
"""Content of the probe's user message: private-use characters no template or prompt produces."""
FILE_PREFIX = "ccproxy-prefix-"
KEY_VERSION = "ccproxy-prefix-v1"
"""Part of every key: bump it when what a file holds changes meaning."""
_PROBE_DROPPED = ("messages", "stream", "stream_options", "max_tokens", "id_slot", "n_probs")
_PROPS_FIELDS = ("model_path", "model_alias", "model_ftype", "build_info")
_META_FIELDS = ("vocab_type", "n_vocab", "n_ctx_train", "n_embd", "n_params", "size", "ftype")


def probe_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The chat request for /apply-template that renders only the shared prefix: the leading system
    message (if any), then a user message holding `SENTINEL`; tools, tool choice and template kwargs as
    in `body`, so the rendering is the one the real request gets."""
    probe = {k: v for k, v in body.items() if k not in _PROBE_DROPPED}
    messages = body.get("messages")
    first = messages[0] if isinstance(messages, list) and messages else None
    leading = [first] if isinstance(first, Mapping) and first.get("role") == "system" else []
    probe["messages"] = [*leading, {"role": "user", "content": SENTINEL}]
    return probe


def cut_prefix(rendered: str) -> str | None:
    """The rendered probe up to the sentinel (None when the template lost it)."""
    end = rendered.find(SENTINEL)
    return rendered[:end] if end > 0 else None


def model_identity(props: Mapping[str, Any], models: object) -> str:
    """What tells this model and server apart, from llama-server's /props and /v1/models: the model
    file, its type and size, the build, the context per slot. A file saved by another model or build
    gets another key."""
    identity: dict[str, Any] = {k: props.get(k) for k in _PROPS_FIELDS}
    settings = props.get("default_generation_settings")
    identity["n_ctx"] = settings.get("n_ctx") if isinstance(settings, Mapping) else None
    data = models.get("data") if isinstance(models, Mapping) else None
    entry = data[0] if isinstance(data, list) and data and isinstance(data[0], Mapping) else {}
    meta = entry.get("meta")
    identity["meta"] = {k: meta.get(k) for k in _META_FIELDS} if isinstance(meta, Mapping) else None
    return json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)


def prefix_key(identity: str, prefix: str) -> str:
    """32 hex digits of SHA-256 over the key version, the model identity and the rendered prefix."""
    digest = hashlib.sha256()
    for part in (KEY_VERSION, identity, prefix):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()[:32]


def filename(key: str) -> str:
    """The slot file's name in llama-server's --slot-save-path directory."""
    return f"{FILE_PREFIX}{key}.bin"
