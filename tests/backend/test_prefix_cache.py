"""Claude Code's prefix survives a llama-server restart (the real server and model, the real ccproxy).

The server runs with our entrypoint's LLAMA_SLOT_SAVE_PATH (a host directory here, the `llama-slots`
volume in the stack). The first session's first turn finds no slot file: ccproxy processes the prefix
(Claude Code's real system prompt and four of its real tools, ~5 k tokens) alone, saves it, and the turn
reuses it. After both processes restart, a new session on another day restores the file into its slot
before its first turn and is served from it. A truncated file is ignored (a log line, a counter), the
turn is answered, and the file is written again. Figures are printed (`-s`); bench/prefix_restore.py
measures bigger prefixes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prefix_helpers import ask, claude_code_request, llama_stack, log_number, prefix_counts

pytestmark = pytest.mark.backend

TOOLS = ("Bash", "Edit", "Read", "Write")


def test_prefix_survives_a_restart_and_a_corrupt_file_is_replaced(model_file: Path, tmp_path: Path) -> None:
    slots = tmp_path / "slots"
    slots.mkdir()
    slots.chmod(0o777)  # the container's user writes there

    # 1. the first session ever: no file; the prefix is processed alone, saved, then reused by the turn
    with llama_stack(model_file, slots, tmp_path, "cold") as (_, proxy):
        cold = ask(proxy, claude_code_request("2026-12-01", "Create hello.txt containing hi.", tools=TOOLS))
        assert prefix_counts(proxy) == {"restore_failed": 1.0, "saved": 1.0}
        prefill_s = log_number(proxy, r"processed the \d+-token prefix on slot \d in ([0-9.]+) s")
        prefix_tokens = int(log_number(proxy, r"processed the (\d+)-token prefix"))
    files = list(slots.glob("*/ccproxy-prefix-*.bin"))
    assert len(files) == 1, files
    size = files[0].stat().st_size
    assert prefix_tokens > 2000
    assert cold.cache_read >= prefix_tokens - 1  # the turn itself reused what was just processed

    # 2. `down` + `up`: both restart; a new session, the next day (the layout keeps the prefix identical)
    with llama_stack(model_file, slots, tmp_path, "restored") as (server, proxy):
        warm = ask(proxy, claude_code_request("2026-12-02", "List the files here.", tools=TOOLS))
        assert prefix_counts(proxy) == {"restored": 1.0}
        restore_s = log_number(proxy, r"restored \d+ tokens .* in ([0-9.]+) s")
        # a file that a crash cut short: truncated from inside (the container's user owns it)
        inside = f"/slots/{files[0].parent.name}/{files[0].name}"
        server.exec(["truncate", "-s", str(size // 2), inside])
    assert warm.cache_read >= prefix_tokens - 1
    # processed (input_tokens: not from the cache): only the new session's own turn, as in the first one
    assert warm.input_tokens < cold.input_tokens + 50
    print(
        f"\nprefix {prefix_tokens} tokens, slot file {size / 1e6:.0f} MB: cold prefill {prefill_s:.1f} s "
        f"(first token {cold.ttft:.1f} s); after a restart: restore {restore_s:.2f} s, first token "
        f"{warm.ttft:.1f} s, {warm.cache_read} of {warm.cache_read + warm.input_tokens} prompt tokens from "
        "the restored cache"
    )
    assert warm.ttft < cold.ttft / 3

    # 3. the truncated file: ignored with a log line and a counter, the turn answered, the file rewritten
    with llama_stack(model_file, slots, tmp_path, "corrupt") as (_, proxy):
        again = ask(proxy, claude_code_request("2026-12-03", "Say hi.", tools=TOOLS))
        assert prefix_counts(proxy) == {"restore_failed": 1.0, "saved": 1.0}
        assert "not restored (missing, truncated, corrupt" in proxy.log.read_text()
    assert again.cache_read >= prefix_tokens - 1
    assert files[0].stat().st_size == size
