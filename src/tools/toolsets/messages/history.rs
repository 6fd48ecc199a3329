//! Reading: one message, chat history, and who read a message.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use chrono::{DateTime, Utc};

use super::{MessageIdArgs, message_path};
use crate::lark::Request;
use crate::tools::content::render::{MessageOut, iso_time, people_in, render};
use crate::tools::paging::{pages, with_paging};
use crate::tools::{ToolCtx, ToolError, when};

/// The bot's display name, for messages it sent.
async fn bot_name(ctx: &ToolCtx) -> String {
    const KEY: &str = "app:bot";
    if let Some(n) = ctx.shared.names.get(KEY) {
        return n;
    }
    let name = ctx
        .client()
        .bot_info(&ctx.cancel)
        .await
        .ok()
        .and_then(|b| b.get("app_name").and_then(Value::as_str).map(String::from))
        .unwrap_or_default();
    ctx.shared.names.put(KEY, &name);
    name
}

/// `since` / `until` arguments (ISO 8601 or spans back from now), checked for order.
pub(super) type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

pub(super) fn time_window(since: Option<&str>, until: Option<&str>) -> Result<Window, ToolError> {
    let now = Utc::now();
    let parse = |field: &str, v: Option<&str>| {
        v.map(|s| when::parse(s, now))
            .transpose()
            .map_err(|e| ToolError::invalid(field, e))
    };
    let (since, until) = (parse("since", since)?, parse("until", until)?);
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        return Err(ToolError::invalid("since", "is after until"));
    }
    Ok((since, until))
}

pub(crate) async fn render_all(ctx: &ToolCtx, raw: &[Value]) -> Vec<MessageOut> {
    // A reply is paced by the chat it lands in; the history says which chat that is.
    for m in raw {
        if let (Some(id), Some(chat)) = (m["message_id"].as_str(), m["chat_id"].as_str()) {
            ctx.client().learn_receiver(id, chat);
        }
    }
    let names = ctx.shared.names.users(ctx, &people_in(raw)).await;
    let bot = bot_name(ctx).await;
    raw.iter().map(|m| render(m, &names, &bot)).collect()
}

pub(super) async fn get_message(ctx: ToolCtx, a: MessageIdArgs) -> Result<MessageOut, ToolError> {
    let path = message_path("/open-apis/im/v1/messages/{}", &a.message_id)?;
    let req = ctx.acting(Request::get("get message", path).query("user_id_type", "open_id"));
    let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
    let items = data
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    render_all(&ctx, &items[..items.len().min(1)])
        .await
        .pop()
        .ok_or_else(|| ToolError::msg("get message failed: Lark returned no message"))
}

#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub(super) enum Order {
    NewestFirst,
    OldestFirst,
}

with_paging! {
    "Items per page, 1–50.",
    pub(super) struct ListArgs {
        /// The chat (oc_…); give this or thread_id.
        // SEP-2243: HTTP clients mirror it into an `Mcp-Param-Chat-Id` header, so a
        // gateway can route or authorize on the chat without parsing the body.
        #[schemars(extend("x-mcp-header" = "Chat-Id"))]
        chat_id: Option<String>,
        /// The thread (omt_…); give this or chat_id.
        thread_id: Option<String>,
        /// Earliest: ISO 8601, a span back (30m, 24h, 7d), today or yesterday.
        since: Option<String>,
        /// Latest send time, same forms.
        until: Option<String>,
        /// newest_first (default) or oldest_first.
        order: Option<Order>,
    }
}

#[derive(Serialize, JsonSchema)]
pub(super) struct MessagesOut {
    messages: Vec<MessageOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

pub(super) async fn list_messages(ctx: ToolCtx, mut a: ListArgs) -> Result<MessagesOut, ToolError> {
    let (kind, id) = match (&a.chat_id, &a.thread_id) {
        (Some(c), None) => ("chat", c.clone()),
        (None, Some(t)) => ("thread", t.clone()),
        _ => return Err(ToolError::msg("Give exactly one of chat_id or thread_id.")),
    };
    let (since, until) = time_window(a.since.as_deref(), a.until.as_deref())?;
    let order = a.order.unwrap_or(Order::NewestFirst);
    let mut base = ctx
        .acting(Request::get(
            "list messages",
            "/open-apis/im/v1/messages".into(),
        ))
        .query("container_id_type", kind)
        .query("container_id", id)
        .query(
            "sort_type",
            if order == Order::NewestFirst {
                "ByCreateTimeDesc"
            } else {
                "ByCreateTimeAsc"
            },
        );
    // Lark takes a window only for chats; threads are filtered here.
    if kind == "chat" {
        base = base
            .query_opt("start_time", since.map(|t| t.timestamp().to_string()))
            .query_opt("end_time", until.map(|t| t.timestamp().to_string()));
    }
    let paging = a.paging();
    let (mut raw, next, _) = pages(
        &ctx,
        base.query("user_id_type", "open_id"),
        "items",
        paging,
        50,
    )
    .await?;
    if kind == "thread" {
        let ms = |t: Option<chrono::DateTime<Utc>>| t.map(|t| t.timestamp_millis());
        let (lo, hi) = (ms(since), ms(until));
        raw.retain(|m| {
            let t = m["create_time"]
                .as_str()
                .and_then(|x| x.parse::<i64>().ok())
                .unwrap_or(0);
            lo.is_none_or(|lo| t >= lo) && hi.is_none_or(|hi| t <= hi)
        });
    }
    let mut messages = render_all(&ctx, &raw).await;
    if kind == "chat" {
        // Every message is in the chat that was asked for: no need to repeat it.
        messages.iter_mut().for_each(|m| m.chat_id = None);
    }
    Ok(MessagesOut {
        messages,
        next_page_token: next,
    })
}

with_paging! {
    "Items per page, 1–100.",
    pub(super) struct ReadUsersArgs {
        /// A message the bot sent in the last 7 days (om_…).
        message_id: String,
    }
}

#[derive(Serialize, JsonSchema)]
pub(super) struct Reader {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_at: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct ReadersOut {
    readers: Vec<Reader>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

pub(super) async fn get_read_users(
    ctx: ToolCtx,
    mut a: ReadUsersArgs,
) -> Result<ReadersOut, ToolError> {
    let path = message_path("/open-apis/im/v1/messages/{}/read_users", &a.message_id)?;
    let base = Request::get("list message readers", path).query("user_id_type", "open_id");
    let paging = a.paging();
    let (raw, next, _) = pages(&ctx, base, "items", paging, 100).await?;
    let ids: Vec<String> = raw
        .iter()
        .filter_map(|r| r["user_id"].as_str().map(String::from))
        .collect();
    let names = ctx.shared.names.users(&ctx, &ids).await;
    let readers = raw
        .iter()
        .map(|r| {
            let id = r["user_id"].as_str().unwrap_or("").to_string();
            Reader {
                name: names.get(&id).cloned(),
                id,
                read_at: r.get("timestamp").map(iso_time),
            }
        })
        .collect();
    Ok(ReadersOut {
        readers,
        next_page_token: next,
    })
}
