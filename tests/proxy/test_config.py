"""Settings: flag > env > YAML file > default; every problem names its key."""

from __future__ import annotations

from pathlib import Path

import pytest
from ccproxy.budget import Budget, Price, price_for
from ccproxy.config import ConfigError, Settings, is_loopback_host, load_settings

pytestmark = pytest.mark.unit


def test_defaults() -> None:
    s = load_settings({}, {})
    assert s == Settings()
    assert (s.host, s.port, s.upstream_kind, s.backend_features) == ("127.0.0.1", 8787, "openai", "generic")
    assert s.ping_interval <= 10
    assert s.model_map.resolve("claude-opus-4-8") == "claude-opus-4-8"


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    config = tmp_path / "ccproxy.yaml"
    config.write_text(
        "port: 9001\nmodel: from-file\nside_model: side-file\nread_timeout: 30\nlog_level: debug\n"
    )
    env = {"CCPROXY_CONFIG": str(config), "CCPROXY_PORT": "9002", "CCPROXY_MODEL": "from-env"}
    s = load_settings({"model": "from-flag"}, env)
    assert s.model == "from-flag"  # flag beats env and file
    assert s.port == 9002  # env beats file
    assert s.read_timeout == 30.0  # file beats default
    assert s.side_model == "side-file"
    assert s.log_level == "debug"
    assert s.ping_interval == Settings().ping_interval  # default
    assert s.config == config


def test_prompt_layout_is_stable_by_default_and_switchable_off(tmp_path: Path) -> None:
    assert load_settings({}, {}).prompt_layout == "stable"
    config = tmp_path / "ccproxy.yaml"
    config.write_text("prompt_layout: 'off'\n")
    assert load_settings({"config": str(config)}, {}).prompt_layout == "off"
    assert load_settings({}, {"CCPROXY_PROMPT_LAYOUT": "OFF"}).prompt_layout == "off"
    assert (
        load_settings({"prompt_layout": "stable"}, {"CCPROXY_PROMPT_LAYOUT": "off"}).prompt_layout == "stable"
    )


def test_prompt_profile_is_full_by_default_and_switchable_to_lean(tmp_path: Path) -> None:
    assert load_settings({}, {}).prompt_profile == "full"
    config = tmp_path / "ccproxy.yaml"
    config.write_text("prompt_profile: lean\n")
    assert load_settings({"config": str(config)}, {}).prompt_profile == "lean"
    assert load_settings({}, {"CCPROXY_PROMPT_PROFILE": "LEAN"}).prompt_profile == "lean"
    assert (
        load_settings({"prompt_profile": "full"}, {"CCPROXY_PROMPT_PROFILE": "lean"}).prompt_profile == "full"
    )


