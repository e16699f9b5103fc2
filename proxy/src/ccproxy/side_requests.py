"""Recognise Claude Code's side requests (pure).

Side requests are cheap one-off calls that must not evict the main conversation's KV cache: they can
go to another slot or another (smaller) model.

- ``title``: title/summary generation: ``tools: []`` with a JSON-schema ``output_config.format``;
- ``haiku``: any haiku-family model name (the CLI's small-fast model);
- ``count``: ``max_tokens: 1`` calls (the fallback when ``count_tokens`` is missing, quota probes).
"""

from __future__ import annotations

from typing import Literal, TypeAlias

from ccproxy.model_map import model_family
from ccproxy.types_anthropic import MessagesRequest

__all__ = ["SideKind", "is_side_request", "side_kind"]

SideKind: TypeAlias = Literal["title", "haiku", "count"]


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


def _has_output_format(req: MessagesRequest) -> bool:
    if req.output_config is not None and req.output_config.format is not None:
        return True
    return req.output_format is not None
