"""Parsers of the proxy's setting values (pure): each takes what a flag, an env var or the YAML config file
gave and returns the typed value, or raises ``ValueError`` with what was expected (``ccproxy.config``
names the key and where it came from)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, cast

from ccproxy.layout import PromptLayout
from ccproxy.profile import PromptProfile

UpstreamKind = Literal["openai", "anthropic"]
BackendFeatures = Literal["generic", "llama-server"]
TextToolCalls = Literal["auto", "on", "off"]
UpstreamAuth = Literal["x-api-key", "bearer"]
OnOff = Literal["on", "off"]


def string(value: object) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return str(value)


def integer(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    return int(value)  # type: ignore[call-overload, no-any-return]


def number(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    return float(value)  # type: ignore[arg-type]


def path(value: object) -> Path:
    return Path(string(value)).expanduser()


def one_of(value: object, options: tuple[str, ...]) -> str:
    """One of ``options`` (case-insensitive); the error lists them: "must be a, b or c"."""
    text = string(value).lower()
    if text in options:
        return text
    listed = ", ".join(options[:-1]) + " or " + options[-1]
    raise ValueError(f"must be {listed}, got {text!r}")


def upstream_kind(value: object) -> UpstreamKind:
    text = string(value)
    if text == "openai":
        return "openai"
    if text == "anthropic":
        return "anthropic"
    raise ValueError(f"must be openai or anthropic, got {text!r}")


def backend_features(value: object) -> BackendFeatures:
    text = string(value)
    if text == "generic":
        return "generic"
    if text in ("llama-server", "llama_server", "llama"):
        return "llama-server"
    raise ValueError(f"must be llama-server or generic, got {text!r}")


def text_tool_calls(value: object) -> TextToolCalls:
    return cast(TextToolCalls, one_of(value, ("auto", "on", "off")))


def on_off(value: object) -> OnOff:
    return cast(OnOff, one_of(value, ("on", "off")))


def upstream_auth(value: object) -> UpstreamAuth:
    return cast(UpstreamAuth, one_of(value, ("x-api-key", "bearer")))


def betas(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else string(value).split(",")
    betas = tuple(str(b).strip() for b in items if str(b).strip())
    for beta in betas:
        if not all(c.isalnum() or c in "-_." for c in beta):
            raise ValueError(f"not a beta name: {beta!r}")
    return betas


def prompt_layout(value: object) -> PromptLayout:
    return cast(PromptLayout, one_of(value, ("stable", "off")))


def prompt_profile(value: object) -> PromptProfile:
    return cast(PromptProfile, one_of(value, ("full", "lean")))


def optional_int(value: object) -> int | None:
    if isinstance(value, str) and value.strip().lower() in ("", "none", "off"):
        return None
    return integer(value)


def optional_float(value: object) -> float | None:
    if isinstance(value, str) and value.strip().lower() in ("", "none", "off"):
        return None
    return number(value)


def log_level(value: object) -> str:
    text = string(value).lower()
    if text not in ("critical", "error", "warning", "info", "debug"):
        raise ValueError(f"must be one of critical, error, warning, info, debug; got {text!r}")
    return text
