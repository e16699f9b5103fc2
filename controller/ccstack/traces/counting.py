"""Token counters for the breakdown. With a llama-server at hand, its own tokenizer (`/tokenize`) counts
each part and its chat template (`/apply-template`) + tokenizer the whole translated request, exactly
as the proxy's pre-flight count does (= the backend's prompt_n). Otherwise tiktoken's o200k_base,
offline (ccproxy's bundled encoding): an estimate for another model's tokenizer, said so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import httpx


class Counter(Protocol):
    name: str

    def count(self, texts: Sequence[str]) -> list[int]: ...

    def total(self, upstream_request: Mapping[str, Any]) -> int | None:
        """The whole rendered prompt of a translated request, or None when this counter cannot."""
        ...


class TiktokenCounter:
    name = "tiktoken o200k_base (an estimate: not the backend's tokenizer, no chat template)"

    def __init__(self) -> None:
        from ccproxy.tokens import offline_encoding  # the proxy's offline copy of the encoding

        self._encoding = offline_encoding()

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(t) for t in self._encoding.encode_ordinary_batch(list(texts))]

    def total(self, upstream_request: Mapping[str, Any]) -> int | None:
        return None


class LlamaServerCounter:
    """Exact counts from a llama-server (root URL, e.g. http://127.0.0.1:8080; a trailing /v1 is dropped)."""

    def __init__(
        self, url: str, *, timeout: float = 60, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/").removesuffix("/v1")
        self._client = httpx.Client(timeout=timeout, transport=transport)
        props = self._post_get("/props")
        model = str(props.get("model_path") or "?").rsplit("/", 1)[-1] if isinstance(props, dict) else "?"
        self.name = f"llama-server /tokenize at {self.url} ({model}), total by /apply-template"

    def _post_get(self, path: str, body: object = None) -> Any:
        if body is None:
            response = self._client.get(self.url + path)
        else:
            response = self._client.post(self.url + path, json=body)
        response.raise_for_status()
        return response.json()

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(self._post_get("/tokenize", {"content": t})["tokens"]) if t else 0 for t in texts]

    def total(self, upstream_request: Mapping[str, Any]) -> int | None:
        body = {k: upstream_request[k] for k in ("messages", "tools") if k in upstream_request}
        prompt = self._post_get("/apply-template", body).get("prompt")
        if not isinstance(prompt, str):
            return None
        tokens = self._post_get("/tokenize", {"content": prompt, "add_special": True, "parse_special": True})
        return len(tokens["tokens"])


def stack_llama_server(project: str | None = None) -> str | None:
    """The running stack's llama-server (local mode), if there is one this host can reach."""
    try:
        from ccstack.traces.replay import stack_service_ip

        ip = stack_service_ip("llama-server", "backend", project)
    except Exception:  # no Docker, no daemon, no permission: no stack to ask
        return None
    return None if ip is None else f"http://{ip}:8080"


def make_counter(backend: str | None, project: str | None = None) -> tuple[Counter, str | None]:
    """The llama-server counter when `backend` answers, else tiktoken; and why llama-server was not used.
    `auto`: the running stack's llama-server when there is one; `none`: tiktoken."""
    if backend == "auto":
        backend = stack_llama_server(project)
    if backend and backend != "none":
        try:
            return LlamaServerCounter(backend), None
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            return TiktokenCounter(), f"llama-server at {backend} not usable ({exc}); counted with tiktoken"
    return TiktokenCounter(), None
