"""Fuzzing the app (hypothesis): bad requests never get a 5xx, and nothing the upstream sends truncates a
stream silently.

- `test_fuzzed_bad_requests`: >= 1,000 generated bad requests (wrong types and ranges, NaN/Infinity,
  lone surrogates, bad tool names and media types, broken JSON, bytes that are not UTF-8, ...) against
  both endpoints, streamed and not, generic and llama-server features: every answer is below 500 and
  Anthropic-shaped.
- `test_upstream_fault_matrix` and `test_fuzzed_upstream_streams`: upstream answers with bytes that are
  not UTF-8, lone and split surrogates, NaN, garbage, cuts and transport errors: every streamed answer
  ends with `message_stop` or an `error` event, every byte sent is UTF-8 and every event valid JSON.

Run with `-s` to see the figures (the README quotes them).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import httpx
import pytest
from ccproxy.app import create_app
from ccproxy.config import Settings
from ccproxy.validate import loads_strict
from fakes import ScriptedStream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.app

BASE = Settings(
    upstream="http://upstream.test/v1", ping_interval=0.5, stream_start_wait=0.2, read_timeout=5, model="m"
)
LLAMA = replace(BASE, backend_features="llama-server")
TEXT_TOOLS = replace(BASE, text_tool_calls="on")
FUZZ = settings(
    max_examples=1500,
    deadline=None,
    derandomize=True,  # the same cases on every run: stable figures
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# --- an upstream that answers well (the client's input is what is fuzzed) ---------------------------------

OK_STREAM = (
    b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1}}\n\n'
    b"data: [DONE]\n\n"
)
OK_COMPLETION = {
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1},
}


def good_upstream(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/v1/chat/completions":
        if json.loads(request.content).get("stream"):
            return httpx.Response(200, content=OK_STREAM)
        return httpx.Response(200, json=OK_COMPLETION)
    if path == "/props":
        return httpx.Response(200, json={"total_slots": 2, "default_generation_settings": {"n_ctx": 8192}})
    if path == "/apply-template":
        return httpx.Response(200, json={"prompt": "<rendered>"})
    if path == "/tokenize":
        return httpx.Response(200, json={"tokens": [1, 2, 3]})
    return httpx.Response(404, json={"error": {"message": "no such route"}})


class Clients:
    """One event loop and one app per settings for a whole hypothesis run."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.clients: dict[str, httpx.AsyncClient] = {}

    def client(self, name: str, settings: Settings, handler: Any = good_upstream) -> httpx.AsyncClient:
        if name not in self.clients:
            app = create_app(settings, transport=httpx.MockTransport(handler))
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            self.clients[name] = httpx.AsyncClient(transport=transport, base_url="http://proxy.test")
        return self.clients[name]

    def close(self) -> None:
        for client in self.clients.values():
            self.runner.run(client.aclose())
        self.runner.close()


@pytest.fixture
def clients() -> Iterator[Clients]:
    c = Clients()
    try:
        yield c
    finally:
        c.close()


# --- what a well-behaved answer looks like ----------------------------------------------------------------


def events_of(raw: bytes) -> list[dict[str, Any]]:
    """The SSE events of a response body: UTF-8, strict JSON, `event:` matching the data's type."""
    text = raw.decode("utf-8")  # raises on anything that is not UTF-8
    events = []
    for frame in text.split("\n\n"):
        lines = [line for line in frame.split("\n") if line]  # SSE lines end at \n only (not U+0085...)
        if not lines:
            continue
        name = next(line[7:] for line in lines if line.startswith("event: "))
        data = loads_strict(next(line[6:] for line in lines if line.startswith("data: ")))
        assert data["type"] == name
        events.append(data)
    return events


