//! Toolset `messages`: send, reply, edit, recall and forward messages; read history;
//! reactions, pins and read receipts. Uploads and downloads are in [`files`].

pub mod files;

use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::lark::scope_sets as scopes;
use crate::lark::{Method, Request, api_path};
use crate::sandbox::api::EMOJI_TYPES;
use crate::tools::content::compose::{ReceiverType, compose, with_content};
use crate::tools::content::render::{MessageOut, iso_time, people_in, render};
use crate::tools::output::NamedId;
use crate::tools::paging::{pages, with_paging};
use crate::tools::{Needs, ToolCtx, ToolDef, ToolError, ToolMeta, Toolset, when};

#[allow(clippy::too_many_arguments)]
pub(super) const fn meta(
    name: &'static str,
    title: &'static str,
    description: &'static str,
    scopes: &'static [&'static str],
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    needs: Needs,
) -> ToolMeta {
    ToolMeta {
        name,
        toolset: Toolset::Messages,
        title,
        description,
        scopes,
        read_only,
        destructive,
        idempotent,
        needs,
    }
}

pub fn tools() -> Vec<ToolDef> {
    use Needs::Nothing;
    vec![
        ToolDef::new(
            meta(
                "send_message",
                "Send a message",
                "Send a message to a person (open_id, union_id, user_id or email) or a chat (chat_id) as the bot. Give exactly one of text, markdown, card, image_key, file_key, share_chat, share_user.",
                scopes::MESSAGE_SEND,
                false,
                false,
                false,
                Nothing,
            ),
            send_message,
        ),
        ToolDef::new(
            meta(
                "reply_message",
                "Reply to a message",
                "Reply to a message, optionally in its thread; same content forms as send_message.",
                scopes::MESSAGE_SEND,
                false,
                false,
                false,
                Nothing,
            ),
            reply_message,
        ),
        ToolDef::new(
            meta(
                "edit_message",
                "Edit a message",
                "Replace the content of a message the bot sent: text or markdown, or a card for card messages.",
                scopes::MESSAGE_UPDATE,
                false,
                false,
                true,
                Nothing,
            ),
            edit_message,
        ),
        ToolDef::new(
            meta(
                "recall_message",
                "Recall a message",
                "Recall (delete for everyone) a message the bot sent.",
                scopes::MESSAGE_RECALL,
                false,
                true,
                true,
                Nothing,
            ),
            recall_message,
        ),
        ToolDef::new(
            meta(
                "forward_message",
                "Forward a message",
                "Forward a message to a person, chat or thread.",
                scopes::MESSAGE_FORWARD,
                false,
                false,
                false,
                Nothing,
            ),
            forward_message,
        ),
        ToolDef::new(
            meta(
                "get_message",
                "Get a message",
                "Get one message, rendered as text with its sender's name.",
                scopes::MESSAGE_READ,
                true,
                false,
                true,
                Nothing,
            ),
            get_message,
        ),
        ToolDef::new(
            meta(
                "list_messages",
                "Read chat history",
                "Read messages in a chat or thread, newest first by default; since/until take ISO 8601 or spans like 30m, 24h, 7d, today.",
                scopes::MESSAGE_HISTORY,
                true,
                false,
                true,
                Nothing,
            ),
            list_messages,
        ),
        ToolDef::new(
            meta(
                "add_reaction",
                "React to a message",
                "Add an emoji reaction (e.g. THUMBSUP, OK, DONE, SMILE) to a message.",
                scopes::REACTIONS_WRITE,
                false,
                false,
                false,
                Nothing,
            ),
            add_reaction,
        ),
        ToolDef::new(
            meta(
                "list_reactions",
                "List reactions",
                "List the reactions on a message and who added them.",
                scopes::REACTIONS_READ,
                true,
                false,
                true,
                Nothing,
            ),
            list_reactions,
        ),
        ToolDef::new(
            meta(
                "remove_reaction",
                "Remove a reaction",
                "Remove a reaction the bot added (reaction_id from add_reaction or list_reactions).",
                scopes::REACTIONS_WRITE,
                false,
                true,
                true,
                Nothing,
            ),
            remove_reaction,
        ),
        ToolDef::new(
            meta(
                "pin_message",
                "Pin a message",
                "Pin a message in its chat.",
                scopes::PINS_WRITE,
                false,
                false,
                true,
                Nothing,
            ),
            pin_message,
        ),
        ToolDef::new(
            meta(
                "unpin_message",
                "Unpin a message",
                "Remove a message's pin.",
                scopes::UNPIN,
                false,
                true,
                true,
                Nothing,
            ),
            unpin_message,
        ),
        ToolDef::new(
            meta(
                "list_pins",
                "List pinned messages",
                "List a chat's pinned messages, newest pin first.",
                scopes::PINS_READ,
                true,
                false,
                true,
                Nothing,
            ),
            list_pins,
        ),
        ToolDef::new(
            meta(
                "get_read_users",
                "Who read a message",
                "List who has read a message the bot sent in the last 7 days.",
                scopes::MESSAGE_READ,
                true,
                false,
                true,
                Nothing,
            ),
            get_read_users,
        ),
    ]
}

