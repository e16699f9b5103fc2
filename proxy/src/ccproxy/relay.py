"""Streams between the upstream and the client: the I/O around the pure stream translator.

A `StreamPump` runs the upstream request in its own task (`producer`) that puts decoded chunks on a
queue; the client-facing generator (`events`) takes them off, translates them, and sends a `ping`
whenever the queue stays empty for `ping_interval` seconds (while the request waits for its slot, while
the backend processes the prompt). The upstream's own read timeout still ends a dead upstream.

    pump = StreamPump(open_upstream, ping_interval=5)
    pump.start()
    early = await pump.wait_started(0.5)     # a ProxyError seen before the stream began, or None
    async for data in pump.relay(translator): ...

Every stream ends with `message_delta` + `message_stop` (from `translator.finish()`) or an `error` event
(from `translator.fail(err)`): whatever the upstream sends (garbage, bytes that are not UTF-8, escaped
surrogate halves, a cut) is repaired or ends in an error event, and encoding the events happens inside
that error handling too. If the client goes away, the generator is cancelled and so is the upstream
task, which closes the upstream connection. `UpstreamTask` is shared with `raw_relay.RawRelay`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ccproxy.errors import ApiError, ProxyError
from ccproxy.sse import PING, SSEDataDecoder, encode_event, encode_events, parse_chunk
from ccproxy.text_repair import SurrogateRepair, may_hold_surrogates
from ccproxy.types_events import StreamEvent

log = logging.getLogger("ccproxy")

END = object()
"""Queued after the last chunk: the upstream answer is complete."""
_QUEUE_SIZE = 4096
DRAIN_SECONDS = 5.0
"""How long the rest of an upstream response after `[DONE]` may take to arrive (read so the keep-alive
connection goes back to the pool)."""


class Translator(Protocol):
    """Upstream chunks in, Anthropic stream events out (``translate_stream.StreamTranslator``)."""

    def start(self) -> list[StreamEvent]: ...
    def feed(self, chunk: dict[str, Any]) -> list[StreamEvent]: ...
    def finish(self) -> list[StreamEvent]: ...
    def fail(self, err: ProxyError) -> list[StreamEvent]: ...


OpenUpstream = Callable[[], AbstractAsyncContextManager[AsyncIterable[bytes]]]
"""Opens the upstream request: its answer's bytes (`upstream.Body`), failures raised as ProxyErrors."""


@dataclass
class StreamStats:
    """Filled in while a stream runs; read by the caller for logs, metrics and traces."""

    started: float = field(default_factory=time.monotonic)
    first_byte: float | None = None
    finished: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    upstream_cost: float | None = None
    """The cost the upstream reported in its usage (OpenRouter's `usage.cost`, USD), if it did."""
    stop_reason: str | None = None
    error: ProxyError | None = None
    disconnected: bool = False
    events: list[Mapping[str, object]] | None = None
    """All events sent, when tracing."""
    upstream_timings: dict[str, Any] | None = None
    """The backend's own timings of the answer (llama-server's last chunk), for traces."""

    def observe(self, events: Sequence[Mapping[str, object]]) -> None:
        for event in events:
            kind = event.get("type")
            if kind == "message_start":
                message = event.get("message")
                usage = _mapping(message.get("usage") if isinstance(message, dict) else None)
                self.input_tokens = _count(usage.get("input_tokens"), 0)
                self.cache_read_tokens = _count(usage.get("cache_read_input_tokens"), 0)
                self.cache_write_tokens = _count(usage.get("cache_creation_input_tokens"), 0)
            elif kind == "message_delta":
                usage = _mapping(event.get("usage"))
                self.output_tokens = _count(usage.get("output_tokens"), self.output_tokens)
                self.input_tokens = _count(usage.get("input_tokens"), self.input_tokens)
                self.cache_read_tokens = _count(usage.get("cache_read_input_tokens"), self.cache_read_tokens)
                self.cache_write_tokens = _count(
                    usage.get("cache_creation_input_tokens"), self.cache_write_tokens
                )
                stop_reason = _mapping(event.get("delta")).get("stop_reason")
                self.stop_reason = stop_reason if isinstance(stop_reason, str) else None
        if self.events is not None:
            self.events.extend(events)


