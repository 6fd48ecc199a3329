//! The tool contract: `tools/*.json` and the README table must match the code, and every
//! tool must fit the context budget. Regenerate after a deliberate change with
//! `UPDATE_SNAPSHOTS=1 cargo test --test tool_contract`.

use std::path::PathBuf;

use lark_mcp_server::tools::{catalog, markdown_table, schema, snapshot};
use serde_json::Value;

const MAX_TOOL_BYTES: usize = 1536;
const MAX_MEDIAN_BYTES: usize = 700;
const TABLE_START: &str =
    "<!-- tools:start (generated: UPDATE_SNAPSHOTS=1 cargo test --test tool_contract) -->";
const TABLE_END: &str = "<!-- tools:end -->";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn updating() -> bool {
    std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1")
}

#[test]
fn tool_snapshots_match_the_code() {
    let dir = root().join("tools");
    let mut stale = Vec::new();
    for def in catalog() {
        let path = dir.join(format!("{}.json", def.meta.name));
        let want = serde_json::to_string_pretty(&snapshot(def)).expect("json") + "\n";
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            if updating() {
                std::fs::write(&path, &want).expect("write snapshot");
            } else {
                stale.push(def.meta.name);
            }
        }
    }
    let known: Vec<String> = catalog()
        .iter()
        .map(|d| format!("{}.json", d.meta.name))
        .collect();
    let extra: Vec<String> = std::fs::read_dir(&dir)
        .expect("tools/ exists")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| !known.contains(n))
        .collect();
    if updating() {
        for f in &extra {
            std::fs::remove_file(dir.join(f)).expect("remove stale snapshot");
        }
    } else {
        assert!(
            extra.is_empty(),
            "tools/ has files for tools that no longer exist: {extra:?}"
        );
    }
    assert!(
        stale.is_empty(),
        "tools/ differs from the code for {stale:?}; review the change, then run UPDATE_SNAPSHOTS=1 cargo test --test tool_contract"
    );
}

#[test]
fn readme_tool_table_matches_the_catalog() {
    let path = root().join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let (Some(start), Some(end)) = (readme.find(TABLE_START), readme.find(TABLE_END)) else {
        panic!("README.md lacks the generated tool table markers");
    };
    let current = &readme[start + TABLE_START.len()..end];
    let want = format!("\n{}", markdown_table());
    if current != want {
        if updating() {
            let updated = format!("{}{TABLE_START}{want}{}", &readme[..start], &readme[end..]);
            std::fs::write(&path, updated).expect("write README");
        } else {
            panic!(
                "README tool table is stale; run UPDATE_SNAPSHOTS=1 cargo test --test tool_contract"
            );
        }
    }
}

/// The binary serves the schemas built in from `tools/*.json`; the test above holds those
/// to the code, this one the served ones to the files.
#[test]
fn served_schemas_are_the_reviewed_snapshots() {
    let mut missing = Vec::new();
    for def in catalog() {
        let Some((input, output)) = schema::frozen(def.meta.name) else {
            missing.push(def.meta.name);
            continue;
        };
        let (gen_in, gen_out) = def.generated_schemas();
        if !updating() {
            assert_eq!(input, gen_in, "{}: built-in input schema", def.meta.name);
            assert_eq!(output, gen_out, "{}: built-in output schema", def.meta.name);
        }
        assert_eq!(def.input_schema, input, "{}", def.meta.name);
        assert_eq!(def.output_schema, output, "{}", def.meta.name);
    }
    assert!(
        missing.is_empty() || updating(),
        "no built-in schema (tools/NAME.json) for {missing:?}; run UPDATE_SNAPSHOTS=1 cargo test --test tool_contract"
    );
}

fn no_external_refs(v: &Value, at: &str) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                assert!(r.starts_with("#/"), "{at}: external $ref {r}");
            }
            o.iter()
                .for_each(|(k, c)| no_external_refs(c, &format!("{at}.{k}")));
        }
        Value::Array(a) => a.iter().for_each(|c| no_external_refs(c, at)),
        _ => {}
    }
}

#[test]
fn every_tool_fits_the_context_budget_and_naming_rules() {
    let mut sizes = Vec::new();
    for def in catalog() {
        let m = &def.meta;
        assert!(
            !m.name.is_empty()
                && m.name.len() <= 64
                && m.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !m.name.starts_with('_'),
            "{} is not snake_case ≤ 64",
            m.name
        );
        let bytes = def.context_bytes();
        assert!(
            bytes <= MAX_TOOL_BYTES,
            "{} costs {bytes} B > {MAX_TOOL_BYTES}",
            m.name
        );
        sizes.push(bytes);
        let sentences = m.description.matches(". ").count() + 1;
        assert!(
            sentences <= 2,
            "{}: description has {sentences} sentences",
            m.name
        );
        assert!(!m.title.is_empty(), "{} has no title", m.name);
        let schema = Value::Object((*def.input_schema).clone());
        assert_eq!(schema["type"], "object", "{}", m.name);
        for key in ["anyOf", "oneOf", "allOf", "$schema"] {
            assert!(schema.get(key).is_none(), "{}: top-level {key}", m.name);
        }
        no_external_refs(&schema, m.name);
        let tool = serde_json::to_value(def.tool()).expect("tool json");
        let ann = &tool["annotations"];
        for hint in ["readOnlyHint", "destructiveHint", "idempotentHint"] {
            assert!(ann[hint].is_boolean(), "{}: {hint} unset", m.name);
        }
    }
    sizes.sort_unstable();
    let median = sizes[sizes.len() / 2];
    assert!(
        median <= MAX_MEDIAN_BYTES,
        "median {median} B > {MAX_MEDIAN_BYTES}"
    );
}
