//! What the server offers besides tools: prompts (slash commands that tell the assistant
//! which tools to use), resources (the app status, people and chats by URI) and argument
//! completion for both. Everything here is gated by the same policy as the tools it relies
//! on: a prompt or resource whose tools are hidden is neither listed nor served.

pub mod chat_directory;
pub mod completion;
pub mod prompts;
pub mod resources;

use std::collections::BTreeSet;

use rmcp::RoleServer;
use rmcp::model::{ErrorCode, ErrorData, ProtocolVersion};
use rmcp::service::RequestContext;

pub use chat_directory::ChatDirectory;

use crate::tools::Shared;

/// Whether the request speaks 2026-07-28 or later, whose results carry cache hints.
pub fn wants_cache_hints(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28)
}

/// The names of the tools visible now, after waiting (bounded) for the first scope read
/// as tools/list does.
pub async fn visible_tool_names(shared: &Shared) -> BTreeSet<&'static str> {
    shared.wait_for_scopes().await;
    shared
        .visible_tools()
        .await
        .iter()
        .map(|(d, _)| d.meta.name)
        .collect()
}

/// JSON-RPC -32602 with a message and optional data.
pub fn invalid_params(message: impl Into<String>, data: Option<serde_json::Value>) -> ErrorData {
    ErrorData::new(ErrorCode::INVALID_PARAMS, message.into(), data)
}
