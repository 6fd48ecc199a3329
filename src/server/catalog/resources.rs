//! Resources: the app's status, and people and chats by URI, each the JSON its tool returns.
//!
//! - `lark://app/status`: what `get_app_status` returns.
//! - `lark://users/{open_id}`: what `get_user` returns for that open_id.
//! - `lark://chats/{chat_id}`: what `get_chat` returns for that chat.
//! - `lark://chats/{chat_id}/messages`: the messages received in that chat over the long
//!   connection and still kept (what `get_new_messages` returns for it). Clients subscribe
//!   to it (`resources/subscribe`, or `subscriptions/listen` from 2026-07-28) and hear
//!   `notifications/resources/updated` as each message arrives.
//!
//! A read runs the tool itself (the same argument checks, id bounds and percent-encoding
//! of path ids), so a resource can never show more than, or differ from, its tool. A
//! resource is listed and readable only while its tool is visible. A URI that names
//! nothing, or an id Lark does not know, is -32602 with `data.uri` (SEP-2164).

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use percent_encoding::percent_decode_str;
use rmcp::model::{
    CacheScope, ErrorData, JsonObject, ListResourceTemplatesResult, ListResourcesResult,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{invalid_params, visible_tool_names};
use crate::lark::ErrorKind;
use crate::tools::{Progress, Shared, ToolCtx, ToolError};

pub const APP_STATUS_URI: &str = "lark://app/status";
pub const USER_TEMPLATE: &str = "lark://users/{open_id}";
pub const CHAT_TEMPLATE: &str = "lark://chats/{chat_id}";
pub const MESSAGES_TEMPLATE: &str = "lark://chats/{chat_id}/messages";
const MESSAGES_SUFFIX: &str = "/messages";
const USERS_PREFIX: &str = "lark://users/";
const CHATS_PREFIX: &str = "lark://chats/";
const JSON: &str = "application/json";

/// How long a read may be reused. Tenant data, so only by this client (`private`).
const STATUS_TTL_MS: u64 = 10_000;
const ENTITY_TTL_MS: u64 = 30_000;

/// Longer URIs name nothing here (ids are at most 256 bytes, encoded at most three times that).
const MAX_URI_BYTES: usize = 1024;

/// What a URI names, and the tool that reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    AppStatus,
    User(String),
    Chat(String),
    ChatMessages(String),
}

impl Target {
    fn tool(&self) -> &'static str {
        match self {
            Target::AppStatus => "get_app_status",
            Target::User(_) => "get_user",
            Target::Chat(_) => "get_chat",
            Target::ChatMessages(_) => "get_new_messages",
        }
    }

    fn args(&self) -> JsonObject {
        let args = match self {
            Target::AppStatus => json!({}),
            Target::User(id) => json!({"user_id": id, "id_type": "open_id"}),
            Target::Chat(id) | Target::ChatMessages(id) => json!({"chat_id": id}),
        };
        match args {
            Value::Object(o) => o,
            _ => JsonObject::new(),
        }
    }

    fn ttl_ms(&self) -> u64 {
        match self {
            Target::AppStatus => STATUS_TTL_MS,
            // Changes with every message; subscribers hear when.
            Target::ChatMessages(_) => 0,
            _ => ENTITY_TTL_MS,
        }
    }
}

/// The one path segment after `prefix`, percent-decoded; None when the URI has more or
/// other parts (a query, a fragment, another segment) or does not decode to UTF-8.
fn segment(uri: &str, prefix: &str) -> Option<String> {
    let raw = uri.strip_prefix(prefix)?;
    if raw.is_empty() || raw.contains(['/', '?', '#']) {
        return None;
    }
    let id = percent_decode_str(raw).decode_utf8().ok()?.into_owned();
    (!id.trim().is_empty()).then_some(id)
}

fn parse(uri: &str) -> Option<Target> {
    if uri.len() > MAX_URI_BYTES {
        return None;
    }
    if uri == APP_STATUS_URI {
        return Some(Target::AppStatus);
    }
    if let Some(id) = segment(uri, USERS_PREFIX) {
        return id.starts_with("ou_").then_some(Target::User(id));
    }
    if let Some(id) = messages_chat(uri) {
        return Some(Target::ChatMessages(id));
    }
    if let Some(id) = segment(uri, CHATS_PREFIX) {
        return id.starts_with("oc_").then_some(Target::Chat(id));
    }
    None
}

/// The chat a `lark://chats/{chat_id}/messages` URI names, if it is one.
pub fn messages_chat(uri: &str) -> Option<String> {
    if uri.len() > MAX_URI_BYTES {
        return None;
    }
    let id = segment(uri.strip_suffix(MESSAGES_SUFFIX)?, CHATS_PREFIX)?;
    id.starts_with("oc_").then_some(id)
}

