"""The sandbox's toolchain: the real Claude Code CLI in the sandbox runs a Python project's tests (and a C
build) through its Bash tool against the scripted upstream, and pytest's own summary travels back
upstream as the tool result; without the registry opt-in pip and npm fail at once and say why; extra
packages listed in a toolchain policy end up in the image `ccstack build` makes (tests/isolation/
test_toolchain_egress.py shows pip and npm going through the egress proxy when the opt-in is on)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from stack_helpers import AGENT_GID, AGENT_UID, CLAUDE_P, REPO, Stack, base_image_env, http_json

pytestmark = pytest.mark.stack

IMAGE = os.environ.get("CCSANDBOX_SANDBOX_IMAGE") or "ccsandbox/claude-sandbox:local"
HARDENED = [
    "--rm",
    "--read-only",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges:true",
    "--user",
    f"{AGENT_UID}:{AGENT_GID}",
    "--tmpfs",
    "/tmp:mode=1777",
    "--tmpfs",
    f"/home/claude:uid={AGENT_UID},gid={AGENT_GID},mode=0700",
    "--network",
    "none",
    "--entrypoint",
    "bash",
]


def script_upstream(stack: Stack, docker: Any, turns: list[dict[str, Any]]) -> str:
    url = f"http://{stack.ip(docker, 'scripted-upstream', 'backend')}:8080"
    assert http_json("POST", f"{url}/_script", turns) == {"loaded": True}
    http_json("DELETE", f"{url}/_requests")
    return url


def main_requests(url: str) -> list[dict[str, Any]]:
    log = http_json("GET", f"{url}/_requests")
    return [r for r in log if r.get("path", "").startswith("/v1/chat/completions") and r["body"].get("tools")]


def bash_call(command: str, description: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "Bash", "arguments": {"command": command, "description": description}}]}


def tool_results(request: dict[str, Any]) -> list[str]:
    """The text of every `role: tool` message of a translated upstream request."""
    out = []
    for m in request["body"]["messages"]:
        if m.get("role") == "tool":
            content = m.get("content")
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            out.append(str(content))
    return out


def write_project(workdir: Path, nonce: str) -> None:
    """A small Python project with a pytest suite, and a C program with a Makefile."""
    files = {
        "calc/__init__.py": "",
        "calc/ops.py": "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n",
        "tests/test_ops.py": (
            "import pytest\n\nfrom calc.ops import add, mul\n\n\n"
            f"def test_add_{nonce}():\n    assert add(2, 3) == 5\n\n\n"
            "@pytest.mark.parametrize(('a', 'b', 'product'), [(2, 3, 6), (0, 7, 0), (-1, 4, -4)])\n"
            "def test_mul(a, b, product):\n    assert mul(a, b) == product\n"
        ),
        "pyproject.toml": '[project]\nname = "calc"\nversion = "0.1"\n\n[tool.pytest.ini_options]\n'
        'pythonpath = ["."]\n',
        "hello.c": f'#include <stdio.h>\nint main(void) {{ puts("built by cc {nonce}"); return 0; }}\n',
        "Makefile": "hello: hello.c\n\t$(CC) -O2 -o $@ $<\n",
    }
    for rel, text in files.items():
        path = workdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for p in [workdir, *workdir.rglob("*")]:
        os.lchown(p, AGENT_UID, AGENT_GID)


def test_claude_runs_the_projects_tests_through_its_bash_tool(
    stack: Stack, docker: Any, workdir: Path
) -> None:
    stack.ccstack("up", "test")
    nonce = secrets.token_hex(4)
    write_project(workdir, nonce)
    url = script_upstream(
        stack,
        docker,
        [
            bash_call("python3 -m pytest -v", "Run the project's tests"),
            bash_call("make hello && ./hello", "Build and run the C program"),
            {"text": "All 4 tests pass and the C program builds."},
        ],
    )
    r = stack.ccstack("claude", str(workdir), "--", "-p", "Run the tests.", *CLAUDE_P, check=False)
    assert r.returncode == 0, f"claude in the sandbox failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    result = [e for e in events if e.get("type") == "result"][-1]
    assert result["subtype"] == "success", result
    assert result["is_error"] is False

    reqs = main_requests(url)
    assert len(reqs) == 3, [req["body"]["messages"][-1:] for req in reqs]
    # Turn 2 carries the Bash tool's result: pytest's own output, as the CLI sent it upstream.
    pytest_out = tool_results(reqs[1])[-1]
    print(f"tool result sent upstream after `python3 -m pytest -v`:\n{pytest_out}")
    assert f"tests/test_ops.py::test_add_{nonce} PASSED" in pytest_out, pytest_out
    summary = [line for line in pytest_out.splitlines() if " passed" in line and line.startswith("=")]
    assert summary, pytest_out
    assert "4 passed" in summary[-1], summary
    assert "failed" not in summary[-1]
    # Turn 3: make + the C toolchain.
    make_out = tool_results(reqs[2])[-1]
    assert f"built by cc {nonce}" in make_out, make_out
    assert (workdir / "hello").stat().st_uid == AGENT_UID


def test_without_the_registry_opt_in_pip_and_npm_fail_at_once_and_say_why(
    stack: Stack, workdir: Path
) -> None:
    stack.ccstack("up", "test")
    probe = (
        'echo "registries=$CCSANDBOX_REGISTRIES proxy=${HTTPS_PROXY:-none}"; '
        "for t in python3 python pip make gcc g++ cc curl jq less file unzip ps git rg node npm; do "
        '  command -v "$t" >/dev/null || echo "MISSING $t"; done; '
        "python3 -m pytest --version; python --version; "
        "pip install tomli-w 2>&1; echo pip-system=$?; "
        "python3 -m venv --system-site-packages .venv && . .venv/bin/activate; "
        "start=$(date +%s); pip install tomli-w >/tmp/pip.log 2>&1; echo venv-pip-exit=$?; "
        'echo "venv-pip-seconds=$(( $(date +%s) - start ))"; cat /tmp/pip.log; '
        "start=$(date +%s); npm install --no-audit left-pad >/tmp/npm.log 2>&1; echo npm-exit=$?; "
        'echo "npm-seconds=$(( $(date +%s) - start ))"; head -5 /tmp/npm.log'
    )
    r = stack.compose(workdir).run("claude-sandbox", "bash", "-c", probe, timeout=300)
    out = r.stdout
    print(out)
    assert r.returncode == 0, r.stderr
    assert "registries=off proxy=none" in out
    assert "MISSING" not in out, out
    assert "pytest 7." in out + r.stderr  # Debian's python3-pytest (its version line goes to stderr)
    assert "Python 3." in out  # `python` is python3 (python-is-python3)
    # The image's Python refuses installs with our message (PEP 668), not a read-only-filesystem trace.
    assert "externally-managed-environment" in out
    assert "python3 -m venv --system-site-packages .venv" in out
    # In a venv, pip tries PyPI, cannot resolve it, and gives up at once with the reason.
    assert "venv-pip-exit=1" in out
    assert "name resolution" in out, out
    assert int(out.split("venv-pip-seconds=")[1].split()[0]) < 60
    assert "npm-exit=0" not in out
    assert "EAI_AGAIN" in out or "ENOTFOUND" in out, out
    assert int(out.split("npm-seconds=")[1].split()[0]) < 60
    assert (workdir / ".venv" / "pyvenv.cfg").exists()  # the venv lives in the workdir, as the user's


def image_id(ref: str) -> str:
    r = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", ref], capture_output=True, text=True, check=True
    )
    return r.stdout.strip()


def _build(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = os.environ | base_image_env() | {"CCSANDBOX_STATE_DIR": str(REPO / ".stack")}
    start = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "ccstack", "build", "claude-sandbox", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    return r, time.monotonic() - start


def test_a_toolchain_policy_adds_packages_to_the_image(tmp_path: Path, images: dict[str, float]) -> None:
    policy = tmp_path / "toolchain.yaml"
    policy.write_text("apt: [bc]\npip: [tomli-w==1.0.0]\nnpm: [semver@7.6.3]\n", encoding="utf-8")
    extended = ""
    try:
        r, seconds = _build("--toolchain", str(policy))
        assert r.returncode == 0, f"{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
        extended = image_id(IMAGE)
        extras = "apt: bc; pip: tomli-w==1.0.0; npm: semver@7.6.3"
        assert f"extra packages for claude-sandbox: {extras}" in r.stderr
        print(f"image with the extra packages built in {seconds:.0f} s")
        check = (
            "echo 6*7 | bc; "
            'python3 -c "import tomli_w; print(tomli_w.dumps({\\"k\\": 1}).strip())"; '
            "semver -r '>=7' 7.6.3; cat /usr/local/lib/ccsandbox/extra-packages; "
            'echo "suid=$(find / -xdev -type f -perm /6000 2>/dev/null | wc -l)"; id -u; '
            "touch /usr/local/x 2>/dev/null || echo rootfs-ro"
        )
        run = subprocess.run(
            ["docker", "run", *HARDENED, IMAGE, "-c", check],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert lines[:3] == ["42", "k = 1", "7.6.3"], run.stdout
        assert "apt: bc; npm: semver@7.6.3; pip: tomli-w==1.0.0" in run.stdout
        assert "suid=0" in run.stdout
        assert str(AGENT_UID) in lines
        assert "rootfs-ro" in run.stdout
    finally:
        # Back to the image of the repository's own policy (the layer cache makes this seconds).
        r, seconds = _build()
        assert r.returncode == 0, f"{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
        if extended and extended != image_id(IMAGE):
            subprocess.run(["docker", "rmi", extended], capture_output=True, check=False)
    plain = subprocess.run(
        ["docker", "run", *HARDENED, IMAGE, "-c", "command -v bc || echo no-bc"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert plain.stdout.strip() == "no-bc"
