"""The sandbox's status line script (claude-sandbox/status-line.js) run by node, as Claude Code runs it
(the session on stdin, the proxy's URL and token in the environment), against the real `ccproxy`
process over the scripted upstream: the line shows the session's real figures and spend vs budget."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import ccproxy, scripted_upstream

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parents[2] / "claude-sandbox" / "status-line.js"
TOKEN = "status-line-test-token"
TOOLS = [{"name": "Write", "input_schema": {"type": "object"}}]


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("`node` on PATH is needed to run claude-sandbox/status-line.js")
    return found


def status_line(base: str, session: str, *, token: str = TOKEN, window: int | None = None) -> str:
    stdin: dict[str, Any] = {"session_id": session, "model": {"display_name": "Opus"}}
    if window is not None:
        stdin["context_window"] = {"context_window_size": window}
    env = {"PATH": "/usr/bin:/bin", "ANTHROPIC_BASE_URL": base, "ANTHROPIC_AUTH_TOKEN": token}
    done = subprocess.run(
        [node(), str(SCRIPT)], input=json.dumps(stdin), env=env, capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.rstrip("\n")


def pure(view: object, stdin: object) -> str:
    """The script's `statusLine(view, input)` alone."""
    call = f"require({json.dumps(str(SCRIPT))}).statusLine({json.dumps(view)}, {json.dumps(stdin)})"
    code = f"process.stdout.write({call})"
    done = subprocess.run([node(), "-e", code], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    return done.stdout


def turn(base: str, session: str) -> httpx.Response:
    body = {
        "model": "claude-opus-4-8",
        "max_tokens": 100,
        "stream": True,
        "tools": TOOLS,
        "messages": [{"role": "user", "content": "say hello " * 50}],
    }
    headers = {"authorization": f"Bearer {TOKEN}", "x-claude-code-session-id": session}
    return httpx.post(base + "/v1/messages", json=body, headers=headers, timeout=30)


def test_the_line_shows_the_sessions_figures_and_spend_against_the_budget(tmp_path: Path) -> None:
    session, other = str(uuid.uuid4()), str(uuid.uuid4())
    script = [{"text": "hello there, " * 20}, {"text": "again"}]
    with (
        scripted_upstream(log=tmp_path / "upstream.log", script=script) as up,
        ccproxy(
            up.url + "/v1", "--token", TOKEN, "--budget-session-tokens", "1000000", log=tmp_path / "proxy.log"
        ) as proxy,
    ):
        before = status_line(proxy.url, session, window=200000)
        assert turn(proxy.url, session).status_code == 200
        figures = httpx.get(
            f"{proxy.url}/ccproxy/sessions/{session}", headers={"authorization": f"Bearer {TOKEN}"}
        ).json()
        line = status_line(proxy.url, session, window=200000)
        theirs = status_line(proxy.url, other, window=200000)
        wrong_token = status_line(proxy.url, session, token="not-the-token")

    assert before == "ctx -/~200,000 | no turn yet | session 0/1.0M tok"
    last = figures["last_turn"]
    prompt, spent = last["prompt_tokens"], figures["spend"]["session"]["tokens"]
    assert prompt > 50  # the scripted upstream counts the prompt it was sent
    assert spent == prompt + last["output_tokens"]
    rate = last["tokens_per_second"]
    assert rate is not None
    assert rate > 0
    share = round(prompt / 200000 * 100)
    # no backend window (a generic upstream): Claude Code's own, marked ~; no cache reads reported
    assert line == (
        f"ctx {prompt:,}/~200,000 ({share}%) | cache 0% | {rate:.1f} tok/s | session {spent:,}/1.0M tok"
    )
    assert theirs == "ctx -/~200,000 | no turn yet | session 0/1.0M tok"  # nothing of my session
    assert wrong_token == "ccproxy: figures unavailable (proxy answered 401)"


@pytest.mark.parametrize(
    ("view", "stdin", "expected"),
    [
        (
            {
                "window": 32768,
                "last_turn": {
                    "prompt_tokens": 12345,
                    "cache_share": 0.9712,
                    "tokens_per_second": 23.456,
                },
                "budget": {"session_usd": 2.0, "day_tokens": 50_000_000},
                "spend": {
                    "session": {"tokens": 120000, "usd": 0.1234, "unpriced_calls": 0},
                    "day": {"tokens": 2_500_000, "usd": 0.5, "unpriced_calls": 0},
                },
            },
            {"context_window": {"context_window_size": 200000}},
            "ctx 12,345/32,768 (38%) | cache 97% | 23.5 tok/s | session $0.1234/$2.00 | today 2.5M/50.0M tok",
        ),
        (
            {
                "window": None,
                "last_turn": {"prompt_tokens": 900, "cache_share": None, "tokens_per_second": None},
                "budget": {},
                "spend": {
                    "session": {"tokens": 950, "usd": 1.5, "unpriced_calls": 2},
                    "day": {"tokens": 950, "usd": 1.5, "unpriced_calls": 2},
                },
            },
            {},
            "ctx 900 | cache - | - tok/s | >=$1.50",
        ),
        (None, {"context_window": {"context_window_size": 4096}}, "ctx -/~4,096 | no turn yet"),
    ],
)
def test_formatting(view: object, stdin: object, expected: str) -> None:
    assert pure(view, stdin) == expected


def test_no_proxy_answers_with_a_reason_not_a_failure(tmp_path: Path) -> None:
    assert status_line("http://127.0.0.1:9", str(uuid.uuid4())).startswith("ccproxy: figures unavailable (")
