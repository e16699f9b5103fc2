"""ccstack.cli: argument parsing (no Docker)."""

from __future__ import annotations

import pytest
from ccstack import cli

pytestmark = pytest.mark.unit


def test_up_options() -> None:
    args = cli.build_parser().parse_args(
        ["up", "openrouter", "--model", "z/m", "--key-file", "k", "--publish", "9000", "-f", "a.yaml"]
    )
    req = cli._up_request(args)
    assert (req.mode, req.model, req.key_file, req.publish_port, req.fetch) == (
        "openrouter",
        "z/m",
        "k",
        9000,
        True,
    )
    assert req.extra_files[0].endswith("/a.yaml")


def test_up_prompt_profile() -> None:
    assert cli._up_request(cli.build_parser().parse_args(["up", "local"])).prompt_profile is None
    args = cli.build_parser().parse_args(["up", "local", "--prompt-profile", "lean"])
    assert cli._up_request(args).prompt_profile == "lean"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["up", "local", "--prompt-profile", "tiny"])


def test_render_does_not_fetch() -> None:
    assert cli._up_request(cli.build_parser().parse_args(["render", "local"])).fetch is False


def test_claude_passes_arguments_after_the_directory() -> None:
    args = cli.build_parser().parse_args(["claude", "/src/app", "--", "-p", "fix the tests"])
    assert args.dir == "/src/app"
    assert args.claude_args == ["-p", "fix the tests"]  # argparse drops the "--"


@pytest.mark.parametrize("argv", [["up", "ollama"], ["up", "local", "--publish", "70000"], ["status", "--x"]])
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