def check_answer(response: httpx.Response) -> str:
    """Assert the answer is well formed; returns how it ended: a status class, 'stop' or 'error'."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        assert response.status_code == 200
        events = events_of(response.content)
        assert events[0]["type"] == "message_start"
        last = events[-1]["type"]
        assert last in ("message_stop", "error"), f"silent truncation: {[e['type'] for e in events]}"
        if last == "error":
            assert not events[-1]["error"]["message"].startswith("internal proxy error"), events[-1]
            return "error"
        assert events[-2]["type"] == "message_delta"
        tool_json: dict[int, str] = {}
        for event in events:
            if event["type"] == "content_block_delta" and event["delta"]["type"] == "input_json_delta":
                tool_json[event["index"]] = tool_json.get(event["index"], "") + event["delta"]["partial_json"]
        for text in tool_json.values():  # what the client will parse: strict JSON objects
            assert not text or isinstance(loads_strict(text), dict), text
        return "stop"
    body = loads_strict(response.content)
    if response.status_code == 200:
        assert body.get("type") == "message" or "input_tokens" in body
        return "200"
    assert body["type"] == "error"
    assert isinstance(body["error"]["type"], str)
    assert isinstance(body["error"]["message"], str)
    assert not body["error"]["message"].startswith("internal proxy error"), body
    return f"{response.status_code // 100}xx"


# --- generated bad requests -------------------------------------------------------------------------------

SURROGATES = st.sampled_from(["\ud800", "a\udfff", "x\ud83d", "\udc00\ud800", "ok \ud83d\ude00 \ud800"])
TEXT = st.one_of(st.text(st.characters(), max_size=12), SURROGATES)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2, 5, 0.5, 1.5, -0.1, 1e308, 2**63]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), NUMBERS, TEXT, st.sampled_from(["100", "yes", "true", "", "0.5"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=8,
)
TOOL_NAMES = st.one_of(
    st.sampled_from(["Write", "mcp__srv__tool", "bad name", "x" * 129, "", "a.b", "é", "ok-_1", "\ud800"]),
    TEXT,
)
MEDIA_TYPES = st.sampled_from(["image/png", "image/jpg", "image/svg+xml", "application/pdf", "", "IMAGE/PNG"])


@st.composite
def blocks(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking", "other", "json"]))
    match kind:
        case "text":
            return {"type": "text", "text": draw(st.one_of(TEXT, JSON))}
        case "image":
            source = {"type": draw(st.sampled_from(["base64", "url", "file", 3])), "data": "AA=="}
            source["media_type"] = draw(MEDIA_TYPES)
            return {"type": "image", "source": source}
        case "tool_use":
            return {"type": "tool_use", "id": draw(TEXT), "name": draw(TOOL_NAMES), "input": draw(JSON)}
        case "tool_result":
            content = draw(st.one_of(TEXT, st.lists(st.deferred(blocks), max_size=2), JSON))
            return {
                "type": "tool_result",
                "tool_use_id": draw(TEXT),
                "content": content,
                "is_error": draw(JSON),
            }
        case "thinking":
            return {"type": "thinking", "thinking": draw(TEXT), "signature": draw(JSON)}
        case "other":
            return {"type": draw(TEXT), **draw(st.dictionaries(TEXT, JSON, max_size=2))}
        case _:
            return draw(JSON)


MESSAGES = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "system", "robot", ""]),
            "content": st.one_of(TEXT, st.lists(blocks(), max_size=3), JSON),
        }
    ),
    max_size=3,
)
TOOLS = st.lists(
    st.fixed_dictionaries(
        {
            "name": TOOL_NAMES,
            "input_schema": st.one_of(JSON, st.just({"type": "object", "maximum": float("nan")})),
        },
        optional={
            "type": st.one_of(st.sampled_from(["custom", "web_search_20250305"]), TEXT),
            "description": JSON,
        },
    ),
    max_size=3,
)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "model": st.one_of(TEXT, JSON),
    "max_tokens": st.one_of(NUMBERS, SCALARS),
    "stream": SCALARS,
    "temperature": st.one_of(NUMBERS, SCALARS),
    "top_p": st.one_of(NUMBERS, SCALARS),
    "top_k": st.one_of(NUMBERS, SCALARS),
    "stop_sequences": st.one_of(st.lists(st.one_of(TEXT, JSON), max_size=3), JSON),
    "messages": st.one_of(MESSAGES, JSON),
    "system": st.one_of(TEXT, st.lists(blocks(), max_size=2), JSON),
    "tools": st.one_of(TOOLS, JSON),
    "tool_choice": st.one_of(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["auto", "any", "tool", "none", "x"])}, optional={"name": JSON}
        ),
        JSON,
    ),
    "thinking": JSON,
    "output_config": st.one_of(
        st.just({"format": {"type": "json_schema", "schema": {"type": "object", "minimum": float("inf")}}}),
        JSON,
    ),
    "metadata": st.one_of(st.dictionaries(TEXT, JSON, max_size=2), JSON),
}


def base_body(stream: bool) -> dict[str, Any]:
    return {
        "model": "claude-opus-4-8",
        "max_tokens": 64000,
        "stream": stream,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "write a file"}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "Write", "input": {}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "done"}]},
        ],
        "tools": [{"name": "Write", "input_schema": {"type": "object"}}],
    }


def encode(body: object, how: str) -> bytes:
    """JSON bytes as a client might send them: escaped ASCII, or UTF-8 (with surrogates as raw bytes)."""
    text = json.dumps(body, ensure_ascii=(how == "ascii"), allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


@st.composite
def bad_requests(draw: st.DrawFn) -> tuple[str, bool, bytes]:
    """(path, llama features?, body bytes)."""
    path = draw(st.sampled_from(["/v1/messages", "/v1/messages/count_tokens"]))
    llama = draw(st.booleans())
    body = base_body(draw(st.booleans()))
    how = draw(st.sampled_from(["ascii", "ascii", "utf-8"]))
    kind = draw(st.sampled_from(["fields", "fields", "fields", "delete", "raw"]))
    if kind == "fields":
        for name in draw(
            st.lists(st.sampled_from(sorted(FIELD_VALUES)), min_size=1, max_size=3, unique=True)
        ):
            body[name] = draw(FIELD_VALUES[name])
        return path, llama, encode(body, how)
    if kind == "delete":
        for name in draw(
            st.lists(st.sampled_from(["model", "max_tokens", "messages"]), min_size=1, unique=True)
        ):
            del body[name]
        return path, llama, encode(body, how)
    raw = encode(body, how)
    cut = draw(st.integers(min_value=0, max_value=len(raw)))
    mutation = draw(st.sampled_from(["truncate", "insert", "bytes", "non-object"]))
    if mutation == "truncate":
        return path, llama, raw[:cut]
    if mutation == "insert":
        junk = draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\\ud800", b"NaN", b"\x00", b'"', b"}"]))
        return path, llama, raw[:cut] + junk + raw[cut:]
    if mutation == "bytes":
        return path, llama, draw(st.binary(max_size=64))
    return path, llama, encode(draw(st.one_of(SCALARS, st.lists(JSON, max_size=3))), how)


def test_fuzzed_bad_requests(clients: Clients) -> None:
    seen: Counter[str] = Counter()

    @FUZZ
    @given(case=bad_requests())
    def one(case: tuple[str, bool, bytes]) -> None:
        path, llama, raw = case
        client = clients.client("llama" if llama else "generic", LLAMA if llama else BASE)
        response = clients.runner.run(
            client.post(path, content=raw, headers={"content-type": "application/json"})
        )
        seen["generated"] += 1
        ended = check_answer(response)
        seen[ended] += 1
        assert response.status_code < 500, response.text

    one()
    rejected = seen["4xx"]
    print(f"\nfuzzed requests: {dict(seen)}")
    assert seen["5xx"] == 0
    assert rejected >= 1000, seen


# --- upstream faults --------------------------------------------------------------------------------------


def data(obj: object, *, ascii_: bool = True) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=ascii_).encode("utf-8", "surrogatepass") + b"\n\n"


def delta(**fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


FINISH = data({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + b"data: [DONE]\n\n"
TOOL_FINISH = (
    data({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}) + b"data: [DONE]\n\n"
)


def call(arguments: str, name: str | None = "Write") -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": arguments}
    if name:
        function["name"] = name
    return delta(tool_calls=[{"index": 0, "id": "c1", "function": function}])


# name -> (stream parts, text the client must see or None)
STREAM_FAULTS: dict[str, tuple[list[bytes | Exception], str | None]] = {
    "lone high surrogate": ([data(delta(content="a\ud800b")), FINISH], "a\ufffdb"),
    "lone low surrogate": ([data(delta(content="\udc00z")), FINISH], "\ufffdz"),
    "pair split across chunks": (
        [data(delta(content="a\ud83d")), data(delta(content="\ude00b")), FINISH],
        "a\U0001f600b",
    ),
    "half pair then the stream ends": ([data(delta(content="a\ud83d")), FINISH], "a\ufffd"),
    "pair split inside one escape, across reads": (
        [b'data: {"choices":[{"index":0,"delta":{"content":"x\\ud8', b'3d\\ude00"}}]}\n\n', FINISH],
        "x\U0001f600",
    ),
    "UTF-8 character split across reads": (
        [b'data: {"choices":[{"index":0,"delta":{"content":"caf\xc3', b'\xa9"}}]}\n\n', FINISH],
        "caf\u00e9",
    ),
    "invalid UTF-8 byte": (
        [b'data: {"choices":[{"index":0,"delta":{"content":"a\xffb"}}]}\n\n', FINISH],
        "a\ufffdb",
    ),
    "surrogate as raw UTF-8 bytes": (
        [b'data: {"choices":[{"index":0,"delta":{"content":"a\xed\xa0\x80"}}]}\n\n', FINISH],
        "a\ufffd\ufffd\ufffd",
    ),
    "raw surrogate bytes, utf-8 JSON": (
        [data(delta(content="q\ud800"), ascii_=False), FINISH],
        "q\ufffd\ufffd\ufffd",
    ),
    "surrogate in reasoning": (
        [data(delta(reasoning_content="r\ud800")), data(delta(content="t")), FINISH],
        "t",
    ),
    "pair split in tool arguments": (
        [data(call('{"file_path":"\ud83d')), data(call('\ude00"}', name=None)), TOOL_FINISH],
        None,
    ),
    "surrogate in the tool name": ([data(call("{}", name="Wr\ud800")), TOOL_FINISH], None),
    "surrogate in an error chunk": (
        [data(delta(content="a")), data({"error": {"message": "bad \ud800"}})],
        None,
    ),
    "surrogate in the id and model": (
        [data({**delta(content="k"), "id": "\ud800", "model": "\udfff"}), FINISH],
        "k",
    ),
    "NaN in usage": (
        [data(delta(content="n")), b'data: {"choices":[],"usage":{"prompt_tokens":NaN}}\n\n', FINISH],
        None,
    ),
    "NaN in tool arguments": ([data(call('{"a": NaN}')), TOOL_FINISH], None),
    "Infinity as tool arguments object": (
        [
            b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c",'
            b'"function":{"name":"Write","arguments":{"a":Infinity}}}]}}]}\n\n',
            TOOL_FINISH,
        ],
        None,
    ),
    "garbage line": ([data(delta(content="g")), b"data: {not json\n\n", FINISH], None),
    "non-object chunk": ([b"data: [1,2]\n\n", FINISH], None),
    "content is a number": ([data(delta(content=5)), FINISH], None),
    "tool call without a name": ([data(call("{}", name=None)), TOOL_FINISH], None),
    "tool arguments never complete": ([data(call('{"a":')), TOOL_FINISH], None),
    "error chunk 503": (
        [data(delta(content="a")), data({"error": {"code": 503, "message": "loading"}})],
        None,
    ),
    "cut without finish": ([data(delta(content="cut"))], None),
    "cut mid-line": ([data(delta(content="x")), b'data: {"choices":[{"ind'], None),
    "empty body": ([], None),
    "only DONE": ([b"data: [DONE]\n\n"], None),
    "read error mid-stream": ([data(delta(content="a")), httpx.ReadError("reset")], None),
    "protocol error mid-stream": ([data(delta(content="a")), httpx.RemoteProtocolError("peer closed")], None),
    "bytes after DONE": ([data(delta(content="d")), FINISH, b"\xff\xfe garbage"], "d"),
    "no newline before the end": (
        [data(delta(content="e")), b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'],
        "e",
    ),
}


def streamed_text(events: list[dict[str, Any]]) -> str:
    return "".join(
        e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta" and "delta" in e
    )


async def run_stream(parts: Sequence[bytes | Exception], settings: Settings = BASE) -> httpx.Response:
    def handler(request: httpx.Request) -> httpx.Response:
        yielding = [step for part in parts for step in (0.0, part)]  # a turn for the loop before each part
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=ScriptedStream(yielding)
        )

    app = create_app(settings, transport=httpx.MockTransport(handler))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
        return await client.post("/v1/messages", json=base_body(stream=True))


@pytest.mark.parametrize("name", sorted(STREAM_FAULTS))
async def test_upstream_fault_matrix(name: str) -> None:
    parts, text = STREAM_FAULTS[name]
    response = await run_stream(parts)
    ended = check_answer(response)
    events = events_of(response.content)
    if text is not None:
        assert ended == "stop", [e["type"] for e in events]
        assert streamed_text(events) == text
    for event in events:
        if event["type"] == "content_block_start" and event["content_block"]["type"] == "tool_use":
            event["content_block"]["name"].encode()  # encodable


# Non-streamed answers: whatever the upstream sends, a well-formed message or an Anthropic-shaped error.
COMPLETION_FAULTS: dict[str, tuple[int, bytes, str | None]] = {
    "lone surrogate": (
        200,
        b'{"choices":[{"index":0,"message":{"content":"a\\ud800"},"finish_reason":"stop"}]}',
        "a\ufffd",
    ),
    "invalid UTF-8": (
        200,
        b'{"choices":[{"index":0,"message":{"content":"a\xff"},"finish_reason":"stop"}]}',
        "a\ufffd",
    ),
    "NaN in tool input": (
        200,
        b'{"choices":[{"index":0,"message":{"tool_calls":[{"id":"c","function":{"name":"Write","arguments":"{\\"a\\":NaN}"}}]},"finish_reason":"tool_calls"}]}',
        None,
    ),
    "huge number in tool input": (
        200,
        b'{"choices":[{"index":0,"message":{"tool_calls":[{"id":"c","function":{"name":"Write","arguments":{"a":1e999}}}]},"finish_reason":"tool_calls"}]}',
        None,
    ),
    "not JSON": (200, b"<html>", None),
    "truncated": (200, b'{"choices":[{"index":0,"mess', None),
    "500 with surrogates": (500, b'{"error":{"message":"boom \\ud800 \xff"}}', None),
    "400 with bytes": (400, b"\xff\xfe\x00", None),
    "error object in a 200": (200, b'{"error":{"message":"\\udfff"}}', None),
}


@pytest.mark.parametrize("name", sorted(COMPLETION_FAULTS))
async def test_non_streamed_upstream_faults(name: str) -> None:
    status, content, text = COMPLETION_FAULTS[name]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content)

    app = create_app(BASE, transport=httpx.MockTransport(handler))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
        response = await client.post("/v1/messages", json=base_body(stream=False))
    check_answer(response)
    if text is not None:
        assert response.status_code == 200
        assert response.json()["content"][0]["text"] == text


# --- generated upstream streams ----------------------------------------------------------------------------

PIECES = st.one_of(
    st.builds(lambda t: data(delta(content=t)), TEXT),
    st.builds(lambda t: data(delta(content=t), ascii_=False), TEXT),
    st.builds(lambda t: data(delta(reasoning_content=t)), TEXT),
    st.builds(lambda a: data(call(a)), st.one_of(TEXT, st.sampled_from(['{"a":1}', "{", "}", '{"x":NaN}']))),
    st.builds(lambda v: data(v), JSON),
    st.builds(lambda m: data({"error": {"message": m}}), TEXT),
    st.binary(max_size=24),
    st.sampled_from([FINISH, TOOL_FINISH, b"data: [DONE]\n\n", b"\n\n", b"data: ", b": comment\n\n"]),
    st.sampled_from([httpx.ReadError("reset"), httpx.RemoteProtocolError("closed")]),
)


def test_fuzzed_upstream_streams(clients: Clients) -> None:
    seen: Counter[str] = Counter()

    @settings(FUZZ, max_examples=600)
    @given(
        parts=st.lists(PIECES, max_size=8),
        split=st.integers(min_value=1, max_value=7),
        text_tools=st.booleans(),
    )
    def one(parts: list[bytes | Exception], split: int, text_tools: bool) -> None:
        # network reads that do not follow line boundaries
        cut: list[bytes | Exception] = []
        for part in parts:
            if isinstance(part, bytes) and len(part) > split:
                cut += [part[:split], part[split:]]
            else:
                cut.append(part)
        # with text tool-call recovery the chunks pass through one more translator
        response = clients.runner.run(run_stream(cut, TEXT_TOOLS if text_tools else BASE))
        seen["streams"] += 1
        seen[check_answer(response)] += 1

    one()
    print(f"\nfuzzed upstream streams: {dict(seen)}")
    assert seen["streams"] >= 600
    assert seen["stop"] + seen["error"] == seen["streams"]  # no silent truncation
