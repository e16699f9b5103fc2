#!/usr/bin/env bash
# Build every image of the stack, idempotently (Docker's layer cache: seconds when nothing changed).
#   ccsandbox/proxy, ccsandbox/claude-sandbox, ccsandbox/scripted-upstream, ccsandbox/egress-proxy,
#   ccsandbox/haproxy
#   (docker compose build), ccsandbox/llama-server (scripts/build-llama-server.sh: from sources on PyPI).
#   The sandbox gets the extra packages of policies/toolchain.yaml (ccstack build; README "The sandbox's
#   toolchain").
# Env:
#   CCSTACK_LOCAL_BASES=1   offline CI: build the local stand-in bases (scripts/build-local-bases.sh) and
#                           use them (PYTHON_IMAGE, NODE_IMAGE, DEBIAN_IMAGE build args)
#   PYTHON_IMAGE / NODE_IMAGE / DEBIAN_IMAGE   base images (defaults: the official ones)
#   EXTRA_CA_CERTS=a.pem[:b.pem]   extra CA certificates for the builds (scripts/ca-certs.sh)
#   CCSTACK_SKIP_LLAMA=1    skip the llama-server image
# Prints one line per image with its build time.
set -euo pipefail
log() { echo "[build-images] $*" >&2; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ${CCSTACK_LOCAL_BASES:-} == 1 ]]; then
  while IFS= read -r line; do
    [[ $line == *=* ]] && export "$line"
  done < <(scripts/build-local-bases.sh)
  export DEBIAN_IMAGE=${DEBIAN_IMAGE:-local/debian:bookworm}
fi
# Official bases that are absent but have local stand-ins: use the stand-ins (scripts/lib/bases.sh).
# shellcheck source=lib/bases.sh
source scripts/lib/bases.sh

if [[ -n ${EXTRA_CA_CERTS:-} ]]; then
  scripts/ca-certs.sh
fi
py=${PYTHON:-.venv/bin/python}
[[ -x $py ]] || py=python3

for service in proxy scripted-upstream claude-sandbox egress-proxy haproxy; do
  start=$SECONDS
  "$py" -m ccstack build "$service" >&2 || { log "building $service failed"; exit 1; }
  echo "ccsandbox/$service:local $((SECONDS - start)) s"
done
if [[ ${CCSTACK_SKIP_LLAMA:-} != 1 ]]; then
  start=$SECONDS
  scripts/build-llama-server.sh
  echo "ccsandbox/llama-server:local $((SECONDS - start)) s"
fi
