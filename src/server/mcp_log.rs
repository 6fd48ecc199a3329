//! MCP logging: the server's own log events (retries, scope changes, reconnects) as
//! `notifications/message`, at the level each client asked for.
//!
//! Two ways in, one per protocol era:
//! - sessions (2024-11-05 … 2025-11-25) call `logging/setLevel`; from then on every event
//!   at or above that level reaches them, whatever caused it;
//! - 2026-07-28 has no sessions: a request asks with `_meta` `io.modelcontextprotocol/logLevel`
//!   and receives, on its own response stream, only the events raised while serving it. A
//!   request that does not ask gets none (SEP-2575).
//!
//! stderr logging (`RUST_LOG`) is unaffected; only this crate's events at info and above are
//! offered to clients, never rmcp's or the HTTP stack's.

// MCP logging is deprecated (SEP-2577), not removed: clients of every revision still use it.
#![allow(deprecated)]

use std::future::Future;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::RoleServer;
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::service::Peer;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Events a burst may queue for one client before the rest are dropped: logs must never
/// slow a call down or grow without bound.
const QUEUE: usize = 64;

/// One event as a client receives it.
#[derive(Clone, Debug)]
pub struct Record {
    pub level: LoggingLevel,
    pub logger: String,
    pub data: String,
}

impl Record {
    pub fn notification(&self) -> LoggingMessageNotificationParam {
        LoggingMessageNotificationParam::new(self.level, Value::String(self.data.clone()))
            .with_logger(self.logger.clone())
    }
}

static SERVER_WIDE: LazyLock<broadcast::Sender<Record>> =
    LazyLock::new(|| broadcast::channel(QUEUE).0);

/// Whether any session ever set a level: until one does, events are not even formatted.
static SESSIONS_ASKED: AtomicBool = AtomicBool::new(false);

/// A session set its level (`logging/setLevel`).
pub fn session_asked() {
    SESSIONS_ASKED.store(true, Ordering::Relaxed);
}

tokio::task_local! {
    static REQUEST: RequestLog;
}

#[derive(Clone)]
struct RequestLog {
    level: LoggingLevel,
    tx: mpsc::Sender<Record>,
}

/// Every event for sessions that set a level.
pub fn subscribe() -> broadcast::Receiver<Record> {
    SERVER_WIDE.subscribe()
}

/// Severity order of MCP's syslog levels, lowest first.
pub fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// Whether a client that asked for `wanted` receives an event at `level`.
pub fn wanted(level: LoggingLevel, wanted: LoggingLevel) -> bool {
    rank(level) >= rank(wanted)
}

/// Runs `work` for one request; when the request asked for a log level, the events raised
/// while it runs are sent to `peer` before its answer.
pub async fn during_request<F: Future>(
    peer: &Peer<RoleServer>,
    level: Option<LoggingLevel>,
    work: F,
) -> F::Output {
    let Some(level) = level else {
        return work.await;
    };
    let (tx, mut rx) = mpsc::channel::<Record>(QUEUE);
    let work = REQUEST.scope(RequestLog { level, tx }, work);
    tokio::pin!(work);
    let out = loop {
        tokio::select! {
            out = &mut work => break out,
            Some(record) = rx.recv() => send(peer, &record).await,
        }
    };
    while let Ok(record) = rx.try_recv() {
        send(peer, &record).await;
    }
    out
}

async fn send(peer: &Peer<RoleServer>, record: &Record) {
    if peer
        .notify_logging_message(record.notification())
        .await
        .is_err()
    {
        tracing::debug!("could not send a log message to the client");
    }
}

/// The `tracing` layer that feeds both ways in.
pub fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    Forward.with_filter(Targets::new().with_target(env!("CARGO_CRATE_NAME"), Level::INFO))
}

struct Forward;

impl<S: Subscriber> Layer<S> for Forward {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR => LoggingLevel::Error,
            Level::WARN => LoggingLevel::Warning,
            Level::INFO => LoggingLevel::Info,
            _ => LoggingLevel::Debug,
        };
        let request = REQUEST.try_with(|r| r.clone()).ok();
        let for_request = request.as_ref().filter(|r| wanted(level, r.level));
        let for_sessions =
            SESSIONS_ASKED.load(Ordering::Relaxed) && SERVER_WIDE.receiver_count() > 0;
        if for_request.is_none() && !for_sessions {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        let record = Record {
            level,
            logger: meta.target().to_string(),
            data: text.0,
        };
        if let Some(r) = for_request {
            let _ = r.tx.try_send(record.clone());
        }
        if for_sessions {
            let _ = SERVER_WIDE.send(record);
        }
    }
}

/// "message key=value …", as the stderr log reads.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, &format!("{value:?}"));
    }
}

impl Text {
    fn push(&mut self, field: &Field, value: &str) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            self.0.push_str(&format!("{}={value}", field.name()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_like_syslog() {
        assert!(wanted(LoggingLevel::Warning, LoggingLevel::Info));
        assert!(wanted(LoggingLevel::Warning, LoggingLevel::Warning));
        assert!(!wanted(LoggingLevel::Info, LoggingLevel::Warning));
        assert!(!wanted(LoggingLevel::Error, LoggingLevel::Emergency));
    }
}
