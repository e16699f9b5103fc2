"""ccstack replay through a real ccproxy process against the scripted upstream (loopback only): the
results folder, the table's numbers, tool calls checked against the request's tools."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ccstack import cli
from ccstack.traces import reading, replay

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "fixtures" / "traces" / "tiny"
sys.path.insert(0, str(REPO / "backends" / "scripted-upstream"))
import scripted_upstream as su  # noqa: E402


@pytest.fixture
def upstream() -> Iterator[str]:
    write = {"name": "Write", "arguments": {"file_path": "/w/hello.txt", "content": "hi"}}
    wrong = [{"name": "Write", "arguments": {"path": "hello.txt"}}, {"name": "write_file", "arguments": {}}]
    script = [
        {"text": "Writing it.", "tool_calls": [write], "chunks": 3},  # a valid call, in fragments
        {"text": "Done."},
        # the second target: a call with a wrong argument name, and a tool the request does not have
        {"tool_calls": wrong},
        {"text": "Done.", "delay": 0.3},
    ]
    server = su.ScriptedServer(("127.0.0.1", 0), su.Script(su.validate_script(script)), quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_replay_two_targets_writes_the_results_folder(
    upstream: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "replay"
    turns = [str(TINY / "01-turn1.json"), str(TINY / "02-turn2-tool-result.json")]
    argv = ["replay", *turns, "--to", upstream, "--model", "good", "--to", upstream + "/v1", "--model", "bad"]
    code = cli.main([*argv, "--out", str(out), "--max-tokens", "64"])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    assert "results in" in stdout
    data = json.loads((out / "results.json").read_text())
    results = data["results"]
    assert [(r["target"], r["trace"], r["status"]) for r in results] == [
        ("good", "01-turn1.json", 200),
        ("good", "02-turn2-tool-result.json", 200),
        ("bad", "01-turn1.json", 200),
        ("bad", "02-turn2-tool-result.json", 200),
    ]
    assert results[0]["tool_calls"] == [{"name": "Write", "valid": True, "problem": None}]
    assert results[0]["calls"] == [{"name": "Write", "input": {"file_path": "/w/hello.txt", "content": "hi"}}]
    assert results[1]["tool_calls"] == []
    assert results[1]["answer"] == "Done."
    bad = results[2]["tool_calls"]
    assert [(c["name"], c["valid"]) for c in bad] == [("Write", False), ("write_file", False)]
    assert "required" in bad[0]["problem"]
    assert bad[1]["problem"] == "not a tool of the request"
    assert results[3]["first_token_s"] >= 0.3  # the scripted delay before the first byte
    for r in results:
        assert r["total_s"] >= r["first_token_s"] > 0
        assert r["output_tokens"] >= 1
        assert r["replay_trace"]  # the replay's own proxy trace was found
    assert data["targets"][0]["features"] == "generic"
    assert all(t["url"] == upstream + "/v1" for t in data["targets"])
    md = (out / "replay.md").read_text()
    assert "| good | 01-turn1.json | 200 |" in md
    assert "1/1 valid" in md
    assert "0/2 valid" in md
    assert "write_file: not a tool of the request" in md
    assert (out / "replay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # each target's proxy traced its requests: a trace of the replay reads back like any trace
    replayed = reading.trace_files(out / "1-good" / "traces")
    assert len(replayed) == 2
    checks = [c for path in replayed for c in reading.load(path).tool_checks()]
    assert [(c.name, c.valid) for c in checks] == [("Write", True)]


def test_a_failing_target_is_a_row_not_a_crash(tmp_path: Path) -> None:
    target = replay.Target(spec="x", url="http://127.0.0.1:9/v1", model="nobody")
    trace = reading.load(TINY / "01-turn1.json")
    results = replay.replay([trace], [target], tmp_path, max_tokens=16, timeout=30)
    assert len(results) == 1
    assert results[0]["status"] != 200
    assert results[0]["error"]
