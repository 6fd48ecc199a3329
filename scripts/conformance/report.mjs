// Helpers for scripts/conformance.sh (plain Node >= 22, no dependencies).
//
//   node report.mjs summary LOG RESULTS_DIR
//     The suite's own summary of one run (per-scenario lines, Total, the baseline verdict),
//     with the long list of expected failures cut to a count, and the messages of any
//     unexpected or stale check looked up in RESULTS_DIR.
//   node report.mjs tools CATALOG_DIR STRICT_JSON HTTP_1 HTTP_2 HTTP_MODERN
//     Inspector --strict findings of STRICT_JSON (--format json output, over stdio); checks that
//     it lists one tool per CATALOG_DIR/*.json, that two consecutive lists from one HTTP server
//     (HTTP_1, HTTP_2) are byte-identical, and that every list has the same tools in the same
//     order (key order aside: the modern-era client re-serializes). Exits 1 on any finding
//     (error or warning) or mismatch.
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

// JSON with object keys sorted, so that two encodings of the same value compare equal.
const canonical = (v) =>
  JSON.stringify(v, (_, x) =>
    x && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]]))
      : x,
  );

function tools(catalogDir, strictJson, ...lists) {
  let bad = false;
  const read = (f) => JSON.parse(fs.readFileSync(f, "utf8"));
  const strict = read(strictJson);
  const findings = (strict.schemaFindings ?? []).flatMap((t) =>
    t.findings.map((f) => ({ tool: t.toolName, ...f })),
  );
  const errors = findings.filter((f) => f.severity === "error").length;
  for (const f of findings) console.log(`  ${f.severity}: ${f.tool} ${f.schema}.${f.path}: ${f.issue}`);
  const listed = strict.result.tools;
  const catalog = fs.readdirSync(catalogDir).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5));
  const names = listed.map((t) => t.name);
  const missing = catalog.filter((n) => !names.includes(n));
  const bytes = Buffer.byteLength(JSON.stringify(strict.result));
  console.log(
    `inspector --strict: ${names.length} tools, ${errors} errors, ${findings.length - errors} warnings; tools/list ${bytes} bytes`,
  );
  if (findings.length) bad = true;
  if (missing.length || names.length !== catalog.length) {
    console.log(`  checked ${names.length} tools but the catalog (${catalogDir}) has ${catalog.length}; missing: ${missing.join(", ")}`);
    bad = true;
  }
  const want = canonical(listed);
  const got = lists.map((f) => read(f).result.tools);
  got.forEach((t, i) => {
    if (canonical(t) !== want) {
      console.log(`  ${path.basename(lists[i])}: tools/list differs from the stdio one (order or content)`);
      bad = true;
    }
  });
  if (got.length >= 2 && JSON.stringify(got[0]) !== JSON.stringify(got[1])) {
    console.log(`  two consecutive tools/list from one server differ: ${lists[0]} ${lists[1]}`);
    bad = true;
  }
  if (!bad) console.log(`tools/list: same tools in the same order in all ${lists.length + 1} lists (stdio; HTTP twice, then 2026-07-28)`);
  process.exit(bad ? 1 : 0);
}

if (cmd === "summary") summary(...args);
else if (cmd === "tools") tools(...args);
else {
  console.error("usage: report.mjs summary LOG RESULTS_DIR | tools CATALOG_DIR STRICT_JSON HTTP_1 HTTP_2 HTTP_MODERN");
  process.exit(2);
}
