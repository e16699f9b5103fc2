"""Token counting: llama-server's own template + tokenizer, and offline tiktoken that never fetches."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ccproxy import tokens

pytestmark = pytest.mark.unit


@pytest.fixture
def offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh TIKTOKEN_CACHE_DIR, and any attempt by tiktoken to download fails the test."""
    import tiktoken.load

    def no_network(blobpath: str) -> bytes:
        raise AssertionError(f"tiktoken tried to fetch {blobpath}")

    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    tokens.offline_encoding.cache_clear()
    yield tmp_path / "tiktoken"
    tokens.offline_encoding.cache_clear()


def test_offline_encoding_is_placed_under_the_url_sha1(offline_cache: Path) -> None:
    encoding = tokens.offline_encoding()
    assert encoding.name == "o200k_base"
    assert encoding.encode("hello world") == [24912, 2375]
    expected = hashlib.sha1(tokens.ENCODING_URLS["o200k_base"].encode()).hexdigest()
    assert (offline_cache / expected).is_file()


def test_count_offline_grows_with_the_request(offline_cache: Path) -> None:
    small = {"messages": [{"role": "user", "content": "hello"}]}
    tool = {
        "type": "function",
        "function": {"name": "Write", "description": "Write a file " * 20, "parameters": {}},
    }
    large: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "You are helpful. " * 100},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "data:x"}},
                ],
            },
        ],
        "tools": [tool],
    }
    n_small = tokens.count_offline(small)
    n_large = tokens.count_offline(large)
    assert 1 < n_small < 15
    assert n_large > n_small + tokens.TOKENS_PER_IMAGE + 300


def test_estimate() -> None:
    assert tokens.estimate_tokens(b"x" * 400) == 100
    assert tokens.estimate_tokens("") == 1


def test_offline_encoding_leaves_the_environment_alone(offline_cache: Path) -> None:
    import os

    before = dict(os.environ)
    assert tokens.offline_encoding().encode("hello world") == [24912, 2375]
    assert dict(os.environ) == before
