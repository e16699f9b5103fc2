"""`ccstack status`: what llama-server's slots are doing, a running prefill with its progress.

Two sources, both read inside the stack's containers (Docker's exec and log APIs; no host route, and
no change to the proxy):

- llama-server's ``GET /slots`` (``curl`` inside its container, as its health check does). Per slot:
  ``is_processing``; while a prompt is processed, ``n_prompt_tokens`` (tokens handed to the model so
  far: whole batches of 2048) and ``n_prompt_tokens_processed`` (the batches done), ``n_prompt_tokens_cache``
  (reused from the slot's cache); ``next_token[0].n_decoded`` (tokens generated). The prompt's total
  is not there: llama-server updates these fields once per batch.
- the proxy's prefill log line (``ccproxy.prefill_log``, from llama-server's ``return_progress``):
  ``req_… prefill 2048/8056 tokens (0 cached) 72.3 s, 28 tok/s``, which has the total and the rate.
  The newest such line of the last ``RECENT`` seconds is shown while a slot processes a prompt.

    backend: slot 0 prefill: 2048 tokens processed, 4096 handed to the model (0 cached)
             slot 1 idle
             proxy: req_95b0… prefill 2048/8056 tokens (0 cached) 72.3 s, 28 tok/s: 25%, about 3:35 left
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from ccstack.progress import format_duration

RECENT = 300
"""Seconds of the proxy's log searched for a prefill line."""
_SLOTS = ["curl", "-s", "-m", "5", "http://127.0.0.1:8080/slots"]
PREFILL = re.compile(
    r"(?P<request>req_\w+) prefill (?P<done>\d+)/(?P<total>\d+) tokens \((?P<cached>\d+) cached\)"
    r" [\d.]+ s(?:, (?P<rate>\d+) tok/s)?"
)


@dataclass(frozen=True)
class Slot:
    """One llama-server slot, as /slots says it (counts are None where the build does not say them)."""

    id: int
    processing: bool
    prompt_tokens: int | None = None
    processed: int | None = None
    cached: int | None = None
    decoded: int | None = None

    @property
    def generating(self) -> bool:
        return bool(self.decoded)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def parse_slots(data: object) -> list[Slot]:
    """The slots of a /slots answer (a JSON list); entries that are not slots are skipped."""
    if not isinstance(data, list):
        raise ValueError(f"/slots: expected a list, got {type(data).__name__}")
    slots = []
    for entry in data:
        if not isinstance(entry, dict) or _int(entry.get("id")) is None:
            continue
        next_token = entry.get("next_token")
        first = next_token[0] if isinstance(next_token, list) and next_token else {}
        slots.append(
            Slot(
                id=int(entry["id"]),
                processing=entry.get("is_processing") is True,
                prompt_tokens=_int(entry.get("n_prompt_tokens")),
                processed=_int(entry.get("n_prompt_tokens_processed")),
                cached=_int(entry.get("n_prompt_tokens_cache")),
                decoded=_int(first.get("n_decoded")) if isinstance(first, dict) else None,
            )
        )
    return slots


def slot_line(slot: Slot) -> str:
    """One slot in words: idle, a prefill with its counts, or generating."""
    if not slot.processing:
        return f"slot {slot.id} idle"
    if slot.generating:
        return f"slot {slot.id} generating: {slot.decoded} tokens so far"
    if slot.processed is None:
        return f"slot {slot.id} processing the prompt"
    line = f"slot {slot.id} prefill: {slot.processed} tokens processed"
    if slot.prompt_tokens is not None and slot.prompt_tokens > slot.processed:
        line += f", {slot.prompt_tokens} handed to the model"
    if slot.cached is not None:
        line += f" ({slot.cached} cached)"
    return line


def latest_prefill(log: str) -> str | None:
    """The proxy's newest prefill progress line in a stretch of its log (only the progress part), with
    the share done and the time left at its rate."""
    matches = list(PREFILL.finditer(log))
    if not matches:
        return None
    m = matches[-1]
    done, total, rate = int(m["done"]), int(m["total"]), int(m["rate"] or 0)
    line = m.group(0).strip()
    if total:
        line += f": {min(done / total, 1.0):.0%}"
    if rate and done < total:
        line += f", about {format_duration((total - done) / rate)} left"
    return line


def backend_lines(slots: list[Slot], proxy_log: str | None) -> list[str]:
    """What `status` prints under "backend": a line per slot; while a prompt is processed, the proxy's
    newest prefill line (it has the prompt's total and the rate)."""
    lines = [slot_line(s) for s in slots]
    if any(s.processing and not s.generating for s in slots) and proxy_log:
        prefill = latest_prefill(proxy_log)
        if prefill:
            lines.append(f"proxy: {prefill}")
    return lines


def read(project: str) -> list[str]:
    """The backend lines of a running stack with a llama-server container ([] without one)."""
    import docker

    client = docker.from_env()

    def container(service: str) -> Any:
        labels = [f"com.docker.compose.project={project}", f"com.docker.compose.service={service}"]
        found = client.containers.list(filters={"label": labels})
        return found[0] if found else None

    llama = container("llama-server")
    if llama is None:
        return []
    result: Any = llama.exec_run(_SLOTS)
    try:
        slots = parse_slots(json.loads(result.output.decode("utf-8", "replace")))
    except ValueError as e:
        return [f"cannot read llama-server's /slots: {str(e)[:200]}"]
    proxy = container("proxy")
    log = None
    if proxy is not None and any(s.processing for s in slots):
        log = proxy.logs(since=int(time.time()) - RECENT, tail=500).decode("utf-8", "replace")
    return backend_lines(slots, log)
