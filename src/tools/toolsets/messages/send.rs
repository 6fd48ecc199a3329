//! Send, reply, edit, recall and forward, and the pacing that keys sends by receiver.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Done, MessageIdArgs, message_path};
use crate::lark::{Method, Request};
use crate::tools::content::compose::{ReceiverType, compose, with_content};
use crate::tools::content::render::iso_time;
use crate::tools::guard::{Target, Write};
use crate::tools::{ToolCtx, ToolError};

#[derive(Serialize, JsonSchema)]
pub(super) struct Sent {
    message_id: String,
    chat_id: String,
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_id: Option<String>,
}

/// Who Lark counts a send against. An email is one more name for a person, so it is
/// resolved once (cached, misses too) to the open_id that the person's other sends use.
/// Pacing never fails a send: without an answer the email itself is the key.
async fn pace_key(ctx: &ToolCtx, to: &str, kind: ReceiverType) -> String {
    if kind != ReceiverType::Email {
        return to.to_string();
    }
    const UNKNOWN: &str = "-";
    let email = to.trim().to_lowercase();
    let cache_key = format!("pace:{email}");
    let open_id = match ctx.shared.names.get(&cache_key) {
        Some(id) => id,
        None => {
            let found = crate::tools::names::open_ids_by_email(
                ctx,
                "resolve the receiver's email",
                &[&email],
            )
            .await
            .ok()
            .and_then(|m| m.get(&email).cloned());
            let id = found.unwrap_or_else(|| UNKNOWN.to_string());
            ctx.shared.names.put(&cache_key, &id);
            id
        }
    };
    if open_id == UNKNOWN {
        to.to_string()
    } else {
        open_id
    }
}

/// The answer to a send, and what it teaches the pacer: `to` (an email, open_id or the
/// replied-to message) reaches this chat, so later sends under any of its names share one
/// rate window.
fn delivered(ctx: &ToolCtx, to: &str, data: &Value) -> Sent {
    let out = sent(data);
    ctx.client().learn_receiver(to, &out.chat_id);
    out
}

fn sent(data: &Value) -> Sent {
    let s = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Sent {
        message_id: s("message_id"),
        chat_id: s("chat_id"),
        time: iso_time(&data["create_time"]),
        thread_id: data
            .get("thread_id")
            .and_then(Value::as_str)
            .map(String::from),
    }
}

with_content! {
    pub(super) struct SendArgs {
        /// open_id (ou_…), union_id (on_…), user_id, email, or chat_id (oc_…).
        to: String,
        /// Inferred from `to` when omitted.
        to_type: Option<ReceiverType>,
        /// Retrying with it never sends twice (1 h).
        idempotency_key: Option<String>,
    }
}

fn check_key(key: &Option<String>) -> Result<(), ToolError> {
    match key {
        Some(k) if k.is_empty() || k.len() > 50 => Err(ToolError::invalid(
            "idempotency_key",
            "must be 1–50 characters",
        )),
        _ => Ok(()),
    }
}

pub(super) async fn send_message(ctx: ToolCtx, mut a: SendArgs) -> Result<Sent, ToolError> {
    check_key(&a.idempotency_key)?;
    if a.to.trim().is_empty() {
        return Err(ToolError::invalid("to", "must not be empty"));
    }
    let kind = ReceiverType::resolve(a.to_type, &a.to);
    let msg = compose(&ctx, a.content()).await?;
    let req = ctx.acting(
        Request::post(
            "send message",
            "/open-apis/im/v1/messages".into(),
            json!({"receive_id": a.to, "msg_type": msg.msg_type, "content": msg.content}),
        )
        .query("receive_id_type", kind.as_str())
        .dedupe_in_body(a.idempotency_key),
    );
    ctx.guard(Write::message(Target::receiver(&a.to, kind.as_str())), &req)
        .await?;
    let req = req.pace(pace_key(&ctx, &a.to, kind).await);
    let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
    Ok(delivered(&ctx, &a.to, &data))
}

with_content! {
    pub(super) struct ReplyArgs {
        /// The message to reply to (om_…).
        message_id: String,
        /// Reply inside the message's thread.
        #[serde(default)]
        in_thread: bool,
        /// Retrying with it never sends twice (1 h).
        idempotency_key: Option<String>,
    }
}

