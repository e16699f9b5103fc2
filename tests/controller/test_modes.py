"""ccstack.modes: the mode table."""

from __future__ import annotations

import pytest
from ccstack.modes import MODES, parse_mode

pytestmark = pytest.mark.unit


def test_user_modes_exist() -> None:
    assert {
        "local",
        "mlx",
        "openrouter",
        "anthropic",
        "subscription",
        "openai",
        "lmstudio",
        "ollama",
        "pool",
        "split",
        "test",
    } == set(MODES)


def test_unknown_mode_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="local, mlx, openrouter, anthropic"):
        parse_mode("vllm")


@pytest.mark.parametrize("name", list(MODES))
def test_upstreams_include_v1_and_kind_matches(name: str) -> None:
    mode = parse_mode(name)
    assert mode.upstream.endswith("/v1") or mode.needs_upstream
    assert (mode.upstream_kind == "anthropic") == (name in ("anthropic", "subscription"))


def test_internet_modes_need_a_key_and_egress() -> None:
    for name in ("openrouter", "anthropic"):
        mode = parse_mode(name)
        assert mode.egress
        assert mode.key_env
    for name in ("local", "test"):
        assert not parse_mode(name).egress


def test_behaviour_is_in_fields_not_names() -> None:
    local = parse_mode("local")
    assert local.local_model
    assert local.prewarm
    assert local.backend_services == ("llama-server",)
    for mode in MODES.values():
        assert not mode.prewarm or mode.local_model  # the prefix lives in llama-server's slots
        # the pool's replicas depend on the pool (ccstack.pool), not on the mode
        assert mode.local_model == ("llama-server" in mode.backend_services or mode.pool)
    assert parse_mode("mlx").unreachable_hint
    assert [m.name for m in MODES.values() if not m.listed] == ["test"]


def test_pool_talks_to_haproxy_with_llama_server_features() -> None:
    pool = parse_mode("pool")
    assert pool.upstream == "http://haproxy:8080/v1"
    assert (pool.backend_features, pool.backend_services) == ("llama-server", ("haproxy",))
    assert not pool.prewarm  # the proxy's prefix cache is off behind a pool (ccproxy --upstream-pool)
    assert not pool.egress  # only HAProxy reaches servers elsewhere
    assert [m.name for m in MODES.values() if m.pool] == ["pool"]


def test_split_is_local_with_rpc_servers() -> None:
    split, local = parse_mode("split"), parse_mode("local")
    assert split.split
    assert (split.upstream, split.backend_services, split.profiles) == (
        local.upstream,
        ("llama-server",),
        ("local", "split"),
    )
    assert [m.name for m in MODES.values() if m.split] == ["split"]


def test_subscription_sends_the_oauth_token_as_bearer() -> None:
    mode = parse_mode("subscription")
    assert mode.key_env == "CLAUDE_CODE_OAUTH_TOKEN"
    assert mode.upstream_auth == "bearer"
    assert mode.upstream_betas == ("oauth-2025-04-20",)
    assert mode.upstream == parse_mode("anthropic").upstream
    assert [m.name for m in MODES.values() if m.upstream_auth == "bearer"] == ["subscription"]


def test_user_server_modes_reach_the_host_like_mlx() -> None:
    for name, port in (("openai", None), ("lmstudio", 1234), ("ollama", 11434)):
        mode = parse_mode(name)
        assert mode.user_server
        assert mode.host_gateway
        assert mode.egress
        assert mode.needs_upstream == (port is None)
        assert mode.unreachable_hint
        if port:
            assert mode.upstream == f"http://host.docker.internal:{port}/v1"


def test_the_local_model_modes_give_the_agent_the_same_setup() -> None:
    """`pool` and `split` arrange the servers differently; the agent's side is the local mode's."""
    fields = ("agent_tools", "background_tasks", "silent_turn_reminder", "prompt_profile", "default_model",
              "context_window", "window_from_backend", "max_output_tokens", "backend_features")  # fmt: skip
    local = parse_mode("local")
    for name in ("pool", "split"):
        mode = parse_mode(name)
        assert mode.local_model
        assert [getattr(mode, f) for f in fields] == [getattr(local, f) for f in fields], name
