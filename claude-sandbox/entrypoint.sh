#!/bin/sh
# Entrypoint of the claude-sandbox container: the per-session proxy token from the Compose secret,
# onboarding marked complete in Claude Code's config, then the command (default: claude).
set -eu

if [ -z "${ANTHROPIC_AUTH_TOKEN:-}" ] && [ -r /run/secrets/proxy_token ]; then
  ANTHROPIC_AUTH_TOKEN=$(cat /run/secrets/proxy_token)
  export ANTHROPIC_AUTH_TOKEN
fi
if [ -z "${ANTHROPIC_AUTH_TOKEN:-}" ]; then
  echo "ccsandbox: no proxy token (secret /run/secrets/proxy_token missing); start the stack with 'ccstack up MODE'" >&2
fi

# The backend's real context window (llama-server: n_ctx per slot, via the proxy's /health), unless the
# stack set one: Claude Code then compacts before the backend rejects an over-long prompt.
if [ -z "${CLAUDE_CODE_MAX_CONTEXT_TOKENS:-}" ] && [ -n "${ANTHROPIC_BASE_URL:-}" ]; then
  window=$(node /usr/local/lib/ccsandbox/context-window.js "${ANTHROPIC_BASE_URL%/}/health" || true)
  if [ -n "$window" ]; then
    CLAUDE_CODE_MAX_CONTEXT_TOKENS=$window
    export CLAUDE_CODE_MAX_CONTEXT_TOKENS
  fi
fi

config_dir=${CLAUDE_CONFIG_DIR:-$HOME/.claude}
mkdir -p "$config_dir" 2>/dev/null || true
if ! node /usr/local/lib/ccsandbox/seed-config.js "$config_dir/.claude.json" "$(pwd)"; then
  echo "ccsandbox: could not write $config_dir/.claude.json (is the state volume writable by uid $(id -u)?)" >&2
  exit 1
fi

# Model names Claude Code does not know (a local model's) become /model picker rows that behave as a
# Claude model, so the CLI accepts them without printing `[claude-code:unrecognized_model]`.
# CCSANDBOX_TOOLS (the stack's `--agent-tools`): the built-in tools the CLI offers, e.g. the local mode's
# Bash,Edit,Read,Write; `--tools=` with `=`, so a prompt after it is not taken for a tool name. Arguments
# given to `claude` come after these and win.
if [ "${1:-}" = claude ]; then
  shift
  if [ -n "${CCSANDBOX_TOOLS:-}" ]; then
    set -- "--tools=$CCSANDBOX_TOOLS" "$@"
  fi
  settings=$(node /usr/local/lib/ccsandbox/model-settings.js || true)
  if [ -n "$settings" ]; then
    set -- --settings "$settings" "$@"
  fi
  exec claude "$@"
fi

exec "$@"
