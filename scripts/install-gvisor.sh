#!/usr/bin/env bash
# Install gVisor's runsc and register it with Docker as the runtime `runsc`, for the agent's opt-in
# kernel isolation (`ccstack up MODE --runtime runsc`, or `runtime: runsc` in policies/sandbox.yaml).
# Idempotent: does nothing when `docker info` already lists runsc with the flags below.
#
#   scripts/install-gvisor.sh                 install + register (root; otherwise prints what to run)
#   scripts/install-gvisor.sh --check         exit 0 when runsc is registered as needed, 1 (and how) if not
#   scripts/install-gvisor.sh --force         replace an existing `runsc` entry instead of merging into it
#   scripts/install-gvisor.sh --write-config  only merge the entry into $DOCKER_DAEMON_JSON (no apt,
#                                             no Docker, no reload; for tests and image builds)
#
# What it does (Debian/Ubuntu: the `runsc` package of Debian bookworm, or gVisor's own apt repository):
#   1. apt-get install -y runsc                        (when no runsc binary is on PATH)
#   2. merges into /etc/docker/daemon.json (other keys and runtimes kept; the old file saved as .bak):
#        {"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=host"]}}}
#      An existing runsc entry keeps its path and other flags; missing flags are added, and
#      --oci-seccomp is removed (with Debian bookworm's runsc, Docker's seccomp profile inside the
#      sandbox makes thread creation fail: the agent's node aborts at start).
#      --network=host: gVisor uses the kernel's network stack inside the container's own network
#      namespace (its own netstack cannot start containers on some hosts); Docker's networks and
#      namespaces are unchanged. See the README, "Kernel isolation (opt-in): gVisor".
#   3. makes dockerd re-read its configuration (`systemctl reload docker`, else `kill -HUP`): running
#      containers are not restarted.
# Environment: DOCKER_DAEMON_JSON (default /etc/docker/daemon.json), RUNSC_PATH (default: `command -v
# runsc`), RUNSC_RUNTIME_ARGS (JSON list, default ["--network=host"]), RUNSC_UNWANTED_ARGS (JSON list of
# flags to remove, default ["--oci-seccomp"]).
set -euo pipefail

daemon_json=${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}
runtime_args=${RUNSC_RUNTIME_ARGS:-'["--network=host"]'}
unwanted_args=${RUNSC_UNWANTED_ARGS:-'["--oci-seccomp"]'}
mode=install
force=0
for arg in "$@"; do
  case $arg in
    --check) mode=check ;;
    --force) force=1 ;;
    --write-config) mode=write-config ;;
    -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "install-gvisor: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { echo "install-gvisor: $*" >&2; }

# ok | absent | "missing FLAGS" | "unwanted FLAGS": runsc as `docker info` reports it.
registration() {
  docker info --format '{{json .Runtimes}}' 2>/dev/null | python3 -c '
import json, sys
runtimes = json.loads(sys.stdin.read() or "{}") or {}
entry = runtimes.get("runsc")
if entry is None:
    print("absent")
    sys.exit()
args = entry.get("runtimeArgs") or []
have = {a.split("=", 1)[0] for a in args}
missing = [a for a in json.loads(sys.argv[1]) if a.split("=", 1)[0] not in have]
unwanted = [a for a in args if a in json.loads(sys.argv[2])]
print("missing " + " ".join(missing) if missing else "unwanted " + " ".join(unwanted) if unwanted else "ok")
' "$runtime_args" "$unwanted_args"
}

instructions() {
  cat >&2 <<EOF
To run the agent under gVisor, install runsc and register it with Docker (as root):
  sudo apt-get install -y runsc          # Debian/Ubuntu; or gVisor's own apt repository
  # $daemon_json (merge into what is there):
  #   {"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": $runtime_args}}}
  sudo kill -HUP \$(pidof dockerd)       # or: sudo systemctl reload docker
  docker info --format '{{json .Runtimes}}'   # must list runsc
or simply: sudo $0
EOF
}

