#!/usr/bin/env bash
# Run mlx_lm.server natively on the host (Apple silicon Mac) for `ccstack up mlx`: the proxy container
# reaches it at http://host.docker.internal:$MLX_PORT/v1; the agent container cannot reach the host at all.
# Installs mlx-lm into its own venv on first use (idempotent), then execs the server in the foreground.
#
#   backends/mlx/run-mlx-server.sh                       # default model, port 8080
#   MLX_MODEL=mlx-community/Qwen3-Coder-30B-A3B-Instruct-4bit backends/mlx/run-mlx-server.sh
#   MLX_PORT=8081 backends/mlx/run-mlx-server.sh  &&  ccstack up mlx --upstream http://host.docker.internal:8081/v1
#
# Env:
#   MLX_MODEL  Hugging Face repo or local path of an MLX model (default mlx-community/Qwen2.5-Coder-7B-Instruct-4bit)
#   MLX_PORT   port (default 8080, what `ccstack up mlx` expects)
#   MLX_HOST   listen address. Default: 127.0.0.1 on macOS (Docker Desktop forwards host.docker.internal
#              to the Mac's loopback, so nothing else on your network can reach the server); on Linux the
#              docker0 bridge address (host-gateway), else 0.0.0.0.
#   MLX_VENV   venv for mlx-lm (default ~/.cache/ccsandbox/mlx-venv)
#   MLX_LM_SPEC  pip requirement (default mlx-lm; on Linux CPU-only: "mlx-lm[cpu]", slow)
# Extra arguments are passed to mlx_lm.server (e.g. --max-tokens 4096, --chat-template-args ...).
# The proxy sends the model name "default_model", which mlx_lm.server maps to MLX_MODEL.
set -euo pipefail
log() { echo "[run-mlx-server] $*" >&2; }

model=${MLX_MODEL:-mlx-community/Qwen2.5-Coder-7B-Instruct-4bit}
port=${MLX_PORT:-8080}
venv=${MLX_VENV:-$HOME/.cache/ccsandbox/mlx-venv}
spec=${MLX_LM_SPEC:-mlx-lm}

if [[ -z ${MLX_HOST:-} ]]; then
  if [[ $(uname -s) == Darwin ]]; then
    MLX_HOST=127.0.0.1
  else
    MLX_HOST=$(ip -4 -o addr show docker0 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')
    MLX_HOST=${MLX_HOST:-0.0.0.0}
    [[ $(uname -s) == Linux && $spec == mlx-lm ]] && spec="mlx-lm[cpu]"
  fi
fi

if [[ ! -x $venv/bin/mlx_lm.server ]]; then
  log "installing $spec into $venv (once)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet "$spec"
fi

# mlx_lm.server (0.32) answers GET /v1/models -- what the proxy's health check asks -- with a crash when
# the Hugging Face hub cache does not exist yet (a local model directory, nothing ever downloaded).
mkdir -p "${HF_HUB_CACHE:-${HF_HOME:-$HOME/.cache/huggingface}/hub}"

log "mlx_lm.server --model $model --host $MLX_HOST --port $port"
log "then: ccstack up mlx$([[ $port == 8080 ]] || echo " --upstream http://host.docker.internal:$port/v1")"
exec "$venv/bin/mlx_lm.server" --model "$model" --host "$MLX_HOST" --port "$port" "$@"
