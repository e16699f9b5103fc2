#!/usr/bin/env bash
# Install the real Claude Code CLI (npm @anthropic-ai/claude-code) into .tools/claude-code.
# Idempotent: does nothing when the requested version is already installed. Prints the binary path.
#   CLAUDE_CODE_VERSION   version to install (default 2.1.330)
#   CLAUDE_CODE_PREFIX    install prefix (default <repo>/.tools/claude-code)
#   NPM_CAFILE            CA bundle for the npm registry (default: the host bundle when present)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=${CLAUDE_CODE_VERSION:-2.1.330}
prefix=${CLAUDE_CODE_PREFIX:-$repo/.tools/claude-code}
bin=$prefix/node_modules/.bin/claude
pkg_json=$prefix/node_modules/@anthropic-ai/claude-code/package.json

installed_version() {
  [[ -f $pkg_json ]] || return 0
  node -e 'process.stdout.write(require(process.argv[1]).version)' "$pkg_json" 2>/dev/null || true
}

if [[ -x $bin && $(installed_version) == "$version" ]]; then
  echo "$bin"
  exit 0
fi

command -v npm >/dev/null || { echo "install-claude-cli: npm not found (install nodejs + npm)" >&2; exit 1; }

cafile=${NPM_CAFILE:-}
if [[ -z $cafile && -f /etc/ssl/certs/ca-certificates.crt ]]; then
  cafile=/etc/ssl/certs/ca-certificates.crt
fi

mkdir -p "$prefix"
[[ -f $prefix/package.json ]] || echo '{"name":"ccsandbox-claude-code","private":true}' >"$prefix/package.json"

npm_args=(install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error
  "@anthropic-ai/claude-code@$version")
if [[ -n $cafile ]]; then
  npm_args+=(--cafile "$cafile")
fi
echo "install-claude-cli: npm ${npm_args[*]}" >&2
npm "${npm_args[@]}" >&2

[[ -x $bin ]] || { echo "install-claude-cli: $bin missing after install" >&2; exit 1; }
got=$(installed_version)
[[ $got == "$version" ]] || { echo "install-claude-cli: installed $got, wanted $version" >&2; exit 1; }
"$bin" --version >&2
echo "$bin"
