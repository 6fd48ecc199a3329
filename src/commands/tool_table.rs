//! `tools`: the tools a configuration exposes and what each costs in a model's context.

use std::fmt::Write;

use serde_json::{Value, json};

use crate::tools::policy::{Hidden, Policy};
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

/// The tools the policy hides before scope gating, and why.
pub fn hidden(policy: &Policy) -> Vec<(&'static ToolDef, Hidden)> {
    catalog()
        .iter()
        .filter_map(|d| policy.configured(&d.meta).err().map(|h| (d, h)))
        .collect()
}

/// Short enough for a table row; `check` gives the long form.
fn reason(h: &Hidden) -> String {
    match h {
        Hidden::ToolsetNotSelected { toolset } => {
            format!("toolset `{toolset}` not selected (--toolsets)")
        }
        Hidden::Excluded => "excluded (--exclude-tools)".into(),
        Hidden::ReadOnly => "writes, and --read-only is set".into(),
        Hidden::NotConfigured { flag } => format!("needs {flag}"),
        Hidden::MissingScope { any_of } => {
            format!("needs one of the scopes [{}]", any_of.join(", "))
        }
        Hidden::NeedsLogin => "acts as you: needs `login`".into(),
        Hidden::BotOnly => "acts as you, and --identity bot is set".into(),
        Hidden::SendAsUserOff => "sends as you: needs --allow-send-as-user".into(),
        Hidden::MissingUserScope { any_of } => {
            format!(
                "acts as you: needs your grant of one of [{}]",
                any_of.join(", ")
            )
        }
    }
}

pub fn render(policy: &Policy, as_json: bool) -> String {
    let defs = configured(policy);
    let hidden = hidden(policy);
    let s = sizes(&defs);
    let total = catalog().len();
    if as_json {
        let tools: Vec<_> = defs
            .iter()
            .map(|d| {
                json!({"name": d.meta.name, "toolset": d.meta.toolset, "access": d.meta.access(),
                       "read_only": d.meta.read_only, "destructive": d.meta.destructive,
                       "scopes": d.meta.scopes, "context_bytes": d.context_bytes()})
            })
            .collect();
        let hidden: Vec<_> = hidden
            .iter()
            .map(|(d, h)| {
                let mut entry = json!({"name": d.meta.name, "toolset": d.meta.toolset,
                                       "access": d.meta.access(), "why": reason(h)});
                // `reason` and its details (the flag, the toolset) come from `Hidden` itself.
                if let (Some(entry), Ok(Value::Object(cause))) =
                    (entry.as_object_mut(), serde_json::to_value(h))
                {
                    entry.extend(cause);
                }
                entry
            })
            .collect();
        let doc = json!({"tools": tools, "count": s.count, "hidden": hidden, "total": total,
                          "tools_list_bytes": s.list_bytes,
                          "max_context_bytes": s.max, "median_context_bytes": s.median});
        return serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:<9} {:<18} {:>6}",
        "TOOL", "TOOLSET", "ACCESS", "BYTES"
    );
    for d in &defs {
        let _ = writeln!(
            out,
            "{:<28} {:<9} {:<18} {:>6}",
            d.meta.name,
            d.meta.toolset.as_str(),
            d.meta.access(),
            d.context_bytes()
        );
    }
    let _ = writeln!(
        out,
        "{} of {total} tools; tools/list {} bytes; per tool (name+description+inputSchema) max {} B, median {} B",
        s.count, s.list_bytes, s.max, s.median
    );
    if !hidden.is_empty() {
        let _ = writeln!(out, "Hidden ({}):", hidden.len());
        for (d, h) in &hidden {
            let _ = writeln!(out, "  {:<26} {}", d.meta.name, reason(h));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::policy::PolicyConfig;

    #[test]
    fn hidden_tools_are_listed_with_the_flag_that_shows_them() {
        let Ok(policy) = Policy::new(&PolicyConfig::default()) else {
            panic!("the default policy is valid");
        };
        let text = render(&policy, false);
        assert!(
            text.contains(&format!("of {} tools", catalog().len())),
            "{text}"
        );
        assert!(text.contains("--allow-read-dir"), "{text}");
        assert!(text.contains("--download-dir"), "{text}");
        assert!(
            text.contains("destructive") && !text.contains(" delete "),
            "{text}"
        );
        let doc: Value = serde_json::from_str(&render(&policy, true)).unwrap_or_default();
        let shown = doc["tools"].as_array().map_or(0, Vec::len);
        let hidden = doc["hidden"].as_array().cloned().unwrap_or_default();
        assert_eq!(shown + hidden.len(), catalog().len());
        assert_eq!(doc["total"], catalog().len());
        assert!(
            hidden.iter().all(|h| {
                (h["reason"] == "not_configured" && h["flag"].is_string())
                    || (h["reason"] == "toolset_not_selected" && h["toolset"] == "events")
            }),
            "{hidden:?}"
        );
    }
}
