"""The spend guard with the real CLI in the sandbox: `ccstack up test --budget-day-tokens N` over the
scripted upstream. A session runs within the budget; once the day's budget is spent, the next session
is refused by the proxy with 402 billing_error: the CLI shows the guard's message, the upstream sees no
further request, and the CLI does not retry (one refusal in the proxy's traces)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stack_helpers import CLAUDE_P, Stack, http_json

pytestmark = pytest.mark.stack


def chat_requests(url: str) -> list[dict[str, Any]]:
    return [r for r in http_json("GET", f"{url}/_requests") if r.get("path", "").startswith("/v1/chat/")]


def traced(stack: Stack) -> list[dict[str, Any]]:
    records = [json.loads(p.read_text()) for p in (stack.state_dir / "traces").glob("*.json")]
    return sorted((r for r in records if r.get("path") == "/v1/messages"), key=lambda r: r["time"])


def test_a_spent_budget_stops_the_real_cli_with_the_message_and_no_retry(
    stack: Stack, docker: Any, workdir: Path
) -> None:
    stack.ccstack("up", "test", "--trace", "--budget-day-tokens", "500")
    fake = f"http://{stack.ip(docker, 'scripted-upstream', 'backend')}:8080"
    http_json("POST", f"{fake}/_script", [{"text": "Four."}, {"text": "never sent"}])

    first = stack.ccstack("claude", str(workdir), "--", "-p", "What is 2 + 2?", *CLAUDE_P, check=False)
    assert first.returncode == 0, f"{first.stdout[-3000:]}\n{first.stderr[-3000:]}"
    spent = traced(stack)
    assert spent
    assert {r["status"] for r in spent} == {200}
    usage = [e.get("usage") or e.get("message", {}).get("usage") for e in spent[-1]["response_events"]]
    assert any(usage)  # Claude Code's prompt alone is over 500 tokens: the day's budget is spent
    sent = len(chat_requests(fake))

    second = stack.ccstack("claude", str(workdir), "--", "-p", "And 3 + 3?", *CLAUDE_P, check=False)
    said = second.stdout + second.stderr
    assert second.returncode != 0, said[-3000:]
    assert "spend guard" in said, said[-3000:]
    assert "token budget of today (UTC) is spent" in said
    assert len(chat_requests(fake)) == sent  # refused before the upstream
    refusals = [r for r in traced(stack) if r["status"] == 402]
    assert refusals, [r["status"] for r in traced(stack)]
    # Claude Code did not retry: no refused request was sent twice
    bodies = [json.dumps(r["request_body"], sort_keys=True) for r in refusals]
    assert len(set(bodies)) == len(bodies), f"{len(bodies)} refusals, {len(set(bodies))} distinct requests"
    assert refusals[0]["error"]["error"]["type"] == "billing_error"
    assert refusals[0]["budget"]["day_tokens"] == 500
    results = [json.loads(line) for line in second.stdout.splitlines() if '"type":"result"' in line]
    assert results, second.stdout[-3000:]
    assert results[-1]["is_error"] is True
    print("the CLI said:", results[-1]["result"])