/// Why a URI names nothing, in words a client author can act on.
fn unknown_because(uri: &str, shown: &str) -> String {
    if uri.starts_with(USERS_PREFIX) {
        format!(
            "`{shown}` does not match {USER_TEMPLATE}: one open_id (ou_…), percent-encoded, and nothing after it"
        )
    } else if uri.starts_with(CHATS_PREFIX) {
        format!(
            "`{shown}` does not match {CHAT_TEMPLATE} or {MESSAGES_TEMPLATE}: one chat_id (oc_…), percent-encoded"
        )
    } else {
        format!(
            "`{shown}` is not a resource of this server; it serves {APP_STATUS_URI}, {USER_TEMPLATE}, {CHAT_TEMPLATE} and {MESSAGES_TEMPLATE}"
        )
    }
}

/// The static resources visible now.
fn resources(visible: &BTreeSet<&'static str>) -> Vec<Resource> {
    let mut out = Vec::new();
    if visible.contains("get_app_status") {
        out.push(
            Resource::new(APP_STATUS_URI, "app_status")
                .with_title("Lark app status")
                .with_description("The Lark app behind this server: bot, granted scopes, and which tools are hidden and why (as get_app_status returns it).")
                .with_mime_type(JSON),
        );
    }
    out
}

/// The resource templates visible now.
pub fn templates(visible: &BTreeSet<&'static str>) -> Vec<ResourceTemplate> {
    let mut out = Vec::new();
    if visible.contains("get_chat") {
        out.push(
            ResourceTemplate::new(CHAT_TEMPLATE, "chat")
                .with_title("Lark chat")
                .with_description("A chat's details by chat_id (oc_…): name, owner, type, member counts, whether the bot is in it (as get_chat returns them).")
                .with_mime_type(JSON),
        );
    }
    if visible.contains("get_new_messages") {
        out.push(
            ResourceTemplate::new(MESSAGES_TEMPLATE, "chat_messages")
                .with_title("Messages received in a Lark chat")
                .with_description("Messages people sent to a chat (oc_…) since the server started, as they arrive over Lark's long connection (as get_new_messages returns them). Subscribe to hear of each new one.")
                .with_mime_type(JSON),
        );
    }
    if visible.contains("get_user") {
        out.push(
            ResourceTemplate::new(USER_TEMPLATE, "user")
                .with_title("Lark user")
                .with_description("A person's profile by open_id (ou_…): name, ids, email, departments, leader, job title and status (as get_user returns it).")
                .with_mime_type(JSON),
        );
    }
    out
}

pub async fn list(shared: &Shared, hints: bool) -> ListResourcesResult {
    let visible = visible_tool_names(shared).await;
    let mut result = ListResourcesResult::with_all_items(resources(&visible));
    if hints {
        result = result
            .with_ttl_ms(shared.lists_ttl_ms())
            .with_cache_scope(CacheScope::Public);
    }
    result
}

pub async fn list_templates(shared: &Shared, hints: bool) -> ListResourceTemplatesResult {
    let visible = visible_tool_names(shared).await;
    let mut result = ListResourceTemplatesResult::with_all_items(templates(&visible));
    if hints {
        result = result
            .with_ttl_ms(shared.lists_ttl_ms())
            .with_cache_scope(CacheScope::Public);
    }
    result
}

/// -32602 with `data.uri`: the spec's "resource not found".
fn not_found(uri: &str, why: impl std::fmt::Display) -> ErrorData {
    invalid_params(
        format!("resource not found: {why}"),
        Some(json!({"uri": uri})),
    )
}

/// Lark answers that mean "no such id" (or none this app may see).
fn names_nothing(e: &ToolError) -> bool {
    match &e.lark {
        // No Lark error: the tool refused the argument itself (a malformed id).
        None => true,
        Some(l) => {
            matches!(
                l.kind,
                ErrorKind::NotFound | ErrorKind::InvalidArgument | ErrorKind::DataRange
            )
            // im/v1 chats: invalid chat_id, chat dissolved.
            || matches!(l.code, Some(232006 | 232009))
        }
    }
}

/// "No such id" in a resource's words, with Lark's code and log id for anyone digging.
fn unknown_id(target: &Target, e: &ToolError) -> String {
    let Some(l) = &e.lark else {
        return e.text.clone();
    };
    let what = match target {
        Target::AppStatus => return e.text.clone(),
        Target::User(id) => format!("no user with open_id `{id}` that this app can see"),
        Target::Chat(id) | Target::ChatMessages(id) => {
            format!("no chat `{id}` that this app can see")
        }
    };
    let mut facts = Vec::new();
    if let Some(c) = l.code {
        facts.push(format!("Lark code {c}"));
    }
    let msg: String = l.msg.trim().chars().take(200).collect();
    if !msg.is_empty() {
        facts.push(format!("\"{msg}\""));
    }
    if let Some(id) = &l.log_id {
        facts.push(format!("log_id {id}"));
    }
    if facts.is_empty() {
        what
    } else {
        format!("{what} ({})", facts.join(", "))
    }
}

