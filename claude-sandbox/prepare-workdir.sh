#!/bin/sh
# Create the workdir paths that compose mounts read-only over the workdir in the sandbox (policies/
# mounts.yaml), as the invoking user, so Docker never creates them as root-owned directories.
# Run by the one-shot `workdir-init` service before claude-sandbox starts.
# Usage: ccsandbox-prepare-workdir DIR PATH...   (PATH ending in / is a directory, else a file;
#        a missing .mcp.json gets an empty server list so Claude Code parses it)
set -eu
dir=$1
shift
cd "$dir"
for p in "$@"; do
  case $p in
    /* | *..*) echo "prepare-workdir: refusing path $p" >&2; exit 2 ;;
    */) mkdir -p "$p" ;;
    *)
      mkdir -p "$(dirname "$p")"
      if [ ! -e "$p" ]; then
        case $p in
          .mcp.json) printf '{\n  "mcpServers": {}\n}\n' > "$p" ;;
          *) : > "$p" ;;
        esac
      fi
      ;;
  esac
done
echo "workdir ready: $dir ($*)"
