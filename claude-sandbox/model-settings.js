// Prints the `claude --settings` JSON that makes Claude Code accept the stack's model names, or nothing
// when every configured name is Claude's own. Used by entrypoint.sh.
//
// Claude Code 2.1.3xx prints `[claude-code:unrecognized_model] {"model":"…"}` for a model name it does
// not know (a local model's, an OpenRouter id). No environment variable silences it (ANTHROPIC_MODEL,
// ANTHROPIC_DEFAULT_*_MODEL with _NAME/_DESCRIPTION, ANTHROPIC_CUSTOM_MODEL_OPTION were tried); a
// `modelPicker` option with `behavesAs` does: the name becomes a /model picker row that behaves as a
// Claude model the CLI knows (its prompt and request shape; the system prompt still names the real
// model). `behavesAs` must be a full id of the pinned CLI (an alias such as "opus" is not accepted):
// update BEHAVES_AS with CLAUDE_CODE_VERSION (tests/e2e/test_claude_cli.py checks it).
"use strict";

const BEHAVES_AS = { main: "claude-opus-5-5", side: "claude-haiku-5-5" };
const MAIN_VARS = [
  "ANTHROPIC_MODEL",
  "ANTHROPIC_DEFAULT_OPUS_MODEL",
  "ANTHROPIC_DEFAULT_SONNET_MODEL",
  "CLAUDE_CODE_SUBAGENT_MODEL",
];
const SIDE_VARS = ["ANTHROPIC_DEFAULT_HAIKU_MODEL", "ANTHROPIC_SMALL_FAST_MODEL"];
const ALIASES = new Set(["default", "best", "opus", "sonnet", "haiku", "fable", "opusplan"]);

function isClaudes(name) {
  const bare = name.toLowerCase().replace(/\[1m\]$/, "");
  return bare.startsWith("claude-") || ALIASES.has(bare);
}

function modelSettings(env) {
  const options = [];
  const seen = new Set();
  for (const [vars, behavesAs] of [
    [MAIN_VARS, BEHAVES_AS.main],
    [SIDE_VARS, BEHAVES_AS.side],
  ]) {
    for (const key of vars) {
      const name = (env[key] || "").trim();
      if (!name || isClaudes(name) || seen.has(name)) continue;
      seen.add(name);
      options.push({ model: name, behavesAs });
    }
  }
  return options.length ? { modelPicker: { options } } : null;
}

if (require.main === module) {
  const settings = modelSettings(process.env);
  if (settings) process.stdout.write(JSON.stringify(settings));
}
module.exports = { modelSettings };
