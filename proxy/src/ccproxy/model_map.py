"""Which upstream model serves a request: side requests, and Claude model names -> upstream names (pure,
never fails).

Side requests are cheap one-off calls that must not evict the main conversation's KV cache: they can
go to another slot or another (smaller) model (``side_kind``):

- ``title``: title/summary generation: ``tools: []`` with a JSON-schema ``output_config.format``;
- ``haiku``: any haiku-family model name (the CLI's small-fast model);
- ``count``: ``max_tokens: 1`` calls (the fallback when ``count_tokens`` is missing, quota probes).

Configuration (the ``models`` section of the proxy's YAML file; ``--model`` is the default)::

    models:
      default: qwen2.5-coder-7b          # any name no rule matches (also set by --model)
      side: qwen2.5-coder-0.5b           # side requests (title generation, haiku, max_tokens: 1)
      rules:                             # first match wins; case-insensitive
        - {match: "claude-*haiku*", upstream: qwen2.5-coder-0.5b}
        - {match: "sonnet", upstream: qwen2.5-coder-7b}   # a bare word matches as a substring

``rules`` may also be a mapping ``{pattern: upstream}`` (kept in file order). A pattern with ``*``, ``?``
or ``[`` is an ``fnmatch`` glob over the whole name; a bare word matches when it occurs in the name, so
``haiku`` covers ``claude-haiku-4-5-20251001`` and every future date suffix. With no rule, no default
and no side model the client's name passes through unchanged (useful for OpenRouter/Anthropic names).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from ccproxy.types_anthropic import MessagesRequest

__all__ = [
    "ModelMap",
    "ModelRule",
    "SideKind",
    "is_side_payload",
    "is_side_request",
    "model_family",
    "models_answer",
    "side_kind",
]

SideKind: TypeAlias = Literal["title", "haiku", "count"]

_GLOB_CHARS = frozenset("*?[")


def model_family(name: str) -> Literal["opus", "sonnet", "haiku"] | None:
    """The Claude family a model name belongs to, or None."""
    lowered = name.lower()
    families: tuple[Literal["haiku", "sonnet", "opus"], ...] = ("haiku", "sonnet", "opus")
    for family in families:
        if family in lowered:
            return family
    return None


@dataclass(frozen=True)
class ModelRule:
    pattern: str
    upstream: str

    def matches(self, name: str) -> bool:
        pattern, lowered = self.pattern.lower(), name.lower()
        if _GLOB_CHARS & set(pattern):
            return fnmatch.fnmatchcase(lowered, pattern)
        return pattern in lowered


@dataclass(frozen=True)
class ModelMap:
    rules: tuple[ModelRule, ...] = ()
    default: str | None = None
    side: str | None = None

    @classmethod
    def from_config(
        cls,
        rules: object = None,
        *,
        default: object = None,
        side: object = None,
    ) -> ModelMap:
        """Build from config values; raises ``ValueError`` naming the bad entry."""
        parsed: list[ModelRule] = []
        if rules is None:
            pass
        elif isinstance(rules, str):
            raise ValueError("models.rules: expected a list of {match, upstream} or a mapping")
        elif isinstance(rules, Mapping):
            for pattern, upstream in rules.items():
                parsed.append(_rule(pattern, upstream, f"rules[{pattern!r}]"))
        elif isinstance(rules, Sequence):
            for i, entry in enumerate(rules):
                if not isinstance(entry, Mapping):
                    raise ValueError(f"models.rules[{i}]: expected a mapping with 'match' and 'upstream'")
                unknown = set(entry) - {"match", "upstream"}
                if unknown:
                    raise ValueError(f"models.rules[{i}]: unknown keys {sorted(unknown)}")
                parsed.append(_rule(entry.get("match"), entry.get("upstream"), f"rules[{i}]"))
        else:
            raise ValueError("models.rules: expected a list of {match, upstream} or a mapping")
        for label, value in (("default", default), ("side", side)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"models.{label}: expected a non-empty string")
        return cls(
            tuple(parsed),
            default if isinstance(default, str) else None,
            side if isinstance(side, str) else None,
        )

    def resolve(self, claude_model: str, *, side: bool = False) -> str:
        """The upstream model for a request; side requests go to ``side`` when configured."""
        if side and self.side:
            return self.side
        for rule in self.rules:
            if rule.matches(claude_model):
                return rule.upstream
        return self.default or claude_model


def _rule(pattern: object, upstream: object, where: str) -> ModelRule:
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"models.{where}.match: expected a non-empty string")
    if not isinstance(upstream, str) or not upstream:
        raise ValueError(f"models.{where}.upstream: expected a non-empty string")
    return ModelRule(pattern, upstream)


def side_kind(req: MessagesRequest) -> SideKind | None:
    """Which kind of side request ``req`` is, or None for a main-conversation request."""
    if req.max_tokens == 1:
        return "count"
    if req.tools is not None and len(req.tools) == 0 and _has_output_format(req):
        return "title"
    if model_family(req.model) == "haiku":
        return "haiku"
    return None


def is_side_request(req: MessagesRequest) -> bool:
    return side_kind(req) is not None


def is_side_payload(payload: Mapping[str, object]) -> bool:
    """``is_side_request`` over a request body not parsed (pass-through forwards the bytes unparsed)."""
    model = payload.get("model")
    if payload.get("max_tokens") == 1 or (isinstance(model, str) and model_family(model) == "haiku"):
        return True
    config = payload.get("output_config")
    has_format = payload.get("output_format") is not None or (
        isinstance(config, Mapping) and config.get("format") is not None
    )
    return payload.get("tools") == [] and has_format


def _has_output_format(req: MessagesRequest) -> bool:
    if req.output_config is not None and req.output_config.format is not None:
        return True
    return req.output_format is not None


def models_answer(mapping: ModelMap, listed: object) -> dict[str, object]:
    """``GET /v1/models``: the names the map routes to, then those the upstream lists (its ``/models``
    answer, or None when it had none), once each, in Anthropic's list shape."""
    names: list[str] = []
    for name in (mapping.default, mapping.side, *(r.upstream for r in mapping.rules)):
        if name and name not in names:
            names.append(name)
    entries = listed.get("data", []) if isinstance(listed, dict) else []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"] not in names:
            names.append(entry["id"])
    epoch = "1970-01-01T00:00:00Z"
    data = [{"type": "model", "id": n, "display_name": n, "created_at": epoch} for n in names]
    first, last = (names[0], names[-1]) if names else (None, None)
    return {"data": data, "has_more": False, "first_id": first, "last_id": last}