pub(super) async fn reply_message(ctx: ToolCtx, mut a: ReplyArgs) -> Result<Sent, ToolError> {
    check_key(&a.idempotency_key)?;
    let msg = compose(&ctx, a.content()).await?;
    let path = message_path("/open-apis/im/v1/messages/{}/reply", &a.message_id)?;
    let req = Request::post(
        "reply to message",
        path,
        json!({"msg_type": msg.msg_type, "content": msg.content, "reply_in_thread": a.in_thread}),
    )
    .dedupe_in_body(a.idempotency_key)
    .pace(a.message_id.clone());
    let data = ctx
        .write(
            Write::message(Target::Message(a.message_id.clone())),
            ctx.acting(req),
        )
        .await?
        .into_data();
    Ok(delivered(&ctx, &a.message_id, &data))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EditArgs {
    /// The bot's message to edit (om_…).
    message_id: String,
    /// New plain text.
    text: Option<String>,
    /// New markdown (becomes a rich-text post).
    markdown: Option<String>,
    /// New card, for card messages (the card must allow updates).
    // Typed for schema checkers (MCP Inspector --strict wants a validation keyword).
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    card: Option<Value>,
}

pub(super) async fn edit_message(ctx: ToolCtx, a: EditArgs) -> Result<Done, ToolError> {
    let path = message_path("/open-apis/im/v1/messages/{}", &a.message_id)?;
    let choice = crate::tools::content::compose::ContentChoice {
        text: a.text,
        markdown: a.markdown,
        card: a.card,
        ..Default::default()
    };
    let msg = compose(&ctx, choice).await?;
    let req = if msg.msg_type == "interactive" {
        Request::new("update card message", Method::PATCH, path)
            .json(json!({"content": msg.content}))
    } else {
        Request::new("edit message", Method::PUT, path)
            .json(json!({"msg_type": msg.msg_type, "content": msg.content}))
    };
    ctx.write(Write::on_message(&a.message_id), req.idempotent())
        .await?;
    Ok(Done {
        message_id: a.message_id,
        ok: true,
    })
}

pub(super) async fn recall_message(ctx: ToolCtx, a: MessageIdArgs) -> Result<Done, ToolError> {
    let path = message_path("/open-apis/im/v1/messages/{}", &a.message_id)?;
    ctx.delete(Write::on_message(&a.message_id), "recall message", path)
        .await?;
    Ok(Done {
        message_id: a.message_id,
        ok: true,
    })
}

#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub(super) enum ForwardTarget {
    OpenId,
    UnionId,
    UserId,
    Email,
    ChatId,
    ThreadId,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ForwardArgs {
    /// The message to forward (om_…).
    message_id: String,
    /// open_id, union_id, user_id, email, chat_id (oc_…) or thread_id (omt_…).
    to: String,
    /// Inferred from `to` when omitted.
    to_type: Option<ForwardTarget>,
    /// Retrying with it never forwards twice.
    idempotency_key: Option<String>,
}

pub(super) async fn forward_message(ctx: ToolCtx, a: ForwardArgs) -> Result<Sent, ToolError> {
    check_key(&a.idempotency_key)?;
    let kind = match a.to_type {
        Some(ForwardTarget::ThreadId) => "thread_id",
        None if a.to.starts_with("omt_") => "thread_id",
        Some(ForwardTarget::OpenId) => "open_id",
        Some(ForwardTarget::UnionId) => "union_id",
        Some(ForwardTarget::UserId) => "user_id",
        Some(ForwardTarget::Email) => "email",
        Some(ForwardTarget::ChatId) => "chat_id",
        None => ReceiverType::resolve(None, &a.to).as_str(),
    };
    let path = message_path("/open-apis/im/v1/messages/{}/forward", &a.message_id)?;
    let req = Request::post("forward message", path, json!({"receive_id": a.to}))
        .query("receive_id_type", kind)
        .dedupe_in_query(a.idempotency_key)
        .pace(a.to.clone());
    let data = ctx
        .write(Write::message(Target::receiver(&a.to, kind)), req)
        .await?
        .into_data();
    Ok(delivered(&ctx, &a.to, &data))
}
