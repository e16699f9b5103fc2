"""`pool` mode: two llama-server replicas (the real 0.5B model) behind HAProxy, through the proxy.

Six sessions of three turns: each session's turns land on one server (HAProxy's log names the server of
every request with the session it carried), turns 2 and 3 read the previous turn's prompt from that
server's cache (``cache_read_input_tokens``), and after the busier replica is stopped mid-run its
sessions go on on the other one with no error: one cache miss each, then hits again.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from stack_helpers import REPO, Stack

pytestmark = [pytest.mark.stack, pytest.mark.timeout(1800)]

SESSIONS = 6
SLOTS = 8  # 7 conversations per server + the side slot: the proxy gives each session its own slot number
WINDOW = 2048
LOG_LINE = re.compile(r"pool session=(\S+) server=(\S+) status=(\d+) retries=(\S+)")
QUESTIONS = ("Name a colour.", "Name another one.", "And a third?", "One more?")


@pytest.fixture(scope="module")
def haproxy_image() -> str:
    r = subprocess.run(
        [sys.executable, "-m", "ccstack", "build", "haproxy"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        cwd=REPO,
    )
    assert r.returncode == 0, f"building the haproxy image failed:\n{r.stderr[-4000:]}"
    return "ccsandbox/haproxy:local"


@dataclass
class Session:
    """One conversation: its id, its messages so far, and what each turn read from the cache."""

    id: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    prompts: list[int] = field(default_factory=list)  # every turn's whole prompt (cached + not)
    cached: list[int] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"session:{self.id}"  # what the proxy sends HAProxy (ccproxy.plan.session_key)

    def hit(self, turn: int) -> bool:
        """Turn ``turn`` (0-based) read at least the whole previous prompt from the cache."""
        return self.cached[turn] >= self.prompts[turn - 1]

    def turn(self, client: httpx.Client, question: str) -> None:
        self.messages.append({"role": "user", "content": question})
        r = client.post(
            "/v1/messages",
            json={
                "model": "claude-sonnet-4-5",
                "max_tokens": 8,
                "temperature": 0,
                "system": f"Answer in at most three words. Conversation {self.id}.",
                "messages": self.messages,
            },
            headers={"X-Claude-Code-Session-Id": self.id},
        )
        assert r.status_code == 200, r.text  # no client-visible error, failover included
        msg = r.json()
        text = "".join(b.get("text", "") for b in msg["content"]) or "..."
        self.messages.append({"role": "assistant", "content": text})
        usage = msg["usage"]
        self.cached.append(usage.get("cache_read_input_tokens") or 0)
        self.prompts.append(usage["input_tokens"] + self.cached[-1])


def servers_by_session(logs: str) -> dict[str, list[str]]:
    """HAProxy's log: the servers each session's requests were answered by, in order."""
    served: dict[str, list[str]] = defaultdict(list)
    for match in LOG_LINE.finditer(logs):
        key, server, status, _retries = match.groups()
        if key.startswith("session:") and status == "200":
            served[key].append(server)
    return served


def test_sessions_stick_to_a_server_and_fail_over_with_one_miss(
    stack: Stack, docker: Any, llama_image: str, haproxy_image: str
) -> None:
    up = ("up", "pool", "--replicas", "2", "--slots", str(SLOTS), "--context-window", str(WINDOW))
    stack.ccstack(*up, timeout=1200)
    assert stack.state["services"] == ["proxy", "haproxy", "llama-server", "llama-server-2"]
    haproxy = stack.container(docker, "haproxy")
    assert haproxy.attrs["HostConfig"]["ReadonlyRootfs"] is True

    status = stack.ccstack("status").stdout
    assert "2 servers, all up" in status, status  # HAProxy's view, read by `ccstack status`

    url = f"http://{stack.ip(docker, 'proxy', 'backend')}:8787"
    headers = {"authorization": f"Bearer {stack.token}", "anthropic-version": "2023-06-01"}
    sessions = [Session(secrets.token_hex(6)) for _ in range(SESSIONS)]
    with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
        for s in sessions:  # interleaved turns: sessions share servers without evicting each other
            s.turn(client, QUESTIONS[0])
        for s in sessions:
            s.turn(client, QUESTIONS[1])
        served = servers_by_session(haproxy.logs().decode())
        for s in sessions:
            assert len(served[s.key]) == 2, served[s.key]
            assert len(set(served[s.key])) == 1, served[s.key]
            assert s.hit(1), (s.prompts, s.cached)
        home = {s.key: served[s.key][0] for s in sessions}
        counts = {name: list(home.values()).count(name) for name in set(home.values())}
        print(f"sessions per server: {counts}")
        stopped = max(counts, key=lambda name: counts[name])
        stack.container(docker, stopped).stop(timeout=5)  # mid-run: the next turns go out at once

        for s in sessions:
            s.turn(client, QUESTIONS[2])
        moved = [s for s in sessions if home[s.key] == stopped]
        for s in moved:  # one more turn: the new server has their prefix now
            s.turn(client, QUESTIONS[3])

    served = servers_by_session(haproxy.logs().decode())
    for s in sessions:
        later = served[s.key][2:]
        assert later, served[s.key]
        assert stopped not in later, served[s.key]
        assert len(set(later)) == 1, served[s.key]  # one new home, kept
        if s in moved:
            assert not s.hit(2), (s.prompts, s.cached)  # the one cache miss
            assert s.hit(3), (s.prompts, s.cached)
        else:
            assert later[0] == home[s.key]  # untouched by the other server leaving
            assert s.hit(2), (s.prompts, s.cached)
    status = stack.ccstack("status").stdout  # the pool still serves: the stack counts as healthy
    assert re.search(rf"server {stopped} +(DOWN|MAINT)", status), status  # MAINT: its name is gone from DNS
    assert "2 servers, 1 up" in status, status
    doctor = stack.ccstack("doctor", "pool", "--no-probe", "--json", check=False)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    rows = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert rows["pool servers"]["status"] == "fail"
    assert rows["pool servers"]["detail"].startswith(f"1 of 2 up; down: {stopped} "), rows["pool servers"]
    cached = [s.cached for s in sessions]
    print(f"stopped {stopped}: {len(moved)} session(s) moved; cached tokens per turn: {cached}")


def test_a_server_elsewhere_joins_the_pool_once_its_name_resolves(
    stack: Stack, docker: Any, llama_image: str, haproxy_image: str
) -> None:
    """`--replicas 0 --backend URL`: the pool is one llama-server outside the stack (here: a container
    the stack does not know, on the network HAProxy reaches other machines through). Until its name
    resolves and its health check passes the pool has no server up; then HAProxy finds it (Docker's DNS,
    re-resolved at run time) and requests through the proxy are answered by it."""
    from ccstack import models
    from harness.llama import llama_server

    up = ("up", "pool", "--replicas", "0", "--backend", "http://gpu-box.lan:8080", "--context-window", "2048")
    stack.ccstack(*up, timeout=1200, check=False)  # the proxy's upstream has no server yet: not healthy
    assert stack.state["services"] == ["proxy", "haproxy"]
    status = stack.ccstack("status", check=False).stdout
    assert re.search(r"server remote-1 +(MAINT|DOWN)", status), status
    assert "1 server, none up" in status, status

    egress = docker.networks.get(f"{stack.project}_egress")
    with llama_server(models.fetch(models.DEFAULT_MODEL), name_prefix="ccsandbox-test-remote") as remote:
        egress.connect(remote.name, aliases=["gpu-box.lan"])
        # Leaving MAINT, HAProxy counts the server up before its first check ("UP 1/2 health INI"):
        # wait for the check itself to pass, not just for the count.
        healthy = re.compile(r"server remote-1 +UP +health L7OK 200")
        deadline = time.monotonic() + 60
        while not healthy.search(status) and time.monotonic() < deadline:
            time.sleep(2)
            status = stack.ccstack("status", check=False).stdout
        assert healthy.search(status), status
        assert "1 server, all up" in status, status

        url = f"http://{stack.ip(docker, 'proxy', 'backend')}:8787"
        headers = {"authorization": f"Bearer {stack.token}", "anthropic-version": "2023-06-01"}
        with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
            session = Session(secrets.token_hex(6))
            session.turn(client, QUESTIONS[0])
        served = servers_by_session(stack.container(docker, "haproxy").logs().decode())
        assert served[session.key] == ["remote-1"], served
