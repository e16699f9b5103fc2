"""Convert a llama-family GGUF model into an MLX model directory, offline (no model hub).

    python convert_gguf_to_mlx.py MODEL.gguf OUT_DIR [--q-bits 4 | --dtype bfloat16] [--check]

Runs in the tools venv of scripts/prepare-mlx-model.sh (transformers + gguf + accelerate + a CPU torch,
and mlx-lm). Steps, each with a well-kept library:
  1. transformers loads the GGUF (``from_pretrained(dir, gguf_file=...)``): it dequantizes the tensors,
     undoes llama.cpp's Q/K permutation and rebuilds the tokenizer and chat template from the metadata;
  2. ``save_pretrained`` writes a Hugging Face folder (config.json, model.safetensors, tokenizer files);
  3. ``mlx_lm.convert`` turns that folder into an MLX model (4-bit affine quantized by default: for a
     135M model it is both the smallest and, on CPU, the fastest; ``--dtype`` keeps it unquantized).
``--check`` then loads the result with mlx_lm and generates a few tokens. OUT_DIR must not exist: the
caller writes to a temporary directory and renames it into place. ``HF_HUB_OFFLINE=1`` is forced, so
nothing here can reach a model hub.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def log(message: str) -> None:
    print(f"[convert_gguf_to_mlx] {message}", file=sys.stderr, flush=True)


def gguf_to_hf(gguf: Path, hf_dir: Path) -> None:
    """Load the GGUF with transformers (dequantized) and save it as a Hugging Face folder."""
    transformers: Any = importlib.import_module("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The loaded weights are plain float tensors; only the GGUF "quantizer" bookkeeping refuses to be
    # serialized, so drop it (the saved config must not claim a GGUF quantization either).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(hf_dir))
    tokenizer.save_pretrained(str(hf_dir))


def hf_to_mlx(hf_dir: Path, out: Path, *, q_bits: int | None, dtype: str | None) -> None:
    mlx_lm: Any = importlib.import_module("mlx_lm")
    if q_bits:
        mlx_lm.convert(str(hf_dir), str(out), quantize=True, q_bits=q_bits, q_group_size=64)
    else:
        mlx_lm.convert(str(hf_dir), str(out), dtype=dtype or "bfloat16")


def check(out: Path, max_tokens: int = 8) -> str:
    """Load the MLX model and generate a few tokens of a chat answer; fails on an empty answer."""
    mlx_lm: Any = importlib.import_module("mlx_lm")
    model, tokenizer = mlx_lm.load(str(out))
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    text: str = mlx_lm.generate(model, tokenizer, prompt=prompt, max_tokens=max_tokens)
    if not text.strip():
        raise SystemExit(f"the converted model in {out} generated no text")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("gguf", type=Path, help="a llama-family .gguf file (Q4_0/Q4_1/Q8_0/F16 ...)")
    parser.add_argument("out", type=Path, help="MLX model directory to create (must not exist)")
    parser.add_argument("--q-bits", type=int, default=4, help="quantize to N bits (0: do not quantize)")
    parser.add_argument("--dtype", choices=("float16", "bfloat16", "float32"), help="with --q-bits 0")
    parser.add_argument("--check", action="store_true", help="generate a few tokens with the result")
    args = parser.parse_args(argv)

    gguf: Path = args.gguf.resolve()
    out: Path = args.out
    if not gguf.is_file():
        parser.error(f"no such GGUF file: {gguf}")
    if out.exists():
        parser.error(f"{out} already exists")

    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gguf-hf-", dir=out.parent) as tmp:
        hf_dir = Path(tmp) / "hf"
        start = time.monotonic()
        log(f"GGUF -> Hugging Face folder (transformers): {gguf}")
        gguf_to_hf(gguf, hf_dir)
        timings["gguf_to_hf_s"] = round(time.monotonic() - start, 1)

        start = time.monotonic()
        log(f"Hugging Face folder -> MLX (mlx_lm.convert): {out}")
        hf_to_mlx(hf_dir, out, q_bits=args.q_bits or None, dtype=args.dtype)
        timings["hf_to_mlx_s"] = round(time.monotonic() - start, 1)
    # mlx_lm.server needs the chat template (a file of its own, or a key of tokenizer_config.json).
    config = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    if not (out / "chat_template.jinja").exists() and "chat_template" not in config:
        log("warning: the converted model has no chat template")

    if args.check:
        start = time.monotonic()
        text = check(out)
        timings["check_s"] = round(time.monotonic() - start, 1)
        log(f"check: {text!r}")
    log(f"timings: {json.dumps(timings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
