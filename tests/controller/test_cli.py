"""ccstack.cli: argument parsing (no Docker)."""

from __future__ import annotations

import pytest
from ccstack import cli
from ccstack.modes import SpendBudget

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


@pytest.mark.parametrize("argv", [["up", "vllm"], ["up", "local", "--publish", "70000"], ["status", "--x"]])
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["up", "local"], None),  # the mode decides: local prewarms (Mode.prewarm)
        (["up", "local", "--prewarm"], True),
        (["up", "local", "--no-prewarm"], False),
    ],
)
def test_up_prewarm_flag(argv: list[str], expected: bool | None) -> None:
    assert cli.build_parser().parse_args(argv).prewarm is expected


def test_only_modes_with_a_local_llama_server_prewarm_by_default() -> None:
    assert [m.name for m in cli.MODES.values() if m.prewarm] == ["local"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bash,Edit,Read,Write", "Bash,Edit,Read,Write"),
        (" Bash , Read ", "Bash,Read"),
        ("default", "default"),
    ],
)
def test_agent_tools_option(value: str, expected: str) -> None:
    args = cli.build_parser().parse_args(["up", "local", "--agent-tools", value])
    assert cli._up_request(args).agent_tools == expected


@pytest.mark.parametrize("option", ["background-tasks", "silent-turn-reminder", "auto-memory"])
@pytest.mark.parametrize(("value", "expected"), [(None, None), ("on", True), ("off", False)])
def test_on_off_options_of_the_agent(option: str, value: str | None, expected: bool | None) -> None:
    argv = [] if value is None else [f"--{option}", value]
    args = cli.build_parser().parse_args(["up", "local", *argv])
    assert getattr(cli._up_request(args), option.replace("-", "_")) is expected


@pytest.mark.parametrize(
    ("argv", "expected"), [([], None), (["--repeat-limit", "4"], 4), (["--repeat-limit", "off"], 0)]
)
def test_repeat_limit_option(argv: list[str], expected: int | None) -> None:
    args = cli.build_parser().parse_args(["up", "local", *argv])
    assert cli._up_request(args).repeat_limit == expected


@pytest.mark.parametrize("value", ["1", "0", "-3", "three", ""])
def test_repeat_limit_option_rejects_what_is_not_a_limit(value: str) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["up", "local", "--repeat-limit", value])


@pytest.mark.parametrize("value", ["", ",", "Bash;rm", "Bash(git *)"])
def test_agent_tools_option_rejects_what_is_not_a_tool_list(value: str) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["up", "local", "--agent-tools", value])


def test_up_budget_options() -> None:
    assert cli._up_request(cli.build_parser().parse_args(["up", "openrouter"])).budget == SpendBudget()
    args = cli.build_parser().parse_args(
        ["up", "openrouter", "--budget-session-tokens", "2000000", "--budget-day-usd", "2.5"]
    )
    assert cli._up_request(args).budget == SpendBudget(session_tokens=2_000_000, day_usd=2.5)
    args = cli.build_parser().parse_args(
        ["up", "anthropic", "--price", "claude-opus-5-5=5/25", "--price", "claude-haiku-5-5=1/5/0.1/1.25"]
    )
    assert cli._up_request(args).budget.prices == ("claude-opus-5-5=5/25", "claude-haiku-5-5=1/5/0.1/1.25")


@pytest.mark.parametrize("value", ["m", "m=1", "=1/2", "m=a/b", "m=1/-2", "a=1/2,b=3/4"])
def test_up_price_must_be_model_in_out(value: str) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["up", "anthropic", "--price", value])


@pytest.mark.parametrize("value", ["0", "-1", "lots"])
def test_up_budget_must_be_positive(value: str) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["up", "anthropic", "--budget-session-usd", value])
