//! The connected MCP clients, kept so that a change in the visible tool set (scopes
//! granted or revoked while running) reaches each of them as
//! `notifications/tools/list_changed`, and so that sessions that set a log level receive
//! the server's log events. A transport concern: the tools only say when.
//!
//! Sessions (up to 2025-11-25) are notified on the session itself; 2026-07-28 clients have
//! no session and hear only on the `subscriptions/listen` streams they keep open.
//!
//! The same goes for `notifications/resources/updated` on a chat's messages: sessions name
//! the URIs with `resources/subscribe`, listen streams in their accepted filter.

// MCP logging is deprecated (SEP-2577), not removed: sessions still set their level.
#![allow(deprecated)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::catalog::resources::messages_chat;
use super::mcp_log::{self, Record};
use rmcp::RoleServer;
use rmcp::model::{LoggingLevel, ResourceUpdatedNotificationParam};
use rmcp::service::{Peer, SubscriptionSendError, SubscriptionSink};
use tokio_util::sync::CancellationToken;

/// How long one client may take to accept a notification: one stuck client must not hold
/// up the others.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// How many resources one session may subscribe to: the list lives as long as the session.
pub const MAX_SUBSCRIBED: usize = 1000;

/// What one session chose; shared by the handler serving it and this registry.
#[derive(Default)]
pub struct Session {
    log_level: Mutex<Option<LoggingLevel>>,
    /// Subscribed URIs as the client wrote them, keyed by the chat they name (a client may
    /// percent-encode an id; it hears of updates under its own spelling).
    subscribed: Mutex<BTreeMap<String, String>>,
    /// This session's share of `--send-budget` (HTTP sessions each have one).
    send_window: std::sync::OnceLock<Arc<crate::tools::guard::budget::Window>>,
}

impl Session {
    pub fn set_log_level(&self, level: LoggingLevel) {
        *lock(&self.log_level) = Some(level);
    }

    /// False when the session already holds [`MAX_SUBSCRIBED`] others.
    pub fn subscribe(&self, chat_id: String, uri: String) -> bool {
        let mut subs = lock(&self.subscribed);
        if subs.len() >= MAX_SUBSCRIBED && !subs.contains_key(&chat_id) {
            return false;
        }
        subs.insert(chat_id, uri);
        true
    }

    pub fn send_window(
        &self,
        spec: &crate::tools::guard::budget::BudgetSpec,
    ) -> Arc<crate::tools::guard::budget::Window> {
        self.send_window
            .get_or_init(|| {
                Arc::new(crate::tools::guard::budget::Window::new(
                    spec.clone(),
                    "session",
                ))
            })
            .clone()
    }

    pub fn unsubscribe(&self, chat_id: &str) {
        lock(&self.subscribed).remove(chat_id);
    }

    fn subscribed_uri(&self, chat_id: &str) -> Option<String> {
        lock(&self.subscribed).get(chat_id).cloned()
    }

    fn log_level(&self) -> Option<LoggingLevel> {
        *lock(&self.log_level)
    }
}

struct Client {
    peer: Peer<RoleServer>,
    session: Arc<Session>,
}

