"""Anthropic Messages API wire types.

Inbound (what Claude Code sends) are pydantic v2 models with ``extra="allow"``: Claude Code adds fields
often, and unknown fields must survive. They are as strict as the Anthropic API for what it documents:
strict types (``max_tokens: "100"`` or ``stream: "yes"`` is an error, not coerced), ``max_tokens`` >= 1,
``temperature`` and ``top_p`` in 0..1, ``top_k`` >= 0, at least one message, tool names matching
``^[a-zA-Z0-9_-]{1,128}$``, image media types jpeg/png/gif/webp, a name for ``tool_choice: tool``
(NaN, Infinity and lone surrogates never get here: ``validate.decode_body``). Content blocks are a
union discriminated on ``type``; block types this module does not know (``server_tool_use``,
``search_result``, ...) parse as ``UnknownBlock`` and keep all their fields. Outbound (what the proxy
answers) are ``TypedDict``s in ``types_events``.

``parse_messages_request(body)`` / ``parse_count_tokens_request(body)`` validate a decoded JSON body and
raise ``errors.InvalidRequestError`` whose message names the field (``messages.0.role: ...``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self, TypeAlias

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator
from pydantic_core import ErrorDetails

from ccproxy.errors import InvalidRequestError

__all__ = [
    "AnyTool",
    "Base64ImageSource",
    "ContentBlock",
    "CountTokensRequest",
    "DocumentBlock",
    "ImageBlock",
    "Message",
    "MessagesRequest",
    "RedactedThinkingBlock",
    "TextBlock",
    "ThinkingBlock",
    "ThinkingConfig",
    "Tool",
    "ToolChoice",
    "ToolResultBlock",
    "ToolUseBlock",
    "URLImageSource",
    "UnknownBlock",
    "UnknownImageSource",
    "parse_count_tokens_request",
    "parse_messages_request",
]


class _Model(BaseModel):
    # strict: JSON types as sent (no "100" -> 100, no "yes" -> True); ints are accepted for floats
    model_config = ConfigDict(extra="allow", strict=True)


TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,128}$"
ImageMediaType: TypeAlias = Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
UnitInterval: TypeAlias = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


# --- content blocks -----------------------------------------------------------------------------


class Base64ImageSource(_Model):
    type: Literal["base64"]
    media_type: ImageMediaType
    data: str


class URLImageSource(_Model):
    type: Literal["url"]
    url: str


class UnknownImageSource(_Model):
    """Any other source (``file`` ids, future kinds): kept, rendered as a placeholder upstream."""

    type: str


def _source_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(kind, str):
        return None
    return kind if kind in ("base64", "url") else "other"


ImageSource: TypeAlias = Annotated[
    Annotated[Base64ImageSource, Tag("base64")]
    | Annotated[URLImageSource, Tag("url")]
    | Annotated[UnknownImageSource, Tag("other")],
    Discriminator(
        _source_tag,
        custom_error_type="invalid_source",
        custom_error_message="an image source needs a string 'type'",
    ),
]


class TextBlock(_Model):
    type: Literal["text"]
    text: str


class ImageBlock(_Model):
    type: Literal["image"]
    source: ImageSource


class DocumentBlock(_Model):
    """A document; text sources are forwarded as text, other sources as a placeholder."""

    type: Literal["document"]
    source: dict[str, Any]
    title: str | None = None


class ToolUseBlock(_Model):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ThinkingBlock(_Model):
    type: Literal["thinking"]
    thinking: str
    signature: str = ""


class RedactedThinkingBlock(_Model):
    type: Literal["redacted_thinking"]
    data: str


class UnknownBlock(_Model):
    """A block type this proxy does not know: every field is kept (``extra="allow"``)."""

    type: str


_KNOWN_BLOCKS = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}
)


def _block_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(kind, str):
        return None
    return kind if kind in _KNOWN_BLOCKS else "unknown"


_BLOCK_DISCRIMINATOR = Discriminator(
    _block_tag,
    custom_error_type="invalid_block",
    custom_error_message="a content block needs a string 'type'",
)

# Blocks allowed inside a tool_result's content (text, image, document; others kept as unknown).
ToolResultContentBlock: TypeAlias = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[DocumentBlock, Tag("document")]
    | Annotated["ToolUseBlock", Tag("tool_use")]
    | Annotated["ToolResultBlock", Tag("tool_result")]
    | Annotated[ThinkingBlock, Tag("thinking")]
    | Annotated[RedactedThinkingBlock, Tag("redacted_thinking")]
    | Annotated[UnknownBlock, Tag("unknown")],
    _BLOCK_DISCRIMINATOR,
]


class ToolResultBlock(_Model):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[ToolResultContentBlock] | None = None
    is_error: bool | None = None


ContentBlock: TypeAlias = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[DocumentBlock, Tag("document")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated[ToolResultBlock, Tag("tool_result")]
    | Annotated[ThinkingBlock, Tag("thinking")]
    | Annotated[RedactedThinkingBlock, Tag("redacted_thinking")]
    | Annotated[UnknownBlock, Tag("unknown")],
    _BLOCK_DISCRIMINATOR,
]

ToolResultBlock.model_rebuild()


# --- messages, tools, request ---------------------------------------------------------------------


class Message(_Model):
    role: Literal["user", "assistant", "system"]
    content: str | list[ContentBlock]


class Tool(_Model):
    """A client tool (``type`` absent or ``custom``) with a JSON schema."""

    name: Annotated[str, Field(pattern=TOOL_NAME_PATTERN)]
    description: str | None = None
    input_schema: dict[str, Any]
    type: str | None = None


class ServerTool(_Model):
    """An Anthropic server tool (``web_search_20250305``, ``bash_20250124``, ...): no schema."""

    type: str
    name: str


def _tool_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "client" if kind is None or kind == "custom" else "server"


AnyTool: TypeAlias = Annotated[
    Annotated[Tool, Tag("client")] | Annotated[ServerTool, Tag("server")],
    Discriminator(_tool_tag),
]


class ToolChoice(_Model):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None

    @model_validator(mode="after")
    def _tool_needs_a_name(self) -> Self:
        if self.type == "tool" and not self.name:
            raise ValueError("tool_choice of type 'tool' needs the tool's 'name'")
        return self


class ThinkingConfig(_Model):
    type: str  # enabled | disabled | adaptive | future kinds
    budget_tokens: int | None = None


class OutputConfig(_Model):
    effort: str | None = None
    format: dict[str, Any] | None = None


class _RequestBase(_Model):
    model: Annotated[str, Field(min_length=1)]
    messages: list[Message]
    system: str | list[TextBlock] | None = None
    tools: list[AnyTool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None
    output_config: OutputConfig | None = None
    output_format: dict[str, Any] | None = None  # older structured-outputs beta spelling


class CountTokensRequest(_RequestBase):
    """``POST /v1/messages/count_tokens``."""


class MessagesRequest(_RequestBase):
    """``POST /v1/messages``."""

    messages: Annotated[list[Message], Field(min_length=1)]
    max_tokens: Annotated[int, Field(ge=1)]
    stream: bool | None = None
    stop_sequences: list[str] | None = None
    temperature: UnitInterval | None = None
    top_p: UnitInterval | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    metadata: dict[str, Any] | None = None
    context_management: dict[str, Any] | None = None
    service_tier: str | None = None


# --- parsing ---------------------------------------------------------------------------------------

_UNION_LOC_MARKERS = ("[", "function-")


def _format_loc(err: ErrorDetails) -> str:
    """``('messages', 0, 'content', 'list[...]', 0, 'text', 'text')`` -> ``messages.0.content.0.text``.

    Drops the union-member and tag components pydantic inserts, which are not part of the JSON path.
    """
    parts: list[str] = []
    loc = list(err["loc"])
    i = 0
    while i < len(loc):
        item = loc[i]
        if isinstance(item, int):
            parts.append(str(item))
            # a tag follows an index into a block list: drop it
            if i + 1 < len(loc) and isinstance(loc[i + 1], str) and _is_tag(loc[i + 1], loc[: i + 1]):
                i += 1
        elif not _is_union_member(item, parts):
            parts.append(item)
        i += 1
    return ".".join(parts) if parts else "body"


_ALL_TAGS = _KNOWN_BLOCKS | {"unknown"}


def _is_union_member(item: str, parts: list[str]) -> bool:
    if item == "str" or any(marker in item for marker in _UNION_LOC_MARKERS):
        return True
    return bool(parts) and parts[-1] == "source" and item in ("base64", "url", "other")


def _is_tag(item: object, before: list[int | str]) -> bool:
    owner = next((p for p in reversed(before) if isinstance(p, str) and "[" not in p), None)
    if owner == "content":
        return item in _ALL_TAGS
    if owner == "tools":
        return item in ("client", "server")
    return False


def _validation_message(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    # Prefer the most specific error (the longest path); pydantic lists one per union member.
    best = max(errors, key=lambda e: len(e["loc"]))
    return f"{_format_loc(best)}: {best['msg']}"


def parse_messages_request(body: object) -> MessagesRequest:
    """Validate a decoded ``/v1/messages`` body."""
    if not isinstance(body, dict):
        raise InvalidRequestError("body: expected a JSON object")
    try:
        return MessagesRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequestError(_validation_message(exc)) from None


def parse_count_tokens_request(body: object) -> CountTokensRequest:
    """Validate a decoded ``/v1/messages/count_tokens`` body."""
    if not isinstance(body, dict):
        raise InvalidRequestError("body: expected a JSON object")
    try:
        return CountTokensRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequestError(_validation_message(exc)) from None
