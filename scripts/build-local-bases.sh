#!/usr/bin/env bash
# Build local stand-ins for the official base images, for machines without a container registry (CI).
# Needs local/debian:bookworm (../shared/ci/docker-offline.sh builds it with debootstrap).
#   local/python:3.11-bookworm  stands in for python:3.12-slim-bookworm (python3 + venv + pip, `python`,
#                               pip usable system-wide like the official image, ca-certificates)
#   local/node:bookworm         stands in for node:22-bookworm-slim (nodejs + npm, ca-certificates, user
#                               `node` uid/gid 1000 like the official image)
# Users never need this: their Docker pulls the official images (the Dockerfiles' default base ARGs).
# Idempotent: a rebuild is a cache hit. Prints the build args to use, one per line:
#   PYTHON_IMAGE=local/python:3.11-bookworm
#   NODE_IMAGE=local/node:bookworm
# Env: BASE_IMAGE (default local/debian:bookworm)
set -euo pipefail
log() { echo "[build-local-bases] $*" >&2; }

base=${BASE_IMAGE:-local/debian:bookworm}
docker info >/dev/null 2>&1 || { log "Docker is not running (docker info failed)"; exit 1; }
docker image inspect "$base" >/dev/null 2>&1 || {
  log "base image $base missing: run ../shared/ci/docker-offline.sh first"
  exit 1
}

build() { # build TAG  (Dockerfile on stdin, no build context)
  local tag=$1 start=$SECONDS
  log "building $tag from $base"
  docker build --quiet --build-arg "BASE_IMAGE=$base" -t "$tag" - >/dev/null
  log "$tag ready ($((SECONDS - start)) s)"
}

build local/python:3.11-bookworm <<'DOCKERFILE'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip python-is-python3 ca-certificates \
 && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \
 && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
DOCKERFILE

build local/node:bookworm <<'DOCKERFILE'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
CMD ["node"]
DOCKERFILE

echo "PYTHON_IMAGE=local/python:3.11-bookworm"
echo "NODE_IMAGE=local/node:bookworm"
