"""Filesystem probes: the root filesystem and the protected workdir paths read-only, the workdir writable
and owned by the user, no host mount beyond the workdir and its declared extras, no Docker socket or
SSH agent."""

from __future__ import annotations

import re

from ccstack.probes.containers import Op, exec_op, exec_ops
from ccstack.probes.results import ProbeResult, new_nonce, verdict
from ccstack.probes.targets import Sandbox


def probe_writes(sb: Sandbox) -> list[ProbeResult]:
    """Writes to the root filesystem and the protected workdir paths refused; the workdir writable."""
    nonce = new_nonce()
    rootfs = ["/" + nonce, f"/usr/local/bin/{nonce}", f"/etc/{nonce}", f"/opt/{nonce}"]
    ops: list[Op] = [{"op": "write", "path": p, "cleanup": True} for p in rootfs]
    protected_ops: list[Op] = []
    for rel in sb.protected:
        full = f"{sb.workdir}/{rel.rstrip('/')}"
        if not rel.endswith("/"):
            protected_ops.append({"op": "write", "path": full, "mode": "append", "content": f"\n# {nonce}\n"})
            protected_ops.append({"op": "stat", "path": full})
        else:
            protected_ops.append({"op": "write", "path": f"{full}/{nonce}", "cleanup": True})
            protected_ops.append({"op": "stat", "path": full})
    work = {"op": "write", "path": f"{sb.workdir}/{nonce}.txt", "content": nonce}
    res = exec_ops(sb.agent, [*ops, *protected_ops, work])
    out = []
    written = [p for p, r in zip(rootfs, res, strict=False) if r.get("ok")]
    out.append(
        verdict(
            "write-rootfs",
            "files",
            not written,
            ", ".join(f"{p}: {r.get('error') or 'WRITTEN'}" for p, r in zip(rootfs, res, strict=False)),
        )
    )
    pres = res[len(rootfs) : len(rootfs) + len(protected_ops)]
    details, bad = [], []
    for i, rel in enumerate(sb.protected):
        wr, st = pres[2 * i], pres[2 * i + 1]
        if wr.get("ok"):
            bad.append(rel)
        state = "exists" if st.get("exists") else "MISSING"
        details.append(f"{rel} ({state}): {wr.get('error') or 'WRITTEN'}")
        if not st.get("exists"):
            bad.append(rel + " (missing: a later host-side creation would not be protected)")
    out.append(verdict("write-protected-paths", "files", not bad, "; ".join(details)))
    wres = res[-1]
    uid_ok = wres.get("ok") and (sb.expected_uid is None or wres.get("uid") == sb.expected_uid)
    detail = f"write {wres.get('error') or 'ok'}, uid {wres.get('uid')} (expected {sb.expected_uid})"
    if sb.host_workdir is not None and wres.get("ok"):
        host_file = sb.host_workdir / f"{nonce}.txt"
        try:
            st = host_file.stat()
            detail += f", on the host uid {st.st_uid} content ok {host_file.read_text() == nonce}"
            uid_ok = uid_ok and (sb.expected_uid is None or st.st_uid == sb.expected_uid)
            uid_ok = uid_ok and host_file.read_text() == nonce
            host_file.unlink()
        except OSError as e:
            uid_ok = False
            detail += f", not seen on the host ({e})"
    elif wres.get("ok"):
        exec_op(sb.agent, {"op": "run", "argv": ["rm", "-f", f"{sb.workdir}/{nonce}.txt"]})
    out.append(verdict("write-workdir-owned-by-user", "files", bool(uid_ok), detail))
    return out


STANDARD_MOUNTS = (
    "/",
    "/proc",
    "/dev",
    "/dev/pts",
    "/dev/mqueue",
    "/dev/shm",
    "/sys",
    "/sys/fs/cgroup",
    "/sys/firmware",
    "/etc/resolv.conf",
    "/etc/hostname",
    "/etc/hosts",
    "/dev/console",
    "/usr/sbin/docker-init",  # the engine's tini (compose `init: true`), read-only
)
SENSITIVE_MOUNT = re.compile(r"docker\.sock|/\.ssh|\.aws|\.config/gcloud|\.claude\.json$|\.gnupg")
STANDARD_PREFIXES = ("/proc/", "/sys/fs/cgroup/", "/dev/")
# Filesystems that carry nothing of the host (scratch space, kernel views).
VIRTUAL_FS = frozenset({"tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"})


def parse_mountinfo(text: str) -> list[tuple[str, str, str, str]]:
    """(mount point, options, fstype, source) per line of /proc/<pid>/mountinfo."""
    out = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 6 or len(rest) < 2:
            continue
        out.append((fields[4], fields[5], rest[0], rest[1]))
    return out


def probe_mounts(sb: Sandbox) -> ProbeResult:
    """/proc/self/mountinfo: host files only at the workdir, its read-only overlays and declared extras."""
    res = exec_op(sb.agent, {"op": "read", "path": "/proc/self/mountinfo"})
    if not res.get("ok"):
        return verdict("mounts", "files", False, f"cannot read mountinfo: {res.get('error')}")
    protected = {f"{sb.workdir}/{p.rstrip('/')}" for p in sb.protected}
    allowed = set(STANDARD_MOUNTS) | {sb.workdir} | protected | set(sb.extra_mounts)
    problems, scratch, host_mounts = [], [], []
    mounts = parse_mountinfo(res["text"])
    for mount_point, options, fstype, _source in mounts:
        ro = "ro" in options.split(",")
        if mount_point in protected and not ro:
            problems.append(f"{mount_point} is writable")
        sensitive = re.search(
            r"docker\.sock|/\.ssh|\.aws|\.config/gcloud|\.claude\.json$|\.gnupg", mount_point
        )
        # The workdir's own copies (a read-only guard over /workspace/.claude.json) are not host secrets.
        if sensitive and not (mount_point in protected and ro):
            problems.append(f"sensitive mount {mount_point}")
        if mount_point in STANDARD_MOUNTS or mount_point.startswith(STANDARD_PREFIXES):
            continue
        if fstype in VIRTUAL_FS:
            scratch.append(f"{mount_point} ({fstype})")
            continue
        host_mounts.append(mount_point)
        if mount_point not in allowed:
            problems.append(f"unexpected host mount {mount_point} ({fstype}{', ro' if ro else ', rw'})")
    detail = "; ".join(problems) or (
        f"{len(mounts)} mounts; host mounts {sorted(host_mounts)}; scratch {scratch or 'none'}"
    )
    return verdict("mounts", "files", not problems, detail)


def probe_sockets_and_agent_env(sb: Sandbox) -> ProbeResult:
    """No docker socket (any unix socket on the filesystem), no SSH_AUTH_SOCK / DOCKER_HOST anywhere."""
    socks, env = exec_ops(
        sb.agent,
        [{"op": "sockets"}, {"op": "search", "needles": ["SSH_AUTH_SOCK=", "DOCKER_HOST="], "roots": []}],
    )
    fs_socks = socks.get("filesystem", [])
    problems = [f"socket {s}" for s in fs_socks]
    problems += [f"docker socket listed by the kernel: {s}" for s in socks.get("kernel", []) if "docker" in s]
    problems += [f"ssh/docker env in {m}" for m in env.get("matches", [])]
    procs = env.get("processes")
    detail = (
        "; ".join(problems)
        or f"no sockets on the filesystem; SSH_AUTH_SOCK/DOCKER_HOST in none of {procs} processes"
    )
    return verdict("docker-socket-ssh-agent", "files", not problems, detail)
