// Claude Code's status line in the sandbox (managed-settings.json `statusLine`): the figures of the
// current session from the proxy, `GET $ANTHROPIC_BASE_URL/ccproxy/sessions/<session_id>` with the
// sandbox's proxy token (the proxy answers the session's own client address only):
//
//   ctx 12,345/32,768 (38%) | cache 97% | 23.4 tok/s | session 120k/1.0M tok | today $0.12/$5.00
//
// context used = the last turn's whole prompt vs the backend's real window (llama-server n_ctx; else
// the window Claude Code assumes, marked `~`); cache = the share of that prompt read from the cache;
// tok/s = the last turn's generation speed; then spend vs each budget the proxy enforces (or the cost,
// when known and no budget is set). Claude Code passes the session on stdin (`session_id`) and shows the
// first line printed. Never fails: on any problem it prints a short reason instead.
"use strict";

const TIMEOUT_MS = 1500;

function tokens(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${Math.round(n / 1e3)}k`;
  return n.toLocaleString("en-US");
}

function usd(x) {
  return `$${x.toFixed(x < 1 ? 4 : 2)}`;
}

function percent(share) {
  return `${Math.round(share * 100)}%`;
}

// The status line for the proxy's view of the session (`view`, or null before its first turn) and
// what Claude Code passed on stdin (`input`).
function statusLine(view, input) {
  const fallback = input && input.context_window && input.context_window.context_window_size;
  const window = view && view.window ? view.window : fallback;
  const mark = view && view.window ? "" : "~";
  const last = view && view.last_turn;
  const parts = [];
  if (last) {
    const used = last.prompt_tokens.toLocaleString("en-US");
    if (window) {
      const share = percent(last.prompt_tokens / window);
      parts.push(`ctx ${used}/${mark}${window.toLocaleString("en-US")} (${share})`);
    } else {
      parts.push(`ctx ${used}`);
    }
    parts.push(last.cache_share === null ? "cache -" : `cache ${percent(last.cache_share)}`);
    parts.push(last.tokens_per_second === null ? "- tok/s" : `${last.tokens_per_second.toFixed(1)} tok/s`);
  } else {
    parts.push(window ? `ctx -/${mark}${window.toLocaleString("en-US")}` : "ctx -");
    parts.push("no turn yet");
  }
  if (view) {
    const b = view.budget || {};
    const s = view.spend || { session: {}, day: {} };
    const lower = (spend) => (spend.unpriced_calls ? ">=" : "");
    if (b.session_tokens) parts.push(`session ${tokens(s.session.tokens)}/${tokens(b.session_tokens)} tok`);
    if (b.session_usd) parts.push(`session ${lower(s.session)}${usd(s.session.usd)}/${usd(b.session_usd)}`);
    if (b.day_tokens) parts.push(`today ${tokens(s.day.tokens)}/${tokens(b.day_tokens)} tok`);
    if (b.day_usd) parts.push(`today ${lower(s.day)}${usd(s.day.usd)}/${usd(b.day_usd)}`);
    const budgeted = b.session_tokens || b.session_usd || b.day_tokens || b.day_usd;
    if (!budgeted && s.session && s.session.usd > 0) parts.push(`${lower(s.session)}${usd(s.session.usd)}`);
  }
  return parts.join(" | ");
}

async function fetchView(base, sessionId, env) {
  const headers = {};
  if (env.ANTHROPIC_AUTH_TOKEN) headers.authorization = `Bearer ${env.ANTHROPIC_AUTH_TOKEN}`;
  else if (env.ANTHROPIC_API_KEY) headers["x-api-key"] = env.ANTHROPIC_API_KEY;
  const url = `${base.replace(/\/+$/, "")}/ccproxy/sessions/${encodeURIComponent(sessionId)}`;
  const r = await fetch(url, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (r.status === 404) return null; // no turn of this session reached the proxy yet
  if (!r.ok) throw new Error(`proxy answered ${r.status}`);
  return r.json();
}

async function main() {
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  let input = {};
  try {
    input = JSON.parse(text || "{}");
  } catch {
    input = {};
  }
  const base = process.env.ANTHROPIC_BASE_URL;
  if (!base || !input.session_id) {
    process.stdout.write(`ccproxy: ${base ? "no session id" : "no ANTHROPIC_BASE_URL"}\n`);
    return;
  }
  try {
    const view = await fetchView(base, input.session_id, process.env);
    process.stdout.write(statusLine(view, input) + "\n");
  } catch (e) {
    const why = e && e.name === "TimeoutError" ? "no answer" : (e && e.message) || String(e);
    process.stdout.write(`ccproxy: figures unavailable (${why})\n`);
  }
}

if (require.main === module) main();
module.exports = { statusLine };
