//! The tools' input and output schemas as served: the reviewed `tools/*.json`, built into
//! the binary (`build.rs`). They are generated from the tools' types by [`super::schema_gen`]
//! (with the `schema-gen` feature, which the contract test has).

use std::sync::Arc;

use rmcp::model::JsonObject;
#[cfg(not(feature = "schema-gen"))]
use serde_json::Value;

/// The argument every write tool takes: run nothing, answer with what would be sent.
pub const DRY_RUN: &str = "dry_run";

mod frozen {
    include!(concat!(env!("OUT_DIR"), "/frozen_schemas.rs"));
}

/// The input and output schemas of tool `name` as reviewed in `tools/NAME.json` and built
/// into the binary; `None` for a tool that has no snapshot yet. Parsing them takes a tenth
/// of the time schemars takes to generate them again, and start-up waits for them.
pub fn frozen(name: &str) -> Option<(Arc<JsonObject>, Arc<JsonObject>)> {
    let i = frozen::FROZEN
        .binary_search_by(|(n, _, _)| (*n).cmp(name))
        .ok()?;
    let (_, input, output) = frozen::FROZEN.get(i)?;
    let input = serde_json::from_str(input).ok()?;
    let output = serde_json::from_str(output).ok()?;
    Some((Arc::new(input), Arc::new(output)))
}

/// A tool without a snapshot in a build without the generator: it takes any object. The
/// contract test (which has the generator) fails until `tools/NAME.json` is written.
#[cfg(not(feature = "schema-gen"))]
pub fn unfrozen(name: &str) -> (Arc<JsonObject>, Arc<JsonObject>) {
    tracing::error!("tool {name} has no tools/{name}.json: its schema is not known");
    let any = || {
        let mut o = JsonObject::new();
        o.insert("type".into(), Value::String("object".into()));
        Arc::new(o)
    };
    (any(), any())
}
