"""Claude model names -> upstream models."""

from __future__ import annotations

from typing import Any

import pytest
from ccproxy.model_map import ModelMap, ModelRule, model_family

pytestmark = pytest.mark.unit

RULES = [
    {"match": "claude-*haiku*", "upstream": "small"},
    {"match": "sonnet", "upstream": "medium"},
    {"match": "claude-opus-4-?", "upstream": "old-opus"},
]


@pytest.mark.parametrize(
    ("name", "side", "expected"),
    [
        ("claude-haiku-4-5-20251001", False, "small"),
        ("CLAUDE-HAIKU-5", False, "small"),
        ("claude-sonnet-5", False, "medium"),
        ("claude-sonnet-4-5-20250929", False, "medium"),
        ("claude-opus-4-8", False, "old-opus"),
        ("claude-opus-5-5", False, "default-model"),
        ("totally-unknown", False, "default-model"),
        ("", False, "default-model"),
        ("claude-opus-5-5", True, "side-model"),
        ("claude-haiku-4-5", True, "side-model"),
    ],
)
def test_resolve(name: str, side: bool, expected: str) -> None:
    models = ModelMap.from_config(RULES, default="default-model", side="side-model")
    assert models.resolve(name, side=side) == expected


def test_mapping_form_keeps_order_and_first_match_wins() -> None:
    models = ModelMap.from_config({"opus": "a", "claude-*": "b"}, default="d")
    assert models.rules == (ModelRule("opus", "a"), ModelRule("claude-*", "b"))
    assert models.resolve("claude-opus-5-5") == "a"
    assert models.resolve("claude-sonnet-5") == "b"


def test_no_config_passes_names_through() -> None:
    assert ModelMap().resolve("claude-sonnet-5") == "claude-sonnet-5"
    assert ModelMap.from_config(None).resolve("x", side=True) == "x"
    assert ModelMap.from_config(None, default="d").resolve("x", side=True) == "d"


@pytest.mark.parametrize(
    ("rules", "kwargs", "message"),
    [
        ("haiku", {}, "models.rules"),
        (42, {}, "models.rules"),
        ([["haiku", "small"]], {}, r"rules\[0\]"),
        ([{"match": "haiku"}], {}, r"rules\[0\].upstream"),
        ([{"match": "", "upstream": "x"}], {}, r"rules\[0\].match"),
        ([{"match": "a", "upstream": "b", "extra": 1}], {}, "unknown keys"),
        ({"haiku": 3}, {}, "upstream"),
        (None, {"default": 5}, "models.default"),
        (None, {"side": ""}, "models.side"),
    ],
)
def test_bad_config_raises_value_error_naming_the_entry(
    rules: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ModelMap.from_config(rules, **kwargs)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("claude-opus-5-5", "opus"),
        ("claude-sonnet-4-5-20250929", "sonnet"),
        ("claude-haiku-4-5-20251001", "haiku"),
        ("claude-3-5-haiku-latest", "haiku"),
        ("qwen2.5-coder", None),
    ],
)
def test_model_family(name: str, family: str | None) -> None:
    assert model_family(name) == family
