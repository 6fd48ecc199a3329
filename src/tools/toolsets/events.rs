//! Toolset `events`: messages people send, as they arrive over Lark's long connection
//! (`crate::lark::longconn`), kept in the inbox (`crate::lark::inbox`). An agent waits for
//! the next one or picks up what came since it last looked.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::messages::render_all;
use crate::lark::inbox::Arrived;
use crate::tools::content::render::MessageOut;
use crate::tools::{ToolCtx, ToolDef, ToolError, ToolMeta, Toolset};

const WAIT_MAX_SECS: u64 = 300;
const WAIT_DEFAULT_SECS: u64 = 60;
/// A waiting call tells the client it is alive this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Read-only, but not idempotent: each call may see other messages.
const fn read(name: &'static str, title: &'static str, description: &'static str) -> ToolMeta {
    ToolMeta {
        toolset: Toolset::Events,
        // Lark decides which messages the app hears by its event subscription; no API
        // scope is called here.
        scopes: &[],
        idempotent: false,
        ..super::contact::read(name, title, description, &[])
    }
}

pub fn tools() -> Vec<ToolDef> {
    vec![
        ToolDef::new(
            read(
                "wait_for_messages",
                "Wait for a message",
                "Wait for the next message to the bot's chats (optionally one chat, sender, or @-mentions of the bot); use it to react to messages as they come.",
            ),
            wait_for_messages,
        ),
        ToolDef::new(
            read(
                "get_new_messages",
                "Get new messages",
                "Get the messages received since a cursor (from the previous call) without waiting.",
            ),
            get_new_messages,
        ),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WaitArgs {
    /// Only this chat (oc_…).
    chat_id: Option<String>,
    /// Only from this person (open_id).
    from: Option<String>,
    /// Only messages that @-mention the bot.
    #[serde(default)]
    mentions_me: bool,
    /// Give up after this many seconds, 1–300 (default 60).
    timeout_secs: Option<u64>,
    /// Only messages after this cursor (default: from now).
    cursor: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct Incoming {
    messages: Vec<MessageOut>,
    /// Pass to the next call to continue after these.
    cursor: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    timed_out: bool,
    /// The long connection's state when nothing came.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

fn parse_cursor(c: &Option<String>) -> Result<Option<u64>, ToolError> {
    c.as_deref()
        .map(|c| {
            c.parse::<u64>().map_err(|_| {
                ToolError::invalid("cursor", "use the cursor a previous call returned")
            })
        })
        .transpose()
}

/// The bot's open_id, for `mentions_me` (cached with the names).
async fn bot_open_id(ctx: &ToolCtx) -> Option<String> {
    const KEY: &str = "app:bot_open_id";
    if let Some(id) = ctx.shared.names.get(KEY) {
        return Some(id);
    }
    let info = ctx.client().bot_info(&ctx.cancel).await.ok()?;
    let id = info.get("open_id").and_then(Value::as_str)?.to_string();
    ctx.shared.names.put(KEY, &id);
    Some(id)
}

/// Why nothing may be coming: the connection is down or gave up.
fn connection_note(ctx: &ToolCtx) -> Option<String> {
    let Some(conn) = ctx.shared.longconn.get() else {
        return Some("The long connection is not running: start the server with the events toolset (--toolsets …,events).".into());
    };
    let s = conn.status();
    if s.stopped {
        Some(format!(
            "The long connection has stopped: {}.",
            s.last_error.unwrap_or_default()
        ))
    } else if !s.connected {
        Some(format!(
            "The long connection is reconnecting{}.",
            s.last_error.map(|e| format!(" ({e})")).unwrap_or_default()
        ))
    } else {
        None
    }
}

async fn out(ctx: &ToolCtx, found: Vec<Arrived>, cursor: u64, timed_out: bool) -> Incoming {
    let cursor = found.last().map(|a| a.cursor).unwrap_or(cursor);
    let raw: Vec<Value> = found.into_iter().map(|a| a.message).collect();
    let note = raw.is_empty().then(|| connection_note(ctx)).flatten();
    Incoming {
        messages: render_all(ctx, &raw).await,
        cursor: cursor.to_string(),
        timed_out,
        note,
    }
}

async fn wait_for_messages(ctx: ToolCtx, a: WaitArgs) -> Result<Incoming, ToolError> {
    let secs = a.timeout_secs.unwrap_or(WAIT_DEFAULT_SECS);
    if !(1..=WAIT_MAX_SECS).contains(&secs) {
        return Err(ToolError::invalid("timeout_secs", "must be 1–300"));
    }
    let inbox = ctx.shared.inbox.clone();
    let cursor = parse_cursor(&a.cursor)?.unwrap_or_else(|| inbox.newest());
    let me = if a.mentions_me {
        Some(bot_open_id(&ctx).await.ok_or_else(|| {
            ToolError::msg("Cannot tell which messages mention the bot: its open_id could not be read (bot/v3/info).")
        })?)
    } else {
        None
    };
    let keep = |m: &Arrived| {
        a.chat_id.as_deref().is_none_or(|c| m.chat_id == c)
            && a.from.as_deref().is_none_or(|f| m.sender == f)
            && me
                .as_deref()
                .is_none_or(|id| m.mentions.iter().any(|x| x == id))
    };
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut seen = cursor;
    loop {
        let found = inbox.since(cursor, keep);
        if !found.is_empty() {
            return Ok(out(&ctx, found, cursor, false).await);
        }
        // Later checks look only at what is newer than what was already ruled out.
        let newest = inbox.newest().max(seen);
        seen = newest;
        let tick = (tokio::time::Instant::now() + PROGRESS_EVERY).min(deadline);
        tokio::select! {
            _ = ctx.cancel.cancelled() => return Err(ToolError::msg("Cancelled while waiting for messages.")),
            _ = inbox.changed_after(newest) => {}
            _ = tokio::time::sleep_until(tick) => {
                if tokio::time::Instant::now() >= deadline {
                    return Ok(out(&ctx, Vec::new(), newest.max(cursor), true).await);
                }
                let waited = started.elapsed().as_secs();
                ctx.progress
                    .report(waited, Some(secs), format!("waiting for a message: {waited} of {secs} s"))
                    .await;
            }
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewArgs {
    /// The cursor a previous call returned (default: everything still kept).
    cursor: Option<String>,
    /// Only this chat (oc_…).
    chat_id: Option<String>,
}

async fn get_new_messages(ctx: ToolCtx, a: NewArgs) -> Result<Incoming, ToolError> {
    let cursor = parse_cursor(&a.cursor)?.unwrap_or(0);
    let found = ctx.shared.inbox.since(cursor, |m| {
        a.chat_id.as_deref().is_none_or(|c| m.chat_id == c)
    });
    let newest = ctx.shared.inbox.newest().max(cursor);
    Ok(out(&ctx, found, newest, false).await)
}
