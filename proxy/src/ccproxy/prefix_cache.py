"""Claude Code's prefix kept across llama-server restarts: slot files saved and restored (I/O).

Started with `--slot-save-path DIR`, llama-server writes a slot's KV cache to a file and loads it back
into any slot (`POST /slots/{id}?action=save|restore`, `{"filename": ...}`). Restoring a prefix takes
a fraction of a second where its prefill takes minutes on a CPU, and a request that starts with the
restored tokens reuses them (llama-server compares tokens, so a restore can only help). Before the
first turn of each session, on its slot and inside the slot's lock (`prepare`):

1. **key**: the request cut before its first user turn, rendered by llama-server (`/apply-template`),
   counted (`/tokenize`) and hashed with the model's identity (`ccproxy.prefix_key`). Prefixes
   shorter than `min_tokens` are left alone.
2. **warm**: the slot already holds that prefix (the proxy put it there and `/slots` still reports as
   many tokens): nothing to do. A slot of unknown content that holds at least as many tokens (the proxy
   restarted, llama-server did not) is left alone too: it may hold this very conversation.
3. **restore** `<key>.bin` into the slot. A missing, truncated, corrupt or mismatched file (another
   model, build or cache type) is a log line and a counted result, never an error to the client.
4. otherwise **process the prefix alone** (`/completion`, `n_predict: 0`, streamed with
   `return_progress`: logged batch by batch, never silent for the whole prefill) and **save** the slot:
   the file holds exactly the prefix, nothing of the conversation; the request then reuses it. At most
   one save per key (and `MAX_SAVES` keys) per run.

Every outcome is counted (`ccproxy_prefix_cache_total{result=...}`): warm, kept, restored,
restore_failed, saved, save_failed, save_skipped, error, unsupported. Later turns of a session only
record which prefix their slot holds. Without `--slot-save-path` llama-server answers 501 and the cache
stays off for `RETRY_UNSUPPORTED` seconds (one warning).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ccproxy.errors import ProxyError, from_upstream_status
from ccproxy.prefill_log import progress_line
from ccproxy.prefix_key import cut_prefix, filename, model_identity, prefix_key, probe_body
from ccproxy.sse import SSEDataDecoder
from ccproxy.upstream import ERROR_BODY_LIMIT, Upstream

log = logging.getLogger("ccproxy.prefix_cache")

MAX_SESSIONS = 4096
MAX_SAVES = 8
"""Distinct prefixes saved per run at most (files are ~12 KB per token for a 0.5B model, more for
bigger ones); the llama-server entrypoint prunes the directory to a size budget at start."""
RETRY_UNSUPPORTED = 300.0
PROBE_TIMEOUT = 10.0


class Unsupported(Exception):
    """llama-server has no --slot-save-path (HTTP 501 on slot actions)."""


@dataclass(frozen=True)
class Prefix:
    key: str
    text: str
    n_tokens: int

    @property
    def filename(self) -> str:
        return filename(self.key)


class PrefixCache:
    """Restores or saves the shared prefix before a session's first turn (see the module doc)."""

    def __init__(self, upstream: Upstream, *, min_tokens: int, observe: Callable[[str], None]) -> None:
        self._upstream = upstream
        self.min_tokens = min_tokens
        self._observe = observe
        self._sessions: OrderedDict[str, Prefix | None] = OrderedDict()
        self._holds: dict[int, str] = {}  # slot -> key of the prefix the proxy last put or used there
        self._absent: set[str] = set()  # keys whose file did not restore in this run
        self._saved: set[str] = set()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._unsupported_until = 0.0
        self._warned_unsupported = False

    async def prepare(self, slot: int, session: str, body: Mapping[str, Any], *, side: bool) -> None:
        """Called on the request's slot, under its lock, right before the request is sent. Never raises
        (but lets cancellation through)."""
        if side or time.monotonic() < self._unsupported_until:
            self._holds.pop(slot, None)
            return
        try:
            if session in self._sessions:
                self._sessions.move_to_end(session)
                prefix = self._sessions[session]
            else:
                prefix = await self._describe(body)
                if prefix is not None:
                    await self._warm(slot, prefix)
                # only now: a turn cancelled while the prefix was processed prepares again when re-sent
                self._remember(session, prefix)
        except Unsupported:
            self._unsupported()
            prefix = None
        except (ProxyError, ValueError, KeyError, TypeError) as exc:
            message = exc.message if isinstance(exc, ProxyError) else repr(exc)
            log.warning("prefix cache: skipped for this session (%s)", message)
            self._observe("error")
            prefix = None
            self._remember(session, None)  # not tried again on every turn
        if prefix is None:
            self._holds.pop(slot, None)
        else:
            self._holds[slot] = prefix.key

    def _remember(self, session: str, prefix: Prefix | None) -> None:
        self._sessions[session] = prefix
        if len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)

    async def _describe(self, body: Mapping[str, Any]) -> Prefix | None:
        """The request's shared prefix with its key, or None (no template sentinel, too short)."""
        rendered = await self._upstream.post_json("/apply-template", probe_body(body), root=True)
        text = cut_prefix(rendered.get("prompt", "")) if isinstance(rendered, dict) else None
        if not text:
            return None
        tokens = await self._upstream.post_json(
            "/tokenize", {"content": text, "add_special": True, "parse_special": True}, root=True
        )
        n_tokens = len(tokens["tokens"])
        if n_tokens < self.min_tokens:
            return None
        props = await self._upstream.get_json("/props", root=True, deadline=PROBE_TIMEOUT)
        try:
            models = await self._upstream.get_json("/models", deadline=PROBE_TIMEOUT)
        except ProxyError:
            models = None
        identity = model_identity(props if isinstance(props, dict) else {}, models)
        return Prefix(prefix_key(identity, text), text, n_tokens)

    async def _warm(self, slot: int, prefix: Prefix) -> None:
        held = self._holds.get(slot)
        n_slot = await self._slot_tokens(slot)
        if held == prefix.key and (n_slot is None or n_slot >= prefix.n_tokens):
            self._observe("warm")
            return
        if held is None and n_slot is not None and n_slot >= prefix.n_tokens:
            log.info("prefix cache: slot %d holds %d tokens of unknown content; left as is", slot, n_slot)
            self._observe("kept")
            return
        lock = self._locks.get(prefix.key)
        if lock is None:
            lock = self._locks[prefix.key] = asyncio.Lock()
        async with lock:  # one restore or prefill per prefix at a time, whichever slot needs it
            if prefix.key not in self._absent and await self._restore(slot, prefix):
                return
            await self._prefill_and_save(slot, prefix)

    async def _slot_tokens(self, slot: int) -> int | None:
        """How many tokens llama-server's /slots reports in the slot (0 if none), None if unknown."""
        try:
            slots = await self._upstream.get_json("/slots", root=True, deadline=PROBE_TIMEOUT)
        except ProxyError:
            return None
        for entry in slots if isinstance(slots, list) else ():
            if isinstance(entry, dict) and entry.get("id") == slot:
                n = entry.get("n_prompt_tokens")
                return n if isinstance(n, int) else 0
        return None

    async def _slot_action(self, slot: int, action: str, name: str) -> tuple[int, Any]:
        """POST /slots/{slot}?action=...; (status, JSON answer or error text). 501: Unsupported."""
        content = json.dumps({"filename": name}).encode()
        response = await self._upstream.send(
            f"/slots/{slot}", content, root=True, query=f"action={action}", check=False
        )
        if response.status_code == 501:
            raise Unsupported
        if response.status_code >= 300:
            text = response.text[:ERROR_BODY_LIMIT]
            return response.status_code, from_upstream_status(response.status_code, text, {}).message
        return response.status_code, json.loads(response.content)

    async def _restore(self, slot: int, prefix: Prefix) -> bool:
        started = time.monotonic()
        status, answer = await self._slot_action(slot, "restore", prefix.filename)
        if status >= 300 or not isinstance(answer, dict):
            log.info(
                "prefix cache: %s not restored (missing, truncated, corrupt or made by another model or "
                "build): %s; processing the prefix instead",
                prefix.filename,
                answer,
            )
            self._absent.add(prefix.key)
            self._observe("restore_failed")
            return False
        log.info(
            "prefix cache: restored %s tokens (%.0f MB; prefix %d tokens) into slot %d in %.2f s from %s",
            answer.get("n_restored"),
            _mb(answer.get("n_read")),
            prefix.n_tokens,
            slot,
            time.monotonic() - started,
            prefix.filename,
        )
        self._observe("restored")
        return True

    async def _prefill(self, slot: int, prefix: Prefix) -> object:
        """Process the prefix alone on the slot; returns the tokens it found in the cache (if told)."""
        body = {
            "prompt": prefix.text,
            "n_predict": 0,
            "id_slot": slot,
            "cache_prompt": True,
            "stream": True,
            "return_progress": True,
        }
        cached: object = None
        async with self._upstream.stream("/completion", json.dumps(body).encode(), root=True) as answer:
            decoder = SSEDataDecoder()
            async for data in answer:
                for payload in decoder.feed(data):
                    chunk = json.loads(payload) if payload else None
                    if not isinstance(chunk, dict):
                        continue
                    if "error" in chunk:
                        raise ValueError(f"prefill failed: {chunk['error']}")
                    if "prompt_progress" in chunk:
                        progress = progress_line(f"prefix cache: slot {slot}", chunk["prompt_progress"])
                        if progress is not None:
                            log.info("%s", progress)
                    timings = chunk.get("timings")
                    if isinstance(timings, dict) and "cache_n" in timings:
                        cached = timings["cache_n"]
                    if chunk.get("stop") is True:
                        return cached
        return cached

    async def _prefill_and_save(self, slot: int, prefix: Prefix) -> None:
        started = time.monotonic()
        cached = await self._prefill(slot, prefix)
        prefilled = time.monotonic()
        if prefix.key not in self._saved and len(self._saved) >= MAX_SAVES:
            log.warning("prefix cache: %d prefixes saved this run; %s not saved", MAX_SAVES, prefix.filename)
            self._observe("save_skipped")
            return
        status, answer = await self._slot_action(slot, "save", prefix.filename)
        if status >= 300 or not isinstance(answer, dict):
            log.warning("prefix cache: saving %s failed: %s", prefix.filename, answer)
            self._observe("save_failed")
            return
        self._saved.add(prefix.key)
        self._absent.discard(prefix.key)
        log.info(
            "prefix cache: processed the %d-token prefix on slot %d in %.1f s (%s from cache), saved %s "
            "(%.0f MB) in %.2f s",
            prefix.n_tokens,
            slot,
            prefilled - started,
            cached if cached is not None else "?",
            prefix.filename,
            _mb(answer.get("n_written")),
            time.monotonic() - prefilled,
        )
        self._observe("saved")

    def _unsupported(self) -> None:
        self._unsupported_until = time.monotonic() + RETRY_UNSUPPORTED
        self._observe("unsupported")
        if not self._warned_unsupported:
            self._warned_unsupported = True
            log.warning(
                "prefix cache: llama-server has no --slot-save-path, so Claude Code's prefix is not kept "
                "across restarts (start it with --slot-save-path DIR; ccproxy --prefix-cache-min-tokens off "
                "silences this)"
            )


def _mb(n_bytes: object) -> float:
    return n_bytes / 1e6 if isinstance(n_bytes, int) else 0.0
