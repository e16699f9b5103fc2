"""The prefix cache in the app, against a fake llama-server with slots, slot files and prefix reuse
(httpx.MockTransport): restored once per new session, processed and saved once per prefix, corrupt or
mismatched files ignored with a log line and a counter, never an error to the client."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from ccproxy.app import create_app
from ccproxy.config import Settings
from ccproxy.prefix_key import SENTINEL

pytestmark = pytest.mark.app

SETTINGS = Settings(
    upstream="http://llama.test/v1",
    backend_features="llama-server",
    prefix_cache_min_tokens=50,
    ping_interval=0.05,
    stream_start_wait=0.2,
    read_timeout=5,
    model="local-model",
)
SYSTEM = "You are Claude Code, a coding agent. " * 8
TOOLS = [{"name": "Write", "description": "Write a file", "input_schema": {"type": "object"}}]
RESTORE_ERROR = "Unable to restore slot: No available space in KV cache or invalid slot save file"


def body(text: str = "hi", **overrides: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "model": "claude-opus-4-8",
        "max_tokens": 1000,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": text}],
        "tools": TOOLS,
    }
    b.update(overrides)
    return b


def lcp(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class FakeLlamaServer:
    """What the prefix cache uses of llama-server: a chat template, a tokenizer (a token per character),
    slots that hold a prompt and reuse its common prefix, slot files (save/restore), /props, /slots."""

    def __init__(
        self, *, n_slots: int = 2, slot_save: bool = True, model_path: str = "/models/m.gguf"
    ) -> None:
        self.n_slots = n_slots
        self.slot_save = slot_save
        self.model_path = model_path
        self.files: dict[str, str | None] = {}  # None: a corrupt file
        self.events: list[tuple[Any, ...]] = []
        self.restart()

    def restart(self) -> None:
        self.held = [""] * self.n_slots  # the text whose tokens each slot holds
        self.ran = [False] * self.n_slots  # a task ran: /slots reports n_prompt_tokens

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == kind]

    @staticmethod
    def render(b: dict[str, Any]) -> str:
        messages = list(b["messages"])
        system = messages.pop(0)["content"] if messages and messages[0]["role"] == "system" else ""
        out = f"<system>{system}<tools>{json.dumps(b.get('tools'), sort_keys=True)}</tools></system>"
        for m in messages:
            content = m.get("content")
            text = content if isinstance(content, str) else json.dumps(content)
            out += f"<{m['role']}>{text}</{m['role']}>"
        return out + "<assistant>"

    def process(self, slot: int, prompt: str) -> int:
        cached = min(lcp(self.held[slot], prompt), max(0, len(prompt) - 1))
        self.held[slot] = prompt
        self.ran[slot] = True
        return cached

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        data = json.loads(request.content) if request.content else {}
        if path == "/props":
            return httpx.Response(
                200,
                json={
                    "total_slots": self.n_slots,
                    "default_generation_settings": {"n_ctx": 100_000},
                    "model_path": self.model_path,
                    "build_info": "b11434",
                },
            )
        if path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": self.model_path, "meta": {"n_params": 1}}]})
        if path == "/slots" and request.method == "GET":
            return httpx.Response(
                200,
                json=[
                    {"id": i, "n_ctx": 100_000, **({"n_prompt_tokens": len(h)} if self.ran[i] else {})}
                    for i, h in enumerate(self.held)
                ],
            )
        if path.startswith("/slots/"):
            return self.slot_action(
                int(path.rsplit("/", 1)[1]), request.url.params["action"], data["filename"]
            )
        if path == "/apply-template":
            return httpx.Response(200, json={"prompt": self.render(data)})
        if path == "/tokenize":
            return httpx.Response(200, json={"tokens": list(range(len(data["content"])))})
        if path == "/completion":
            assert data["n_predict"] == 0
            assert data["cache_prompt"] is True
            assert data["stream"] is True
            assert data["return_progress"] is True
            n = len(data["prompt"])
            cached = self.process(data["id_slot"], data["prompt"])
            self.events.append(("prefill", data["id_slot"], n - cached))
            progress = {"total": n, "cache": cached, "processed": n, "time_ms": 2000}
            chunks = [
                {"prompt_progress": progress},
                {"content": "", "stop": True, "timings": {"cache_n": cached}},
            ]
            text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=text.encode())
        if path == "/v1/chat/completions":
            return self.chat(data)
        return httpx.Response(404, json={"error": {"code": 404, "message": "not found"}})

    def slot_action(self, slot: int, action: str, name: str) -> httpx.Response:
        self.events.append((action, slot, name))
        if not self.slot_save:
            error = {
                "code": 501,
                "message": "This server does not support slots action.",
                "type": "not_supported_error",
            }
            return httpx.Response(501, json={"error": error})
        if action == "save":
            self.files[name] = self.held[slot]
            return httpx.Response(200, json={"n_saved": len(self.held[slot]), "n_written": 12_000_000})
        text = self.files.get(name)
        if text is None:
            self.held[slot] = ""
            error = {"code": 400, "message": RESTORE_ERROR, "type": "invalid_request_error"}
            return httpx.Response(400, json={"error": error})
        self.held[slot] = text
        return httpx.Response(200, json={"n_restored": len(text), "n_read": 12_000_000})

    def chat(self, data: dict[str, Any]) -> httpx.Response:
        prompt = self.render(data)
        slot = data["id_slot"]
        cached = self.process(slot, prompt)
        self.events.append(("chat", slot, cached, len(prompt)))
        usage = {
            "prompt_tokens": len(prompt),
            "completion_tokens": 1,
            "prompt_tokens_details": {"cached_tokens": cached},
        }
        if not data.get("stream"):
            choice = {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
            return httpx.Response(
                200, json={"id": "c", "object": "chat.completion", "choices": [choice], "usage": usage}
            )
        chunks = [
            {
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": None}
                ]
            },
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {"choices": [], "usage": usage},
        ]
        text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=text.encode())


class Proxy:
    """One ccproxy app over the fake server; a new Proxy is a restarted proxy."""

    def __init__(self, server: FakeLlamaServer, settings: Settings = SETTINGS) -> None:
        self.app = create_app(settings, transport=httpx.MockTransport(server))
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://proxy.test", timeout=10)

    async def ask(self, session: str, b: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"X-Claude-Code-Session-Id": session}
        r = await self.client.post("/v1/messages", json=b or body(), headers=headers)
        assert r.status_code == 200, r.text
        return r

    def counted(self) -> dict[str, float]:
        text = self.app.state.proxy.metrics.render().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("ccproxy_prefix_cache_total{"):
                labels, value = line.rsplit(" ", 1)
                out[labels.split('result="')[1].split('"')[0]] = float(value)
        return out

    async def __aenter__(self) -> Proxy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()


async def test_first_session_processes_and_saves_the_prefix_then_reuses_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = FakeLlamaServer()
    caplog.set_level(logging.INFO, "ccproxy.prefix_cache")
    async with Proxy(server) as proxy:
        await proxy.ask("s1")
        await proxy.ask(
            "s1",
            body(
                "hi",
                messages=[
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "ok"},
                    {"role": "user", "content": "more"},
                ],
            ),
        )
        await proxy.ask("s2", body("another session"))
        counted = proxy.counted()
    name = server.of("save")[0][2]
    assert name.startswith("ccproxy-prefix-")
    assert name.endswith(".bin")
    # s1: no file yet -> restore tried once, the prefix processed alone and saved; the turn reuses it
    assert server.events[:3] == [
        ("restore", 0, name),
        ("prefill", 0, len(server.files[name] or "")),
        ("save", 0, name),
    ]
    prefix = server.files[name]
    assert prefix is not None
    assert prefix.endswith("<user>")
    assert SENTINEL not in prefix
    chats = server.of("chat")
    assert chats[0][2] == len(prefix)  # s1's first turn: the whole prefix from the cache
    # s1's second turn and s2's first: the slot holds the prefix, nothing restored or processed again
    assert len(server.of("restore")) == 1
    assert len(server.of("prefill")) == 1
    assert len(server.of("save")) == 1
    assert chats[2][2] >= len(prefix)
    assert counted == {"restore_failed": 1.0, "saved": 1.0, "warm": 1.0}
    assert any("not restored (missing, truncated, corrupt" in r.message for r in caplog.records)
    assert any("saved " + name in r.getMessage() for r in caplog.records)


async def test_processing_a_long_prefix_is_logged_batch_by_batch(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeLlamaServer()
    caplog.set_level(logging.INFO, "ccproxy")
    async with Proxy(server) as proxy:
        await proxy.ask("s1", body(system="A long system prompt. " * 100))
    lines = [r.getMessage() for r in caplog.records if " prefill " in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith("prefix cache: slot 0 prefill ")
    assert "(0 cached) 2.0 s" in lines[0]


async def test_after_a_restart_a_new_session_restores_the_file_once() -> None:
    server = FakeLlamaServer()
    async with Proxy(server) as proxy:
        await proxy.ask("s1")
    name = server.of("save")[0][2]
    server.restart()  # `just down && just up`: empty slots, the files stay
    server.events.clear()
    async with Proxy(server) as proxy:
        await proxy.ask("s2", body("a new session after the restart"))
        await proxy.ask("s2", body("its second turn"))
        counted = proxy.counted()
    assert server.of("restore") == [("restore", 0, name)]
    assert server.of("prefill") == []
    assert server.of("save") == []
    first = server.of("chat")[0]
    assert first[2] == len(server.files[name] or "")  # served from the restored tokens
    assert counted == {"restored": 1.0}


@pytest.mark.parametrize("stream", [False, True])
async def test_corrupt_file_is_ignored_logged_counted_and_replaced(
    stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeLlamaServer()
    async with Proxy(server) as proxy:
        await proxy.ask("s1")
    name = server.of("save")[0][2]
    good = server.files[name]
    server.files[name] = None  # truncated by a crash, or bytes from another build: llama-server refuses it
    server.restart()
    server.events.clear()
    caplog.set_level(logging.INFO, "ccproxy.prefix_cache")
    async with Proxy(server) as proxy:
        r = await proxy.ask("s2", body("hello", stream=stream))
        if stream:
            assert "message_stop" in r.text
            assert "event: error" not in r.text
        else:
            assert r.json()["content"][0]["text"] == "ok"
        counted = proxy.counted()
    assert [e[0] for e in server.events] == ["restore", "prefill", "save", "chat"]
    assert server.files[name] == good  # processed once more and saved over the bad file
    assert counted == {"restore_failed": 1.0, "saved": 1.0}
    assert any(RESTORE_ERROR in r.getMessage() for r in caplog.records)


async def test_another_model_never_restores_the_first_ones_file() -> None:
    server = FakeLlamaServer()
    async with Proxy(server) as proxy:
        await proxy.ask("s1")
    first = server.of("save")[0][2]
    server.model_path = "/models/other.gguf"
    server.restart()
    server.events.clear()
    async with Proxy(server) as proxy:
        await proxy.ask("s2")
    restored = [e[2] for e in server.of("restore")]
    assert restored
    assert first not in restored
    assert len(server.files) == 2


async def test_proxy_restart_leaves_a_slot_of_unknown_content_alone() -> None:
    """Only the proxy restarted: the slot may hold this very conversation; a restore would throw it away."""
    server = FakeLlamaServer()
    async with Proxy(server) as proxy:
        await proxy.ask("s1")
        await proxy.ask("s1", body("a long conversation " * 20))
    server.events.clear()
    async with Proxy(server) as proxy:
        await proxy.ask("s1", body("a long conversation " * 20 + "and on"))
        counted = proxy.counted()
    assert [e[0] for e in server.events] == ["chat"]
    assert counted == {"kept": 1.0}


async def test_slot_of_another_prefix_gets_this_sessions_prefix_restored() -> None:
    server = FakeLlamaServer()
    other = body(system="A different system prompt, long enough to be worth a file. " * 3)
    async with Proxy(server) as proxy:
        await proxy.ask("s1")
        await proxy.ask("s2", other)
        await proxy.ask("s3")
        counted = proxy.counted()
    names = [e[2] for e in server.of("save")]
    assert len(set(names)) == 2
    assert server.of("restore")[-1] == ("restore", 0, names[0])  # s3: the first prefix back, from its file
    assert len(server.of("prefill")) == 2
    assert counted == {"restore_failed": 2.0, "saved": 2.0, "restored": 1.0}


async def test_side_requests_short_prefixes_and_later_turns_do_no_prefix_work() -> None:
    server = FakeLlamaServer()
    title = body(tools=[], output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}})
    short = body(system="short", tools=[])
    async with Proxy(server) as proxy:
        await proxy.ask("s1", title)
        await proxy.ask("s1", body(max_tokens=1))
        await proxy.ask("s2", short)
        await proxy.ask("s2", short)
        counted = proxy.counted()
    assert [e[0] for e in server.events] == ["chat"] * 4
    assert counted == {}


async def test_server_without_slot_save_path_warns_once_and_stays_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = FakeLlamaServer(slot_save=False)
    caplog.set_level(logging.INFO, "ccproxy.prefix_cache")
    async with Proxy(server) as proxy:
        await proxy.ask("s1")
        await proxy.ask("s2")
        counted = proxy.counted()
    assert [e[0] for e in server.events] == ["restore", "chat", "chat"]
    assert counted == {"unsupported": 1.0}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "--slot-save-path" in warnings[0].getMessage()


async def test_failures_while_preparing_never_reach_the_client(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeLlamaServer()
    broken = FakeLlamaServer.__call__

    async def failing(self: FakeLlamaServer, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/completion":
            return httpx.Response(500, json={"error": {"code": 500, "message": "prefill exploded"}})
        return await broken(self, request)

    server.__class__ = type("Failing", (FakeLlamaServer,), {"__call__": failing})
    async with Proxy(server) as proxy:
        r = await proxy.ask("s1")
        counted = proxy.counted()
    assert r.json()["content"][0]["text"] == "ok"
    assert counted == {"restore_failed": 1.0, "error": 1.0}
    assert any("prefill exploded" in r.getMessage() for r in caplog.records)


async def test_off_switch() -> None:
    server = FakeLlamaServer()
    async with Proxy(server, Settings(**{**SETTINGS.__dict__, "prefix_cache_min_tokens": None})) as proxy:
        await proxy.ask("s1")
    assert [e[0] for e in server.events] == ["chat"]


async def test_concurrent_new_sessions_share_one_prefill() -> None:
    server = FakeLlamaServer(n_slots=3)  # slots 0 and 1 for sessions, 2 for side requests
    async with Proxy(server) as proxy:
        await asyncio.gather(proxy.ask("s1"), proxy.ask("s2"))
        counted = proxy.counted()
    assert len(server.of("prefill")) == 1
    assert len(server.of("save")) == 1
    assert sorted(e[1] for e in server.of("chat")) == [0, 1]
    assert counted == {"restore_failed": 1.0, "saved": 1.0, "restored": 1.0}


async def test_a_turn_cancelled_while_the_prefix_is_processed_prepares_again_when_re_sent() -> None:
    server = FakeLlamaServer()
    plain = FakeLlamaServer.__call__
    calls = 0

    async def slow_first_prefill(self: FakeLlamaServer, request: httpx.Request) -> httpx.Response:
        nonlocal calls
        if request.url.path == "/completion":
            calls += 1
            if calls == 1:
                await asyncio.sleep(30)
        return await plain(self, request)

    server.__class__ = type("Slow", (FakeLlamaServer,), {"__call__": slow_first_prefill})
    async with Proxy(server) as proxy:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(proxy.ask("s1"), 0.5)  # the client gives up during the prefill
        await proxy.ask("s1")  # Claude Code sends the turn again
        counted = proxy.counted()
    # the re-sent turn prepares again (the missing file is known by now: no second restore)
    assert [e[0] for e in server.events] == ["restore", "prefill", "save", "chat"]
    assert counted == {"restore_failed": 1.0, "saved": 1.0}
