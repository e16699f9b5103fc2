"""`ccstack replay` through the real ccproxy to two real llama-servers: Qwen2.5-Coder 0.5B and 1.5B.

The trace is a recorded `claude -p` turn pair trimmed small (tests/fixtures/traces/tiny: the Write tool
only, no environment message): ~0.5 k tokens, so both models answer in about a minute on 2 cores.
CCSTACK_REPLAY_OUT=DIR keeps the results folder (results.json, replay.md, replay.png).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from ccstack import cli, models
from harness.llama import LlamaServer, llama_server

pytestmark = pytest.mark.backend

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "traces" / "tiny"
MODELS = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, LlamaServer]]:
    env = {
        "LLAMA_CHAT_TEMPLATE": "qwen2.5-coder-tools",
        "LLAMA_PARALLEL": "2",
        "LLAMA_CTX_PER_SLOT": "8192",
        "LLAMA_THREADS": "2",
    }
    with ExitStack() as started:
        servers: dict[str, LlamaServer] = {}
        for name in MODELS:
            try:
                model = models.fetch(name)
            except models.ModelError as exc:
                pytest.fail(f"cannot fetch the model {name}: {exc}")
            server = llama_server(model, env=env, name_prefix="ccsandbox-test-replay")
            servers[name] = started.enter_context(server)
        yield servers


def test_replay_against_two_real_models(
    servers: dict[str, LlamaServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = Path(os.environ.get("CCSTACK_REPLAY_OUT") or tmp_path / "replay")
    argv = ["replay", str(TINY / "01-turn1.json"), str(TINY / "02-turn2-tool-result.json")]
    for name, server in servers.items():
        argv += ["--to", server.url, "--model", name]
    code = cli.main([*argv, "--out", str(out), "--max-tokens", "128"])
    table = capsys.readouterr().out
    with capsys.disabled():
        print(table)
    assert code == 0, table
    data = json.loads((out / "results.json").read_text())
    assert [t["features"] for t in data["targets"]] == ["llama-server", "llama-server"]
    results = data["results"]
    assert [(r["target"], r["trace"]) for r in results] == [
        (m, t) for m in MODELS for t in ("01-turn1.json", "02-turn2-tool-result.json")
    ]
    for r in results:
        assert r["status"] == 200, r
        assert r["prompt_s"] > 0  # llama-server's own prompt time, from the replay's proxy trace
        assert r["tokens_per_s"] > 0
        assert r["total_s"] >= r["first_token_s"] > 0
    for turn1, turn2 in (results[0:2], results[2:4]):
        # the second turn of the session runs on the same slot: the first turn's prompt is reused
        assert turn2["cached_tokens"] >= 0.8 * turn1["prompt_tokens"], (turn1, turn2)
        assert turn2["prompt_s"] < turn1["prompt_s"]
    assert (out / "replay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| qwen2.5-coder-1.5b | 02-turn2-tool-result.json | 200 |" in (out / "replay.md").read_text()


def test_exact_counts_equal_the_prompt_llama_server_processed(
    servers: dict[str, LlamaServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """`trace analyze --backend URL` over a recorded replay trace (tiny-0.5b: the same model and template)
    renders and counts the translated request exactly as the backend did: its prompt_n."""
    trace = sorted((TINY.parent / "tiny-0.5b").glob("*.json"))[0]
    processed = json.loads(trace.read_text())["upstream_timings"]["prompt_n"]
    argv = ["trace", "analyze", str(trace), "-v", "--backend", servers[MODELS[0]].url, "--json"]
    assert cli.main(argv) == 0
    analysis = json.loads(capsys.readouterr().out)
    assert analysis["breakdown"]["counter"].startswith("llama-server /tokenize")
    assert analysis["breakdown"]["total"] == processed == 593
    assert analysis["breakdown"]["template_overhead"] > 0
    assert [r["label"] for r in analysis["breakdown"]["rows"] if r["group"] == "tools"] == ["Write"]
