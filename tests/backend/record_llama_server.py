"""Record real llama-server `/v1/chat/completions` SSE streams into tests/fixtures/llama_server/.

The proxy's unit tests replay them (tests/proxy/test_translate_stream.py). Each file is the raw response
body, byte for byte; `<name>.request.json` beside it is the request that produced it.

    .venv/bin/python tests/backend/record_llama_server.py [--url http://127.0.0.1:PORT]

Without --url it starts the ccsandbox/llama-server:local container with the default model and our
template (as the backend suite does) and removes it afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ccstack import models
from harness.llama import llama_server
from llama_helpers import OPENAI_WRITE_FILE, REPO

OUT = REPO / "tests" / "fixtures" / "llama_server"
TITLE_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}},
    "required": ["title"],
    "additionalProperties": False,
}
BASE: dict[str, Any] = {"stream": True, "temperature": 0, "stream_options": {"include_usage": True}}
WRITE = "Create the file hello.txt containing the text hi. Use write_file."
REQUESTS: dict[str, dict[str, Any]] = {
    "text": {
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Say hello in five words."},
        ],
        "max_tokens": 24,
    },
    "text_length": {
        "messages": [{"role": "user", "content": "Count from one to fifty in words."}],
        "max_tokens": 8,
    },
    "tool_call": {
        "messages": [{"role": "user", "content": WRITE}],
        "tools": [OPENAI_WRITE_FILE],
        "max_tokens": 64,
    },
    "tool_call_required": {
        "messages": [{"role": "user", "content": "Save a file notes.txt saying done."}],
        "tools": [OPENAI_WRITE_FILE],
        "tool_choice": "required",
        "max_tokens": 64,
    },
    "json_schema_title": {
        "messages": [{"role": "user", "content": "Name this session in three words: fixing the login bug."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "title", "schema": TITLE_SCHEMA}},
        "max_tokens": 24,
    },
}


def record(url: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, request in REQUESTS.items():
        body = {**BASE, **request}
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as response:
            response.raise_for_status()
            data = response.read()
        (OUT / f"{name}.sse").write_bytes(data)
        (OUT / f"{name}.request.json").write_text(json.dumps(body, indent=1) + "\n")
        print(f"{name}.sse: {len(data)} bytes", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="root URL of a running llama-server (with our template)")
    args = parser.parse_args()
    if args.url:
        record(args.url.rstrip("/"))
        return 0
    with llama_server(
        models.fetch(models.DEFAULT_MODEL),
        env={"LLAMA_CHAT_TEMPLATE": "qwen2.5-coder-tools", "LLAMA_CTX_PER_SLOT": "4096"},
        name_prefix="ccsandbox-record-llama",
    ) as server:
        record(server.url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