def test_config_flag_beats_config_env(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("port: 1111\n")
    b.write_text("port: 2222\n")
    assert load_settings({"config": str(a)}, {"CCPROXY_CONFIG": str(b)}).port == 1111


def test_model_rules_from_file(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "models:\n"
        "  default: big-model\n"
        "  side: small-model\n"
        "  rules:\n"
        "    - {match: 'claude-*haiku*', upstream: small-model}\n"
        "    - {match: sonnet, upstream: mid-model}\n"
    )
    s = load_settings({"config": str(config)}, {})
    assert s.model == "big-model"
    assert s.model_map.resolve("claude-sonnet-5") == "mid-model"
    assert s.model_map.resolve("claude-haiku-4-5-20251001") == "small-model"
    assert s.model_map.resolve("claude-opus-4-8") == "big-model"
    assert s.model_map.resolve("claude-opus-4-8", side=True) == "small-model"
    # --model overrides models.default
    assert (
        load_settings({"config": str(config), "model": "cli-model"}, {}).model_map.resolve("x") == "cli-model"
    )


def test_secrets_from_files(tmp_path: Path) -> None:
    key, token = tmp_path / "key", tmp_path / "token"
    key.write_text("sk-upstream\n")
    token.write_text("tok-123\n")
    s = load_settings({"upstream_key_file": str(key)}, {"CCPROXY_TOKEN_FILE": str(token)})
    assert s.upstream_key == "sk-upstream"
    assert s.token == "tok-123"
    assert "sk-upstream" not in repr(s)
    assert "tok-123" not in repr(s)
    # an explicit token beats the token file
    assert load_settings({"token": "direct", "token_file": str(token)}, {}).token == "direct"


@pytest.mark.parametrize(
    ("flags", "env", "needle"),
    [
        ({"host": "0.0.0.0"}, {}, "refusing to listen on non-loopback"),
        ({"ping_interval": "11"}, {}, "ping-interval"),
        ({"ping_interval": "0"}, {}, "ping-interval"),
        ({}, {"CCPROXY_PORT": "http"}, "CCPROXY_PORT"),
        ({"upstream_kind": "grpc"}, {}, "--upstream-kind"),
        ({}, {"CCPROXY_BACKEND": "vllm"}, "CCPROXY_BACKEND"),
        ({"upstream": "localhost:8080"}, {}, "upstream"),
        ({"max_tokens": "0"}, {}, "max-tokens"),
        ({"upstream_key_file": "/nonexistent/key"}, {}, "upstream-key-file"),
        ({"log_level": "loud"}, {}, "--log-level"),
        ({}, {"CCPROXY_PROMPT_LAYOUT": "compact"}, "CCPROXY_PROMPT_LAYOUT.*stable or off"),
        ({"prompt_profile": "tiny"}, {}, "prompt-profile.*full or lean"),
    ],
)
def test_errors_name_the_setting(flags: dict[str, object], env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_settings(flags, env)


def test_non_loopback_with_a_token_is_allowed() -> None:
    s = load_settings({"host": "0.0.0.0", "token": "t"}, {})
    assert s.host == "0.0.0.0"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[1, 2]", "mapping"),
        ("porrt: 1\n", "unknown key"),
        ("port: [\n", "not valid YAML"),
        ("models:\n  rules: 3\n", "models.rules"),
        ("models:\n  fallback: x\n", "unknown key"),
        ("port: true\n", "config port"),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, needle: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_settings({"config": str(config)}, {})


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("proxy", False),
        ("10.0.0.1", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_the_example_config_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "proxy" / "ccproxy.example.yaml"
    s = load_settings({"config": str(example)}, {})
    assert s.backend_features == "llama-server"
    assert s.model_map.resolve("claude-haiku-4-5") == "qwen2.5-coder-0.5b"
    assert s.model_map.resolve("claude-opus-4-8") == "claude-opus-4-8"


@pytest.mark.parametrize(
    ("url", "bare", "credentials", "shown"),
    [
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1", None, "http://127.0.0.1:8080/v1"),
        (
            "https://user:p%40ss@h:8443/v1",
            "https://h:8443/v1",
            ("user", "p@ss"),
            "https://[redacted]@h:8443/v1",
        ),
        ("https://token@h/v1", "https://h/v1", ("token", ""), "https://[redacted]@h/v1"),
    ],
)
def test_upstream_url_credentials(url: str, bare: str, credentials: object, shown: str) -> None:
    s = Settings(upstream=url)
    assert (s.upstream_url, s.upstream_credentials, s.upstream_shown) == (bare, credentials, shown)
    assert "p@ss" not in repr(s)
    assert "p%40ss" not in repr(s)


def test_budgets_from_flags_env_and_file_and_prices_from_the_file(tmp_path: Path) -> None:
    config = tmp_path / "ccproxy.yaml"
    config.write_text(
        "budget_day_tokens: 9000000\nprices:\n"
        "  claude-sonnet-4-5: {input: 2, output: 10}\n  mine: {input: 1, output: 2}\n"
    )
    env = {"CCPROXY_CONFIG": str(config), "CCPROXY_BUDGET_SESSION_USD": "1.5"}
    s = load_settings({"budget_session_tokens": "200000"}, env)
    flagged = load_settings({"prices": "claude-opus-5-5=5/25, x/y = 1/2/0.1/0"}, {})
    assert flagged.prices == (("claude-opus-5-5", Price(5.0, 25.0)), ("x/y", Price(1.0, 2.0, 0.1, 0.0)))
    assert s.budget == Budget(session_tokens=200000, day_tokens=9000000, session_usd=1.5)
    assert s.budget.enabled
    assert price_for("claude-sonnet-4-5-20250929", s.price_table) == Price(2.0, 10.0)  # the file's wins
    assert price_for("claude-haiku-4-5", s.price_table) == Price(1.0, 5.0)  # built in
    assert price_for("mine", s.price_table) == Price(1.0, 2.0)
    assert not load_settings({}, {}).budget.enabled
    assert load_settings({}, {"CCPROXY_BUDGET_DAY_USD": "off"}).budget_day_usd is None


@pytest.mark.parametrize(
    ("flags", "text", "needle"),
    [
        ({"budget_session_tokens": "0"}, "", "budget-session-tokens: must be > 0"),
        ({"budget_day_usd": "lots"}, "", "--budget-day-usd"),
        ({}, "prices: [1]\n", "config prices: expected a mapping"),
        ({}, "prices: {m: {input: 1}}\n", "config prices: prices.m.output: required"),
        ({"prices": "m=1"}, "", "--prices: 'm=1' is not MODEL=IN/OUT"),
        ({"prices": "m=a/b"}, "", "the prices must be numbers"),
    ],
)
def test_bad_budgets_and_prices_name_the_setting(
    tmp_path: Path, flags: dict[str, object], text: str, needle: str
) -> None:
    config = tmp_path / "ccproxy.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[")):
        load_settings({**flags, "config": str(config)}, {})
