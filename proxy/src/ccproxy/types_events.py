"""What the proxy answers, in Anthropic's wire format: the message of a non-streamed answer and the
events of a streamed one, as ``TypedDict``s discriminated on ``type`` (plain dicts on the wire), so
mypy checks every event the translators build.

    message_start  content_block_start  content_block_delta*  content_block_stop  ...
    message_delta  message_stop          (or, at any point: error)      ping: keep-alive
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict

__all__ = [
    "BlockDelta",
    "ContentBlockDeltaEvent",
    "ContentBlockStartEvent",
    "ContentBlockStopEvent",
    "ErrorBody",
    "ErrorDetail",
    "MessageDeltaEvent",
    "MessageDeltaUsage",
    "MessageDict",
    "MessageStartEvent",
    "MessageStopEvent",
    "OutContentBlock",
    "PingEvent",
    "StopReason",
    "StreamEvent",
    "UsageDict",
]


class UsageDict(TypedDict):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


class TextBlockDict(TypedDict):
    type: Literal["text"]
    text: str


class ThinkingBlockDict(TypedDict):
    type: Literal["thinking"]
    thinking: str
    signature: str


class ToolUseBlockDict(TypedDict):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


OutContentBlock: TypeAlias = TextBlockDict | ThinkingBlockDict | ToolUseBlockDict

StopReason: TypeAlias = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal"]


class MessageDict(TypedDict):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[OutContentBlock]
    stop_reason: StopReason | None
    stop_sequence: str | None
    usage: UsageDict


class ErrorDetail(TypedDict):
    type: str
    message: str


class ErrorBody(TypedDict):
    """An error answer's body, and the data of a streamed ``error`` event."""

    type: Literal["error"]
    error: ErrorDetail


class MessageDeltaUsage(TypedDict):
    output_tokens: int
    input_tokens: NotRequired[int]
    cache_read_input_tokens: NotRequired[int]
    cache_creation_input_tokens: NotRequired[int]


# --- stream events -------------------------------------------------------------------------------


class MessageStartEvent(TypedDict):
    type: Literal["message_start"]
    message: MessageDict


class ContentBlockStartEvent(TypedDict):
    type: Literal["content_block_start"]
    index: int
    content_block: OutContentBlock


class TextDelta(TypedDict):
    type: Literal["text_delta"]
    text: str


class ThinkingDelta(TypedDict):
    type: Literal["thinking_delta"]
    thinking: str


class SignatureDelta(TypedDict):
    type: Literal["signature_delta"]
    signature: str


class InputJsonDelta(TypedDict):
    type: Literal["input_json_delta"]
    partial_json: str


BlockDelta: TypeAlias = TextDelta | ThinkingDelta | SignatureDelta | InputJsonDelta


class ContentBlockDeltaEvent(TypedDict):
    type: Literal["content_block_delta"]
    index: int
    delta: BlockDelta


class ContentBlockStopEvent(TypedDict):
    type: Literal["content_block_stop"]
    index: int


class MessageDeltaBody(TypedDict):
    stop_reason: StopReason
    stop_sequence: str | None


class MessageDeltaEvent(TypedDict):
    type: Literal["message_delta"]
    delta: MessageDeltaBody
    usage: MessageDeltaUsage


class MessageStopEvent(TypedDict):
    type: Literal["message_stop"]


class PingEvent(TypedDict):
    type: Literal["ping"]


StreamEvent: TypeAlias = (
    MessageStartEvent
    | ContentBlockStartEvent
    | ContentBlockDeltaEvent
    | ContentBlockStopEvent
    | MessageDeltaEvent
    | MessageStopEvent
    | PingEvent
    | ErrorBody
)
"""Every event a streamed answer can carry, discriminated on ``type``."""
