"""The agent's runtime as a probe, and the probes that read the agent differently under gVisor (runsc).

gVisor's user-space kernel shows a /proc that differs from Linux's where the standard probes
(``ccstack.probes``) look, so under runsc they hand over to the functions here:

- ``/proc/<pid>/status`` has no ``NoNewPrivs`` and no ``CapAmb`` line. No-new-privileges is checked as
  what Docker asked the runtime for (the container's ``no-new-privileges`` security option); the
  capability sets gVisor does show must all be empty, for the agent's process tree (pid 1 and its
  descendants) and for the probe's own ``docker exec``.
- Docker's seccomp profile is not applied inside the sandbox (runsc ignores it unless started with
  ``--oci-seccomp``, which in Debian bookworm's runsc makes thread creation fail: node aborts). The
  syscall filter that protects the host kernel is gVisor's own: the sandbox process on the host (the
  Sentry, ``State.Pid``) must run under a seccomp filter (``Seccomp: 2`` in the host's /proc).
- With ``runsc --network=host`` the sandbox has no ``/proc/sys/net``: IPv6 is read from the container's
  network namespace by a throwaway helper container that shares it (runc, no capabilities, read-only,
  ``nobody``; it sends nothing).

Whether the agent runs under gVisor is Docker's record of the container (``HostConfig.Runtime``), never
something read from inside the agent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ccstack import probes
from ccstack.runtime import RUNC, is_gvisor

CAP_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
NNP_OPTIONS = frozenset({"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"})


def container_runtime(container: str) -> str:
    """The OCI runtime Docker started ``container`` with (``runc`` when it records none)."""
    return str(probes.inspect(container)["HostConfig"].get("Runtime") or RUNC)


def _docker_runtimes() -> dict[str, Any]:
    out = probes.docker("info", "--format", "{{json .Runtimes}}").stdout.strip()
    try:
        data = json.loads(out) if out else {}
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def agent_is_gvisor(container: str) -> bool:
    name = container_runtime(container)
    if name == RUNC:
        return False
    return is_gvisor(name, _docker_runtimes())


def _fields(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if k}


def process_tree(statuses: Mapping[str, Mapping[str, str]], root: str = "1") -> list[str]:
    """``root`` and its descendants among ``statuses`` (pid -> /proc/<pid>/status fields), by PPid."""
    children: dict[str, list[str]] = {}
    for pid, f in statuses.items():
        children.setdefault(f.get("PPid", ""), []).append(pid)
    out, todo = [], [root] if root in statuses else []
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(c for c in children.get(pid, []) if c != pid)
    return sorted(out, key=int)


def privilege_problems(
    tree: Mapping[str, Mapping[str, str]],
    own: Mapping[str, str],
    security_opt: list[str],
    sandbox_host: Mapping[str, str] | None,
) -> list[str]:
    """What is wrong with the agent's process tree (``tree``), the probe's own exec (``own``), the
    container's security options and its sandbox process on the host (``sandbox_host``: the Sentry's
    /proc/<pid>/status there, None when it cannot be read)."""
    problems = []
    if not tree:
        problems.append("cannot read the status of pid 1")
    for label, f in [*((f"pid {pid}", f) for pid, f in tree.items()), ("exec", own)]:
        for cap in CAP_FIELDS:
            if cap in f and int(f[cap], 16) != 0:
                problems.append(f"{label} {cap}={f[cap]}")
        if any(c not in f for c in CAP_FIELDS[:4]):
            problems.append(f"{label}: capability sets not shown")
        if "NoNewPrivs" in f and f["NoNewPrivs"] != "1":
            problems.append(f"{label} NoNewPrivs={f['NoNewPrivs']}")
        if "0" in f.get("Uid", "0").split():
            problems.append(f"{label} runs as uid {f.get('Uid')}")
    if not NNP_OPTIONS & set(security_opt):
        problems.append(f"no-new-privileges not requested from the runtime (security options {security_opt})")
    if sandbox_host is None:
        problems.append(
            "cannot read the gVisor sandbox process's status on this host (run on the Docker host)"
        )
    elif sandbox_host.get("Seccomp") != "2":
        seccomp = sandbox_host.get("Seccomp")
        problems.append(f"the gVisor sandbox process runs without a seccomp filter (Seccomp={seccomp})")
    return problems


def _host_status(pid: int) -> dict[str, str] | None:
    try:
        return _fields(Path(f"/proc/{pid}/status").read_text(encoding="utf-8")) if pid > 0 else None
    except OSError:
        return None


def probe_privileges(sb: probes.Sandbox) -> probes.ProbeResult:
    """probes.probe_privileges under gVisor (see the module doc)."""
    listing, own, ident = probes.exec_ops(
        sb.agent,
        [
            {"op": "run", "argv": ["sh", "-c", "echo /proc/[0-9]*"]},
            {"op": "read", "path": "/proc/self/status"},
            {"op": "identity"},
        ],
    )
    pids = [p.rsplit("/", 1)[1] for p in listing.get("stdout", "").split() if re.fullmatch(r"/proc/\d+", p)]
    reads = probes.exec_ops(sb.agent, [{"op": "read", "path": f"/proc/{pid}/status"} for pid in pids])
    statuses = {pid: _fields(r["text"]) for pid, r in zip(pids, reads, strict=True) if r.get("ok")}
    tree = {pid: statuses[pid] for pid in process_tree(statuses)}
    data = probes.inspect(sb.agent)
    security_opt = list(data["HostConfig"].get("SecurityOpt") or [])
    sandbox_host = _host_status(int(data["State"].get("Pid") or 0))
    problems = privilege_problems(tree, _fields(own.get("text", "")), security_opt, sandbox_host)
    uid = ident.get("uid")
    if sb.expected_uid is not None and uid != sb.expected_uid:
        problems.append(f"exec uid {uid} != expected {sb.expected_uid}")
    seccomp_inside = sorted({f.get("Seccomp", "?") for f in tree.values()})
    detail = "; ".join(problems) or (
        f"gVisor: uid {uid}; agent process tree (pids {', '.join(tree)}) and exec: CapEff 0, CapBnd 0; "
        f"NoNewPrivs (not shown by gVisor) requested from the runtime; the sandbox process on the host "
        f"({(sandbox_host or {}).get('Name')}) Seccomp 2 (gVisor's own filter; "
        f"Seccomp {'/'.join(seccomp_inside)} inside)"
    )
    return probes.ProbeResult("privileges", "privilege", not problems, detail)


def ipv6_verdict(disabled: str, if_inet6: str) -> tuple[bool, list[str]]:
    """(IPv6 off, its addresses other than ::1) from the namespace's sysctl and /proc/net/if_inet6."""
    addrs = [line.split()[0] for line in if_inet6.splitlines() if line.strip()]
    others = [a for a in addrs if a != "00000000000000000000000000000001"]
    return disabled.strip() == "1" and not others, others


