"""With the registry opt-in on, the sandbox's own pip and npm reach an allowlisted registry through the
egress proxy (Squid) — from the environment the stack gives the agent, with no flag of ours — and
without that environment they do not reach it at all. The registry is the fake one of the fake
internet (registry.fake.test, a PyPI "simple" index over TLS with a certificate of its own, hence
pip's --trusted-host and npm's --strict-ssl=false): every request carries a fresh nonce in its path,
and the registry's log is the proof."""

from __future__ import annotations

import subprocess

import pytest
from ccstack import probes

pytestmark = pytest.mark.isolation

INDEX = "https://registry.fake.test"


def agent_sh(iso, script: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "exec", iso.sandbox.agent, "bash", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def pip_download(name: str, *, env_prefix: str = "") -> str:
    return (
        f"{env_prefix} python3 -m pip download --no-deps --no-build-isolation --dest /tmp/dl-{name} "
        f"--index-url {INDEX}/simple/ --trusted-host registry.fake.test --retries 0 --timeout 10 {name}"
    )


def npm_view(name: str, *, env_prefix: str = "") -> str:
    return (
        f"{env_prefix} npm view {name} --registry {INDEX}/ --strict-ssl=false --fetch-retries=0 "
        "--fetch-timeout=10000 --cache /tmp/npm-cache-" + name
    )


def test_pip_and_npm_use_the_egress_proxy(iso, net, record) -> None:
    r = agent_sh(iso, 'echo "$CCSANDBOX_REGISTRIES $HTTPS_PROXY"')
    assert r.stdout.split() == ["on", "http://egress-proxy:3128"], r.stdout + r.stderr
    log = net.log(net.registry)
    results = []
    for tool, command in (("pip", pip_download), ("npm", npm_view)):
        nonce = probes.new_nonce()
        name = f"ccsbx-{nonce}"
        r = agent_sh(iso, command(name))  # fails later on the fake package; the request is what counts
        hits = probes.wait_for_hits(log, nonce)
        # The same without the proxy variables: the agent has no other way to the registry.
        direct_nonce = probes.new_nonce()
        unset = "env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy"
        d = agent_sh(iso, command(f"ccsbx-{direct_nonce}", env_prefix=unset))
        direct_hits = probes.wait_for_hits(log, direct_nonce, timeout=1.0)
        ok = bool(hits) and not direct_hits and d.returncode != 0
        if not ok:
            print(f"{tool} via the proxy:\n{r.stdout[-1500:]}{r.stderr[-1500:]}")
            print(f"{tool} without the proxy variables:\n{d.stdout[-1500:]}{d.stderr[-1500:]}")
        paths = sorted({str(h.get("path")) for h in hits})
        results.append(
            probes.ProbeResult(
                name=f"toolchain-{tool}-via-egress-proxy",
                area="registries",
                passed=ok,
                detail=f"registry saw {tool}'s request {len(hits)} times ({', '.join(paths)[:120]}); "
                f"without the proxy variables {len(direct_hits)} times",
            )
        )
    record(*results)
    failed = [res for res in results if not res.passed]
    assert not failed, "; ".join(f"{res.name}: {res.detail}" for res in failed)