fn message_path(template: &str, id: &str) -> Result<String, ToolError> {
    api_path(template, &[id]).map_err(|e| ToolError::invalid("message_id", e.msg))
}

#[derive(Serialize, JsonSchema)]
struct Sent {
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
    struct SendArgs {
        /// open_id (ou_…), union_id (on_…), user_id, email, or chat_id (oc_…).
        to: String,
        /// Inferred from `to` when omitted.
        to_type: Option<ReceiverType>,
        /// Retrying with the same key never sends twice (Lark dedupes for 1 hour).
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

async fn send_message(ctx: ToolCtx, mut a: SendArgs) -> Result<Sent, ToolError> {
    check_key(&a.idempotency_key)?;
    if a.to.trim().is_empty() {
        return Err(ToolError::invalid("to", "must not be empty"));
    }
    let kind = ReceiverType::resolve(a.to_type, &a.to);
    let msg = compose(&ctx, a.content()).await?;
    let req = Request::post(
        "send message",
        "/open-apis/im/v1/messages".into(),
        json!({"receive_id": a.to, "msg_type": msg.msg_type, "content": msg.content}),
    )
    .query("receive_id_type", kind.as_str())
    .dedupe_in_body(a.idempotency_key)
    .pace(pace_key(&ctx, &a.to, kind).await);
    let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
    Ok(delivered(&ctx, &a.to, &data))
}

with_content! {
    struct ReplyArgs {
        /// The message to reply to (om_…).
        message_id: String,
        /// Reply inside the message's thread.
        #[serde(default)]
        in_thread: bool,
        /// Retrying with the same key never sends twice (Lark dedupes for 1 hour).
        idempotency_key: Option<String>,
    }
}

async fn reply_message(ctx: ToolCtx, mut a: ReplyArgs) -> Result<Sent, ToolError> {
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
    let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
    Ok(delivered(&ctx, &a.message_id, &data))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EditArgs {
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

#[derive(Serialize, JsonSchema)]
struct Done {
    message_id: String,
    ok: bool,
}

async fn edit_message(ctx: ToolCtx, a: EditArgs) -> Result<Done, ToolError> {
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
    ctx.client().call(req.idempotent(), &ctx.cancel).await?;
    Ok(Done {
        message_id: a.message_id,
        ok: true,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct MessageIdArgs {
    /// The message (om_…).
    message_id: String,
}

async fn recall_message(ctx: ToolCtx, a: MessageIdArgs) -> Result<Done, ToolError> {
    let path = message_path("/open-apis/im/v1/messages/{}", &a.message_id)?;
    ctx.delete("recall message", path).await?;
    Ok(Done {
        message_id: a.message_id,
        ok: true,
    })
}

#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
enum ForwardTarget {
    OpenId,
    UnionId,
    UserId,
    Email,
    ChatId,
    ThreadId,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ForwardArgs {
    /// The message to forward (om_…).
    message_id: String,
    /// open_id, union_id, user_id, email, chat_id (oc_…) or thread_id (omt_…).
    to: String,
    /// Inferred from `to` when omitted.
    to_type: Option<ForwardTarget>,
    /// Retrying with the same key never forwards twice.
    idempotency_key: Option<String>,
}

async fn forward_message(ctx: ToolCtx, a: ForwardArgs) -> Result<Sent, ToolError> {
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
    let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
    Ok(delivered(&ctx, &a.to, &data))
}

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

async fn render_all(ctx: &ToolCtx, raw: &[Value]) -> Vec<MessageOut> {
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

async fn get_message(ctx: ToolCtx, a: MessageIdArgs) -> Result<MessageOut, ToolError> {
    let path = message_path("/open-apis/im/v1/messages/{}", &a.message_id)?;
    let req = Request::get("get message", path).query("user_id_type", "open_id");
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
enum Order {
    NewestFirst,
    OldestFirst,
}

with_paging! {
    "Items per page, 1–50.",
    struct ListArgs {
        /// The chat (oc_…); give this or thread_id.
        chat_id: Option<String>,
        /// The thread (omt_…); give this or chat_id.
        thread_id: Option<String>,
        /// Earliest send time: ISO 8601, or a span back from now (30m, 24h, 7d), today, yesterday.
        since: Option<String>,
        /// Latest send time, same forms.
        until: Option<String>,
        /// newest_first (default) or oldest_first.
        order: Option<Order>,
    }
}

#[derive(Serialize, JsonSchema)]
struct MessagesOut {
    messages: Vec<MessageOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

async fn list_messages(ctx: ToolCtx, mut a: ListArgs) -> Result<MessagesOut, ToolError> {
    let (kind, id) = match (&a.chat_id, &a.thread_id) {
        (Some(c), None) => ("chat", c.clone()),
        (None, Some(t)) => ("thread", t.clone()),
        _ => return Err(ToolError::msg("Give exactly one of chat_id or thread_id.")),
    };
    let now = Utc::now();
    let since = a
        .since
        .as_deref()
        .map(|s| when::parse(s, now))
        .transpose()
        .map_err(|e| ToolError::invalid("since", e))?;
    let until = a
        .until
        .as_deref()
        .map(|s| when::parse(s, now))
        .transpose()
        .map_err(|e| ToolError::invalid("until", e))?;
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        return Err(ToolError::invalid("since", "is after until"));
    }
    let order = a.order.unwrap_or(Order::NewestFirst);
    let mut base = Request::get("list messages", "/open-apis/im/v1/messages".into())
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

// ---- reactions ---------------------------------------------------------------------------

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReactArgs {
    /// The message (om_…).
    message_id: String,
    /// Lark emoji key, e.g. THUMBSUP, OK, DONE, SMILE, HEART, CLAP.
    emoji: String,
}

#[derive(Serialize, JsonSchema)]
struct Reaction {
    reaction_id: String,
    emoji: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<NamedId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
}

fn reaction(r: &Value, names: &std::collections::HashMap<String, String>) -> Reaction {
    let by = r["operator"]["operator_id"]
        .as_str()
        .map(|id| NamedId::new(id, names));
    Reaction {
        reaction_id: r["reaction_id"].as_str().unwrap_or("").to_string(),
        emoji: r["reaction_type"]["emoji_type"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        by,
        time: r.get("action_time").map(iso_time),
    }
}

/// Where Lark lists its emoji keys.
const EMOJI_LIST_URL: &str =
    "https://open.feishu.cn/document/server-docs/im-v1/message-reaction/emojis-introduce";

/// Lark's emoji keys are case-sensitive (`THUMBSUP`, `Get`, `OnIt`) while agents write
/// `thumbsup`; a key that matches one known key in any case is sent in Lark's spelling.
/// Unknown keys go as given: Lark's table grows, and its 231001 then says what is wrong.
fn lark_emoji(field: &str, emoji: &str) -> Result<String, ToolError> {
    let emoji = emoji.trim();
    if emoji.is_empty() {
        return Err(ToolError::invalid(field, "must not be empty"));
    }
    if EMOJI_TYPES.contains(&emoji) {
        return Ok(emoji.to_string());
    }
    let matches: Vec<&str> = EMOJI_TYPES
        .iter()
        .copied()
        .filter(|k| k.eq_ignore_ascii_case(emoji))
        .collect();
    match matches.as_slice() {
        [] => Ok(emoji.to_string()),
        [one] => Ok((*one).to_string()),
        // `YEAH` and `Yeah` are different emoji; guessing would put the wrong one on.
        several => Err(ToolError::invalid(
            field,
            format!(
                "`{emoji}` could mean any of {}; Lark's emoji keys are case-sensitive, so give one exactly",
                several.join(", ")
            ),
        )),
    }
}

/// Lark's 231001 names no key; say how keys are spelled and where the list is.
fn emoji_hint(mut err: ToolError, emoji: &str) -> ToolError {
    if err.lark.as_ref().and_then(|l| l.code) == Some(231001) {
        err.text.push_str(&format!(
            " Lark does not know the emoji key `{emoji}`. Keys are case-sensitive, e.g. THUMBSUP, OK, DONE, SMILE, LGTM, Get; the full list is at {EMOJI_LIST_URL}."
        ));
    }
    err
}

async fn add_reaction(ctx: ToolCtx, a: ReactArgs) -> Result<Reaction, ToolError> {
    let emoji = lark_emoji("emoji", &a.emoji)?;
    let path = message_path("/open-apis/im/v1/messages/{}/reactions", &a.message_id)?;
    let req = Request::post(
        "add reaction",
        path,
        json!({"reaction_type": {"emoji_type": emoji}}),
    );
    let data = ctx
        .client()
        .call(req, &ctx.cancel)
        .await
        .map_err(|e| emoji_hint(e.into(), &emoji))?
        .into_data();
    Ok(reaction(&data, &Default::default()))
}

with_paging! {
    "Items per page, 1–50.",
    struct ListReactionsArgs {
        /// The message (om_…).
        message_id: String,
        /// Only this emoji key.
        emoji: Option<String>,
    }
}

#[derive(Serialize, JsonSchema)]
struct ReactionsOut {
    reactions: Vec<Reaction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

async fn list_reactions(ctx: ToolCtx, mut a: ListReactionsArgs) -> Result<ReactionsOut, ToolError> {
    let path = message_path("/open-apis/im/v1/messages/{}/reactions", &a.message_id)?;
    let emoji = a
        .emoji
        .take()
        .map(|e| lark_emoji("emoji", &e))
        .transpose()?;
    let base = Request::get("list reactions", path)
        .query("user_id_type", "open_id")
        .query_opt("reaction_type", emoji.clone());
    let paging = a.paging();
    let (raw, next, _) =
        pages(&ctx, base, "items", paging, 50)
            .await
            .map_err(|e| match &emoji {
                Some(emoji) => emoji_hint(e, emoji),
                None => e,
            })?;
    let people: Vec<String> = raw
        .iter()
        .filter(|r| r["operator"]["operator_type"] == "user")
        .filter_map(|r| r["operator"]["operator_id"].as_str().map(String::from))
        .collect();
    let names = ctx.shared.names.users(&ctx, &people).await;
    Ok(ReactionsOut {
        reactions: raw.iter().map(|r| reaction(r, &names)).collect(),
        next_page_token: next,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RemoveReactionArgs {
    /// The message (om_…).
    message_id: String,
    /// From add_reaction or list_reactions.
    reaction_id: String,
}

async fn remove_reaction(ctx: ToolCtx, a: RemoveReactionArgs) -> Result<Done, ToolError> {
    let path = api_path(
        "/open-apis/im/v1/messages/{}/reactions/{}",
        &[&a.message_id, &a.reaction_id],
    )
    .map_err(|e| ToolError::invalid("reaction_id", e.msg))?;
    ctx.delete("remove reaction", path).await?;
    Ok(Done {
        message_id: a.message_id,
        ok: true,
    })
}

// ---- pins and read receipts -----------------------------------------------------------

#[derive(Serialize, JsonSchema)]
struct Pin {
    message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    chat_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<NamedId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
}

fn pin(p: &Value, names: &std::collections::HashMap<String, String>) -> Pin {
    Pin {
        message_id: p["message_id"].as_str().unwrap_or("").to_string(),
        chat_id: p["chat_id"].as_str().map(String::from),
        by: p["operator_id"].as_str().map(|id| NamedId::new(id, names)),
        time: p.get("create_time").map(iso_time),
    }
}

async fn pin_message(ctx: ToolCtx, a: MessageIdArgs) -> Result<Pin, ToolError> {
    if a.message_id.trim().is_empty() {
        return Err(ToolError::invalid("message_id", "must not be empty"));
    }
    let req = Request::post(
        "pin message",
        "/open-apis/im/v1/pins".into(),
        json!({"message_id": a.message_id}),
    )
    .idempotent();
    let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
    Ok(pin(&data["pin"], &Default::default()))
}

async fn unpin_message(ctx: ToolCtx, a: MessageIdArgs) -> Result<Done, ToolError> {
    let path = message_path("/open-apis/im/v1/pins/{}", &a.message_id)?;
    ctx.delete("unpin message", path).await?;
    Ok(Done {
        message_id: a.message_id,
        ok: true,
    })
}

with_paging! {
    "Items per page, 1–50.",
    struct PinsArgs {
        /// The chat (oc_…).
        chat_id: String,
        /// Pinned at or after: ISO 8601 or a span back from now (7d).
        since: Option<String>,
        /// Pinned at or before, same forms.
        until: Option<String>,
    }
}

#[derive(Serialize, JsonSchema)]
struct PinsOut {
    pins: Vec<Pin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

async fn list_pins(ctx: ToolCtx, mut a: PinsArgs) -> Result<PinsOut, ToolError> {
    let now = Utc::now();
    let ms = |field: &str, v: Option<&str>| -> Result<Option<String>, ToolError> {
        v.map(|s| when::parse(s, now).map(|t| t.timestamp_millis().to_string()))
            .transpose()
            .map_err(|e| ToolError::invalid(field, e))
    };
    let base = Request::get("list pins", "/open-apis/im/v1/pins".into())
        .query("chat_id", a.chat_id.clone())
        .query_opt("start_time", ms("since", a.since.as_deref())?)
        .query_opt("end_time", ms("until", a.until.as_deref())?);
    let paging = a.paging();
    let (raw, next, _) = pages(&ctx, base, "items", paging, 50).await?;
    let people: Vec<String> = raw
        .iter()
        .filter(|p| p["operator_id_type"] != "app_id")
        .filter_map(|p| p["operator_id"].as_str().map(String::from))
        .collect();
    let names = ctx.shared.names.users(&ctx, &people).await;
    Ok(PinsOut {
        pins: raw.iter().map(|p| pin(p, &names)).collect(),
        next_page_token: next,
    })
}

with_paging! {
    "Items per page, 1–100.",
    struct ReadUsersArgs {
        /// A message the bot sent in the last 7 days (om_…).
        message_id: String,
    }
}

#[derive(Serialize, JsonSchema)]
struct Reader {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_at: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct ReadersOut {
    readers: Vec<Reader>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

async fn get_read_users(ctx: ToolCtx, mut a: ReadUsersArgs) -> Result<ReadersOut, ToolError> {
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
