// Seed Claude Code's config (~/.claude.json, here $CLAUDE_CONFIG_DIR/.claude.json) so the CLI starts
// without onboarding, trust or bypass-permission dialogs and never calls home before using the proxy.
// Keeps every other key of an existing file. Usage: node seed-config.js CONFIG_FILE PROJECT_DIR
"use strict";
const fs = require("fs");
const [file, project] = process.argv.slice(2);
let config = {};
try {
  config = JSON.parse(fs.readFileSync(file, "utf8"));
} catch (e) {
  if (e.code !== "ENOENT") console.error(`ccsandbox: replacing unreadable ${file}: ${e.message}`);
}
Object.assign(config, {
  hasCompletedOnboarding: true,
  bypassPermissionsModeAccepted: true,
  autoUpdates: false,
  theme: config.theme || "dark",
  numStartups: Math.max(1, config.numStartups || 0),
});
config.projects = config.projects || {};
config.projects[project] = Object.assign({}, config.projects[project], {
  hasTrustDialogAccepted: true,
  hasCompletedProjectOnboarding: true,
});
const tmp = `${file}.tmp-${process.pid}`;
fs.writeFileSync(tmp, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
fs.renameSync(tmp, file);
