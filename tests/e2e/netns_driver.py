"""Run inside a fresh network namespace (`unshare -n python netns_driver.py SPEC`): bring up loopback,
start the scripted upstream and the real `ccproxy` console script, run the real Claude Code CLI against
them, and write what happened to a JSON result file. Nothing here can reach a non-loopback address.

SPEC is a JSON file: {"ccproxy": path, "claude": path, "script": path,
"workdir": path, "home": path, "prompt": str, "token": str, "upstream_key_file": path, "result": path,
"claude_timeout": seconds, "extra_proxy_args": [...], "claude_env": {...} (added to the CLI's env),
"claude_args": [...] (added to its arguments)}
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from harness import ccproxy_process, scripted_upstream_process

UPSTREAM_PORT = 18080
PROXY_PORT = 18787


def main(spec_path: str) -> int:
    spec: dict[str, Any] = json.loads(Path(spec_path).read_text())
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    logs = Path(spec["result"]).parent
    upstream = scripted_upstream_process(
        UPSTREAM_PORT, log=logs / "upstream.log", script=Path(spec["script"]), quiet=False
    )
    proxy = ccproxy_process(
        PROXY_PORT,
        f"http://127.0.0.1:{UPSTREAM_PORT}/v1",
        *("--upstream-kind", "openai", "--token", spec["token"]),
        *("--upstream-key-file", spec["upstream_key_file"], "--ping-interval", "2"),
        *spec.get("extra_proxy_args", []),
        log=logs / "proxy.log",
        cmd=[spec["ccproxy"]],
    )
    upstream.start()
    proxy.start()
    result: dict[str, Any] = {}
    try:
        upstream.wait_http_ok(f"http://127.0.0.1:{UPSTREAM_PORT}/health", 20)
        proxy.wait_http_ok(f"http://127.0.0.1:{PROXY_PORT}/health", 30)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": spec["home"],
            "IS_SANDBOX": "1",
            "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{PROXY_PORT}",
            "ANTHROPIC_AUTH_TOKEN": spec["token"],
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            **spec.get("claude_env", {}),
        }
        started = time.monotonic()
        try:
            run = subprocess.run(
                [
                    spec["claude"],
                    "-p",
                    spec["prompt"],
                    "--dangerously-skip-permissions",
                    "--output-format",
                    "stream-json",
                    "--verbose",
                    *spec.get("claude_args", []),
                ],
                cwd=spec["workdir"],
                env=env,
                capture_output=True,
                text=True,
                timeout=float(spec.get("claude_timeout", 180)),
            )
            result.update(returncode=run.returncode, stdout=run.stdout, stderr=run.stderr)
        except subprocess.TimeoutExpired as exc:
            result.update(returncode=None, timeout=True, stdout=str(exc.stdout), stderr=str(exc.stderr))
        result["claude_seconds"] = round(time.monotonic() - started, 2)
        with urllib.request.urlopen(f"http://127.0.0.1:{UPSTREAM_PORT}/_requests", timeout=5) as response:
            result["upstream_requests"] = json.loads(response.read())
        with urllib.request.urlopen(f"http://127.0.0.1:{PROXY_PORT}/metrics", timeout=5) as response:
            result["proxy_metrics"] = response.read().decode()
    finally:
        proxy.stop()
        upstream.stop()
        result["proxy_log"] = (logs / "proxy.log").read_text()
        Path(spec["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
