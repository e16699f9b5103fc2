"""How the upstream key travels to an anthropic-kind upstream: x-api-key (API keys) or Bearer with
extra betas (the OAuth token of `claude setup-token`, the `subscription` mode)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from ccproxy.app import create_app
from ccproxy.config import ConfigError, Settings, load_settings
from ccproxy.upstream import with_betas

pytestmark = pytest.mark.app

TOKEN = "client-token-1"
OAUTH = "sk-ant-oat01-test-token"
SUBSCRIPTION = Settings(
    upstream="https://api.anthropic.test/v1",
    upstream_kind="anthropic",
    upstream_key=OAUTH,
    upstream_auth="bearer",
    upstream_betas=("oauth-2025-04-20",),
    token=TOKEN,
)
ANSWER = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "content": [{"type": "text", "text": "hi"}],
    "model": "claude-opus-4-8",
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 5, "output_tokens": 1},
}
BODY = {"model": "claude-opus-4-8", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


async def send(settings: Settings, headers: dict[str, str]) -> httpx.Request:
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ANSWER)

    app = create_app(settings, transport=httpx.MockTransport(upstream))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
        r = await client.post("/v1/messages?beta=true", content=json.dumps(BODY), headers=headers)
    assert r.status_code == 200, r.text
    (request,) = seen
    return request


async def test_bearer_carries_the_token_and_the_oauth_beta_after_the_clients() -> None:
    request = await send(
        SUBSCRIPTION,
        {
            "authorization": f"Bearer {TOKEN}",
            "x-api-key": "sk-ant-from-the-client",
            "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
            "anthropic-version": "2023-06-01",
        },
    )
    assert request.headers["authorization"] == f"Bearer {OAUTH}"
    assert "x-api-key" not in request.headers
    assert request.headers["anthropic-beta"] == (
        "claude-code-20250219,interleaved-thinking-2025-05-14,oauth-2025-04-20"
    )
    assert TOKEN not in str(request.headers)


async def test_the_beta_is_added_when_the_client_sends_none() -> None:
    request = await send(SUBSCRIPTION, {"x-api-key": TOKEN, "anthropic-version": "2023-06-01"})
    assert request.headers["anthropic-beta"] == "oauth-2025-04-20"
    assert request.headers["authorization"] == f"Bearer {OAUTH}"


async def test_the_default_stays_x_api_key_without_extra_betas() -> None:
    settings = Settings(
        upstream="https://api.anthropic.test/v1",
        upstream_kind="anthropic",
        upstream_key="sk-ant-api",
        token=TOKEN,
    )
    request = await send(settings, {"x-api-key": TOKEN, "anthropic-beta": "claude-code-20250219"})
    assert request.headers["x-api-key"] == "sk-ant-api"
    assert "authorization" not in request.headers
    assert request.headers["anthropic-beta"] == "claude-code-20250219"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "oauth-2025-04-20"),
        ("", "oauth-2025-04-20"),
        ("a-1, b-2", "a-1,b-2,oauth-2025-04-20"),
        ("oauth-2025-04-20,a-1", "oauth-2025-04-20,a-1"),
    ],
)
def test_with_betas(header: str | None, expected: str) -> None:
    assert with_betas(header, ("oauth-2025-04-20",)) == expected


def test_settings_from_the_environment() -> None:
    env = {"CCPROXY_UPSTREAM_AUTH": "Bearer", "CCPROXY_UPSTREAM_BETAS": "oauth-2025-04-20, x-1"}
    s = load_settings({}, env)
    assert s.upstream_auth == "bearer"
    assert s.upstream_betas == ("oauth-2025-04-20", "x-1")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CCPROXY_UPSTREAM_AUTH": "basic"}, "CCPROXY_UPSTREAM_AUTH: must be x-api-key or bearer"),
        ({"CCPROXY_UPSTREAM_BETAS": "a b"}, "not a beta name"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({}, env)
