"""`ccstack status` in pool mode: each server of the pool as HAProxy sees it.

HAProxy's runtime API listens on the loopback of its own container (``stats socket`` in the generated
configuration, level ``user``: read-only); ``show stat`` answers CSV, one row per proxy and server. It
is read inside the container (Docker's exec API, bash's /dev/tcp: no extra package, no host route):

    backend: server llama-server    UP    health L7OK 200 for 12:04; 1 active, 37 requests
             server llama-server-2  DOWN  health L4CON for 35 s; 0 active, 12 requests
             2 servers, 1 up: new sessions go to the servers that are up
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from ccstack.pool import BACKEND, STATS_PORT
from ccstack.progress import format_duration

_SHOW_STAT = ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{STATS_PORT} && echo 'show stat' >&3 && cat <&3"]


@dataclass(frozen=True)
class Server:
    """One server of the pool: HAProxy's status and health check, its current and total requests."""

    name: str
    status: str  # UP, DOWN, MAINT, NOLB, "UP 1/2" (going down), "DOWN 1/2" (coming up), no check
    check: str  # e.g. "L7OK 200", "L4CON", "" before the first check
    since_s: int | None  # seconds in this status
    active: int
    requests: int

    @property
    def up(self) -> bool:
        return self.status.startswith("UP")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def parse_stat(text: str) -> list[Server]:
    """The servers of the pool's backend in a ``show stat`` answer (HAProxy 2.x CSV); raises ValueError
    when the answer is not that CSV."""
    head, _, body = text.lstrip().partition("\n")
    if not head.startswith("# pxname,svname,"):
        raise ValueError(f"not HAProxy's `show stat` CSV: {text[:120]!r}")
    rows = csv.DictReader(io.StringIO(head[2:] + "\n" + body))
    servers = []
    for row in rows:
        if row.get("pxname") != BACKEND or row.get("svname") in ("FRONTEND", "BACKEND", None):
            continue
        check = " ".join(p for p in (row.get("check_status", ""), row.get("check_code", "")) if p)
        servers.append(
            Server(
                name=row["svname"],
                status=row.get("status") or "?",
                check=check.replace("* ", "").strip(),  # "* L7OK": a check in progress
                since_s=_int(row.get("lastchg")),
                active=_int(row.get("scur")) or 0,
                requests=_int(row.get("stot")) or 0,
            )
        )
    return servers


def server_line(server: Server, width: int) -> str:
    health = f"health {server.check}" if server.check else "not checked yet"
    if server.since_s is not None:
        health += f" for {format_duration(server.since_s)}"
    return (
        f"server {server.name:<{width}}  {server.status:<5} {health}; "
        f"{server.active} active, {server.requests} requests"
    )


def pool_lines(servers: list[Server]) -> list[str]:
    """What `status` prints under "backend" for a pool: a line per server, then the count that is up."""
    if not servers:
        return ["HAProxy lists no server in the pool"]
    width = max(len(s.name) for s in servers)
    lines = [server_line(s, width) for s in servers]
    up = sum(s.up for s in servers)
    count = f"{len(servers)} server{'s' if len(servers) != 1 else ''}"
    if up == len(servers):
        lines.append(f"{count}, all up")
    elif up:
        lines.append(f"{count}, {up} up: sessions of the others move to them")
    else:
        lines.append(f"{count}, none up: `ccstack logs haproxy` says why")
    return lines


def read_servers(project: str) -> list[Server] | None:
    """The servers of a running pool as HAProxy sees them (None without a haproxy container); raises
    ValueError when HAProxy's answer cannot be read."""
    import docker

    client = docker.from_env()
    labels = [f"com.docker.compose.project={project}", "com.docker.compose.service=haproxy"]
    found: list[Any] = client.containers.list(filters={"label": labels})
    if not found:
        return None
    result: Any = found[0].exec_run(_SHOW_STAT)
    return parse_stat(result.output.decode("utf-8", "replace"))


def read(project: str) -> list[str]:
    """The backend lines of a running pool ([] without a haproxy container)."""
    try:
        servers = read_servers(project)
    except ValueError as e:
        return [f"cannot read HAProxy's server states: {str(e)[:200]}"]
    return [] if servers is None else pool_lines(servers)
