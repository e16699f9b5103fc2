"""Everything decided about one translated /v1/messages request, in one pure function.

    offer = slots.offer(key) if slots else None                # the app reads the slot pool
    p = plan(req, settings, backend_info, Session(key, offer))  # pure: no I/O, nothing mutated
    if p.count_first:                                          # the plan asks for an exact count
        p = fit(p, await llama.count(p.body))                  # context clamp (or PromptTooLongError)
    ... send encode_upstream(p.body) ..., relay through stream_translator(p, ...) / answer(p, ...)

The plan's stages, in order (each a small function below or in a pure module):

1. **route**: side request or not, and the upstream model (``model_map``); a side request routed to a
   separate side model runs *elsewhere*: no slot, no context check on this server.
2. **translate**: the Anthropic request as a chat-completions body (``translate_request``, which applies
   the prompt layout and profile chosen by the settings), plus llama-server's own keys.
3. **text tool calls**: which tool names the proxy recovers from text; the backend then gets
   ``tool_choice: "none"`` and (``--tool-grammar on``) a grammar that lets a call name only the
   request's tools, with schema-valid arguments (``tool_grammar``: a call is then decided by its first
   bytes, so it streams to the client as it is written, ``streamed_calls``); with ``--repeat-hint on``, a
   reminder after each call that repeats the previous one exactly (``repeat_hint``); with
   ``--repeat-limit N``, once the conversation ends with the N-th identical call and result in a row,
   the proxy's own notice instead of another request (``repeat_guard``, ``local_answer``).
4. **slot**: the session's main slot or the shared side slot (``id_slot``), and whether the prefix cache
   prepares it first. Behind a pool of llama-servers (``upstream_pool``) the session key travels as a
   header the balancer hashes on, so a session (and its side requests) stays on one server, where its
   slot number stays valid; the proxy then does not queue on slot numbers (the same number names a
   slot on every server) and leaves the prefix cache off (it records slot contents by number).
5. **max_tokens**: the one clamp (``clamp_max_tokens``): the request's own value, the configured limit,
   the side limit, and what the context window leaves after the prompt (``fit``).

Nothing edits ``UpstreamPlan.body`` afterwards: ``fit`` returns a new plan.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ccproxy import tool_grammar
from ccproxy.errors import PromptTooLongError, from_upstream_payload
from ccproxy.layout import PromptLayout
from ccproxy.model_map import is_side_request
from ccproxy.profile import PromptProfile
from ccproxy.repeat_guard import notice, repeated_call
from ccproxy.repeat_hint import with_repeat_hints
from ccproxy.text_tool_calls import TextToolCallTranslator, rewrite_message
from ccproxy.translate_request import RequestOptions, to_openai_request
from ccproxy.translate_response import to_anthropic_message
from ccproxy.translate_stream import StreamTranslator
from ccproxy.types_anthropic import CountTokensRequest, MessagesRequest
from ccproxy.types_events import MessageDict, StreamEvent
from ccproxy.types_openai import ChatRequest

if TYPE_CHECKING:  # types only: the modules that define them do I/O
    from ccproxy.config import Settings
    from ccproxy.llama_server import BackendInfo
    from ccproxy.slots import SlotOffer

__all__ = [
    "ANONYMOUS",
    "SESSION_HEADER",
    "Session",
    "UpstreamPlan",
    "answer",
    "clamp_max_tokens",
    "count_body",
    "fit",
    "local_completion",
    "local_stream",
    "plan",
    "session_key",
    "stream_translator",
]

SESSION_HEADER = "x-claude-code-session-id"
ANONYMOUS = "-"


def session_key(headers: Mapping[str, str], metadata: object) -> str:
    """Stable key for slot affinity: the session header, else metadata.user_id, else anonymous."""
    value = headers.get(SESSION_HEADER)
    if value:
        return f"session:{value}"
    if isinstance(metadata, Mapping):
        user_id = metadata.get("user_id")
        if isinstance(user_id, str) and user_id:
            return f"user:{user_id}"
    return ANONYMOUS


@dataclass(frozen=True, slots=True)
class Session:
    """Who sends the request: its key, and the slots the pool offers it (None: no slot pool)."""

    key: str = ANONYMOUS
    slots: SlotOffer | None = None


@dataclass(frozen=True, slots=True)
class UpstreamPlan:
    """What the proxy sends upstream for one request, and how it reads the answer."""

    body: ChatRequest
    """The final chat-completions body (``encode_upstream`` turns it into bytes)."""
    upstream_model: str
    reply_model: str
    """The client's model name, echoed in the answer."""
    stream: bool
    side: bool
    session: str
    slot: int | None
    """The llama-server slot (``id_slot``), None when the request does not run on a slot."""
    queue: bool
    """Wait for the slot in the proxy's queue (one llama-server: its slots are the proxy's to share)."""
    headers: Mapping[str, str]
    """Extra upstream request headers: the session key for a pool's balancer (empty otherwise)."""
    prepare_prefix: bool
    """Let the prefix cache prepare the slot (restore or process the shared prefix) before sending."""
    text_tools: frozenset[str]
    """Tool names whose calls the proxy recovers from text (empty: none)."""
    streamed_calls: bool
    """The recovered calls stream as they are written: the answer is under the tool grammar."""
    local_answer: str | None
    """The proxy answers the turn with this text itself; nothing goes upstream (the repeat guard)."""
    stop_sequences: tuple[str, ...]
    count_first: bool
    """Count the prompt exactly before sending (llama-server, context known): then ``fit``."""
    n_ctx: int | None
    max_tokens_caps: tuple[int, ...]
    """The limits ``max_tokens`` was clamped to besides the request's own value (``fit`` adds one)."""
    requested_max_tokens: int

    @property
    def count_body(self) -> ChatRequest:
        """What the exact count renders: the body without its slot (a count runs on no slot)."""
        body = self.body.copy()
        body.pop("id_slot", None)
        return body


