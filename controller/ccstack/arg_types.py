"""Value types of ccstack's command-line options (argparse ``type=`` functions)."""

from __future__ import annotations

import argparse

__all__ = ["on_off", "port", "repeat_limit", "tool_list"]


def port(value: str) -> int:
    port = int(value)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value}: not a TCP port")
    return port


def on_off(value: str | None) -> bool | None:
    """An `on|off` option: True, False, or None when not given (the mode decides)."""
    return None if value is None else value == "on"


def repeat_limit(value: str) -> int:
    """``off`` (0) or a number of identical calls in a row, at least 2."""
    if value == "off":
        return 0
    try:
        limit = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 2 or off, got {value!r}") from None
    if limit < 2:
        raise argparse.ArgumentTypeError(f"expected a number >= 2 or off, got {value!r}")
    return limit


def tool_list(value: str) -> str:
    """``default`` or a comma-separated list of tool names (as `claude --tools` takes them)."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if value.strip() == "default":
        return "default"
    if not names or not all(n.replace("_", "").isalnum() for n in names):
        raise argparse.ArgumentTypeError(f"{value!r}: want tool names like Bash,Edit,Read,Write or 'default'")
    return ",".join(names)
