//! MCP over HTTP: Streamable HTTP at `/mcp` (rmcp), the legacy HTTP+SSE transport at
//! `/sse` + `/message` (a small adapter rmcp no longer ships), and `/healthz`.
//!
//! Every session shares one [`Shared`](crate::tools::Shared): one Lark client, one token
//! cache, one policy fixed at start. Nothing in a request can widen the tool policy.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::{Stream, StreamExt};
use rmcp::ServiceExt;
use rmcp::model::{ClientNotification, JsonRpcMessage, RequestId};
use rmcp::service::{RoleServer, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::LarkMcp;

pub struct HttpOptions {
    pub host: IpAddr,
    pub port: u16,
    pub auth_token: Option<SecretString>,
    /// Origins allowed to call (`scheme://host:port`, `:*` for any port).
    pub allowed_origins: Vec<String>,
    /// `Host` values allowed (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    pub max_body_bytes: usize,
    pub max_sessions: usize,
    /// Sessions idle this long are closed.
    pub session_idle: Duration,
    /// How long SIGTERM waits for in-flight calls.
    pub drain: Duration,
}

impl HttpOptions {
    pub fn default_origins() -> Vec<String> {
        [
            "http://localhost:*",
            "http://127.0.0.1:*",
            "http://[::1]:*",
            "https://localhost:*",
            "https://127.0.0.1:*",
        ]
        .map(String::from)
        .to_vec()
    }

    pub fn default_hosts() -> Vec<String> {
        ["localhost", "127.0.0.1", "::1", "[::1]"]
            .map(String::from)
            .to_vec()
    }

    /// Binding beyond loopback without a token would hand the Lark app to anyone who
    /// can reach the port.
    pub fn check(&self) -> Result<(), String> {
        if !self.host.is_loopback() && self.auth_token.is_none() {
            return Err(format!(
                "refusing to listen on {} without --auth-token (LARK_MCP_AUTH_TOKEN): anyone who can reach the port could act as the Lark app",
                self.host
            ));
        }
        if self
            .auth_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().len() < 16)
        {
            return Err("--auth-token (LARK_MCP_AUTH_TOKEN) must be at least 16 characters".into());
        }
        Ok(())
    }
}

/// A legacy SSE session: where its POSTed messages go, and how to end it.
struct LegacySession {
    inbound: mpsc::Sender<RxJsonRpcMessage<RoleServer>>,
    stop: CancellationToken,
    /// Requests whose response has not been put on the stream yet.
    owed: Arc<std::sync::Mutex<HashMap<RequestId, OwedGuard>>>,
}

/// Answers still owed to clients: POSTs to `/mcp` whose response stream has not been sent
/// completely, and legacy requests whose response has not been put on the SSE stream.
/// SIGTERM waits for them before closing the sessions, which cuts every stream: waiting
/// for the tool calls alone lost the answer of a call that had just finished.
#[derive(Default)]
struct Owed {
    count: AtomicUsize,
    settled: tokio::sync::Notify,
}

struct OwedGuard(Arc<Owed>);

impl Owed {
    fn enter(self: &Arc<Self>) -> OwedGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        OwedGuard(self.clone())
    }

    async fn settled(&self) {
        loop {
            let notified = self.settled.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for OwedGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.settled.notify_waiters();
        }
    }
}

fn lock_owed(
    m: &std::sync::Mutex<HashMap<RequestId, OwedGuard>>,
) -> std::sync::MutexGuard<'_, HashMap<RequestId, OwedGuard>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct AppState {
    server: LarkMcp,
    opts: HttpOptions,
    streamable_sessions: Arc<LocalSessionManager>,
    legacy: Mutex<HashMap<String, LegacySession>>,
    stop: CancellationToken,
    owed: Arc<Owed>,
}

impl AppState {
    async fn open_sessions(&self) -> usize {
        self.streamable_sessions.sessions.read().await.len() + self.legacy.lock().await.len()
    }
}