def clamp_max_tokens(requested: int, *caps: int | None) -> int:
    """The only max_tokens clamp: the smallest of the request's value and every cap, at least 1."""
    limit = requested
    for cap in caps:
        if cap is not None and cap < limit:
            limit = cap
    return max(1, limit)


def llama_extra_body(*, stream: bool) -> ChatRequest:
    """llama-server's own request keys: keep the prompt's KV cache; while it prefills a stream, send
    ``prompt_progress`` chunks (logged by PrefillLog; the upstream is never silent for a whole prefill)."""
    return {"cache_prompt": True, "return_progress": True} if stream else {"cache_prompt": True}


@functools.lru_cache(maxsize=32)
def _options(layout: PromptLayout, profile: PromptProfile, *, llama: bool, stream: bool) -> RequestOptions:
    """The translation's options for these settings (built once: frozen, shared by requests)."""
    return RequestOptions(
        prompt_layout=layout,
        prompt_profile=profile,
        extra_body=llama_extra_body(stream=stream) if llama else ChatRequest(),
        llama_stop_word=llama,
    )


def plan(
    req: MessagesRequest, settings: Settings, backend: BackendInfo | None, session: Session
) -> UpstreamPlan:
    """Decide everything about the upstream request for ``req`` (see the module docstring)."""
    # 1. route
    models = settings.model_map
    side = is_side_request(req)
    upstream_model = models.resolve(req.model, side=side)
    elsewhere = side and models.side is not None
    info = None if elsewhere else backend
    llama = settings.backend_features == "llama-server"
    stream = bool(req.stream)

    # 2. translate
    opts = _options(settings.prompt_layout, settings.prompt_profile, llama=llama, stream=stream)
    body = to_openai_request(req, opts, stream=stream)
    body["model"] = upstream_model

    # 3. text tool calls
    text_tools = text_tool_names(body, settings, info)
    if text_tools:
        # the same prompt (tools included), plain text back; the calls are recovered by the proxy
        body["tool_choice"] = "none"
        if settings.tool_grammar == "on":  # a call can only name a request's tool, with valid arguments
            body["grammar"] = tool_grammar.for_tools(body["tools"])

    # 3b. a reminder after calls that repeat the previous one exactly (--repeat-hint on)
    if settings.repeat_hint == "on" and not side and "messages" in body:
        body["messages"] = with_repeat_hints(body["messages"])

    # 3c. a turn stuck on one call ends with the proxy's notice (--repeat-limit N)
    local_answer = None
    if settings.repeat_limit is not None and not side and "messages" in body:
        repeat = repeated_call(body["messages"], limit=settings.repeat_limit)
        local_answer = notice(repeat) if repeat is not None else None

    # 4. slot
    slot: int | None = None
    if session.slots is not None and not elsewhere:
        slot = session.slots.side if side else session.slots.main
        body["id_slot"] = slot
    pool = settings.upstream_pool == "on"
    queue = slot is not None and not pool

    # 5. max_tokens
    caps = (settings.max_tokens, settings.side_max_tokens if side else None)
    kept = tuple(cap for cap in caps if cap is not None)
    body["max_tokens"] = clamp_max_tokens(req.max_tokens, *kept)

    return UpstreamPlan(
        body=body,
        upstream_model=upstream_model,
        reply_model=req.model,
        stream=stream,
        side=side,
        session=session.key,
        slot=slot,
        queue=queue,
        headers={SESSION_HEADER: session.key} if pool else {},
        prepare_prefix=queue and llama and settings.prefix_cache_min_tokens is not None,
        text_tools=text_tools,
        streamed_calls="grammar" in body,
        local_answer=local_answer,
        stop_sequences=tuple(req.stop_sequences or ()),
        count_first=llama and info is not None and info.n_ctx is not None,
        n_ctx=info.n_ctx if info is not None else None,
        max_tokens_caps=kept,
        requested_max_tokens=req.max_tokens,
    )


