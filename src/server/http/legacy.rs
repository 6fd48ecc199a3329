//! The legacy HTTP+SSE transport (protocol 2024-11-05), which rmcp no longer ships:
//! `GET /sse` opens a session and streams its messages, `POST /message?sessionId=…` feeds it.
//! The guard has already checked Host, Origin, the token and the body size, and reserved the
//! session slot for `GET /sse`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use rmcp::ServiceExt;
use rmcp::model::{ClientNotification, JsonRpcMessage, RequestId};
use rmcp::service::{RoleServer, RxJsonRpcMessage, TxJsonRpcMessage};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::guard::error_response;
use super::sessions::{self, Slot};
use super::{AppState, InFlightGuard};

/// A legacy session: where its POSTed messages go, and how to end it.
pub(super) struct LegacySession {
    inbound: mpsc::Sender<RxJsonRpcMessage<RoleServer>>,
    stop: CancellationToken,
    /// Requests whose response has not been put on the stream yet.
    owed: Arc<std::sync::Mutex<HashMap<RequestId, InFlightGuard>>>,
}

pub(super) type Sessions = std::sync::Mutex<HashMap<String, LegacySession>>;

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// 128 bits from the OS CSPRNG, in hex: the id is all a client needs to post into a session.
fn new_session_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    let mut id = String::with_capacity(32);
    for b in bytes {
        let _ = write!(id, "{b:02x}");
    }
    Ok(id)
}

/// Ends the session when the SSE stream is dropped (the client went away, or shutdown).
struct SessionGuard {
    id: String,
    state: Arc<AppState>,
    /// Released after the session is gone.
    slot: Option<Slot>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if let Some(s) = lock(&self.state.legacy).remove(&self.id) {
            s.stop.cancel();
        }
        self.slot.take();
        tracing::debug!(session = %self.id, "legacy SSE session closed");
    }
}

pub(super) async fn open(State(state): State<Arc<AppState>>) -> Response {
    let Some(slot) = sessions::take_reserved() else {
        // The guard reserves a slot for every GET /sse; none means the cap is reached.
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "Too many open sessions; try again later",
        );
    };
    let id = match new_session_id() {
        Ok(id) => id,
        Err(e) => {
            tracing::error!("no randomness for a session id: {e}");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "cannot open a session",
            );
        }
    };
    let (in_tx, in_rx) = mpsc::channel::<RxJsonRpcMessage<RoleServer>>(64);
    let (out_tx, out_rx) = futures::channel::mpsc::channel::<TxJsonRpcMessage<RoleServer>>(64);
    let stop = state.stop.child_token();
    let owed = Arc::new(std::sync::Mutex::new(HashMap::new()));
    lock(&state.legacy).insert(
        id.clone(),
        LegacySession {
            inbound: in_tx,
            stop: stop.clone(),
            owed: owed.clone(),
        },
    );

    let server = state.server.for_session();
    let session_stop = stop.clone();
    tokio::spawn(async move {
        let transport = (out_tx, stream_from(in_rx));
        tokio::select! {
            _ = session_stop.cancelled() => {}
            running = server.serve(transport) => match running {
                Ok(running) => {
                    let ct = running.cancellation_token();
                    tokio::select! {
                        _ = running.waiting() => {}
                        _ = session_stop.cancelled() => ct.cancel(),
                    }
                }
                Err(e) => tracing::debug!("legacy session ended before initialisation: {e}"),
            },
        }
    });

    let guard = SessionGuard {
        id: id.clone(),
        state: state.clone(),
        slot: Some(slot),
    };
    let endpoint = futures::stream::once(async move {
        Ok::<_, Infallible>(
            Event::default()
                .event("endpoint")
                .data(format!("/message?sessionId={id}")),
        )
    });
    let messages = out_rx
        .map(move |msg| {
            let _keep = &guard;
            let answered = match &msg {
                JsonRpcMessage::Response(r) => Some(&r.id),
                JsonRpcMessage::Error(e) => e.id.as_ref(),
                _ => None,
            };
            if let Some(rid) = answered {
                lock(&owed).remove(rid);
            }
            let data = serde_json::to_string(&msg).unwrap_or_default();
            Ok::<_, Infallible>(Event::default().event("message").data(data))
        })
        .take_until(stop.cancelled_owned());
    Sse::new(endpoint.chain(messages))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + Unpin + 'static {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

#[derive(Deserialize)]
pub(super) struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

pub(super) async fn message(
    State(state): State<Arc<AppState>>,
    Query(q): Query<SessionQuery>,
    body: Body,
) -> Response {
    let Some(id) = q.session_id else {
        return error_response(StatusCode::BAD_REQUEST, None, "sessionId is required");
    };
    // Already read and size-checked by the guard: this only collects it.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                None,
                "cannot read the request body",
            );
        }
    };
    let msg: RxJsonRpcMessage<RoleServer> = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                None,
                &format!("not a JSON-RPC message: {e}"),
            );
        }
    };
    let session = lock(&state.legacy)
        .get(&id)
        .map(|s| (s.inbound.clone(), s.owed.clone()));
    let Some((sender, owed)) = session else {
        return error_response(StatusCode::NOT_FOUND, None, "unknown or closed session");
    };
    // Owed until its response goes out on the stream (a cancelled one gets none).
    let request = match &msg {
        JsonRpcMessage::Request(r) => {
            lock(&owed).insert(r.id.clone(), state.owed.enter());
            Some(r.id.clone())
        }
        JsonRpcMessage::Notification(n) => {
            if let ClientNotification::CancelledNotification(c) = &n.notification
                && let Some(rid) = &c.params.request_id
            {
                lock(&owed).remove(rid);
            }
            None
        }
        _ => None,
    };
    match sender.send(msg).await {
        Ok(()) => (StatusCode::ACCEPTED, "Accepted").into_response(),
        Err(_) => {
            if let Some(rid) = request {
                lock(&owed).remove(&rid);
            }
            error_response(StatusCode::NOT_FOUND, None, "session closed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_128_random_bits_in_hex() {
        let a = new_session_id().expect("randomness");
        let b = new_session_id().expect("randomness");
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