pub async fn read(
    shared: &Arc<Shared>,
    uri: &str,
    cancel: CancellationToken,
    hints: bool,
) -> Result<ReadResourceResult, ErrorData> {
    let Some(target) = parse(uri) else {
        // The URI goes back as sent, unless it is too long to be one of ours anyway.
        let echoed = if uri.len() <= MAX_URI_BYTES {
            uri.to_string()
        } else {
            format!("{}…", uri.chars().take(200).collect::<String>())
        };
        let shown: String = uri.chars().take(200).collect();
        let shown = if shown.len() < uri.len() {
            format!("{shown}…")
        } else {
            shown
        };
        return Err(not_found(&echoed, unknown_because(uri, &shown)));
    };
    let tool = target.tool();
    let Some(def) = crate::tools::find(tool) else {
        return Err(not_found(uri, format!("the tool {tool} does not exist")));
    };
    shared.wait_for_scopes().await;
    let acting = match shared.visibility(def).await {
        Ok(acting) => acting,
        Err(why) => {
            return Err(not_found(
                uri,
                format!(
                    "it is read with the tool {tool}, which is hidden: {}",
                    why.explain(shared.client.config())
                ),
            ));
        }
    };
    let mut ctx = ToolCtx::new(shared.clone(), cancel.clone(), Progress::default());
    ctx.acting = acting;
    let outcome = {
        let _running = shared.begin_call();
        // A bug in a tool must cost one answer, not the request (as for tools/call).
        AssertUnwindSafe(def.run(ctx, target.args()))
            .catch_unwind()
            .await
    };
    let value = match outcome {
        Ok(Ok(outcome)) => outcome.value,
        Ok(Err(e)) if names_nothing(&e) => return Err(not_found(uri, unknown_id(&target, &e))),
        Ok(Err(e)) => {
            if e.lark
                .as_ref()
                .is_some_and(|l| l.kind == ErrorKind::MissingScope)
            {
                // Lark says a scope is gone: re-read so the lists stop offering it.
                let shared = shared.clone();
                tokio::spawn(async move { shared.reread_scopes_soon(&cancel).await });
            }
            tracing::debug!(uri, "resources/read failed: {}", e.text);
            return Err(ErrorData::internal_error(e.text, Some(json!({"uri": uri}))));
        }
        Err(_) => {
            tracing::error!(tool, "resources/read: the tool panicked");
            return Err(ErrorData::internal_error(
                format!(
                    "reading {uri} failed with an internal error (a bug in this server; it is logged)"
                ),
                Some(json!({"uri": uri})),
            ));
        }
    };
    let text = serde_json::to_string(&value)
        .map_err(|e| ErrorData::internal_error(format!("cannot encode {uri}: {e}"), None))?;
    let mut result = ReadResourceResult::new(vec![ResourceContents::TextResourceContents {
        uri: uri.to_string(),
        mime_type: Some(JSON.into()),
        text,
        meta: None,
    }]);
    if hints {
        result = result
            .with_ttl_ms(target.ttl_ms())
            .with_cache_scope(CacheScope::Private);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_one_thing_or_nothing() {
        assert_eq!(parse("lark://app/status"), Some(Target::AppStatus));
        assert_eq!(
            parse("lark://users/ou_abc"),
            Some(Target::User("ou_abc".into()))
        );
        assert_eq!(
            parse("lark://chats/oc_%61bc"),
            Some(Target::Chat("oc_abc".into()))
        );
        assert_eq!(
            parse("lark://chats/oc_%61bc/messages"),
            Some(Target::ChatMessages("oc_abc".into()))
        );
        assert_eq!(messages_chat("lark://chats/oc_abc"), None);
        // Decoded ids stay one id: the tool percent-encodes them again as one segment.
        assert_eq!(
            parse("lark://users/ou_a%2F..%2Fb"),
            Some(Target::User("ou_a/../b".into()))
        );
        for bad in [
            "lark://app/status/",
            "lark://app/status?x",
            "lark://users/",
            "lark://users/ou_a/b",
            "lark://users/ou_a?x=1",
            "lark://users/ou_a#f",
            "lark://users/on_abc",
            "lark://users/%FF%FE",
            "lark://chats/ou_abc",
            "LARK://users/ou_a",
            "https://example.com",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        let long = format!("lark://users/ou_{}", "a".repeat(MAX_URI_BYTES));
        assert_eq!(parse(&long), None);
    }

    #[test]
    fn templates_follow_their_tools() {
        let all: BTreeSet<&'static str> = crate::tools::catalog()
            .iter()
            .map(|d| d.meta.name)
            .collect();
        assert_eq!(templates(&all).len(), 3);
        let mut no_chats = all.clone();
        no_chats.remove("get_chat");
        no_chats.remove("get_new_messages");
        let t = templates(&no_chats);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].uri_template, USER_TEMPLATE);
        assert_eq!(resources(&BTreeSet::new()).len(), 0);
    }
}
