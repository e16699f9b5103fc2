"""llama-server specifics: its facts from /props and /slots, exact counts by its template and tokenizer."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from ccproxy.llama_server import count_with_llama_server, parse_backend_info
from ccproxy.upstream import Upstream

pytestmark = pytest.mark.unit


def test_parse_backend_info_shapes() -> None:
    info = parse_backend_info({"total_slots": 4, "default_generation_settings": {"n_ctx": 8192}}, None)
    assert (info.n_ctx, info.n_slots) == (8192, 4)
    info = parse_backend_info({}, [{"id": 0, "n_ctx": 2048}, {"id": 1, "n_ctx": 4096}])
    assert (info.n_ctx, info.n_slots) == (2048, 2)
    info = parse_backend_info(None, None)
    assert (info.n_ctx, info.n_slots) == (None, 1)


def test_parse_backend_info_reads_the_text_tool_calls_marker() -> None:
    marked = {"chat_template": "{#- ccproxy:text-tool-calls -#}{{ messages }}"}
    assert parse_backend_info(marked, None).text_tool_calls
    assert not parse_backend_info({"chat_template": "{{ messages }}"}, None).text_tool_calls
    assert not parse_backend_info(None, None).text_tool_calls


async def test_count_with_llama_server_renders_then_tokenizes() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((request.url.path, body))
        if request.url.path == "/apply-template":
            return httpx.Response(200, json={"prompt": "<|im_start|>user\nhi<|im_end|>\n"})
        return httpx.Response(200, json={"tokens": [1, 2, 3, 4, 5]})

    upstream = Upstream(
        "http://llama:8080/v1",
        kind="openai",
        api_key=None,
        read_timeout=5,
        connect_timeout=1,
        transport=httpx.MockTransport(handler),
    )
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert await count_with_llama_server(upstream, body) == 5
    assert seen == [
        ("/apply-template", body),
        (
            "/tokenize",
            {"content": "<|im_start|>user\nhi<|im_end|>\n", "add_special": True, "parse_special": True},
        ),
    ]


async def test_count_with_llama_server_rejects_odd_answers() -> None:
    upstream = Upstream(
        "http://llama:8080/v1",
        kind="openai",
        api_key=None,
        read_timeout=5,
        connect_timeout=1,
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"unexpected": True})),
    )
    with pytest.raises(ValueError, match="prompt"):
        await count_with_llama_server(upstream, {"messages": []})