write_config() {
  mkdir -p "$(dirname "$daemon_json")"
  python3 - "$daemon_json" "$1" "$runtime_args" "$force" "$unwanted_args" <<'PY'
import json, os, sys

path, runsc, wanted_args, force = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4] == "1"
unwanted_args = json.loads(sys.argv[5])
try:
    with open(path, encoding="utf-8") as f:
        text = f.read()
except FileNotFoundError:
    text = ""
config = json.loads(text) if text.strip() else {}
if not isinstance(config, dict) or not isinstance(config.get("runtimes", {}), dict):
    sys.exit(f"install-gvisor: {path} is not a JSON object with a \"runtimes\" object; fix it by hand")
runtimes = config.setdefault("runtimes", {})
current = runtimes.get("runsc")
if current is None or force:
    entry = {"path": runsc, "runtimeArgs": list(wanted_args)}
else:
    # Keep the existing entry (its path, its other flags); add the flags it lacks, unless it sets the
    # same option to another value (then it is the administrator's choice: say so); drop unwanted ones.
    entry = dict(current)
    args = list(entry.get("runtimeArgs") or [])
    for arg in [a for a in args if a in unwanted_args]:
        print(f"install-gvisor: removing {arg} from the existing runsc entry", file=sys.stderr)
        args.remove(arg)
    for arg in wanted_args:
        key = arg.split("=", 1)[0]
        same_key = [a for a in args if a.split("=", 1)[0] == key]
        if not same_key:
            args.append(arg)
        elif arg not in same_key:
            print(f"install-gvisor: keeping {same_key[0]} of the existing runsc entry (wanted {arg}); "
                  "--force replaces the entry", file=sys.stderr)
    entry["runtimeArgs"] = args
if entry == current:
    print(f"install-gvisor: {path} already has runsc: {json.dumps(current)}", file=sys.stderr)
    sys.exit(0)
runtimes["runsc"] = entry
if text:
    with open(path + ".bak", "w", encoding="utf-8") as f:
        f.write(text)
tmp = path + ".tmp"
with open(tmp, "w", encoding="utf-8") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
os.replace(tmp, path)
print(f"install-gvisor: runsc in {path}: {json.dumps(entry)}", file=sys.stderr)
PY
}

if [[ $mode == write-config ]]; then
  write_config "${RUNSC_PATH:-$(command -v runsc || echo /usr/bin/runsc)}"
  exit 0
fi

docker info >/dev/null 2>&1 || { say "Docker is not running or not reachable (docker info failed)"; exit 1; }
state=$(registration)
if [[ $state == ok ]]; then
  say "runsc is registered with Docker ($(command -v runsc || echo 'path from daemon.json'))"
  exit 0
fi
if [[ $mode == check ]]; then
  say "runsc is not registered with Docker as needed ($state)"
  instructions
  exit 1
fi
if [[ $(id -u) != 0 ]]; then
  say "runsc is not registered with Docker as needed ($state), and registering it needs root"
  instructions
  exit 1
fi

if ! command -v runsc >/dev/null; then
  say "apt-get install runsc"
  if ! apt-cache show runsc >/dev/null 2>&1; then
    apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null
fi
runsc_path=${RUNSC_PATH:-$(command -v runsc)}
say "runsc $(runsc --version 2>/dev/null | head -1 | awk '{print $3}') at $runsc_path"
write_config "$runsc_path"

if command -v systemctl >/dev/null && systemctl is-active --quiet docker 2>/dev/null; then
  systemctl reload docker
else
  pids=$(pidof dockerd || true)
  [[ -n $pids ]] || { say "dockerd is not running here; restart Docker to load $daemon_json"; exit 1; }
  # shellcheck disable=SC2086
  kill -HUP $pids
fi
for _ in $(seq 1 40); do
  state=$(registration)
  if [[ $state == ok ]]; then
    say "runsc is registered with Docker"
    exit 0
  fi
  sleep 0.25
done
say "dockerd did not pick up runsc from $daemon_json ($state; see its log)"
exit 1
