"""Privilege probes: no capabilities, no new privileges, a seccomp filter, not root, no sudo/su/setuid
way up (under gVisor, whose /proc shows these differently, ``ccstack.gvisor_probes`` answers)."""

from __future__ import annotations

from ccstack.probes.containers import exec_ops
from ccstack.probes.results import ProbeResult, verdict
from ccstack.probes.targets import Sandbox, under_gvisor


def status_fields(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if k}


def probe_privileges(sb: Sandbox) -> ProbeResult:
    """/proc/self/status and /proc/1/status: no capabilities, no new privileges, seccomp filter, not root."""
    if under_gvisor(sb):
        from ccstack import gvisor_probes  # gVisor's /proc shows these differently

        return gvisor_probes.probe_privileges(sb)
    own, pid1, ident = exec_ops(
        sb.agent,
        [
            {"op": "read", "path": "/proc/self/status"},
            {"op": "read", "path": "/proc/1/status"},
            {"op": "identity"},
        ],
    )
    problems = []
    for label, res in (("exec", own), ("pid1", pid1)):
        if not res.get("ok"):
            problems.append(f"{label}: cannot read status ({res.get('error')})")
            continue
        f = status_fields(res["text"])
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            if int(f.get(cap, "1"), 16) != 0:
                problems.append(f"{label} {cap}={f.get(cap)}")
        if f.get("NoNewPrivs") != "1":
            problems.append(f"{label} NoNewPrivs={f.get('NoNewPrivs')}")
        if f.get("Seccomp") != "2":
            problems.append(f"{label} Seccomp={f.get('Seccomp')}")
        uids = f.get("Uid", "0").split()
        if "0" in uids:
            problems.append(f"{label} runs as uid {uids}")
    uid = ident.get("uid")
    if sb.expected_uid is not None and uid != sb.expected_uid:
        problems.append(f"exec uid {uid} != expected {sb.expected_uid}")
    detail = "; ".join(problems) or f"uid {uid}, CapEff 0, CapBnd 0, NoNewPrivs 1, Seccomp 2 (exec and pid 1)"
    return verdict("privileges", "privilege", not problems, detail)


def probe_no_escalation(sb: Sandbox) -> ProbeResult:
    """sudo / su / setuid binaries: absent or failing."""
    runs = exec_ops(
        sb.agent,
        [
            {"op": "run", "argv": ["sudo", "-n", "id", "-u"]},
            {"op": "run", "argv": ["su", "-c", "id -u", "root"], "input": "\n"},
            {"op": "run", "argv": ["sh", "-c", "find / -xdev -perm -4000 -type f 2>/dev/null | head -20"]},
        ],
    )
    sudo, su, suid = runs
    escalated = [r for r in (sudo, su) if r.get("status") == 0 and r.get("stdout", "").strip() == "0"]
    suid_list = suid.get("stdout", "").split()
    detail = (
        f"sudo: {sudo.get('error') or 'exit ' + str(sudo.get('status'))}; "
        f"su: {su.get('error') or 'exit ' + str(su.get('status'))}; setuid files: {suid_list or 'none'}"
    )
    return verdict("sudo-su", "privilege", not escalated, detail)
