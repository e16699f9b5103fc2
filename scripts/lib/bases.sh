# Sourced by scripts/build-images.sh and scripts/test.sh: which base images to build from.
# An official base image that is not here yet would be pulled from a registry. When it is absent but a
# local stand-in exists (an offline machine that ran scripts/build-local-bases.sh), export the stand-in
# instead of reaching for a registry -- the rule scripts/build-llama-server.sh applies too. Variables that
# are already set win.
_have_image() { docker image inspect "$1" >/dev/null 2>&1; }
_prefer_local_base() { # VAR OFFICIAL LOCAL
  local var=$1 official=$2 local_=$3
  if [[ -z ${!var:-} ]] && ! _have_image "$official" && _have_image "$local_"; then
    echo "[bases] $official is not here; using the local stand-in $local_ ($var)" >&2
    export "$var=$local_"
  fi
}
_prefer_local_base PYTHON_IMAGE python:3.12-slim-bookworm local/python:3.11-bookworm
_prefer_local_base NODE_IMAGE node:22-bookworm-slim local/node:bookworm
_prefer_local_base DEBIAN_IMAGE debian:bookworm-slim local/debian:bookworm
