//! Messages that arrived over the long connection, kept for agents: per chat and in
//! arrival order, bounded per chat and in all, each with a cursor so "what is new since
//! then" never repeats or skips one. Stored in Lark's read form (what `get_message`
//! returns), so they render exactly like history.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::{Value, json};
use tokio::sync::watch;

/// One received message, in Lark's read form, with its place in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrived {
    pub cursor: u64,
    pub chat_id: String,
    pub sender: String,
    /// open_ids @-mentioned in it.
    pub mentions: Vec<String>,
    /// As `im/v1/messages` answers it: message_id, msg_type, create_time, chat_id,
    /// sender{id,id_type,sender_type}, body{content}, mentions[{key,id,id_type,name}].
    pub message: Value,
}

/// The read form of an `im.message.receive_v1` envelope's message; None when it is not
/// one.
pub fn from_event(envelope: &Value) -> Option<(String, String, Vec<String>, Value)> {
    if envelope["header"]["event_type"] != "im.message.receive_v1" {
        return None;
    }
    let e = &envelope["event"];
    let m = &e["message"];
    let chat_id = m["chat_id"].as_str()?.to_string();
    let sender = e["sender"]["sender_id"]["open_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let sender_type = match e["sender"]["sender_type"].as_str() {
        Some("user") | None => "user",
        Some(_) => "app",
    };
    let mut mention_ids = Vec::new();
    let mentions: Vec<Value> = m["mentions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            let id = x["id"]["open_id"].as_str().unwrap_or_default();
            if !id.is_empty() {
                mention_ids.push(id.to_string());
            }
            json!({"key": x["key"], "id": id, "id_type": "open_id", "name": x["name"]})
        })
        .collect();
    let mut read = json!({
        "message_id": m["message_id"],
        "msg_type": m["message_type"],
        "create_time": m["create_time"],
        "chat_id": chat_id,
        "sender": {"id": sender, "id_type": "open_id", "sender_type": sender_type},
        "body": {"content": m["content"]},
        "mentions": mentions,
    });
    for k in ["root_id", "parent_id", "thread_id"] {
        if let Some(v) = m[k].as_str().filter(|v| !v.is_empty()) {
            read[k] = json!(v);
        }
    }
    Some((chat_id, sender, mention_ids, read))
}

pub struct Inbox {
    per_chat_cap: usize,
    total_cap: usize,
    state: Mutex<State>,
    /// The newest cursor: waiters watch it.
    newest: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    /// Oldest first.
    all: VecDeque<Arrived>,
    next: u64,
}

impl Inbox {
    pub fn new(per_chat_cap: usize, total_cap: usize) -> Inbox {
        Inbox {
            per_chat_cap: per_chat_cap.max(1),
            total_cap: total_cap.max(1),
            state: Mutex::new(State {
                all: VecDeque::new(),
                next: 1,
            }),
            newest: watch::channel(0).0,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps an event's message (others are ignored); returns its cursor.
    pub fn push_event(&self, envelope: &Value) -> Option<u64> {
        let (chat_id, sender, mentions, message) = from_event(envelope)?;
        let cursor = {
            let mut s = self.state();
            let cursor = s.next;
            s.next += 1;
            s.all.push_back(Arrived {
                cursor,
                chat_id: chat_id.clone(),
                sender,
                mentions,
                message,
            });
            // Oldest go first: from this chat beyond its share, then from all.
            if s.all.iter().filter(|a| a.chat_id == chat_id).count() > self.per_chat_cap
                && let Some(at) = s.all.iter().position(|a| a.chat_id == chat_id)
            {
                s.all.remove(at);
            }
            while s.all.len() > self.total_cap {
                s.all.pop_front();
            }
            cursor
        };
        self.newest.send_replace(cursor);
        Some(cursor)
    }

    /// What arrived after `cursor` (0: everything kept) that `keep` accepts, oldest first.
    pub fn since(&self, cursor: u64, keep: impl Fn(&Arrived) -> bool) -> Vec<Arrived> {
        self.state()
            .all
            .iter()
            .filter(|a| a.cursor > cursor && keep(a))
            .cloned()
            .collect()
    }

    /// The cursor of the newest message (0 before any).
    pub fn newest(&self) -> u64 {
        *self.newest.borrow()
    }

    /// Resolves when something newer than `cursor` arrives (at once if it has).
    pub async fn changed_after(&self, cursor: u64) {
        let mut rx = self.newest.subscribe();
        let _ = rx.wait_for(|n| *n > cursor).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(chat: &str, sender: &str, text: &str, mention: Option<&str>) -> Value {
        let mentions: Vec<Value> = mention
            .map(|m| vec![json!({"key": "@_user_1", "id": {"open_id": m}, "name": "Bot"})])
            .unwrap_or_default();
        json!({
            "schema": "2.0",
            "header": {"event_id": "e", "event_type": "im.message.receive_v1"},
            "event": {
                "sender": {"sender_id": {"open_id": sender}, "sender_type": "user"},
                "message": {
                    "message_id": format!("om_{text}"), "create_time": "1700000000000",
                    "chat_id": chat, "chat_type": "group", "message_type": "text",
                    "content": json!({"text": text}).to_string(), "mentions": mentions,
                }
            }
        })
    }

    #[test]
    fn messages_come_back_in_order_after_a_cursor_and_filtered() {
        let inbox = Inbox::new(10, 100);
        let a = inbox
            .push_event(&event("oc_a", "ou_1", "one", None))
            .expect("kept");
        inbox.push_event(&event("oc_b", "ou_2", "two", Some("ou_bot")));
        inbox.push_event(&event("oc_a", "ou_2", "three", None));
        let after: Vec<String> = inbox
            .since(a, |_| true)
            .iter()
            .map(|m| {
                m.message["message_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        assert_eq!(after, ["om_two", "om_three"]);
        assert_eq!(inbox.since(0, |m| m.chat_id == "oc_a").len(), 2);
        assert_eq!(
            inbox
                .since(0, |m| m.mentions.iter().any(|x| x == "ou_bot"))
                .len(),
            1
        );
        let read = &inbox.since(0, |_| true)[0].message;
        assert_eq!(read["sender"]["id"], "ou_1");
        assert_eq!(read["body"]["content"], r#"{"text":"one"}"#);
        assert!(
            inbox
                .push_event(&json!({"header": {"event_type": "other"}}))
                .is_none()
        );
    }

    #[test]
    fn the_oldest_go_first_per_chat_and_in_all() {
        let inbox = Inbox::new(2, 3);
        for t in ["1", "2", "3"] {
            inbox.push_event(&event("oc_a", "ou", t, None));
        }
        let a: Vec<u64> = inbox.since(0, |_| true).iter().map(|m| m.cursor).collect();
        assert_eq!(a, [2, 3]);
        for t in ["4", "5"] {
            inbox.push_event(&event("oc_b", "ou", t, None));
        }
        let all: Vec<u64> = inbox.since(0, |_| true).iter().map(|m| m.cursor).collect();
        assert_eq!(all, [3, 4, 5]);
        assert_eq!(inbox.newest(), 5);
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_something_newer_arrives() {
        let inbox = std::sync::Arc::new(Inbox::new(10, 10));
        let waiter = {
            let inbox = inbox.clone();
            tokio::spawn(async move { inbox.changed_after(0).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        inbox.push_event(&event("oc", "ou", "x", None));
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("joined");
    }
}
