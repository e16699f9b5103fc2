"""The test and benchmark harness: ports, HTTP waits, local processes (ccproxy, the scripted upstream)
and containers (llama-server, on testcontainers). See README.md beside this file.

Importing it turns testcontainers' Ryuk reaper off (no registry is reachable here, so its image cannot be
pulled; every start here stops what it started in a `finally`) and makes testcontainers reach published
ports on this host's loopback, where the harness publishes them. Set the variables yourself to override.
"""

from __future__ import annotations

import os

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")

from harness.ccproxy import CCPROXY, CCPROXY_CMD, Ccproxy, ccproxy, ccproxy_process, start_ccproxy
from harness.net import LOOPBACK, NotReady, free_port, http_status, wait_http_ok, wait_port
from harness.processes import Process, ProcessExited
from harness.upstream import SCRIPTED_UPSTREAM, ScriptedUpstream, scripted_upstream, scripted_upstream_process

__all__ = [
    "CCPROXY",
    "CCPROXY_CMD",
    "LOOPBACK",
    "SCRIPTED_UPSTREAM",
    "Ccproxy",
    "NotReady",
    "Process",
    "ProcessExited",
    "ScriptedUpstream",
    "ccproxy",
    "ccproxy_process",
    "free_port",
    "http_status",
    "scripted_upstream",
    "scripted_upstream_process",
    "start_ccproxy",
    "wait_http_ok",
    "wait_port",
]
