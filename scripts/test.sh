#!/usr/bin/env bash
# The whole test run, on a fresh machine or a developer's: installs what each suite needs, then runs
# lint, the unit and app suites (no sockets), and the suites against real parts: the real Claude Code
# CLI (e2e), a real llama-server with a real small model (backend), real Docker (stack, isolation).
#
#   scripts/test.sh                  everything (what `just test` and CI run)
#   scripts/test.sh unit app         only the named suites (lint always runs first)
#
# Docker-backed suites never skip: without a working Docker Engine + Compose v2 they fail loudly.
# Base images: users pull the official ones; offline CI builds local stand-ins and sets
# CCSTACK_LOCAL_BASES=1 (see .ci/run), which passes them as build args.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
log() { printf '\n==> %s\n' "$*" >&2; }

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(unit app e2e backend stack isolation)
want() { local s; for s in "${suites[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

log "python environment (.venv)"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e ./proxy -e '.[dev]'
export PATH="$root/.venv/bin:$PATH"

log "lint: ruff + mypy"
ruff check .
ruff format --check .
mypy

# pytest exit codes: 0 ok, 1 failures, 5 no tests collected. A suite that collects nothing is a
# broken suite (a marker typo, a moved directory), so 5 fails the run too, with a clear message.
run_suite() {
  local suite=$1; shift
  log "suite: $suite"
  set +e
  pytest -m "$suite" "$@"
  local rc=$?
  set -e
  if [ $rc -eq 5 ]; then
    echo "suite '$suite' collected no tests: failing (pytest exit code 5)" >&2
    exit 1
  elif [ $rc -ne 0 ]; then
    echo "suite '$suite' failed (pytest exit code $rc)" >&2
    exit $rc
  fi
}

want unit && run_suite unit
want app && run_suite app

if want e2e || want stack || want isolation; then
  log "real Claude Code CLI (npm)"
  scripts/install-claude-cli.sh
fi

if want backend || want stack || want isolation; then
  if ! docker info >/dev/null 2>&1; then
    echo "Docker Engine is not running or not reachable: the backend/stack/isolation suites need it." >&2
    echo "Start Docker (or, on these offline CI machines, run ../shared/ci/docker-offline.sh) and retry." >&2
    exit 1
  fi
  docker compose version >/dev/null 2>&1 || { echo "Docker Compose v2 ('docker compose') is missing." >&2; exit 1; }
  # The same base images for the builds here and for the images the stack tests build themselves.
  # shellcheck source=lib/bases.sh
  source scripts/lib/bases.sh
  log "images"
  scripts/build-images.sh
  log "default model"
  python -m ccstack.models fetch qwen2.5-coder-0.5b
fi

if want stack; then
  log "MLX model for the real mlx_lm.server bridge test (converted offline, cached)"
  scripts/prepare-mlx-model.sh
fi

# The isolation suite runs twice: the agent under runc, then under gVisor (runsc). Installing and
# registering runsc needs root (CI runs as root); elsewhere this says what to run, or set
# CCSANDBOX_ISO_RUNTIMES=runc to run the runc pass only.
if want isolation && [[ ,${CCSANDBOX_ISO_RUNTIMES:-runc,runsc}, == *,runsc,* ]]; then
  log "gVisor (runsc) for the isolation suite's second pass"
  if ! scripts/install-gvisor.sh; then
    echo "the isolation suite's gVisor pass needs runsc registered with Docker (see above);" >&2
    echo "or run the runc pass only: CCSANDBOX_ISO_RUNTIMES=runc scripts/test.sh isolation" >&2
    exit 1
  fi
fi

want e2e && run_suite e2e
want backend && run_suite backend
want stack && run_suite stack
want isolation && run_suite isolation
log "all requested suites passed: ${suites[*]}"
