"""backends/llama-server/entrypoint.sh: env config -> llama-server flags (run with /bin/sh and a fake server
binary that prints its arguments; no Docker)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

Run = Callable[..., tuple[int, list[str], str]]
ENTRYPOINT = Path(__file__).resolve().parents[2] / "backends" / "llama-server" / "entrypoint.sh"


@pytest.fixture
def run(tmp_path: Path) -> Run:
    fake = tmp_path / "llama-server"
    fake.write_text("#!/usr/bin/env python3\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    fake.chmod(0o755)
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "qwen2.5-coder-tools.jinja").write_text("{{ messages }}")

    def run(env: dict[str, str], *args: str) -> tuple[int, list[str], str]:
        base = {
            "PATH": "/usr/bin:/bin",
            "LLAMA_SERVER_BIN": str(fake),
            "LLAMA_TEMPLATE_DIR": str(templates),
            "LLAMA_MODEL": str(model),
            "LLAMA_CACHE": str(tmp_path / "cache"),
        }
        done = subprocess.run(
            ["/bin/sh", str(ENTRYPOINT), *args], env={**base, **env}, capture_output=True, text=True
        )
        argv = json.loads(done.stdout) if done.returncode == 0 else []
        return done.returncode, argv, done.stderr

    return run


def flag(argv: list[str], name: str) -> str:
    """The value of the last occurrence of a flag (llama-server: the last one wins)."""
    indexes = [i for i, a in enumerate(argv) if a == name]
    assert indexes, f"{name} not in {argv}"
    return argv[indexes[-1] + 1]


def test_defaults(run: Run) -> None:
    code, argv, _ = run({})
    assert code == 0
    for always in ("--jinja", "--metrics", "--slots", "--cache-prompt"):
        assert always in argv
    assert flag(argv, "--parallel") == "2"
    assert flag(argv, "--ctx-size") == str(2 * 32768)
    assert flag(argv, "--host") == "0.0.0.0"
    assert flag(argv, "--port") == "8080"
    assert flag(argv, "--model").endswith("model.gguf")
    assert "--chat-template-file" not in argv  # the model's own template by default
    assert "--hf-repo" not in argv


def test_rpc_servers_take_every_layer(run: Run) -> None:
    code, argv, _ = run({"LLAMA_RPC": "rpc-server:50052,10.0.0.9:50052"})
    assert code == 0
    assert flag(argv, "--rpc") == "rpc-server:50052,10.0.0.9:50052"
    assert flag(argv, "-ngl") == "all"
    assert "--rpc" not in run({})[1]


def test_slots_context_and_template(run: Run) -> None:
    code, argv, _ = run(
        {
            "LLAMA_PARALLEL": "3",
            "LLAMA_CTX_PER_SLOT": "4096",
            "LLAMA_CHAT_TEMPLATE": "qwen2.5-coder-tools",
            "LLAMA_THREADS": "2",
            "LLAMA_ALIAS": "qwen",
            "LLAMA_CACHE_RAM_MIB": "512",
        }
    )
    assert code == 0
    assert flag(argv, "--parallel") == "3"
    assert flag(argv, "--ctx-size") == "12288"
    assert flag(argv, "--chat-template-file").endswith("templates/qwen2.5-coder-tools.jinja")
    assert flag(argv, "--threads") == "2"
    assert flag(argv, "--alias") == "qwen"
    assert flag(argv, "--cache-ram") == "512"


def test_hub_reference_replaces_the_model_file(run: Run, tmp_path: Path) -> None:
    code, argv, _ = run(
        {"LLAMA_HF_REPO": "ggml-org/Qwen2.5-Coder-7B-Instruct-Q8_0-GGUF", "LLAMA_MODEL": "/nope"}
    )
    assert code == 0
    assert flag(argv, "--hf-repo") == "ggml-org/Qwen2.5-Coder-7B-Instruct-Q8_0-GGUF"
    assert "--model" not in argv
    assert (tmp_path / "cache").is_dir()


def test_extra_args_and_arguments_come_last_and_win(run: Run) -> None:
    code, argv, _ = run({"LLAMA_EXTRA_ARGS": "--parallel 4 --cache-reuse 256"}, "--port", "9000")
    assert code == 0
    assert flag(argv, "--parallel") == "4"
    assert flag(argv, "--cache-reuse") == "256"
    assert flag(argv, "--port") == "9000"
    assert argv[-2:] == ["--port", "9000"]


def test_slot_files_go_to_a_directory_per_model(run: Run, tmp_path: Path) -> None:
    slots = tmp_path / "slots"
    code, argv, _ = run({})
    assert "--slot-save-path" not in argv  # off unless configured
    code, argv, _ = run({"LLAMA_SLOT_SAVE_PATH": str(slots)})
    assert code == 0
    first = Path(flag(argv, "--slot-save-path"))
    assert first.parent == slots
    assert re.fullmatch("[0-9a-f]{16}", first.name)
    assert first.is_dir()
    assert flag(run({"LLAMA_SLOT_SAVE_PATH": str(slots)})[1], "--slot-save-path") == str(first)  # stable
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF" + b"\0" * 10)
    code, argv, _ = run({"LLAMA_SLOT_SAVE_PATH": str(slots), "LLAMA_MODEL": str(other)})
    assert Path(flag(argv, "--slot-save-path")) not in (first, slots)
    hub = run({"LLAMA_SLOT_SAVE_PATH": str(slots), "LLAMA_HF_REPO": "org/repo:Q8_0"})[1]
    assert Path(flag(hub, "--slot-save-path")).parent == slots
    assert flag(hub, "--slot-save-path") not in (str(first), flag(argv, "--slot-save-path"))


def test_slot_files_beyond_the_budget_are_pruned_least_recently_used_first(run: Run, tmp_path: Path) -> None:
    slots = tmp_path / "slots"
    (slots / "a").mkdir(parents=True)
    (slots / "b").mkdir()
    files = {name: slots / name for name in ("a/old.bin", "b/recent.bin", "a/newest.bin")}
    for age, path in enumerate(reversed(files.values())):
        path.write_bytes(b"\0" * (400 * 1024))
        os.utime(path, (1_700_000_000 - 1000 * age, 1_700_000_000 - 1000 * age))
    (slots / "a" / "notes.txt").write_text("not a slot file")
    code, _, stderr = run({"LLAMA_SLOT_SAVE_PATH": str(slots), "LLAMA_SLOT_SAVE_MAX_MIB": "1"})
    assert code == 0
    assert [p.exists() for p in files.values()] == [False, True, True]
    assert "pruned slot file" in stderr
    assert (slots / "a" / "notes.txt").exists()


def test_unusable_slot_directory_is_a_warning_not_a_failure(run: Run, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, argv, stderr = run({"LLAMA_SLOT_SAVE_PATH": str(blocker)})
    assert code == 0
    assert "--slot-save-path" not in argv
    assert "slot files off" in stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LLAMA_MODEL": "/nope.gguf"}, "model file '/nope.gguf' is not readable"),
        ({"LLAMA_SLOT_SAVE_MAX_MIB": "-1"}, "LLAMA_SLOT_SAVE_MAX_MIB must be a non-negative integer"),
        ({"LLAMA_PARALLEL": "0"}, "LLAMA_PARALLEL must be a positive integer"),
        ({"LLAMA_CTX_PER_SLOT": "lots"}, "LLAMA_CTX_PER_SLOT must be a positive integer"),
        ({"LLAMA_CHAT_TEMPLATE": "nope"}, r"chat template '.*nope.jinja' not found \(available: qwen2"),
    ],
)
def test_bad_config_fails_with_a_message(run: Run, env: dict[str, str], message: str) -> None:
    code, _, stderr = run(env)
    assert code == 64
    assert re.search(message, stderr), stderr
