// Prints the backend's context window (tokens per slot) as reported by the proxy's GET /health
// (`backend.n_ctx`; llama-server reports it), or nothing. Used by entrypoint.sh so that Claude Code's
// auto-compaction fires before the backend overflows. Never fails the container start.
"use strict";
const url = process.argv[2];
const controller = new AbortController();
const timer = setTimeout(() => controller.abort(), 3000);
fetch(url, { signal: controller.signal })
  .then((r) => r.json())
  .then((body) => {
    const n = body && body.backend && body.backend.n_ctx;
    if (Number.isInteger(n) && n > 0) process.stdout.write(String(n));
  })
  .catch(() => {})
  .finally(() => clearTimeout(timer));
