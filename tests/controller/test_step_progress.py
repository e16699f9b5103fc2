"""The MLX conversion's steps and tqdm counts as progress (a stand-in command: no conversion here)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ccstack import step_progress
from ccstack.step_progress import fragments, parse_step, parse_tqdm

pytestmark = pytest.mark.unit

TQDM = "Converting and de-quantizing GGUF tensors...:  45%|████▌     | 122/272 [00:03<00:04, 35.1it/s]"
CONVERTER = r"""
import sys, time
def log(m): print(f"[convert_gguf_to_mlx] {m}", file=sys.stderr, flush=True)
log("GGUF -> Hugging Face folder (transformers): smollm2-135m.gguf")
for i in (0, 100, 200, 272):
    bar = f"{i * 100 // 272:3d}%|####      | {i}/272 [00:01<00:02, 9it/s]"
    sys.stderr.write(f"\rConverting GGUF tensors...: {bar}")
    sys.stderr.flush()
sys.stderr.write("\n")
log("Hugging Face folder -> MLX (mlx_lm.convert): out")
print("[INFO] Quantized model with 4.501 bits per weight.", file=sys.stderr)
print("out")
"""


def test_parse_tqdm() -> None:
    assert parse_tqdm(TQDM) == ("Converting and de-quantizing GGUF tensors...", 122, 272)
    assert parse_tqdm(" 10%|#         | 1/10 [00:00<?, ?it/s]") == ("", 1, 10)
    assert parse_tqdm("[convert_gguf_to_mlx] check: 'Paris'") is None


def test_parse_step() -> None:
    assert parse_step("[convert_gguf_to_mlx] Hugging Face folder -> MLX") == "Hugging Face folder -> MLX"
    assert parse_step("[INFO] Quantized model with 4.501 bits per weight.") is None  # a library's log
    assert parse_step("plain text") is None


def test_fragments_split_tqdm_redraws() -> None:
    chunks = iter([b"[a] one\n\r 1/2", b" x\r 2/2 x\n", b"tail"])
    assert list(fragments(chunks)) == ["[a] one", " 1/2 x", " 2/2 x", "tail"]


def test_plain_lines_for_a_log(tmp_path: Path) -> None:
    script = tmp_path / "converter.py"
    script.write_text(CONVERTER)
    out = io.StringIO()
    with subprocess.Popen(
        [sys.executable, str(script)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    ) as p:
        assert p.stderr is not None
        step_progress.follow("converting", p.stderr, out, clock=lambda: 0.0)
    lines = out.getvalue().splitlines()
    assert lines == [
        "converting: GGUF -> Hugging Face folder (transformers): smollm2-135m.gguf (0 s)",
        "converting: Converting GGUF tensors... 0/272 (0 s)",  # then one line per interval, and the end
        "converting: Converting GGUF tensors... 272/272 (0 s)",
        "converting: Hugging Face folder -> MLX (mlx_lm.convert): out (0 s)",
        "[INFO] Quantized model with 4.501 bits per weight.",
    ]
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", out.getvalue())


def test_main_passes_stdout_and_the_exit_status(tmp_path: Path) -> None:
    script = tmp_path / "converter.py"
    script.write_text(CONVERTER + "raise SystemExit(3)\n")
    run = subprocess.run(
        [sys.executable, "-m", "ccstack.step_progress", "converting", "--", sys.executable, str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 3
    assert run.stdout == "out\n"
    assert "converting: Hugging Face folder -> MLX" in run.stderr
    assert step_progress.main(["only-a-label"]) == 2