def fit(p: UpstreamPlan, prompt_tokens: int | None) -> UpstreamPlan:
    """The plan once the prompt is counted: rejected when it fills the context window, else max_tokens
    clamped to what the window leaves. An unknown count (None) leaves the plan as it is."""
    if prompt_tokens is None or p.n_ctx is None:
        return p
    if prompt_tokens >= p.n_ctx:
        raise PromptTooLongError(prompt_tokens, p.n_ctx)
    caps = (*p.max_tokens_caps, p.n_ctx - prompt_tokens)
    body = p.body.copy()
    body["max_tokens"] = clamp_max_tokens(p.requested_max_tokens, *caps)
    return dataclasses.replace(p, body=body, max_tokens_caps=caps, count_first=False)


def text_tool_names(body: ChatRequest, settings: Settings, info: BackendInfo | None) -> frozenset[str]:
    """The tool names whose calls the proxy recovers from text for this request (empty: none).

    Only for tool_choice auto: a forced choice keeps the backend's grammar, and `none` means none."""
    mode = settings.text_tool_calls
    if mode == "off" or (mode == "auto" and not (info is not None and info.text_tool_calls)):
        return frozenset()
    tools = body.get("tools")
    if not tools or body.get("tool_choice", "auto") != "auto":
        return frozenset()
    return frozenset(t["function"]["name"] for t in tools)


def count_body(req: CountTokensRequest, settings: Settings) -> ChatRequest:
    """The chat-completions body whose prompt ``/v1/messages/count_tokens`` counts (never sent)."""
    opts = RequestOptions(prompt_layout=settings.prompt_layout, prompt_profile=settings.prompt_profile)
    body = to_openai_request(req, opts, stream=False)
    body["model"] = settings.model_map.resolve(req.model, side=False)
    return body


def stream_translator(
    p: UpstreamPlan, *, message_id: str, input_tokens: int
) -> StreamTranslator | TextToolCallTranslator:
    """The pure translator of this plan's streamed answer (chunks in, Anthropic events out)."""
    base = StreamTranslator(
        model=p.reply_model,
        message_id=message_id,
        input_tokens=input_tokens,
        stop_sequences=p.stop_sequences,
    )
    if not p.text_tools:
        return base
    return TextToolCallTranslator(base, p.text_tools, streamed=p.streamed_calls)


def local_completion(p: UpstreamPlan) -> dict[str, Any]:
    """The plan's own answer (``local_answer``) as the chat completion a backend would have sent."""
    message = {"role": "assistant", "content": p.local_answer or ""}
    return {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


def local_stream(p: UpstreamPlan, *, message_id: str, input_tokens: int) -> list[StreamEvent]:
    """The plan's own answer as the whole event stream of a streamed response."""
    translator = StreamTranslator(model=p.reply_model, message_id=message_id, input_tokens=input_tokens)
    chunk = {"choices": [{"index": 0, "delta": {"content": p.local_answer or ""}, "finish_reason": "stop"}]}
    return translator.start() + translator.feed(chunk) + translator.finish()


def answer(p: UpstreamPlan, completion: dict[str, Any], *, message_id: str) -> MessageDict:
    """This plan's non-streamed answer as an Anthropic message (an upstream error answer raises)."""
    if "error" in completion and not completion.get("choices"):
        raise from_upstream_payload(completion["error"])
    if p.text_tools:
        completion = rewrite_message(completion, p.text_tools)
    return to_anthropic_message(
        completion, model=p.reply_model, message_id=message_id, stop_sequences=p.stop_sequences
    )
