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
#   LLAMA_HOST / LLAMA_PORT  listen address                               default 0.0.0.0 / 8080
#   LLAMA_EXTRA_ARGS     more flags, split on whitespace
# Always on: --jinja, --metrics, --slots, --cache-prompt.
set -eu

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

# Flags are prepended in reverse so the final order is: fixed flags, model, template, tuning,
# LLAMA_EXTRA_ARGS, entrypoint arguments; later flags win in llama-server.
if [ -n "${LLAMA_EXTRA_ARGS:-}" ]; then
    # Word splitting is intended here.
    # shellcheck disable=SC2086
    set -- $LLAMA_EXTRA_ARGS "$@"
fi
if [ -n "${LLAMA_CACHE_RAM_MIB:-}" ]; then set -- --cache-ram "$LLAMA_CACHE_RAM_MIB" "$@"; fi
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
