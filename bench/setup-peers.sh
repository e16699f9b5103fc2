#!/usr/bin/env bash
# Install the peer proxies the overhead bench compares ccproxy against (idempotent).
#   - LiteLLM's proxy:      pip `litellm[proxy]` in its own venv  ($BENCH_TOOLS/litellm-venv)
#   - claude-code-router:   npm `@musistudio/claude-code-router@2.0.0` ($BENCH_TOOLS/ccr)
# Both are kept out of the project's .venv so their dependency trees cannot disturb ccproxy's.
# Re-running is instant once both are present (version stamps below). Versions are pinned so runs
# compare like with like: LITELLM_SPEC / CCR_VERSION override them.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${BENCH_TOOLS:-$root/.tools}"
litellm_spec="${LITELLM_SPEC:-litellm[proxy]==1.106.2}"
ccr_version="${CCR_VERSION:-2.0.0}"
python="${PYTHON:-python3}"

# PyPI / npm over TLS need this machine's CA bundle where one exists (corporate proxies too).
ca="${BENCH_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

venv="$tools/litellm-venv"
if [[ -x "$venv/bin/litellm" && -f "$venv/.bench-spec" && "$(cat "$venv/.bench-spec")" == "$litellm_spec" ]]; then
  echo "setup-peers: litellm present ($("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))'))"
else
  echo "setup-peers: installing $litellm_spec into $venv"
  mkdir -p "$tools"
  "$python" -m venv "$venv"
  pip_args=(--quiet --disable-pip-version-check)
  [[ -f "$ca" ]] && pip_args+=(--cert "$ca")
  "$venv/bin/pip" install "${pip_args[@]}" "$litellm_spec"
  echo "$litellm_spec" > "$venv/.bench-spec"
fi

ccr="$tools/ccr"
ccr_bin="$ccr/node_modules/.bin/ccr"
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "setup-peers: node/npm not found: claude-code-router (needs Node >= 20) will be skipped" >&2
elif [[ -x "$ccr_bin" && -f "$ccr/.bench-version" && "$(cat "$ccr/.bench-version")" == "$ccr_version" ]]; then
  echo "setup-peers: claude-code-router $ccr_version present"
else
  echo "setup-peers: installing @musistudio/claude-code-router@$ccr_version into $ccr"
  mkdir -p "$ccr"
  [[ -f "$ccr/package.json" ]] || echo '{"name":"bench-ccr","private":true}' > "$ccr/package.json"
  npm_args=(--prefix "$ccr" --no-audit --no-fund --loglevel=error)
  [[ -f "$ca" ]] && npm_args+=(--cafile "$ca")
  npm install "${npm_args[@]}" "@musistudio/claude-code-router@$ccr_version"
  echo "$ccr_version" > "$ccr/.bench-version"
fi
