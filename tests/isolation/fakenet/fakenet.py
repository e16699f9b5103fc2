"""The fake internet of the isolation suite (stdlib only; runs in a container or on the host).

    python fakenet.py canary   --log FILE [--tcp PORT ...] [--udp PORT ...]
    python fakenet.py dns      --log FILE --record SUFFIX=IP ... [--port 53]
    python fakenet.py registry --log FILE [--http-port 80] [--https-port 443 --cert C --key K]

canary     records every TCP connection (peer, port, the first bytes received) and every UDP datagram on
           the given ports, on IPv4 and IPv6 (``--bind ::`` alone: dual-stack sockets; ``--bind 0.0.0.0
           --bind ::``: one socket per family, like a host service listening on both). A connection
           that looks like HTTP gets a ``200 canary`` answer.
dns        an authoritative-only DNS server (UDP and TCP): ``--record canary.test=198.18.0.10``
           answers ``canary.test`` and every name under it with that A record (AAAA when the
           address is IPv6); every other name gets NXDOMAIN. It never recurses. Every query is logged.
registry   a tiny PyPI "simple" index (``/simple/``, ``/simple/<name>/``) over HTTP and, with a
           certificate, HTTPS. Every request is logged.

Every event is one JSON line in the log file (``{"kind": ..., "peer": ..., "data": ...}``), flushed
at once, so a test reads the file (``docker exec ... cat``) to see whether a probe's nonce arrived.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_LOCK = threading.Lock()
_LOG_PATH = "/dev/stdout"


def log_event(kind: str, peer: object, **fields: Any) -> None:
    entry = {"time": time.time(), "kind": kind, "peer": str(peer), **fields}
    line = json.dumps(entry, sort_keys=True)
    with _LOCK, open(_LOG_PATH, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def _text(data: bytes) -> str:
    return data.decode("latin-1")


# --- canary -------------------------------------------------------------------------------------------


def _listen_tcp(host: str, port: int, v6only: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
    s.bind((host, port))
    s.listen(64)
    return s


def _listen_udp(host: str, port: int, v6only: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
    s.bind((host, port))
    return s


def _serve_tcp_conn(conn: socket.socket, peer: object, port: int) -> None:
    conn.settimeout(3)
    data = b""
    with contextlib.suppress(OSError):
        while len(data) < 8192:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
            if b"\n" in data or data[:1] == b"\x16":  # a line (or HTTP head) or a TLS ClientHello
                break
    log_event("tcp", peer, port=port, data=_text(data))
    with contextlib.suppress(OSError):
        if data[:1].isalpha():
            body = b"canary\n"
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n%s" % (len(body), body)
            )
    conn.close()


def _accept_loop(s: socket.socket, port: int) -> None:
    while True:
        conn, peer = s.accept()
        threading.Thread(target=_serve_tcp_conn, args=(conn, peer, port), daemon=True).start()


def _udp_loop(s: socket.socket, port: int) -> None:
    while True:
        data, peer = s.recvfrom(65535)
        log_event("udp", peer, port=port, data=_text(data))
        with contextlib.suppress(OSError):
            s.sendto(b"canary " + data[:64], peer)


def run_canary(binds: Sequence[str], tcp_ports: Sequence[int], udp_ports: Sequence[int]) -> None:
    threads = []
    v6only = len(binds) > 1  # '::' alone is dual-stack; beside '0.0.0.0' it is IPv6 only
    for host in binds:
        for port in tcp_ports:
            sock = _listen_tcp(host, port, v6only)
            threads.append(threading.Thread(target=_accept_loop, args=(sock, port)))
        for port in udp_ports:
            sock = _listen_udp(host, port, v6only)
            threads.append(threading.Thread(target=_udp_loop, args=(sock, port)))
    for t in threads:
        t.daemon = True
        t.start()
    log_event("ready", "-", binds=list(binds), tcp=list(tcp_ports), udp=list(udp_ports))
    while True:
        time.sleep(3600)


# --- DNS ----------------------------------------------------------------------------------------------

QTYPES = {1: "A", 28: "AAAA", 5: "CNAME", 15: "MX", 16: "TXT", 33: "SRV", 255: "ANY", 65: "HTTPS"}


def parse_query(packet: bytes) -> tuple[int, int, str, int, int]:
    """(id, flags, qname, qtype, end offset of the question) of a DNS query; raises ValueError."""
    if len(packet) < 12:
        raise ValueError("short packet")
    qid, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount < 1:
        raise ValueError("no question")
    labels, i = [], 12
    while True:
        if i >= len(packet):
            raise ValueError("truncated name")
        n = packet[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0:
            raise ValueError("compressed name in question")
        labels.append(packet[i : i + n].decode("ascii", "replace"))
        i += n
    qtype, _qclass = struct.unpack("!HH", packet[i : i + 4])
    return qid, flags, ".".join(labels).lower(), qtype, i + 4


def answer_query(packet: bytes, records: dict[str, list[str]]) -> tuple[bytes, str, str]:
    """The response to one query packet, the qname and the qtype name (longest matching suffix wins)."""
    qid, flags, qname, qtype, end = parse_query(packet)
    addresses: list[str] | None = None
    for suffix in sorted(records, key=len, reverse=True):
        if qname == suffix or qname.endswith("." + suffix):
            addresses = records[suffix]
            break
    rd = flags & 0x0100
    answers: list[bytes] = []
    rcode = 3  # NXDOMAIN
    if addresses is not None:
        rcode = 0
        for address in addresses:
            is_v6 = ":" in address
            if (qtype == 1 and not is_v6) or (qtype == 28 and is_v6):
                rdata = socket.inet_pton(socket.AF_INET6 if is_v6 else socket.AF_INET, address)
                answers.append(b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 5, len(rdata)) + rdata)
    header = struct.pack("!HHHHHH", qid, 0x8400 | rd | rcode, 1, len(answers), 0, 0)
    return header + packet[12:end] + b"".join(answers), qname, QTYPES.get(qtype, str(qtype))


class _DnsUdp(socketserver.BaseRequestHandler):
    records: dict[str, list[str]] = {}

    def handle(self) -> None:
        data, sock = self.request
        try:
            reply, qname, qtype = answer_query(data, self.records)
        except (ValueError, struct.error) as e:
            log_event("dns-bad", self.client_address, proto="udp", error=str(e))
            return
        log_event("dns", self.client_address, proto="udp", name=qname, qtype=qtype)
        sock.sendto(reply, self.client_address)


class _DnsTcp(socketserver.BaseRequestHandler):
    records: dict[str, list[str]] = {}

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(5)
        with contextlib.suppress(OSError, ValueError, struct.error):
            head = conn.recv(2)
            (length,) = struct.unpack("!H", head)
            data = b""
            while len(data) < length:
                chunk = conn.recv(length - len(data))
                if not chunk:
                    break
                data += chunk
            reply, qname, qtype = answer_query(data, self.records)
            log_event("dns", self.client_address, proto="tcp", name=qname, qtype=qtype)
            conn.sendall(struct.pack("!H", len(reply)) + reply)


class _V6UdpServer(socketserver.ThreadingUDPServer):
    address_family = socket.AF_INET6
    allow_reuse_address = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class _V6TcpServer(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class _V4UdpServer(socketserver.ThreadingUDPServer):
    allow_reuse_address = True


class _V4TcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def run_dns(records: dict[str, list[str]], port: int, bind: str = "::") -> None:
    _DnsUdp.records = records
    _DnsTcp.records = records
    udp: socketserver.ThreadingUDPServer
    tcp: socketserver.ThreadingTCPServer
    if ":" in bind:
        udp, tcp = _V6UdpServer((bind, port), _DnsUdp), _V6TcpServer((bind, port), _DnsTcp)
    else:
        udp, tcp = _V4UdpServer((bind, port), _DnsUdp), _V4TcpServer((bind, port), _DnsTcp)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    log_event("ready", "-", records=records, port=port)
    udp.serve_forever()


# --- registry -----------------------------------------------------------------------------------------

PACKAGE = "canary-pkg"


class _Registry(BaseHTTPRequestHandler):
    server_version = "fake-registry/1"

    def do_GET(self) -> None:
        host = self.headers.get("Host", "")
        log_event("http", self.client_address, method="GET", path=self.path, host=host)
        path = self.path.split("?", 1)[0]
        if path in ("/simple", "/simple/"):
            body = f'<html><body><a href="/simple/{PACKAGE}/">{PACKAGE}</a></body></html>\n'
        elif path.startswith("/simple/"):
            name = path.strip("/").split("/")[1]
            body = f'<html><body><a href="/files/{name}-1.0.tar.gz">{name}-1.0.tar.gz</a></body></html>\n'
        elif path == "/health":
            body = "ok\n"
        else:
            body = f"fake registry: {path}\n"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _V6HttpServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def run_registry(http_port: int, https_port: int | None, cert: str | None, key: str | None) -> None:
    servers = [_V6HttpServer(("::", http_port), _Registry)]
    if https_port is not None:
        if not (cert and key):
            raise SystemExit("--https-port needs --cert and --key")
        tls = _V6HttpServer(("::", https_port), _Registry)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
        servers.append(tls)
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    log_event("ready", "-", http=http_port, https=https_port)
    servers[0].serve_forever()


# --- entry point --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    global _LOG_PATH
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    canary = sub.add_parser("canary")
    canary.add_argument("--bind", action="append", default=[], help="address to bind (default '::')")
    canary.add_argument("--tcp", type=int, action="append", default=[])
    canary.add_argument("--udp", type=int, action="append", default=[])
    dns = sub.add_parser("dns")
    dns.add_argument("--record", action="append", default=[], help="SUFFIX=IP (repeatable)")
    dns.add_argument("--port", type=int, default=53)
    dns.add_argument("--bind", default="::", help="address to listen on (default '::', dual-stack)")
    registry = sub.add_parser("registry")
    registry.add_argument("--http-port", type=int, default=80)
    registry.add_argument("--https-port", type=int)
    registry.add_argument("--cert")
    registry.add_argument("--key")
    for p in (canary, dns, registry):
        p.add_argument("--log", default="/dev/stdout")
    args = parser.parse_args(argv)
    _LOG_PATH = args.log
    if args.cmd == "canary":
        run_canary(args.bind or ["::"], args.tcp, args.udp)
    elif args.cmd == "dns":
        records: dict[str, list[str]] = {}
        for record in args.record:
            suffix, address = record.lower().split("=", 1)
            records.setdefault(suffix, []).append(address)
        run_dns(records, args.port, args.bind)
    else:
        run_registry(args.http_port, args.https_port, args.cert, args.key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
