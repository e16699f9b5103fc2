#!/usr/bin/env bash
# Benchmarks (not tests): results go to bench/results/ and are quoted in the README.
#   scripts/bench.sh overhead [ARGS]   proxy overhead: ccproxy vs LiteLLM vs claude-code-router vs direct
#   scripts/bench.sh cache [ARGS]      10-turn Claude-Code-shaped session on a real llama-server:
#                                      prompt tokens from cache and per-turn time, ccproxy vs native /v1/messages
#   scripts/bench.sh tasks [ARGS]      the task suite: real CLI in the sandbox, real stack, 6 tasks x candidates
#                                      (bench/tasks/run.py; then bench/tasks/report.py for the table and plot)
#   scripts/bench.sh pool [ARGS]       sessions/s and cache hits behind HAProxy: 1 replica, 2 by session,
#                                      2 round robin (the anchor); the real stack in pool mode
#   scripts/bench.sh first-answer [ARGS]  time to the first token: first-ever up, after down+up, after a
#                                      commit on another day; real CLI (-p and TUI) vs native /v1/messages
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
which=${1:-overhead}
shift || true
case "$which" in
  overhead)
    bash bench/setup-peers.sh
    exec "$py" bench/overhead.py "$@" ;;
  cache)
    "$py" -m pip install -q -r bench/requirements.txt
    scripts/build-llama-server.sh
    exec "$py" bench/cache_session.py "$@" ;;
  tasks)
    "$py" -m pip install -q -r bench/requirements.txt
    source scripts/lib/bases.sh && scripts/build-images.sh
    "$py" bench/tasks/run.py "$@"
    exec "$py" bench/tasks/report.py ;;
  first-answer)
    "$py" -m pip install -q -r bench/requirements.txt
    source scripts/lib/bases.sh && scripts/build-images.sh
    exec "$py" bench/first_answer.py "$@" ;;
  pool)
    "$py" -m pip install -q -r bench/requirements.txt
    source scripts/lib/bases.sh && scripts/build-images.sh
    exec "$py" bench/pool.py "$@" ;;
  *) echo "usage: scripts/bench.sh overhead|cache|tasks|first-answer|pool [ARGS]" >&2; exit 2 ;;
esac
