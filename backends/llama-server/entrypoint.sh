#!/bin/sh
# Turns the ccsandbox llama-server environment into llama-server flags, then execs the server.
# Every value has one home: the env var below (documented default); extra flags go in LLAMA_EXTRA_ARGS
# or as arguments to this entrypoint (placed last, so they win).
#
#   LLAMA_MODEL          path of a GGUF file inside the container        default /models/model.gguf
#   LLAMA_HF_REPO        hub reference <user>/<repo>[:quant]; used instead of LLAMA_MODEL when set;
#                        downloaded into LLAMA_CACHE (mount a named volume there). Needs an image with
#                        HTTPS support (the official image; the source build has no OpenSSL).
#   LLAMA_HF_FILE        a specific file in LLAMA_HF_REPO                 default (quant from the ref)
#   LLAMA_CACHE          hub download directory                           default /models/cache
#   LLAMA_ALIAS          model name served by /v1/models                  default (llama-server's)
#   LLAMA_CHAT_TEMPLATE  name of a template in /templates (without .jinja) or an absolute path;
#                        empty = the model's own template                 default empty
#   LLAMA_PARALLEL       slots: main conversation + side requests         default 2
#   LLAMA_CTX_PER_SLOT   context tokens per slot (total = PARALLEL * this) default 32768
#   LLAMA_THREADS        CPU threads for generation                        default (llama-server's)
#   LLAMA_CACHE_RAM_MIB  host-RAM prompt cache size, -1 = no limit         default (llama-server's)
#   LLAMA_SLOT_SAVE_PATH directory (a volume) for slot files: saved KV caches of prompts, such as Claude
#                        Code's prefix, that ccproxy restores after a restart. Files go to a subdirectory
#                        per model (size + first and last MiB of the GGUF, or the hub reference), so
#                        another model never sees them. Unusable directory: a warning, no slot files.
#                        empty = off                                       default empty
#   LLAMA_SLOT_SAVE_MAX_MIB  at start, slot files beyond this total are deleted, least recently used
#                        first (access time)                              default 8192
#   LLAMA_HOST / LLAMA_PORT  listen address                               default 0.0.0.0 / 8080
#   LLAMA_RPC            comma-separated HOST:PORT of llama.cpp rpc-servers (split mode): the model's
#                        layers go to them (--rpc LIST -ngl all); needs a build with GGML_RPC
#                        (Dockerfile.source)                               default empty
#   LLAMA_EXTRA_ARGS     more flags, split on whitespace
# Always on: --jinja, --metrics, --slots, --cache-prompt.
set -eu
umask 022

bin="${LLAMA_SERVER_BIN:-/app/llama-server}"
template_dir="${LLAMA_TEMPLATE_DIR:-/templates}"
parallel="${LLAMA_PARALLEL:-2}"
ctx_per_slot="${LLAMA_CTX_PER_SLOT:-32768}"

die() {
    echo "llama-entrypoint: $*" >&2
    exit 64
}

case "$parallel" in '' | *[!0-9]* | 0) die "LLAMA_PARALLEL must be a positive integer, got '$parallel'" ;; esac
case "$ctx_per_slot" in '' | *[!0-9]* | 0) die "LLAMA_CTX_PER_SLOT must be a positive integer, got '$ctx_per_slot'" ;; esac
slot_max_mib="${LLAMA_SLOT_SAVE_MAX_MIB:-8192}"
case "$slot_max_mib" in '' | *[!0-9]*) die "LLAMA_SLOT_SAVE_MAX_MIB must be a non-negative integer, got '$slot_max_mib'" ;; esac

# A short fingerprint of what the slot files were computed with: a file's size and its first and last MiB
# (different weights differ there; cheap for multi-GB files), or the hub reference.
model_fingerprint() {
    if [ -n "${LLAMA_HF_REPO:-}" ]; then
        printf 'hf %s %s' "$LLAMA_HF_REPO" "${LLAMA_HF_FILE:-}" | sha256sum | cut -c1-16
    else
        { wc -c <"$1"; head -c 1048576 "$1" | sha256sum; tail -c 1048576 "$1" | sha256sum; } | sha256sum | cut -c1-16
    fi
}

