//! Searching messages as the signed-in person: Lark's search answers with message IDs
//! only, so each hit is read (as the person) and rendered like history, with chat names.

use std::collections::HashMap;

use futures::{StreamExt, stream};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::history::{render_all, time_window};
use crate::lark::{ErrorKind, Request, api_path};
use crate::tools::content::render::MessageOut;
use crate::tools::{ToolCtx, ToolError};

/// Each hit costs a read; a page stays small so one search cannot fan out into a storm.
const PAGE_MAX: u32 = 20;
const PAGE_DEFAULT: u32 = 10;
/// Reads of hits and chat names in flight at once.
const READS_AT_ONCE: usize = 4;

/// Lark's search filters by these kinds only.
#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub(super) enum Kind {
    File,
    Image,
    Media,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Image => "image",
            Kind::Media => "media",
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchArgs {
    /// Words to find.
    query: String,
    /// Only this chat (oc_…).
    chat_id: Option<String>,
    /// Only messages from this person (open_id, ou_…).
    sender_id: Option<String>,
    /// Earliest: ISO 8601, a span back (30m, 24h, 7d), today or yesterday.
    since: Option<String>,
    /// Latest send time, same forms.
    until: Option<String>,
    /// Only file, image or media messages.
    kind: Option<Kind>,
    /// Hits per page, 1–20 (default 10).
    page_size: Option<u32>,
    /// A previous next_page_token.
    page_token: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct Hit {
    #[serde(flatten)]
    message: MessageOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    chat_name: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct HitsOut {
    messages: Vec<Hit>,
    /// Hits Lark found that could not be read now (recalled, or access lost).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unreadable: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

pub(super) async fn search_messages(ctx: ToolCtx, a: SearchArgs) -> Result<HitsOut, ToolError> {
    let query = a.query.trim();
    if query.is_empty() {
        return Err(ToolError::invalid("query", "must not be empty"));
    }
    let page_size = a.page_size.unwrap_or(PAGE_DEFAULT);
    if !(1..=PAGE_MAX).contains(&page_size) {
        return Err(ToolError::invalid("page_size", "must be 1–20"));
    }
    let (since, until) = time_window(a.since.as_deref(), a.until.as_deref())?;
    let mut body = json!({ "query": query });
    let mut filter = |k: &str, v: Value| {
        body[k] = v;
    };
    if let Some(c) = a.chat_id {
        filter("chat_ids", json!([c]));
    }
    if let Some(s) = a.sender_id {
        filter("from_ids", json!([s]));
    }
    if let Some(k) = a.kind {
        filter("message_type", json!(k.as_str()));
    }
    if let Some(t) = since {
        filter("start_time", json!(t.timestamp().to_string()));
    }
    if let Some(t) = until {
        filter("end_time", json!(t.timestamp().to_string()));
    }
    let req = Request::post(
        "search messages",
        "/open-apis/search/v2/message".into(),
        body,
    )
    .query("user_id_type", "open_id")
    .query("page_size", page_size.to_string())
    .query_opt("page_token", a.page_token)
    .as_user();
    let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
    let ids: Vec<String> = data["items"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|i| i.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let next = (data["has_more"].as_bool() == Some(true))
        .then(|| data["page_token"].as_str().map(String::from))
        .flatten()
        .filter(|t| !t.is_empty());
    let (raw, unreadable) = read_hits(&ctx, &ids).await?;
    let chats = chat_names(&ctx, &raw).await;
    let messages = render_all(&ctx, &raw)
        .await
        .into_iter()
        .map(|message| {
            let chat_name = message.chat_id.as_ref().and_then(|c| chats.get(c)).cloned();
            Hit { message, chat_name }
        })
        .collect();
    Ok(HitsOut {
        messages,
        unreadable,
        next_page_token: next,
    })
}

/// Reads each hit as the person, in the search's order. A hit that cannot be read is
/// listed, not fatal; cancellation and a lost login are.
async fn read_hits(ctx: &ToolCtx, ids: &[String]) -> Result<(Vec<Value>, Vec<String>), ToolError> {
    let reads = stream::iter(ids.iter().cloned())
        .map(|id| async move {
            let path = api_path("/open-apis/im/v1/messages/{}", &[&id]);
            let got = match path {
                Ok(p) => {
                    let req = Request::get("read a search hit", p)
                        .query("user_id_type", "open_id")
                        .as_user();
                    Some(ctx.client().call(req, &ctx.cancel).await)
                }
                Err(_) => None,
            };
            (id, got)
        })
        .buffered(READS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    let mut first_error = None;
    for (id, got) in reads {
        match got {
            Some(Ok(r)) => match r.data()["items"].get(0) {
                Some(m) => found.push(m.clone()),
                None => unreadable.push(id),
            },
            Some(Err(e)) if !about_this_hit(e.kind) => return Err(e.into()),
            Some(Err(e)) => {
                tracing::debug!(message_id = %id, "a search hit could not be read: {e}");
                unreadable.push(id);
                first_error.get_or_insert(e);
            }
            None => unreadable.push(id),
        }
    }
    // Not one hit readable (e.g. the login lacks a message read scope): that error tells
    // the agent what to do; a page of bare IDs would not.
    match first_error {
        Some(e) if found.is_empty() => Err(e.into()),
        _ => Ok((found, unreadable)),
    }
}

/// Whether a failed read says something about that one message (gone, or not readable
/// with the person's grants) rather than about the whole call (login, limits, network).
fn about_this_hit(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::NotFound
            | ErrorKind::InvalidArgument
            | ErrorKind::UserNotAuthorized
            | ErrorKind::DataRange
            | ErrorKind::Api
    )
}

/// The names of the hits' chats, read as the person (who is in them) and cached.
async fn chat_names(ctx: &ToolCtx, raw: &[Value]) -> HashMap<String, String> {
    let mut ids: Vec<String> = raw
        .iter()
        .filter_map(|m| m["chat_id"].as_str().map(String::from))
        .collect();
    ids.sort();
    ids.dedup();
    stream::iter(ids)
        .map(|id| async move {
            let key = format!("chat:{id}");
            if let Some(n) = ctx.shared.names.get(&key) {
                return (id, n);
            }
            let req = match api_path("/open-apis/im/v1/chats/{}", &[&id]) {
                Ok(p) => Request::get("read a chat's name", p).as_user(),
                Err(_) => return (id, String::new()),
            };
            let name = match ctx.client().call(req, &ctx.cancel).await {
                Ok(r) => r.data()["name"].as_str().unwrap_or_default().to_string(),
                Err(e) => {
                    tracing::debug!(chat_id = %id, "no name for a chat: {e}");
                    return (id, String::new());
                }
            };
            ctx.shared.names.put(&key, &name);
            (id, name)
        })
        .buffer_unordered(READS_AT_ONCE)
        .filter(|(_, n)| std::future::ready(!n.is_empty()))
        .collect()
        .await
}
