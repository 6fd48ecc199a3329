// Helpers for scripts/conformance.sh (plain Node >= 22, no dependencies).
//
//   node report.mjs summary LOG RESULTS_DIR
//     The suite's own summary of one run (per-scenario lines, Total, the baseline verdict),
//     with the long list of expected failures cut to a count, and the messages of any
//     unexpected or stale check looked up in RESULTS_DIR.
import fs from "node:fs";
import path from "node:path";

const [cmd, ...args] = process.argv.slice(2);
const plain = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");

function checksOf(resultsDir, scenario) {
  const prefix = `server-${scenario}-`;
  const dirs = fs.existsSync(resultsDir)
    ? fs.readdirSync(resultsDir).filter((d) => d.startsWith(prefix) && /^\d{4}-/.test(d.slice(prefix.length)))
    : [];
  return dirs.flatMap((d) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(resultsDir, d, "checks.json"), "utf8"));
    } catch {
      return [];
    }
  });
}

function summary(log, resultsDir) {
  const lines = plain(fs.readFileSync(log, "utf8")).split("\n");
  const start = lines.findIndex((l) => l.startsWith("=== SUMMARY ==="));
  if (start < 0) {
    console.log(lines.slice(-30).join("\n"));
    return;
  }
  const rest = lines.slice(start + 1);
  const expected = rest.filter((l) => l.startsWith("  ~ ")).length;
  let section = "";
  const flagged = [];
  for (const line of rest) {
    if (line.startsWith("  ~ ") || line.trim() === "") continue;
    if (/^\S/.test(line)) section = line;
    if (line.startsWith("Expected failures (in baseline)")) {
      console.log(`Expected failures (in baseline): ${expected} checks`);
      continue;
    }
    console.log(line);
    const m = line.match(/^  [✓✗] (\S+)$/);
    if (m && /^(Unexpected|Stale)/.test(section)) flagged.push(m[1]);
  }
  for (const entry of flagged) {
    const [scenario, checkId] = entry.split(/:(.*)/s);
    for (const c of checksOf(resultsDir, scenario)) {
      if (checkId ? c.id !== checkId : !["FAILURE", "WARNING"].includes(c.status)) continue;
      const why = (c.errorMessage ?? "").replace(/\s+/g, " ").slice(0, 300);
      console.log(`    ${entry}: ${c.status} ${c.id}${why ? ` | ${why}` : ""}`);
    }
  }
}

if (cmd === "summary") summary(...args);
else {
  console.error("usage: report.mjs summary LOG RESULTS_DIR");
  process.exit(2);
}
