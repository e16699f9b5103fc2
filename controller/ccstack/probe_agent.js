// The probe runner that ccstack.probes pipes into a container: `docker exec -i C node - '<ops json>'`.
// Node stdlib only (the sandbox image has node; nothing is installed or written into the container).
// Runs each operation in order and prints one JSON array of results on stdout. Every operation is
// time-bounded and never throws: failures are results ({"error": "..."}).
"use strict";
const net = require("net");
const dgram = require("dgram");
const dns = require("dns");
const fs = require("fs");
const path = require("path");
const tls = require("tls");
const cp = require("child_process");

const MAX_READ = 65536;

function withTimeout(promise, ms, onTimeout) {
  let timer;
  const t = new Promise((resolve) => { timer = setTimeout(() => resolve(onTimeout()), ms); });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// TCP: connect, optionally send, read until close/limit/timeout.
function tcp(op) {
  const timeout = op.timeout_ms || 3000;
  return new Promise((resolve) => {
    const res = { connected: false, received: "" };
    let sock;
    let done = false;
    const finish = (extra) => {
      if (done) return;
      done = true;
      Object.assign(res, extra || {});
      try { sock.destroy(); } catch (e) { /* ignore */ }
      resolve(res);
    };
    try {
      sock = net.connect({ host: op.host, port: op.port, family: op.family || 0 });
    } catch (e) {
      return resolve({ connected: false, error: String(e.message || e) });
    }
    sock.setTimeout(timeout, () => finish({ error: res.connected ? undefined : "timeout", timed_out: true }));
    sock.on("connect", () => {
      res.connected = true;
      if (op.send) sock.write(Buffer.from(op.send, "latin1"));
    });
    sock.on("data", (d) => {
      res.received += d.toString("latin1");
      if (res.received.length > MAX_READ) finish();
    });
    sock.on("end", () => finish());
    sock.on("close", () => finish());
    sock.on("error", (e) => finish({ error: e.code || String(e.message || e) }));
  });
}

// UDP: send one datagram, wait briefly for an answer.
function udp(op) {
  const family = op.host.includes(":") ? "udp6" : "udp4";
  return new Promise((resolve) => {
    const res = { sent: false, received: "" };
    let sock;
    try { sock = dgram.createSocket(family); } catch (e) { return resolve({ sent: false, error: String(e.message || e) }); }
    let done = false;
    const finish = (extra) => {
      if (done) return;
      done = true;
      Object.assign(res, extra || {});
      try { sock.close(); } catch (e) { /* ignore */ }
      resolve(res);
    };
    sock.on("error", (e) => finish({ error: e.code || String(e.message || e) }));
    sock.on("message", (m) => finish({ received: m.toString("latin1") }));
    sock.send(Buffer.from(op.send || "", "latin1"), op.port, op.host, (err) => {
      if (err) return finish({ error: err.code || String(err.message || err) });
      res.sent = true;
      setTimeout(() => finish(), op.wait_ms || 1000);
    });
  });
}

// DNS: getaddrinfo (the libc path, /etc/resolv.conf + /etc/hosts) and a direct c-ares query.
async function dnsLookup(op) {
  const lookup = withTimeout(
    new Promise((resolve) => dns.lookup(op.name, { all: true }, (err, addrs) =>
      resolve(err ? { error: err.code } : { addresses: addrs.map((a) => a.address) }))),
    op.timeout_ms || 5000, () => ({ error: "timeout" }));
  const query = withTimeout(
    new Promise((resolve) => {
      const r = new dns.Resolver({ timeout: 2000, tries: 1 });
      if (op.server) r.setServers([op.server]);
      r.resolve4(op.name, (err, addrs) => resolve(err ? { error: err.code } : { addresses: addrs }));
    }),
    op.timeout_ms || 5000, () => ({ error: "timeout" }));
  const [a, b] = await Promise.all([lookup, query]);
  const addresses = [...new Set([...(a.addresses || []), ...(b.addresses || [])])];
  return { addresses, lookup: a, resolve4: b };
}

// HTTP CONNECT through a forward proxy, then optionally TLS + a GET through the tunnel.
function connectVia(op) {
  const timeout = op.timeout_ms || 8000;
  return new Promise((resolve) => {
    const res = { connected: false, status_line: "", response: "" };
    let done = false;
    let sock;
    const finish = (extra) => {
      if (done) return;
      done = true;
      Object.assign(res, extra || {});
      try { sock.destroy(); } catch (e) { /* ignore */ }
      resolve(res);
    };
    setTimeout(() => finish({ timed_out: true }), timeout);
    sock = net.connect({ host: op.proxy_host, port: op.proxy_port });
    let head = "";
    const onData = (d) => {
      head += d.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      sock.removeListener("data", onData);
      res.status_line = head.split("\r\n")[0];
      res.status = parseInt(res.status_line.split(" ")[1], 10) || 0;
      if (res.status !== 200 || !op.tls_get) return finish();
      const host = op.target.replace(/:\d+$/, "");
      const t = tls.connect({ socket: sock, servername: host, rejectUnauthorized: false }, () => {
        res.tls = true;
        t.write(`GET ${op.tls_get} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      });
      t.on("data", (x) => { res.response += x.toString("latin1"); });
      t.on("end", () => finish());
      t.on("error", (e) => finish({ tls_error: e.code || String(e.message || e) }));
    };
    sock.on("connect", () => {
      res.connected = true;
      sock.write(op.raw || `CONNECT ${op.target} HTTP/1.1\r\nHost: ${op.target}\r\n\r\n`);
    });
    sock.on("data", onData);
    sock.on("error", (e) => finish({ error: e.code || String(e.message || e) }));
    sock.on("close", () => finish());
  });
}

function writeFile(op) {
  try {
    if (op.mode === "append") fs.appendFileSync(op.path, op.content || "probe\n");
    else if (op.mode === "mkdir") fs.mkdirSync(op.path);
    else fs.writeFileSync(op.path, op.content || "probe\n", { flag: "wx" });
    const st = fs.statSync(op.path);
    const res = { ok: true, uid: st.uid, gid: st.gid };
    if (op.cleanup) {
      try { if (op.mode === "mkdir") fs.rmdirSync(op.path); else if (op.mode !== "append") fs.unlinkSync(op.path); } catch (e) { res.cleanup_error = e.code; }
    }
    return res;
  } catch (e) {
    return { ok: false, error: e.code || String(e.message || e) };
  }
}

function readFile(op) {
  try {
    const buf = fs.readFileSync(op.path);
    return { ok: true, text: buf.subarray(0, op.limit || 262144).toString("utf8") };
  } catch (e) {
    return { ok: false, error: e.code || String(e.message || e) };
  }
}

function statPath(op) {
  try {
    const st = fs.lstatSync(op.path);
    return { exists: true, uid: st.uid, gid: st.gid, mode: st.mode,
      type: st.isSocket() ? "socket" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "other" };
  } catch (e) {
    return { exists: false, error: e.code };
  }
}

// Does `file` contain `needle`? Streams the file in chunks (binaries of hundreds of MB included).
function fileContains(file, needle) {
  let fd;
  try { fd = fs.openSync(file, "r"); } catch (e) { return null; }
  try {
    const size = 1 << 20;
    const buf = Buffer.alloc(size + needle.length);
    let carry = 0;
    for (;;) {
      let n;
      try { n = fs.readSync(fd, buf, carry, size, null); } catch (e) { return null; }
      if (n <= 0) return false;
      const view = buf.subarray(0, carry + n);
      if (view.indexOf(needle) >= 0) return true;
      carry = Math.min(needle.length - 1, view.length);
      view.copy(buf, 0, view.length - carry);
    }
  } finally {
    fs.closeSync(fd);
  }
}

// Every readable file under the roots (not following symlinks, staying out of /proc, /sys, /dev),
// plus every /proc/<pid>/environ and cmdline: the paths that contain the needle.
function search(op) {
  const needles = (op.needles || [op.needle]).map((n) => Buffer.from(n, "utf8"));
  const skip = new Set(op.skip || ["/proc", "/sys", "/dev"]);
  const res = { matches: [], files_scanned: 0, unreadable: 0, bytes_scanned: 0 };
  const check = (file) => {
    for (const needle of needles) {
      const hit = fileContains(file, needle);
      if (hit === null) { res.unreadable += 1; return; }
      if (hit) { res.matches.push(file); return; }
    }
    res.files_scanned += 1;
  };
  const walk = (dir) => {
    let entries;
    try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch (e) { res.unreadable += 1; return; }
    for (const ent of entries) {
      const full = path.join(dir, ent.name);
      if (skip.has(full)) continue;
      if (ent.isDirectory()) walk(full);
      else if (ent.isFile()) {
        try { res.bytes_scanned += fs.statSync(full).size; } catch (e) { /* ignore */ }
        check(full);
      }
    }
  };
  for (const root of op.roots || ["/"]) walk(root);
  let pids = [];
  try { pids = fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)); } catch (e) { /* ignore */ }
  res.processes = pids.length;
  const self = String(process.pid);  // our own argv holds the needles
  for (const pid of pids) {
    if (pid === self) continue;
    for (const f of ["environ", "cmdline"]) check(`/proc/${pid}/${f}`);
  }
  return res;
}

// Unix sockets anywhere on the filesystem, and the ones the kernel lists.
function sockets() {
  const found = [];
  const skip = new Set(["/proc", "/sys"]);
  const walk = (dir, depth) => {
    if (depth > 12) return;
    let entries;
    try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch (e) { return; }
    for (const ent of entries) {
      const full = path.join(dir, ent.name);
      if (skip.has(full)) continue;
      if (ent.isSocket()) found.push(full);
      else if (ent.isDirectory()) walk(full, depth + 1);
    }
  };
  walk("/", 0);
  let kernel = "";
  try { kernel = fs.readFileSync("/proc/net/unix", "utf8"); } catch (e) { /* ignore */ }
  const listed = kernel.split("\n").slice(1).map((l) => l.trim().split(/\s+/)[7]).filter(Boolean);
  return { filesystem: found, kernel: listed };
}

function run(op) {
  const r = cp.spawnSync(op.argv[0], op.argv.slice(1), {
    timeout: op.timeout_ms || 5000, encoding: "utf8", input: op.input || "",
  });
  return { status: r.status, signal: r.signal, stdout: (r.stdout || "").slice(0, 4096),
    stderr: (r.stderr || "").slice(0, 4096), error: r.error ? (r.error.code || String(r.error)) : undefined };
}

function identity() {
  return { uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(), env: process.env };
}

// Several operations at once (results in order).
function all(op) {
  return Promise.all(op.ops.map((o) => runOne(o)));
}

async function runOne(op) {
  const fn = OPS[op.op];
  if (!fn) return { error: `unknown op ${op.op}` };
  try { return await fn(op); } catch (e) { return { error: String((e && e.stack) || e) }; }
}

const OPS = {
  tcp, udp, dns: dnsLookup, connect: connectVia, write: writeFile, read: readFile, stat: statPath,
  search, sockets, run, identity, all,
};

(async () => {
  const ops = JSON.parse(process.argv[2] || "[]");
  const out = [];
  for (const op of ops) out.push(await runOne(op));
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
})();
