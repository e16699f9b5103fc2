"""`ccstack trace list|analyze|compare` over real ccproxy traces (tests/fixtures/traces/tiny-0.5b: Claude
Code's recorded day1 turns, trimmed (tiny/), replayed through ccproxy to a real llama-server with
Qwen2.5-Coder-0.5B) and recorded requests; the llama-server counter against a fake server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from ccstack import cli
from ccstack.traces import reading
from ccstack.traces.cli import analyze
from ccstack.traces.counting import LlamaServerCounter, TiktokenCounter

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REAL = FIXTURES / "traces" / "tiny-0.5b"
TINY = FIXTURES / "traces" / "tiny"


@pytest.fixture(autouse=True)
def no_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """No look for a running stack's llama-server (Docker) in these tests: tiktoken counts."""
    monkeypatch.setenv("CCSTACK_TRACE_BACKEND", "none")


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert cli.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, "trace", "list", "--dir", str(REAL))
    assert [(r["endpoint"], r["messages"], r["tools"], r["status"]) for r in rows] == [
        ("/v1/messages", 1, 1, 200),
        ("/v1/messages", 3, 1, 200),
    ]
    assert rows[0]["session"] == rows[1]["session"]
    assert cli.main(["trace", "list", "--dir", str(REAL)]) == 0
    table = capsys.readouterr().out
    assert "2 traces" in table
    assert "/v1/messages" in table


def test_analyze_a_real_trace(capsys: pytest.CaptureFixture[str]) -> None:
    first = reading.trace_files(REAL)[0]
    out = run_json(capsys, "trace", "analyze", str(first), "-v")
    b = out["breakdown"]
    assert b["source"] == "upstream"
    assert b["counter"].startswith("tiktoken o200k_base")
    assert b["total"] is None
    tools = [r for r in b["rows"] if r["group"] == "tools"]
    assert [r["label"] for r in tools] == ["Write"]
    assert b["groups"]["tools"] == tools[0]["tokens"] > b["groups"]["system"] > 0
    turn = out["turn"]
    assert turn["timings_from"] == "llama-server timings"
    assert turn["prompt_tokens"] == 593  # llama-server's prompt_n
    assert turn["prompt_ms"] > 0
    assert turn["first_byte_s"] > 0
    assert turn["total_s"] >= turn["first_byte_s"]
    # by request id (a prefix of the file name) inside the trace directory
    by_id = run_json(capsys, "trace", "analyze", first.name.split("-", 1)[1][:12], "--dir", str(REAL))
    assert by_id["breakdown"] == {**b, "rows": by_id["breakdown"]["rows"]}
    assert cli.main(["trace", "analyze", str(first)]) == 0
    text = capsys.readouterr().out
    assert "tool definitions (1)" in text
    assert "from the cache" in text


def test_analyze_a_recorded_request(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "trace", "analyze", str(TINY / "02-turn2-tool-result.json"))
    assert out["recorded"] is True
    assert out["breakdown"]["source"] == "client"
    labels = [r["label"] for r in out["breakdown"]["rows"]]
    assert labels == [
        "system text",
        "tool definitions (1)",
        "user reminder",
        "user text",
        "assistant text",
        "assistant tool_use",
        "user tool_result",
    ]


def test_compare_shows_the_second_turn_from_the_cache(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "trace", "compare", str(REAL))
    first, second = out["requests"]
    assert first["turn"]["cache_share"] < 0.1
    assert second["turn"]["cache_share"] > 0.8
    assert second["tokens"]["messages"] > first["tokens"]["messages"]
    assert first["tokens"]["tools"] == second["tokens"]["tools"]
    assert cli.main(["trace", "compare", str(REAL)]) == 0
    assert "2 requests" in capsys.readouterr().out


def test_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["trace", "analyze", "nope", "--dir", str(tmp_path)]) == 1
    assert "nope: no such trace" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("[1]")
    assert cli.main(["trace", "analyze", str(tmp_path / "bad.json")]) == 1
    assert "not a trace" in capsys.readouterr().err
    assert cli.main(["trace", "list", "--dir", str(tmp_path / "missing")]) == 1


def test_default_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CCPROXY_TRACE_DIR", str(tmp_path))
    assert reading.default_dir() == tmp_path
    monkeypatch.delenv("CCPROXY_TRACE_DIR")
    monkeypatch.setenv("CCSANDBOX_STATE_DIR", str(tmp_path / "state"))
    assert reading.default_dir() == tmp_path / "state" / "traces"