def probe_ipv6_off(sb: probes.Sandbox) -> probes.ProbeResult:
    """probes.probe_ipv6_off under gVisor: read in the agent's network namespace by a helper container."""
    image = probes.inspect(sb.agent)["Config"]["Image"]
    script = (
        "cat /proc/sys/net/ipv6/conf/all/disable_ipv6; echo ---; cat /proc/net/if_inet6 2>/dev/null; true"
    )
    r = probes.docker(
        *("run", "--rm", "--runtime", RUNC, "--network", f"container:{sb.agent}", "--user", "65534:65534"),
        *("--cap-drop", "ALL", "--read-only", "--security-opt", "no-new-privileges:true"),
        *("--entrypoint", "sh", image, "-c", script),
        timeout=60,
    )
    disabled, _, if_inet6 = r.stdout.partition("---")
    ok, others = ipv6_verdict(disabled, if_inet6)
    ok = ok and r.returncode == 0
    detail = (
        f"disable_ipv6={disabled.strip() or r.stderr.strip()[:200]}, IPv6 addresses {others} "
        "(read in the agent's network namespace: gVisor shows no /proc/sys/net)"
    )
    return probes.ProbeResult("ipv6-disabled", "network", ok, detail)


def runtime_verdict(
    runtime: str, gvisor: bool, agent_kernel: str, host_kernel: str, expected: str | None
) -> tuple[bool, str]:
    problems = []
    if expected and runtime != expected:
        problems.append(f"runs under {runtime}, expected {expected}")
    if gvisor and (not agent_kernel or agent_kernel == host_kernel):
        problems.append(
            f"gVisor, but the agent sees kernel {agent_kernel or '?'} (the host's is {host_kernel})"
        )
    if gvisor:
        what = "gVisor's user-space kernel answers the agent's syscalls"
    else:
        what = "the host kernel, shared (opt-in: --runtime runsc)"
    detail = (
        f"runtime {runtime}; uname -r in the agent {agent_kernel or '?'}, host {host_kernel or '?'}: {what}"
    )
    return not problems, "; ".join(problems) or detail


def probe_runtime(sb: probes.Sandbox, expected: str | None = None) -> probes.ProbeResult:
    """Which runtime the agent runs under (Docker's record) and which kernel answers it (``uname -r``)."""
    runtime = container_runtime(sb.agent)
    gvisor = runtime != RUNC and is_gvisor(runtime, _docker_runtimes())
    uname = probes.exec_op(sb.agent, {"op": "run", "argv": ["uname", "-r"]})
    host = probes.docker("info", "--format", "{{.KernelVersion}}").stdout.strip()
    ok, detail = runtime_verdict(runtime, gvisor, uname.get("stdout", "").strip(), host, expected)
    return probes.ProbeResult("agent-runtime", "kernel", ok, detail)