/// Serves until SIGINT/SIGTERM; `ready` receives the bound address.
pub async fn serve(
    server: LarkMcp,
    opts: HttpOptions,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), String> {
    opts.check()?;
    let listener = tokio::net::TcpListener::bind((opts.host, opts.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", opts.host, opts.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let stop = CancellationToken::new();
    let mut manager = LocalSessionManager::default();
    manager.session_config.keep_alive = Some(opts.session_idle);
    let manager = Arc::new(manager);
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(opts.allowed_hosts.clone())
        .with_allowed_origins(opts.allowed_origins.clone())
        .enforce_origin_validation()
        .with_max_request_body_bytes(opts.max_body_bytes)
        .with_cancellation_token(stop.child_token());
    let factory_server = server.clone();
    let mcp =
        StreamableHttpService::new(move || Ok(factory_server.clone()), manager.clone(), config);
    let state = Arc::new(AppState {
        server: server.clone(),
        opts,
        streamable_sessions: manager,
        legacy: Mutex::new(HashMap::new()),
        stop: stop.clone(),
        owed: Arc::new(Owed::default()),
    });

    let protected = Router::new()
        .nest_service("/mcp", mcp)
        .route("/sse", get(legacy_sse))
        .route("/message", post(legacy_message))
        .layer(super::jsonrpc::body_check(state.opts.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state.clone());
    let app = Router::new()
        .route(
            "/healthz",
            get(|| async {
                axum::Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
            }),
        )
        .merge(protected);

    tracing::info!("MCP over HTTP on http://{addr}/mcp (legacy SSE at /sse)");
    if let Some(tx) = ready {
        let _ = tx.send(addr);
    }
    let drain_state = state.clone();
    // Without TCP_NODELAY, a response streamed in pieces (SSE: priming event, then the
    // answer) waits for the client's delayed ACK: ~40 ms per call on a kept-alive connection.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            super::stdio::shutdown_signal().await;
            tracing::info!("signal received; draining in-flight calls");
            let drain = drain_state.opts.drain;
            let settled = async {
                drain_state.server.shared().wait_idle().await;
                drain_state.owed.settled().await;
            };
            if tokio::time::timeout(drain, settled).await.is_err() {
                tracing::warn!(
                    "in-flight calls still running after {} s; closing",
                    drain.as_secs()
                );
            }
            // Streams never end on their own: close every session so connections can finish.
            drain_state.stop.cancel();
            for (_, s) in drain_state.legacy.lock().await.drain() {
                s.stop.cancel();
            }
        })
        .await
        .map_err(|e| format!("HTTP server failed: {e}"))
}

// ---- guard: Host, Origin, bearer token, session cap ------------------------------------

fn plain(status: StatusCode, msg: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": msg}}),
        ),
    )
        .into_response()
}

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let bare = match host.rsplit_once(':') {
        // "[::1]:8080" or "localhost:8080"; a bare IPv6 without brackets has several colons.
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    };
    allowed.iter().any(|a| {
        a.eq_ignore_ascii_case(host)
            || a.eq_ignore_ascii_case(bare)
            || a.trim_matches(['[', ']'])
                .eq_ignore_ascii_case(bare.trim_matches(['[', ']']))
    })
}

fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    let split = |o: &str| -> Option<(String, String, String)> {
        let (scheme, rest) = o.split_once("://")?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p))
                if !h.is_empty()
                    && (p == "*" || p.chars().all(|c| c.is_ascii_digit()))
                    && !rest.ends_with(']') =>
            {
                (h.to_string(), p.to_string())
            }
            _ => (
                rest.to_string(),
                if scheme == "https" {
                    "443".into()
                } else {
                    "80".into()
                },
            ),
        };
        Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase(), port))
    };
    let Some((scheme, host, port)) = split(origin) else {
        return false;
    };
    allowed
        .iter()
        .filter_map(|a| split(a))
        .any(|(s, h, p)| s == scheme && h == host && (p == "*" || p == port))
}

async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let path = req.uri().path().to_string();
    // rmcp checks Host and Origin on /mcp itself; the legacy routes get the same rules here.
    if path != "/mcp" {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !host_allowed(host, &state.opts.allowed_hosts) {
            return plain(
                StatusCode::FORBIDDEN,
                "Forbidden: Host header is not allowed",
            );
        }
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
            && !origin_allowed(origin, &state.opts.allowed_origins)
        {
            return plain(StatusCode::FORBIDDEN, "Forbidden: Origin is not allowed");
        }
    }
    if let Some(token) = &state.opts.auth_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            // The scheme is case-insensitive (RFC 7235); the token is not.
            .and_then(|v| {
                v.split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token.trim())
            })
            .unwrap_or("");
        let ok: bool = given
            .as_bytes()
            .ct_eq(token.expose_secret().as_bytes())
            .into();
        if !ok {
            let mut resp = plain(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: send Authorization: Bearer <token>",
            );
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return resp;
        }
    }
    let opens_session = (path == "/mcp"
        && req.method() == axum::http::Method::POST
        && !headers.contains_key("mcp-session-id"))
        || path == "/sse";
    if opens_session && state.open_sessions().await >= state.opts.max_sessions {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many open sessions; try again later",
        );
    }
    if path == "/mcp" && req.method() == axum::http::Method::POST {
        // A request's answer is a stream ending after the response: owed until it is sent.
        let owed = state.owed.enter();
        let resp = next.run(req).await;
        let streamed = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if !streamed {
            return resp;
        }
        return resp.map(|body| {
            Body::from_stream(body.into_data_stream().map(move |chunk| {
                let _owed = &owed;
                chunk
            }))
        });
    }
    next.run(req).await
}

