//! The connected MCP clients, kept so that a change in the visible tool set (scopes
//! granted or revoked while running) reaches each of them as
//! `notifications/tools/list_changed`, and so that sessions that set a log level receive
//! the server's log events. A transport concern: the tools only say when.
//!
//! Sessions (up to 2025-11-25) are notified on the session itself; 2026-07-28 clients have
//! no session and hear only on the `subscriptions/listen` streams they keep open.

// MCP logging is deprecated (SEP-2577), not removed: sessions still set their level.
#![allow(deprecated)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::mcp_log::{self, Record};
use rmcp::RoleServer;
use rmcp::model::LoggingLevel;
use rmcp::service::{Peer, SubscriptionSendError, SubscriptionSink};
use tokio_util::sync::CancellationToken;

/// How long one client may take to accept a notification: one stuck client must not hold
/// up the others.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// What one session chose; shared by the handler serving it and this registry.
#[derive(Default)]
pub struct Session {
    log_level: Mutex<Option<LoggingLevel>>,
}

impl Session {
    pub fn set_log_level(&self, level: LoggingLevel) {
        *lock(&self.log_level) = Some(level);
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
