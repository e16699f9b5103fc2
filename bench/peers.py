"""The processes the overhead bench starts: the fake upstream, ccproxy, LiteLLM's proxy and
claude-code-router, each in its own session (process group) with its output in a log file.

Peers come from bench/setup-peers.sh (LiteLLM in its own venv, claude-code-router 2.0.0 from npm);
their configuration is written here into a scratch directory, never into the user's HOME.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import payloads
from harness import CCPROXY, CCPROXY_CMD, Process, ccproxy_process
from loadgen import Endpoint

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(os.environ.get("BENCH_TOOLS", ROOT / ".tools"))
LITELLM_VENV = TOOLS / "litellm-venv"
CCR_DIR = TOOLS / "ccr"
CCR_CLI = CCR_DIR / "node_modules/@musistudio/claude-code-router/dist/cli.js"
# Another ccproxy build or launcher to measure instead: BENCH_CCPROXY_CMD="python /path/to/launcher.py"
# (harness.CCPROXY_CMD).

BENCH_KEY = "sk-bench-0123456789abcdef0123456789abcdef"  # LiteLLM's master key; the others ignore it
ANTHROPIC_HEADERS = (
    ("anthropic-version", "2023-06-01"),
    ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"),
    ("x-api-key", BENCH_KEY),
    ("authorization", f"Bearer {BENCH_KEY}"),
    ("x-app", "cli"),
    ("user-agent", "claude-cli/2.1.330 (external, sdk-cli)"),
)


def anthropic_endpoint(port: int) -> Endpoint:
    return Endpoint(
        host="127.0.0.1",
        port=port,
        path="/v1/messages?beta=true",
        body=payloads.encode(payloads.anthropic_request()),
        headers=ANTHROPIC_HEADERS,
        token_marker=b'"text_delta"',
        done_marker=b"message_stop",
    )


def openai_endpoint(port: int) -> Endpoint:
    return Endpoint(
        host="127.0.0.1",
        port=port,
        path="/v1/chat/completions",
        body=payloads.encode(payloads.openai_request()),
        headers=(("authorization", "Bearer sk-bench"),),
        token_marker=b'"content":"H',
        done_marker=b"[DONE]",
    )


def fake_upstream(scratch: Path, port: int) -> Process:
    return Process(
        "fakeupstream",
        [sys.executable, str(Path(__file__).with_name("fakeupstream.py")), "--port", str(port)],
        scratch / "fakeupstream.log",
    )


def ccproxy(
    scratch: Path, port: int, upstream: str, *, name: str = "ccproxy", cmd: Sequence[str] = ()
) -> Process:
    flags = ("--upstream-kind", "openai", "--model", "fake")
    return ccproxy_process(port, upstream, *flags, log=scratch / f"{name}.log", name=name, cmd=cmd)


def litellm(scratch: Path, port: int, upstream: str) -> Process:
    # Written as JSON, which is valid YAML: LiteLLM reads its config with PyYAML.
    config = {
        "model_list": [
            {
                "model_name": "*",
                "litellm_params": {"model": "openai/fake", "api_base": upstream, "api_key": "sk-fake"},
            }
        ],
        "litellm_settings": {"telemetry": False, "drop_params": True},
        "general_settings": {"master_key": BENCH_KEY},
    }
    cfg = scratch / "litellm.yaml"
    cfg.write_text(json.dumps(config, indent=2))
    env = {
        # /v1/messages -> the upstream's Chat Completions, not its Responses API
        "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "True",
        # use the bundled model-cost map instead of fetching it from the internet at start
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "DISABLE_SCHEMA_UPDATE": "True",
        "NO_DOCS": "True",
    }
    argv = [
        str(LITELLM_VENV / "bin/litellm"),
        "--config",
        str(cfg),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return Process("litellm", argv, scratch / "litellm.log", env)


def claude_code_router(scratch: Path, port: int, upstream: str) -> Process:
    home = scratch / "ccr-home"
    (home / ".claude-code-router").mkdir(parents=True, exist_ok=True)
    config = {
        "LOG": False,
        "HOST": "127.0.0.1",
        "PORT": port,
        "APIKEY": "",
        "API_TIMEOUT_MS": 600000,
        "Providers": [
            {
                "name": "fake",
                "api_base_url": upstream + "/chat/completions",
                "api_key": "sk-fake",
                "models": ["fake"],
            }
        ],
        "Router": {"default": "fake,fake"},
    }
    (home / ".claude-code-router/config.json").write_text(json.dumps(config, indent=2))
    env = {"HOME": str(home), "TMPDIR": str(home), "NO_UPDATE_NOTIFIER": "1"}
    return Process("ccr", ["node", str(CCR_CLI), "start"], scratch / "ccr.log", env)


def ccproxy_available() -> str | None:
    """None when `ccproxy --help` runs, else why not."""
    if [str(CCPROXY)] == CCPROXY_CMD and not CCPROXY.exists():
        return f"{CCPROXY} not found (pip install -e proxy/)"
    try:
        done = subprocess.run([*CCPROXY_CMD, "--help"], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        return (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()[-1:][0]
    return None
