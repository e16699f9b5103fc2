"""The `ccproxy` command line: flags map onto settings; configuration errors exit 2 with a message."""

from __future__ import annotations

import pytest
from ccproxy import cli
from ccproxy.config import FIELDS, load_settings

pytestmark = pytest.mark.unit


def test_every_setting_has_a_flag_with_help() -> None:
    parser = cli.build_parser()
    help_text = parser.format_help()
    for name, (env, _) in FIELDS.items():
        assert "--" + name.replace("_", "-") in help_text
        assert env in help_text
    assert "--config" in help_text


def test_flags_parse_into_settings() -> None:
    args = cli.build_parser().parse_args(
        [
            "--host",
            "::1",
            "--port",
            "9999",
            "--upstream",
            "http://h:1/v1",
            "--upstream-kind",
            "anthropic",
            "--model",
            "m",
            "--ping-interval",
            "2.5",
            "--backend-features",
            "llama-server",
            "--max-tokens",
            "4096",
        ]
    )
    s = load_settings(vars(args), {})
    assert (s.host, s.port, s.upstream, s.upstream_kind) == ("::1", 9999, "http://h:1/v1", "anthropic")
    assert (s.model, s.ping_interval, s.backend_features, s.max_tokens) == ("m", 2.5, "llama-server", 4096)


def test_config_error_exits_2(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for env in [e for e, _ in FIELDS.values()] + ["CCPROXY_CONFIG"]:
        monkeypatch.delenv(env, raising=False)
    assert cli.main(["--host", "0.0.0.0"]) == 2
    assert "refusing to listen on non-loopback" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert "ccproxy" in capsys.readouterr().out
