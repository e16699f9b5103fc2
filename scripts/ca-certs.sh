#!/usr/bin/env bash
# Put extra CA certificates into every image build context, so image builds trust them (pip, npm, apt
# over HTTPS, and the proxy's own HTTPS to an upstream). Needed behind TLS-inspecting proxies, and in CI
# where PyPI/npm are only trusted with the machine's bundle. Works with the classic builder (no BuildKit,
# no buildx): each build context has a certs/extra/ directory that its Dockerfile COPYs and adds to the
# system trust store with update-ca-certificates (see /certs/extra/README.md in any context).
#
# Usage: scripts/ca-certs.sh [PEM_FILE ...]      (default: $EXTRA_CA_CERTS, colon-separated paths)
#        scripts/ca-certs.sh --clear            remove previously copied certificates
# Each file (one or many PEM certificates) is copied as certs/extra/<name>.crt into every build context
# (a directory holding a Dockerfile* and a certs/extra/ directory). Idempotent; unchanged files are not
# rewritten, so Docker's layer cache still hits. Copied .crt files are git-ignored.
set -euo pipefail
log() { echo "[ca-certs] $*" >&2; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

mapfile -t dirs < <(find "$repo" \( -name .git -o -name .venv -o -name .tools -o -name .stack -o -name node_modules \) -prune \
  -o -type d -path '*/certs/extra' -print | sort)
[[ ${#dirs[@]} -gt 0 ]] || { log "no build context with certs/extra/ found under $repo"; exit 1; }

clear=0
files=()
if [[ ${1:-} == --clear ]]; then
  clear=1
elif [[ $# -gt 0 ]]; then
  files=("$@")
elif [[ -n ${EXTRA_CA_CERTS:-} ]]; then
  IFS=: read -r -a files <<<"$EXTRA_CA_CERTS"
fi

wanted=()
for f in "${files[@]}"; do
  [[ -r $f ]] || { log "cannot read $f"; exit 1; }
  grep -q -- '-----BEGIN CERTIFICATE-----' "$f" || { log "$f holds no PEM certificate"; exit 1; }
  name=$(basename "$f"); name=${name%.*}; name=${name//[^A-Za-z0-9_.-]/_}.crt
  wanted+=("$name")
  for d in "${dirs[@]}"; do
    if ! cmp -s "$f" "$d/$name"; then cp "$f" "$d/$name"; fi
  done
done

# Remove certificates copied earlier that were not asked for this time (or all of them with --clear).
for d in "${dirs[@]}"; do
  for c in "$d"/*.crt; do
    [[ -e $c ]] || continue
    keep=0
    for w in "${wanted[@]}"; do [[ $(basename "$c") == "$w" ]] && keep=1; done
    if [[ $clear == 1 || $keep == 0 ]]; then rm -f "$c"; fi
  done
done
log "${#wanted[@]} certificate file(s) in ${#dirs[@]} build context(s): ${dirs[*]#"$repo"/}"