#[derive(Default)]
pub struct Peers {
    sessions: Mutex<Vec<Client>>,
    /// Keyed by a number of our own: subscription ids are the clients' request ids, which
    /// two stateless clients may well share.
    listeners: Mutex<Vec<(u64, SubscriptionSink)>>,
    next_key: AtomicU64,
    /// Cancelled at shutdown: subscriptions end with their final result instead of holding
    /// their stream open through the drain.
    closing: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Peers {
    pub fn add(&self, peer: Peer<RoleServer>, session: Arc<Session>) {
        let mut sessions = lock(&self.sessions);
        // Closed sessions are dropped here and on every notify, so the list stays small.
        sessions.retain(|c| !c.peer.is_transport_closed());
        sessions.push(Client { peer, session });
    }

    /// A `subscriptions/listen` stream, until [`Peers::unlisten`] with the key returned.
    pub fn listen(&self, sink: SubscriptionSink) -> u64 {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        lock(&self.listeners).push((key, sink));
        key
    }

    pub fn unlisten(&self, key: u64) {
        lock(&self.listeners).retain(|(k, _)| *k != key);
    }

    /// Ends every subscription (shutdown).
    pub fn close_subscriptions(&self) {
        self.closing.cancel();
    }

    /// Resolves when subscriptions must end.
    pub async fn closing(&self) {
        self.closing.cancelled().await;
    }

    fn open_sessions(&self) -> Vec<Peer<RoleServer>> {
        let mut sessions = lock(&self.sessions);
        sessions.retain(|c| !c.peer.is_transport_closed());
        sessions.iter().map(|c| c.peer.clone()).collect()
    }

    pub async fn notify_tools_changed(&self) {
        let sessions = self.open_sessions();
        let listeners: Vec<(u64, SubscriptionSink)> = lock(&self.listeners).clone();
        tracing::info!(
            sessions = sessions.len(),
            subscriptions = listeners.len(),
            "visible tools changed; notifying clients"
        );
        // Prompts and resource templates are offered with the tools they use: their lists
        // change with the tools'.
        for p in sessions {
            let sent = tokio::time::timeout(SEND_TIMEOUT, async {
                p.notify_tool_list_changed().await?;
                p.notify_prompt_list_changed().await?;
                p.notify_resource_list_changed().await
            })
            .await;
            if !matches!(sent, Ok(Ok(()))) {
                tracing::debug!("could not notify a session of the list changes");
            }
        }
        for (key, sink) in listeners {
            let sent = tokio::time::timeout(SEND_TIMEOUT, async {
                for sent in [
                    sink.notify_tool_list_changed().await,
                    sink.notify_prompt_list_changed().await,
                    sink.notify_resource_list_changed().await,
                ] {
                    match sent {
                        Ok(()) | Err(SubscriptionSendError::NotificationNotAccepted(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            })
            .await;
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(SubscriptionSendError::SubscriptionClosed)) => self.unlisten(key),
                _ => tracing::debug!("could not notify a subscription of the list changes"),
            }
        }
    }

    /// `notifications/resources/updated` for a chat's messages, to each session and listen
    /// stream subscribed to them (under the URI each one used).
    pub async fn notify_messages(&self, chat_id: &str) {
        let sessions: Vec<(Peer<RoleServer>, String)> = {
            let mut sessions = lock(&self.sessions);
            sessions.retain(|c| !c.peer.is_transport_closed());
            sessions
                .iter()
                .filter_map(|c| Some((c.peer.clone(), c.session.subscribed_uri(chat_id)?)))
                .collect()
        };
        for (p, uri) in sessions {
            let sent = tokio::time::timeout(
                SEND_TIMEOUT,
                p.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri)),
            )
            .await;
            if !matches!(sent, Ok(Ok(()))) {
                tracing::debug!("could not tell a session of a new message");
            }
        }
        let listeners: Vec<(u64, SubscriptionSink, String)> = lock(&self.listeners)
            .iter()
            .filter_map(|(key, sink)| {
                let uri = sink
                    .accepted()
                    .resource_subscriptions
                    .as_ref()?
                    .iter()
                    .find(|u| messages_chat(u).as_deref() == Some(chat_id))?
                    .clone();
                Some((*key, sink.clone(), uri))
            })
            .collect();
        for (key, sink, uri) in listeners {
            match tokio::time::timeout(SEND_TIMEOUT, sink.notify_resource_updated(uri)).await {
                Ok(Ok(())) => {}
                Ok(Err(SubscriptionSendError::SubscriptionClosed)) => self.unlisten(key),
                _ => tracing::debug!("could not tell a subscription of a new message"),
            }
        }
    }

    /// Sends one log event to every session whose level admits it.
    pub async fn log(&self, record: &Record) {
        let targets: Vec<Peer<RoleServer>> = {
            let mut sessions = lock(&self.sessions);
            sessions.retain(|c| !c.peer.is_transport_closed());
            sessions
                .iter()
                .filter(|c| {
                    c.session
                        .log_level()
                        .is_some_and(|l| mcp_log::wanted(record.level, l))
                })
                .map(|c| c.peer.clone())
                .collect()
        };
        for p in targets {
            let _ = tokio::time::timeout(
                SEND_TIMEOUT,
                p.notify_logging_message(record.notification()),
            )
            .await;
        }
    }
}