def fake_llama(request: httpx.Request) -> httpx.Response:
    """/props, /apply-template (a fixed wrapping around each message) and /tokenize (a token per word)."""
    if request.url.path == "/props":
        return httpx.Response(200, json={"model_path": "/models/fake.gguf"})
    body = json.loads(request.content)
    if request.url.path == "/apply-template":
        text = " ".join(f"<im_start> {m['content']} <im_end>" for m in body["messages"])
        return httpx.Response(200, json={"prompt": text + " tools " * len(body.get("tools", []))})
    assert request.url.path == "/tokenize"
    return httpx.Response(200, json={"tokens": list(range(len(body["content"].split())))})


def test_llama_server_counter_gives_the_exact_total() -> None:
    counter = LlamaServerCounter("http://llama:8080/v1", transport=httpx.MockTransport(fake_llama))
    assert counter.name.startswith("llama-server /tokenize at http://llama:8080 (fake.gguf)")
    trace = reading.load(reading.trace_files(REAL)[0])
    assert trace.upstream_request is not None
    short = {**trace.upstream_request, "messages": [{"role": "system", "content": "be brief"}], "tools": []}
    b = analyze(reading.Trace(**{**trace.__dict__, "upstream_request": short}), counter, per_tool=True)
    assert b.total == 4  # <im_start> be brief <im_end>
    assert b.parts_total == 2
    assert b.template_overhead == 2


def test_tiktoken_counter_counts_offline() -> None:
    counter = TiktokenCounter()
    assert counter.count(["hello world", ""]) == [2, 0]
    assert counter.total({"messages": []}) is None


def test_a_whole_claude_code_session(capsys: pytest.CaptureFixture[str]) -> None:
    """tests/fixtures/traces/day1-0.5b: the recorded day1 turns, untrimmed (21 tools), through ccproxy
    to llama-server with the 0.5B model: the second turn's 19 k-token prefix comes from the cache."""
    day1 = FIXTURES / "traces" / "day1-0.5b"
    first, second = run_json(capsys, "trace", "compare", str(day1))["requests"]
    assert (first["turn"]["prompt_tokens"], first["turn"]["cached_tokens"]) == (19_263, 0)
    assert second["turn"]["cached_tokens"] == 19_263
    assert second["turn"]["cache_share"] > 0.99
    assert first["tool_calls"] == [{"name": "Write", "valid": True, "problem": None}]
    out = run_json(capsys, "trace", "analyze", str(reading.trace_files(day1)[0]), "-v")
    tools = [r for r in out["breakdown"]["rows"] if r["group"] == "tools"]
    assert len(tools) == 21
    assert out["breakdown"]["groups"]["tools"] > 3 * out["breakdown"]["groups"]["system"]


def test_auto_backend_without_a_stack_is_tiktoken(monkeypatch: pytest.MonkeyPatch) -> None:
    from ccstack.traces import counting, replay

    monkeypatch.setattr(replay, "stack_service_ip", lambda service, network, project=None: None)
    counter, warning = counting.make_counter("auto")
    assert isinstance(counter, TiktokenCounter)
    assert warning is None

    def no_docker(service: str, network: str, project: str | None = None) -> str:
        raise OSError("no daemon")

    monkeypatch.setattr(replay, "stack_service_ip", no_docker)
    assert counting.stack_llama_server() is None


BUDGET = FIXTURES / "traces" / "budget-scripted"


def test_compare_and_analyze_show_spend_against_the_budget(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "trace", "compare", str(BUDGET))
    spend = {(r["scope"], r["key"][:8]): r for r in out["spend"]}
    session = spend[("session", "11111111")]
    assert (session["requests"], session["token_budget"]) == (3, 450)
    assert session["token_share"] == session["tokens"] / 450 > 1
    day = next(r for r in out["spend"] if r["scope"] == "day")
    assert (day["requests"], day["usd_budget"]) == (4, 1.0)
    assert day["tokens"] == sum(r["tokens"] for r in out["spend"] if r["scope"] == "session")
    # analyze: the spend of the request's session and day up to it
    traces = reading.load_many(reading.trace_files(BUDGET))
    refused = next(t for t in traces if t.status == 402)
    first = min((t for t in traces if t.session == refused.session), key=lambda t: t.time or 0)
    upto_refused = run_json(capsys, "trace", "analyze", str(refused.file))["spend"]
    upto_first = run_json(capsys, "trace", "analyze", str(first.file))["spend"]
    assert [r["scope"] for r in upto_refused] == ["session", "day"]
    assert upto_refused[0]["tokens"] == session["tokens"]
    assert upto_first[0]["requests"] == 1
    assert upto_first[0]["tokens"] < 450
    assert cli.main(["trace", "compare", str(BUDGET)]) == 0
    table = capsys.readouterr().out
    assert "spend per session and per UTC day" in table
    assert f"450 ({round(100 * session['tokens'] / 450)} %)" in table
