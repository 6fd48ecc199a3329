//! The group chats the bot is in (id and name), for completing chat arguments as a user
//! types. Read from Lark's `GET /open-apis/im/v1/chats` through the shared client, kept for
//! a minute, and fetched by one caller at a time: a burst of keystrokes costs one listing.
//! A failure is remembered briefly too, so a Lark outage does not turn typing into a
//! request storm; completion then offers nothing instead of failing.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::lark::Request;
use crate::tools::paging::{Paging, pages};
use crate::tools::{Progress, Shared, ToolCtx};

/// How long a successful listing is reused.
const FRESH_FOR: Duration = Duration::from_secs(60);
/// How long a failed listing is remembered before Lark is asked again.
const FAILED_FOR: Duration = Duration::from_secs(5);
/// Completion must answer while the user types: a slower listing is given up.
const FETCH_BUDGET: Duration = Duration::from_secs(5);
/// At most this many chats are read (Lark pages of 100).
const MAX_CHATS: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEntry {
    pub chat_id: String,
    pub name: String,
}

struct Cached {
    at: Instant,
    ok: bool,
    chats: Arc<Vec<ChatEntry>>,
}

#[derive(Default)]
pub struct ChatDirectory {
    cached: Mutex<Option<Cached>>,
}

impl ChatDirectory {
    /// The bot's chats, from the cache when fresh; empty when Lark cannot be read.
    pub async fn chats(&self, shared: &Arc<Shared>) -> Arc<Vec<ChatEntry>> {
        // Held across the fetch: concurrent callers wait for one listing instead of each
        // starting their own.
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh_for = if c.ok { FRESH_FOR } else { FAILED_FOR };
            if c.at.elapsed() < fresh_for {
                return c.chats.clone();
            }
        }
        let cancel = CancellationToken::new();
        let fetched = tokio::time::timeout(FETCH_BUDGET, fetch(shared, &cancel)).await;
        cancel.cancel();
        let (ok, chats) = match fetched {
            Ok(Ok(chats)) => (true, chats),
            Ok(Err(why)) => {
                tracing::debug!("completion: cannot list the bot's chats: {why}");
                (false, Vec::new())
            }
            Err(_) => {
                tracing::debug!(
                    "completion: listing the bot's chats took over {} s; offering none",
                    FETCH_BUDGET.as_secs()
                );
                (false, Vec::new())
            }
        };
        let chats = Arc::new(chats);
        *cached = Some(Cached {
            at: Instant::now(),
            ok,
            chats: chats.clone(),
        });
        chats
    }
}

async fn fetch(shared: &Arc<Shared>, cancel: &CancellationToken) -> Result<Vec<ChatEntry>, String> {
    let ctx = ToolCtx::new(shared.clone(), cancel.clone(), Progress::default());
    let base = Request::get("list chats", "/open-apis/im/v1/chats".into())
        .query("user_id_type", "open_id");
    let paging = Paging {
        page_size: None,
        page_token: None,
        all_pages: true,
        max_items: Some(MAX_CHATS),
    };
    let (raw, _, _) = pages(&ctx, base, "items", paging, 100)
        .await
        .map_err(|e| e.text)?;
    let text = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Ok(raw
        .iter()
        .map(|c| ChatEntry {
            chat_id: text(c, "chat_id"),
            name: text(c, "name"),
        })
        .filter(|c| !c.chat_id.is_empty())
        .collect())
}
