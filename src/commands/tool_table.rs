//! `tools`: the tools a configuration exposes and what each costs in a model's context.

use std::fmt::Write;

use serde_json::json;

use crate::tools::policy::Policy;
use crate::tools::{ToolDef, catalog};

pub struct Sizes {
    pub count: usize,
    /// Bytes of the whole tools/list `tools` array as JSON.
    pub list_bytes: usize,
    pub max: usize,
    pub median: usize,
}

pub fn sizes(defs: &[&ToolDef]) -> Sizes {
    let mut each: Vec<usize> = defs.iter().map(|d| d.context_bytes()).collect();
    each.sort_unstable();
    let tools: Vec<_> = defs.iter().map(|d| d.tool()).collect();
    Sizes {
        count: defs.len(),
        list_bytes: serde_json::to_string(&tools).map(|s| s.len()).unwrap_or(0),
        max: each.last().copied().unwrap_or(0),
        median: each.get(each.len() / 2).copied().unwrap_or(0),
    }
}

/// The tools the policy exposes before scope gating.
pub fn configured(policy: &Policy) -> Vec<&'static ToolDef> {
    catalog()
        .iter()
        .filter(|d| policy.configured(&d.meta).is_ok())
        .collect()
}

pub fn render(policy: &Policy, as_json: bool) -> String {
    let defs = configured(policy);
    let s = sizes(&defs);
    if as_json {
        let tools: Vec<_> = defs
            .iter()
            .map(|d| {
                json!({"name": d.meta.name, "toolset": d.meta.toolset, "read_only": d.meta.read_only,
                       "destructive": d.meta.destructive, "scopes": d.meta.scopes, "context_bytes": d.context_bytes()})
            })
            .collect();
        let doc = json!({"tools": tools, "count": s.count, "tools_list_bytes": s.list_bytes,
                          "max_context_bytes": s.max, "median_context_bytes": s.median});
        return serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:<9} {:<6} {:>6}",
        "TOOL", "TOOLSET", "ACCESS", "BYTES"
    );
    for d in &defs {
        let access = if d.meta.destructive {
            "delete"
        } else if d.meta.read_only {
            "read"
        } else {
            "write"
        };
        let _ = writeln!(
            out,
            "{:<28} {:<9} {:<6} {:>6}",
            d.meta.name,
            d.meta.toolset.as_str(),
            access,
            d.context_bytes()
        );
    }
    let _ = writeln!(
        out,
        "{} tools; tools/list {} bytes; per tool (name+description+inputSchema) max {} B, median {} B",
        s.count, s.list_bytes, s.max, s.median
    );
    out
}
