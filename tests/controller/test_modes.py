"""ccstack.modes: the mode table."""

from __future__ import annotations

import pytest
from ccstack.modes import MODES, parse_mode

pytestmark = pytest.mark.unit


def test_user_modes_exist() -> None:
    assert {"local", "mlx", "openrouter", "anthropic", "test"} == set(MODES)


def test_unknown_mode_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="local, mlx, openrouter, anthropic"):
        parse_mode("ollama")


@pytest.mark.parametrize("name", list(MODES))
def test_upstreams_include_v1_and_kind_matches(name: str) -> None:
    mode = parse_mode(name)
    assert mode.upstream.endswith("/v1")
    assert (mode.upstream_kind == "anthropic") == (name == "anthropic")


def test_internet_modes_need_a_key_and_egress() -> None:
    for name in ("openrouter", "anthropic"):
        mode = parse_mode(name)
        assert mode.egress
        assert mode.key_env
    for name in ("local", "test"):
        assert not parse_mode(name).egress
