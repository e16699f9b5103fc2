"""The scripted upstream (backends/scripted-upstream/scripted_upstream.py) as a local process: an
OpenAI-compatible server that answers each main request with the next turn of a script (text or tool
calls), records every request (`GET /_requests`) and takes a new script at `POST /_script`.

    with scripted_upstream(log=tmp / "upstream.log", script=[{"text": "hi"}]) as up:
        ... up.url + "/v1" ...
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.net import LOOPBACK, free_port
from harness.processes import Process

REPO = Path(__file__).resolve().parents[2]
SCRIPTED_UPSTREAM = REPO / "backends" / "scripted-upstream" / "scripted_upstream.py"


def scripted_upstream_process(
    port: int, *, log: Path, host: str = LOOPBACK, script: Path | None = None, quiet: bool = True
) -> Process:
    """The scripted upstream (not started) on host:port, with `script` (a JSON file) if given;
    `quiet=False` keeps its access log."""
    argv = [sys.executable, "-u", str(SCRIPTED_UPSTREAM), "--host", host, "--port", str(port)]
    argv += ["--quiet"] if quiet else []
    if script is not None:
        argv += ["--script", str(script)]
    return Process("scripted-upstream", argv, log)


@dataclass(frozen=True)
class ScriptedUpstream:
    url: str  # root, reached on loopback whatever the listen address
    port: int
    process: Process


@contextmanager
def scripted_upstream(
    *, log: Path, script: list[dict[str, Any]] | None = None, host: str = LOOPBACK, timeout: float = 20
) -> Iterator[ScriptedUpstream]:
    """Start the scripted upstream on a free port of `host` (`0.0.0.0`: every interface), wait for its
    /health, yield it; stopped on the way out. `script` is written next to the log."""
    port = free_port(host)
    script_file = None
    if script is not None:
        script_file = log.with_suffix(".script.json")
        script_file.write_text(json.dumps(script))
    process = scripted_upstream_process(port, log=log, host=host, script=script_file)
    url = f"http://{LOOPBACK}:{port}"
    with process.started(ready_url=url + "/health", timeout=timeout):
        yield ScriptedUpstream(url=url, port=port, process=process)
