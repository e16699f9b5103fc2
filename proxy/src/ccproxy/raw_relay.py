"""The pass-through relay (anthropic-kind upstreams): an Anthropic-native stream forwarded untouched.

    relay = RawRelay(open_upstream, ping_interval=5, stats=stats)
    relay.start()
    early = await relay.wait_started(0.5)   # a ProxyError seen before the stream began, or None
    async for data in relay.relay(): ...

The upstream task, pings and disconnect handling are `relay.UpstreamTask`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterable

from ccproxy.errors import ProxyError, UpstreamProtocolError
from ccproxy.relay import END, UpstreamTask
from ccproxy.sse import PING, SSEDataDecoder, encode_event

__all__ = ["RawRelay"]


class RawRelay(UpstreamTask):
    """Pass-through of an Anthropic-native stream: bytes forwarded untouched.

    Pings are only inserted at event boundaries while the upstream is silent; a stream that ends without
    `message_stop` (cut, timeout, garbage) gets an `error` event appended.
    """

    async def _read(self, body: AsyncIterable[bytes]) -> None:
        async for data in body:
            if data:
                await self._put(data)

    async def relay(self) -> AsyncGenerator[bytes, None]:
        stats = self.stats
        usage = SSEDataDecoder()  # usage from message_start / message_delta, for logs and metrics
        tail = b"\n\n"  # the last bytes forwarded (an event boundary when they end with a blank line)
        stopped = False
        try:
            while True:
                item = await self._next()
                if item is None:
                    if tail.endswith(b"\n\n"):
                        yield PING
                    continue
                if isinstance(item, bytes):
                    for payload in usage.feed(item):
                        if b'"usage"' in payload:
                            with contextlib.suppress(ValueError, RecursionError):
                                event = json.loads(payload)
                                stats.observe([event] if isinstance(event, dict) else [])
                    stopped = stopped or b"event: message_stop" in tail[-32:] + item
                    tail = (tail + item)[-64:]
                    yield item
                    continue
                if item is END and stopped:
                    self._relayed = True
                    break
                err = (
                    item
                    if isinstance(item, ProxyError)
                    else UpstreamProtocolError("upstream stream ended before message_stop")
                )
                stats.error = err
                yield (b"" if tail.endswith(b"\n\n") else b"\n\n") + encode_event(err.to_body())
                self._relayed = True
                break
        except (asyncio.CancelledError, GeneratorExit):
            stats.disconnected = True
            raise
        finally:
            self._finished()