def reported_cost(usage: Mapping[str, Any]) -> float | None:
    """The cost an upstream reports in its usage (OpenRouter: `usage.cost`, USD), or None."""
    cost = usage.get("cost")
    if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0:
        return float(cost)
    return None


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: object, default: int) -> int:
    """A token count from an event (the upstream's own, for pass-through): ints only."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


class UpstreamTask:
    """Runs the upstream request in its own task and queues what it reads (or the error it hits)."""

    def __init__(
        self,
        open_upstream: OpenUpstream,
        *,
        ping_interval: float,
        stats: StreamStats,
        on_finish: Callable[[StreamStats], None] | None = None,
    ) -> None:
        self._open = open_upstream
        self._on_finish = on_finish
        self._ping_interval = ping_interval
        self._queue: asyncio.Queue[object] = asyncio.Queue(_QUEUE_SIZE)
        self._started = asyncio.Event()
        self._early_error: ProxyError | None = None
        self._task: asyncio.Task[None] | None = None
        self._relayed = False  # the relay generator ran to its end
        self._ended = False  # the end of the stream is queued; the upstream task only drains now
        self.last_chunk = False
        """The bytes the relay yielded last end the stream (the response can end with them)."""
        self.stats = stats

    def start(self) -> None:
        self._task = asyncio.create_task(self._produce())

    def cancel(self) -> None:
        """Stop the upstream request (closes its connection); safe to call at any time. A request
        whose stream already ended is left to drain its last bytes (bounded by DRAIN_SECONDS), so its
        connection can be reused."""
        if self._task is not None and not self._task.done() and not self._ended:
            self._task.cancel()

    async def wait_started(self, seconds: float) -> ProxyError | None:
        """Wait up to `seconds` for the upstream's answer to begin; return an error seen before that."""
        try:
            async with asyncio.timeout(seconds):
                await self._started.wait()
        except TimeoutError:
            return None
        return self._early_error

    async def _produce(self) -> None:
        try:
            async with self._open() as body:
                self.stats.first_byte = time.monotonic()
                self._started.set()
                await self._read(body)
            await self._end()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._ended:  # the client has its whole answer; only the drain failed
                log.debug("upstream response not drained after its end: %r", exc)
            else:
                await self._put_error(self._as_proxy_error(exc))

    def _as_proxy_error(self, exc: Exception) -> ProxyError:
        if isinstance(exc, ProxyError):
            return exc
        log.exception("upstream stream failed", exc_info=exc)
        return ApiError(f"proxy error while reading the upstream: {type(exc).__name__}")

    async def _end(self) -> None:
        """Queue the end of the stream (once)."""
        if not self._ended:
            self._ended = True
            await self._put(END)

    async def _read(self, body: AsyncIterable[bytes]) -> None:
        raise NotImplementedError

    async def _put(self, item: object) -> None:
        if self._queue.full():
            await self._queue.put(item)  # the client reads slower than the upstream writes: wait
        else:
            self._queue.put_nowait(item)

    def close(self) -> None:
        """End of the client response, however it ended (idempotent): stop the upstream request and
        account for the stream once. A response that ends before its relay finished means the client
        went away."""
        if self.stats.finished is None:
            if not self._relayed:
                self.stats.disconnected = True
            self._finished()

    def _finished(self) -> None:
        if self.stats.finished is not None:
            return
        self.stats.finished = time.monotonic()
        self.cancel()
        if self._on_finish is not None:
            self._on_finish(self.stats)

    async def _put_error(self, err: ProxyError) -> None:
        if not self._started.is_set():
            self._early_error = err
            self._started.set()
        await self._put(err)

    async def _next(self) -> object:
        """The next queued item, or None after `ping_interval` of silence."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        try:
            async with asyncio.timeout(self._ping_interval):
                return await self._queue.get()
        except TimeoutError:
            return None


class StreamPump(UpstreamTask):
    """OpenAI chat-completion chunks in, Anthropic SSE bytes out (through a pure translator).

    The producer queues the chunks of each network read as one list; the relay translates everything
    already queued before it writes, so a burst from the upstream becomes one write to the client.
    """

    async def _read(self, body: AsyncIterable[bytes]) -> None:
        decoder = SSEDataDecoder()
        repair = SurrogateRepair()  # text with escaped surrogate halves (rare): repaired before translation
        stream = aiter(body)
        async for data in stream:
            chunks: list[dict[str, Any]] = []
            done = False
            try:
                for payload in decoder.feed(data):
                    if payload == b"[DONE]":
                        done = True
                        break
                    if payload:
                        chunk = parse_chunk(payload)
                        if repair.holding or may_hold_surrogates(payload):
                            chunks += repair.chunk(chunk)
                        else:
                            chunks.append(chunk)
            finally:
                if chunks:
                    await self._put(chunks)
            if done:
                if repair.holding:
                    await self._put(repair.flush())
                # The client's stream can end now, in the same write as the last chunks; the rest of
                # the upstream response is read only so the keep-alive connection can be reused.
                await self._end()
                async with asyncio.timeout(DRAIN_SECONDS):
                    async for _ in stream:
                        pass
                return
        chunks = []
        for payload in decoder.flush():
            if payload and payload != b"[DONE]":
                chunks += repair.chunk(parse_chunk(payload))
        chunks += repair.flush()
        if chunks:
            await self._put(chunks)

    def _translate(self, translator: Translator, item: object) -> tuple[list[StreamEvent], bool]:
        """Events for one queued item, and whether the stream ends with them."""
        stats = self.stats
        try:
            if item is END:
                return translator.finish(), True
            if isinstance(item, ProxyError):
                stats.error = item
                return translator.fail(item), True
            assert isinstance(item, list)
            events: list[StreamEvent] = []
            for chunk in item:
                if isinstance(chunk.get("timings"), dict):
                    stats.upstream_timings = chunk["timings"]
                usage = chunk.get("usage")
                if isinstance(usage, dict) and "cost" in usage:
                    stats.upstream_cost = reported_cost(usage)
                events += translator.feed(chunk)
            return events, False
        except ProxyError as err:
            stats.error = err
            return translator.fail(err), True
        except Exception as exc:  # a proxy bug must still end the stream with an error event
            log.exception("stream translation failed")
            stats.error = ApiError(f"internal proxy error ({type(exc).__name__}); see the proxy log")
            return [stats.error.to_body()], True

    def _encode(self, events: list[StreamEvent], last: bool) -> tuple[bytes, bool]:
        """The SSE bytes of `events`, and whether the stream ends with them. Events that cannot be
        encoded (a proxy bug) are replaced by an error event that ends the stream: never a silent cut."""
        stats = self.stats
        try:
            data = encode_events(events)
        except Exception as exc:
            log.exception("stream event encoding failed")
            stats.error = ApiError(f"internal proxy error ({type(exc).__name__}); see the proxy log")
            events = [stats.error.to_body()]
            data, last = encode_event(events[0]), True
        stats.observe(events)
        return data, last

    async def relay(self, translator: Translator) -> AsyncGenerator[bytes, None]:
        """The client's SSE bytes. Always ends with message_stop or an error event.

        Each write carries everything queued so far: `message_start` goes out together with the chunks
        that already arrived, and the stream's last events carry `last_chunk` so the response can end
        in the same write."""
        stats = self.stats
        queue = self._queue
        try:
            events = translator.start()
            last = False
            written = time.monotonic()
            while True:
                while not last and not queue.empty():
                    more, last = self._translate(translator, queue.get_nowait())
                    events += more
                if events:
                    data, last = self._encode(events, last)
                    self.last_chunk = last
                    yield data
                    written = time.monotonic()
                elif time.monotonic() - written >= self._ping_interval:
                    # chunks arrive but translate to nothing yet (a tool call held back): keep alive
                    yield PING
                    written = time.monotonic()
                if last:
                    break
                item = await self._next()
                if item is None:  # silent for a whole interval: one ping
                    yield PING
                    written = time.monotonic()
                    events = []
                    continue
                events, last = self._translate(translator, item)
            self._relayed = True
        except (asyncio.CancelledError, GeneratorExit):
            stats.disconnected = True
            raise
        finally:
            self._finished()
