"""llama-server's own `/v1/messages` as an `anthropic`-kind upstream: the official anthropic SDK -> the real
ccproxy (`--upstream-kind anthropic`, pass-through) -> the real llama-server container. The body reaches the
backend untouched (the billing header included: pass-through never edits), and answers stream back as is."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import anthropic
import pytest
from harness import Ccproxy
from harness.llama import LlamaServer
from llama_helpers import backend_proxy

pytestmark = pytest.mark.backend

BILLING = "x-anthropic-billing-header: cc_version=2.1.330.c0d; cc_entrypoint=cli;"


@pytest.fixture(scope="module")
def native_proxy(llama: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ccproxy]:
    work = tmp_path_factory.mktemp("ccproxy-native")
    # Later flags win: the anthropic kind, and none of the llama-server translation features.
    kind = ("--upstream-kind", "anthropic", "--backend-features", "generic")
    with backend_proxy(llama.url + "/v1", work / "ccproxy.log", *kind) as proxy:
        yield proxy


def test_llama_server_native_messages_through_the_proxy(native_proxy: Ccproxy, llama: LlamaServer) -> None:
    client = anthropic.Anthropic(base_url=native_proxy.url, api_key="unused", max_retries=0, timeout=300)
    nonce = secrets.token_hex(4)
    system = [{"type": "text", "text": BILLING}, {"type": "text", "text": "You are terse."}]
    messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": f"Say hi to {nonce}."}]

    msg = client.messages.create(model="claude-opus-5-5", max_tokens=8, system=system, messages=messages)
    assert msg.type == "message"
    assert msg.role == "assistant"
    assert msg.stop_reason in ("end_turn", "max_tokens")
    assert [b.type for b in msg.content] == ["text"]
    assert 0 < msg.usage.output_tokens <= 8

    # Pass-through: llama-server rendered the request exactly as sent, billing header included (the
    # openai kind drops it); its slot shows the prompt it processed.
    prompts = [str(s.get("prompt")) for s in llama.slots() if nonce in str(s.get("prompt"))]
    assert prompts, "no llama-server slot holds the request"
    assert all(BILLING in p for p in prompts)

    with client.messages.stream(
        model="claude-opus-5-5", max_tokens=8, system=system, messages=messages
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert "message_delta" in kinds
    assert final.content
    assert final.content[0].type == "text"
    assert final.stop_reason in ("end_turn", "max_tokens")

    count = client.messages.count_tokens(model="claude-opus-5-5", system=system, messages=messages)
    assert count.input_tokens > 0