// ---- legacy HTTP+SSE (protocol 2024-11-05) -------------------------------------------------

/// Ends the session when the SSE stream is dropped (the client went away).
struct SessionGuard {
    id: String,
    state: Arc<AppState>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let (id, state) = (self.id.clone(), self.state.clone());
        tokio::spawn(async move {
            if let Some(s) = state.legacy.lock().await.remove(&id) {
                s.stop.cancel();
            }
            tracing::debug!(session = %id, "legacy SSE session closed");
        });
    }
}

async fn legacy_sse(
    State(state): State<Arc<AppState>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = crate::lark::new_uuid();
    let (in_tx, in_rx) = mpsc::channel::<RxJsonRpcMessage<RoleServer>>(64);
    let (out_tx, out_rx) = futures::channel::mpsc::channel::<TxJsonRpcMessage<RoleServer>>(64);
    let stop = state.stop.child_token();
    let owed = Arc::new(std::sync::Mutex::new(HashMap::new()));
    state.legacy.lock().await.insert(
        id.clone(),
        LegacySession {
            inbound: in_tx,
            stop: stop.clone(),
            owed: owed.clone(),
        },
    );

    let server = state.server.clone();
    let session_stop = stop.clone();
    tokio::spawn(async move {
        let transport = (out_tx, tokio_stream_from(in_rx));
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
                lock_owed(&owed).remove(rid);
            }
            let data = serde_json::to_string(&msg).unwrap_or_default();
            Ok::<_, Infallible>(Event::default().event("message").data(data))
        })
        .take_until(stop.cancelled_owned());
    Sse::new(endpoint.chain(messages))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + Unpin + 'static {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

#[derive(Deserialize)]
struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

async fn legacy_message(
    State(state): State<Arc<AppState>>,
    Query(q): Query<SessionQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(id) = q.session_id else {
        return plain(StatusCode::BAD_REQUEST, "sessionId is required");
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.opts.max_body_bytes) {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    }
    let bytes: Bytes = match axum::body::to_bytes(body, state.opts.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    let msg: RxJsonRpcMessage<RoleServer> = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("not a JSON-RPC message: {e}"),
            );
        }
    };
    let session = state
        .legacy
        .lock()
        .await
        .get(&id)
        .map(|s| (s.inbound.clone(), s.owed.clone()));
    let Some((sender, owed)) = session else {
        return plain(StatusCode::NOT_FOUND, "unknown or closed session");
    };
    // Owed until its response goes out on the stream (a cancelled one gets none).
    let request = match &msg {
        JsonRpcMessage::Request(r) => {
            lock_owed(&owed).insert(r.id.clone(), state.owed.enter());
            Some(r.id.clone())
        }
        JsonRpcMessage::Notification(n) => {
            if let ClientNotification::CancelledNotification(c) = &n.notification
                && let Some(rid) = &c.params.request_id
            {
                lock_owed(&owed).remove(rid);
            }
            None
        }
        _ => None,
    };
    match sender.send(msg).await {
        Ok(()) => (StatusCode::ACCEPTED, "Accepted").into_response(),
        Err(_) => {
            if let Some(rid) = request {
                lock_owed(&owed).remove(&rid);
            }
            plain(StatusCode::NOT_FOUND, "session closed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_origins_match_like_browsers_send_them() {
        let hosts = HttpOptions::default_hosts();
        assert!(host_allowed("localhost:8080", &hosts));
        assert!(host_allowed("127.0.0.1", &hosts));
        assert!(host_allowed("[::1]:9000", &hosts));
        assert!(!host_allowed("evil.example", &hosts));
        assert!(!host_allowed("localhost.evil.example:80", &hosts));
        let origins = HttpOptions::default_origins();
        assert!(origin_allowed("http://localhost:3000", &origins));
        assert!(origin_allowed("http://127.0.0.1", &origins));
        assert!(!origin_allowed("http://evil.example", &origins));
        assert!(!origin_allowed("null", &origins));
        assert!(origin_allowed(
            "https://app.example.com",
            &["https://app.example.com:443".into()]
        ));
        assert!(!origin_allowed(
            "https://app.example.com:8443",
            &["https://app.example.com:443".into()]
        ));
    }
}