# Delete the least recently used slot files (by access time: restores read them) beyond the budget.
prune_slot_files() {
    find "$1" -type f -name '*.bin' -printf '%A@ %s %p\n' 2>/dev/null | sort -rn |
        awk -v max="$(($2 * 1048576))" '{ total += $2; if (total > max) { sub(/^[^ ]+ [^ ]+ /, ""); print } }' |
        while IFS= read -r file; do
            rm -f "$file" && echo "llama-entrypoint: pruned slot file $file (over LLAMA_SLOT_SAVE_MAX_MIB=$2)" >&2
        done
}

# Flags are prepended in reverse so the final order is: fixed flags, model, template, tuning,
# LLAMA_EXTRA_ARGS, entrypoint arguments; later flags win in llama-server.
if [ -n "${LLAMA_EXTRA_ARGS:-}" ]; then
    # Word splitting is intended here.
    # shellcheck disable=SC2086
    set -- $LLAMA_EXTRA_ARGS "$@"
fi
if [ -n "${LLAMA_RPC:-}" ]; then set -- --rpc "$LLAMA_RPC" -ngl all "$@"; fi
if [ -n "${LLAMA_CACHE_RAM_MIB:-}" ]; then set -- --cache-ram "$LLAMA_CACHE_RAM_MIB" "$@"; fi
if [ -n "${LLAMA_SLOT_SAVE_PATH:-}" ]; then
    slot_dir="$LLAMA_SLOT_SAVE_PATH/$(model_fingerprint "${LLAMA_MODEL:-/models/model.gguf}" 2>/dev/null || echo unknown)"
    if mkdir -p "$slot_dir" 2>/dev/null && [ -w "$slot_dir" ]; then
        prune_slot_files "$LLAMA_SLOT_SAVE_PATH" "$slot_max_mib"
        set -- --slot-save-path "$slot_dir" "$@"
    else
        echo "llama-entrypoint: warning: slot files off: cannot write $slot_dir (LLAMA_SLOT_SAVE_PATH; uid $(id -u))" >&2
    fi
fi
if [ -n "${LLAMA_THREADS:-}" ]; then set -- --threads "$LLAMA_THREADS" "$@"; fi
if [ -n "${LLAMA_ALIAS:-}" ]; then set -- --alias "$LLAMA_ALIAS" "$@"; fi

if [ -n "${LLAMA_CHAT_TEMPLATE:-}" ]; then
    case "$LLAMA_CHAT_TEMPLATE" in
        /*) template="$LLAMA_CHAT_TEMPLATE" ;;
        *) template="$template_dir/$LLAMA_CHAT_TEMPLATE.jinja" ;;
    esac
    [ -r "$template" ] || die "chat template '$template' not found (available: $(ls "$template_dir" 2>/dev/null | tr '\n' ' '))"
    set -- --chat-template-file "$template" "$@"
fi

if [ -n "${LLAMA_HF_REPO:-}" ]; then
    export LLAMA_CACHE="${LLAMA_CACHE:-/models/cache}"
    mkdir -p "$LLAMA_CACHE" || die "cannot create LLAMA_CACHE=$LLAMA_CACHE (mount a writable volume there)"
    if [ -n "${LLAMA_HF_FILE:-}" ]; then set -- --hf-file "$LLAMA_HF_FILE" "$@"; fi
    set -- --hf-repo "$LLAMA_HF_REPO" "$@"
else
    model="${LLAMA_MODEL:-/models/model.gguf}"
    [ -r "$model" ] || die "model file '$model' is not readable: mount a GGUF file there (or set LLAMA_MODEL / LLAMA_HF_REPO)"
    set -- --model "$model" "$@"
fi

set -- --host "${LLAMA_HOST:-0.0.0.0}" --port "${LLAMA_PORT:-8080}" \
    --jinja --metrics --slots --cache-prompt \
    --parallel "$parallel" --ctx-size "$((parallel * ctx_per_slot))" "$@"

echo "llama-entrypoint: exec $bin $*" >&2
exec "$bin" "$@"
