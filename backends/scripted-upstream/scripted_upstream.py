"""A scripted OpenAI-compatible upstream (stdlib only).

    python scripted_upstream.py --host H --port P --script FILE

The script is a JSON list of turns served in order, one per main request on
``POST /v1/chat/completions`` (streamed when the request has ``"stream": true``):

    [{"text": "hello"},
     {"tool_calls": [{"name": "Write", "arguments": {"file_path": "a.txt", "content": "x"}}], "chunks": 4},
     {"text": "done"}]

Turn keys:
  text        assistant text (may be combined with tool_calls; text comes first)
  tool_calls  list of {"name", "arguments" (object or JSON string), optional "id"}
  chunks      split each tool call's arguments into N fragments when streaming (default 1)
  delay       seconds to wait before the first byte (simulates prompt processing)
  error       {"status": 503, "message": "..."} answer with this HTTP error instead

The same turns answer the Anthropic Messages API on ``POST /v1/messages`` (an Anthropic-compatible
server, such as api.anthropic.com or llama-server's own /v1/messages), streamed or not: text becomes a
``text`` block, tool calls ``tool_use`` blocks.

Side requests (no ``tools``, ``tools: []`` or a max_tokens of 1) get a short fixed answer without
consuming a turn (``{"title": "Scripted session"}`` when a ``response_format`` is asked for).
When the script is exhausted, every further main request gets the text "(script exhausted)".

Other endpoints: GET /health, GET /v1/models, GET /_requests (every request recorded with its
headers, Authorization included, and its body), DELETE /_requests (clear the log),
POST /_script (replace the script with the JSON list in the body and restart at turn 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SIDE_TEXT = "OK"
SIDE_JSON = '{"title": "Scripted session"}'
EXHAUSTED_TEXT = "(script exhausted)"
MODEL_ID = "scripted"


class Script:
    """The turns and the request log, shared by all handler threads."""

    def __init__(self, turns: list[dict[str, Any]]) -> None:
        self._lock = threading.Lock()
        self._turns = list(turns)
        self._next = 0
        self._requests: list[dict[str, Any]] = []

    def replace(self, turns: list[dict[str, Any]]) -> None:
        with self._lock:
            self._turns = list(turns)
            self._next = 0

    def take_turn(self) -> dict[str, Any] | None:
        with self._lock:
            if self._next >= len(self._turns):
                return None
            turn = self._turns[self._next]
            self._next += 1
            return turn

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()


def load_script(path: str | None) -> list[dict[str, Any]]:
    if not path:
        return []
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return validate_script(data)


def validate_script(data: object) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(t, dict) for t in data):
        raise ValueError("script must be a JSON list of objects")
    for i, turn in enumerate(data):
        if not ({"text", "tool_calls", "error"} & turn.keys()):
            raise ValueError(f"turn {i}: needs 'text', 'tool_calls' or 'error'")
        for j, call in enumerate(turn.get("tool_calls", [])):
            if not isinstance(call, dict) or "name" not in call:
                raise ValueError(f"turn {i}: tool_calls.{j} needs a 'name'")
    return data


def is_side_request(body: dict[str, Any]) -> bool:
    """No tools (a title or summary request) or a one-token count fallback."""
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    return not body.get("tools") or limit == 1


def _arguments_text(call: dict[str, Any]) -> str:
    args = call.get("arguments", {})
    return args if isinstance(args, str) else json.dumps(args)


def _split(text: str, n: int) -> list[str]:
    n = max(1, min(n, len(text) or 1))
    size = -(-len(text) // n) if text else 0
    return [text[i : i + size] for i in range(0, len(text), size)] if text else [""]


def _usage(body: dict[str, Any], completion_text: str) -> dict[str, int]:
    prompt = max(1, len(json.dumps(body.get("messages", []))) // 4)
    completion = max(1, len(completion_text) // 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _tool_calls(turn: dict[str, Any], turn_id: str) -> list[dict[str, Any]]:
    return [
        {
            "id": call.get("id") or f"call_{turn_id}_{i}",
            "type": "function",
            "function": {"name": call["name"], "arguments": _arguments_text(call)},
        }
        for i, call in enumerate(turn.get("tool_calls", []))
    ]


def completion_json(body: dict[str, Any], turn: dict[str, Any]) -> dict[str, Any]:
    turn_id = uuid.uuid4().hex[:12]
    calls = _tool_calls(turn, turn_id)
    text = turn.get("text")
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    completion_text = (text or "") + "".join(c["function"]["arguments"] for c in calls)
    return {
        "id": f"chatcmpl-{turn_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or MODEL_ID,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": _usage(body, completion_text),
    }


def completion_chunks(body: dict[str, Any], turn: dict[str, Any]) -> list[dict[str, Any]]:
    turn_id = uuid.uuid4().hex[:12]
    base = {
        "id": f"chatcmpl-{turn_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model") or MODEL_ID,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""})]
    text = turn.get("text") or ""
    for piece in _split(text, max(1, len(text) // 8)) if text else []:
        out.append(chunk({"content": piece}))
    calls = _tool_calls(turn, turn_id)
    n_chunks = int(turn.get("chunks", 1))
    for index, call in enumerate(calls):
        fn = call["function"]
        out.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": fn["name"], "arguments": ""},
                        }
                    ]
                }
            )
        )
        for piece in _split(fn["arguments"], n_chunks):
            out.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    out.append(chunk({}, "tool_calls" if calls else "stop"))
    completion_text = text + "".join(c["function"]["arguments"] for c in calls)
    if (body.get("stream_options") or {}).get("include_usage"):
        out.append({**base, "choices": [], "usage": _usage(body, completion_text)})
    return out


def message_json(body: dict[str, Any], turn: dict[str, Any]) -> dict[str, Any]:
    """The turn as an Anthropic Messages API answer."""
    turn_id = uuid.uuid4().hex[:12]
    content: list[dict[str, Any]] = []
    if turn.get("text"):
        content.append({"type": "text", "text": turn["text"]})
    for i, call in enumerate(turn.get("tool_calls", [])):
        args = call.get("arguments", {})
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{turn_id}_{i}",
                "name": call["name"],
                "input": json.loads(args) if isinstance(args, str) else args,
            }
        )
    usage = _usage(body, json.dumps(content))
    return {
        "id": f"msg_{turn_id}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model") or MODEL_ID,
        "content": content,
        "stop_reason": "tool_use" if turn.get("tool_calls") else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"]},
    }


def message_events(body: dict[str, Any], turn: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The turn as an Anthropic Messages API stream: (event name, data) pairs."""
    message = message_json(body, turn)
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 0}}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            first: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _split(block["text"], 4)]
        else:
            first = {**block, "input": {}}
            text = json.dumps(block["input"])
            deltas = [
                {"type": "input_json_delta", "partial_json": p}
                for p in _split(text, int(turn.get("chunks", 1)))
            ]
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": first})
        )
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": message["usage"]}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small SSE writes must not wait for delayed ACKs (40 ms stalls)
    server: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)

    # -- helpers -------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, raw: bytes) -> None:
        try:
            body: object = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.server.script.record(
            {
                "time": time.time(),
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body,
            }
        )

    # -- routes --------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._send_json(200, {"status": "ok"})
        elif path in ("/v1/models", "/models"):
            self._send_json(
                200, {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "owned_by": "scripted"}]}
            )
        elif path == "/_requests":
            self._send_json(200, self.server.script.requests())
        else:
            self._send_json(404, {"error": {"message": f"not found: {path}", "type": "not_found"}})

    def do_DELETE(self) -> None:
        if self.path.split("?", 1)[0] == "/_requests":
            self.server.script.clear_requests()
            self._send_json(200, {"cleared": True})
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "not_found"}})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        raw = self._read_body()
        if path == "/_script":
            try:
                self.server.script.replace(validate_script(json.loads(raw)))
            except ValueError as exc:
                self._send_json(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
                return
            self._send_json(200, {"loaded": True})
            return
        self._record(raw)
        anthropic = path in ("/v1/messages", "/messages")
        if path not in ("/v1/chat/completions", "/chat/completions") and not anthropic:
            self._send_json(404, {"error": {"message": f"not found: {path}", "type": "not_found"}})
            return
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError as exc:
            self._send_json(400, {"error": {"message": f"bad JSON: {exc}", "type": "invalid_request_error"}})
            return
        if is_side_request(body):
            structured = body.get("response_format") or (body.get("output_config") or {}).get("format")
            turn: dict[str, Any] = {"text": SIDE_JSON if structured else SIDE_TEXT}
        else:
            turn = self.server.script.take_turn() or {"text": EXHAUSTED_TEXT}
        if turn.get("delay"):
            time.sleep(float(turn["delay"]))
        if "error" in turn:
            err = turn["error"]
            self._send_json(
                int(err.get("status", 500)),
                {"error": {"message": err.get("message", "scripted error"), "type": "scripted_error"}},
            )
            return
        if anthropic and body.get("stream"):
            frames = [
                f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                for name, data in message_events(body, turn)
            ]
            self._send_chunked(frames)
        elif anthropic:
            self._send_json(200, message_json(body, turn))
        elif body.get("stream"):
            self._stream(body, turn)
        else:
            self._send_json(200, completion_json(body, turn))

    def _stream(self, body: dict[str, Any], turn: dict[str, Any]) -> None:
        frames = [f"data: {json.dumps(c)}\n\n".encode() for c in completion_chunks(body, turn)]
        frames.append(b"data: [DONE]\n\n")
        self._send_chunked(frames)

    def _send_chunked(self, frames: list[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for frame in frames:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class ScriptedServer(ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True

    def __init__(self, address: tuple[str, int], script: Script, *, quiet: bool = False) -> None:
        super().__init__(address, Handler)
        self.script = script
        self.quiet = quiet

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that went away (a cancelled stream, a benchmark shutting down)
        super().handle_error(request, client_address)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scripted OpenAI-compatible upstream for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--script", help="JSON list of turns (see module docstring)")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)
    try:
        turns = load_script(args.script)
    except (OSError, ValueError) as exc:
        print(f"scripted_upstream: bad script: {exc}", file=sys.stderr)
        return 2
    server = ScriptedServer((args.host, args.port), Script(turns), quiet=args.quiet)
    print(f"scripted_upstream listening on {args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
