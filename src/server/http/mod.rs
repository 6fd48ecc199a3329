//! MCP over HTTP: Streamable HTTP at `/mcp` (rmcp), the legacy HTTP+SSE transport at
//! `/sse` + `/message` (a small adapter rmcp no longer ships), and `/healthz`.
//!
//! Every request first passes the guard (`guard.rs`): shutdown, Host, Origin, token, body
//! size and the session cap, the same rules for every route. Only `/mcp` exactly reaches rmcp.
//!
//! Every session shares one [`Shared`](crate::tools::Shared): one Lark client, one token
//! cache, one policy fixed at start. Nothing in a request can widen the tool policy.
//!
//! On SIGINT/SIGTERM: the listener closes (new connections are refused) and the guard answers
//! anything else 503; the calls already admitted finish and their answers are sent (bounded by
//! `--drain-secs`); then every session is closed and the process exits.

mod guard;
mod legacy;
mod sessions;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use futures::StreamExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::LarkMcp;
use guard::Guard;
use sessions::{CountedSessions, SessionSlots};

const MCP_PATH: &str = "/mcp";
const SSE_PATH: &str = "/sse";
const MESSAGE_PATH: &str = "/message";
const HEALTHZ_PATH: &str = "/healthz";

/// How long connections may take to finish once every session is closed at shutdown: enough
/// to flush the last bytes, and a client that stops reading cannot hold the exit hostage.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

pub struct HttpOptions {
    pub host: IpAddr,
    pub port: u16,
    pub auth_token: Option<SecretString>,
    /// Origins allowed to call (`scheme://host:port`, `:*` for any port).
    pub allowed_origins: Vec<String>,
    /// `Host` values allowed (DNS-rebinding protection): `host` on any port, `host:port` on
    /// that port only.
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

/// A count of things the drain waits for, and a way to wait until there are none.
#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    settled: tokio::sync::Notify,
}

/// Counts one until dropped.
struct InFlightGuard(Arc<InFlight>);

impl InFlight {
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
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

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.settled.notify_waiters();
        }
    }
}

struct AppState {
    server: LarkMcp,
    legacy: legacy::Sessions,
    /// Closes every session (and so every stream) at the end of the drain.
    stop: CancellationToken,
    /// Answers still owed to clients: POSTs to `/mcp` whose response stream has not been
    /// sent completely, and legacy requests whose response has not been put on the SSE
    /// stream. Closing the sessions cuts every stream, so the drain waits for these too:
    /// waiting for the tool calls alone lost the answer of a call that had just finished.
    owed: Arc<InFlight>,
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
    let draining = CancellationToken::new();
    let admitted = Arc::new(InFlight::default());

    let mut local = LocalSessionManager::default();
    local.session_config.keep_alive = Some(opts.session_idle);
    // Host, Origin and the body size are the guard's, for every route alike; rmcp's own
    // Host/Origin checks (with other port rules) are off so that one set of rules applies.
    // rmcp's body limit cannot be turned off: it gets the guard's, which a body never
    // reaches it beyond.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_max_request_body_bytes(opts.max_body_bytes)
        .with_cancellation_token(stop.child_token());
    let factory_server = server.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(factory_server.for_session()),
        Arc::new(CountedSessions::new(local)),
        config,
    );
    let guard = Arc::new(Guard::new(
        &opts,
        SessionSlots::new(opts.max_sessions),
        draining.clone(),
        admitted.clone(),
    ));
    let state = Arc::new(AppState {
        server: server.clone(),
        legacy: Default::default(),
        stop: stop.clone(),
        owed: Arc::new(InFlight::default()),
    });

    // `route_service`, not `nest_service`: `/mcp/` and `/mcp/x` are 404, not more ways in.
    let mcp = Router::new()
        .route_service(MCP_PATH, mcp)
        .route_layer(middleware::from_fn_with_state(
            state.owed.clone(),
            track_answers,
        ))
        .route_layer(middleware::from_fn(session_closed_ok));
    let app = Router::new()
        .route(SSE_PATH, get(legacy::open))
        .route(MESSAGE_PATH, post(legacy::message))
        .route(
            HEALTHZ_PATH,
            get(|| async {
                axum::Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
            }),
        )
        .merge(mcp)
        .with_state(state.clone())
        // Last, so that it wraps every route and the 404 fallback.
        .layer(middleware::from_fn_with_state(guard, guard::check));

    // Polled once now so the handlers are installed before anyone is told we listen: a
    // SIGTERM right after that must drain, not kill.
    let mut signal = Box::pin(super::stdio::shutdown_signal());
    let _ = futures::poll!(&mut signal);

    tracing::info!("MCP over HTTP on http://{addr}/mcp (legacy SSE at /sse)");
    if let Some(tx) = ready {
        let _ = tx.send(addr);
    }
    // Without TCP_NODELAY, a response streamed in pieces (SSE: priming event, then the
    // answer) waits for the client's delayed ACK: ~40 ms per call on a kept-alive connection.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });
    let drain = tokio::spawn(drain_on_signal(
        signal,
        state,
        draining.clone(),
        admitted,
        opts.drain,
    ));
    // On the signal axum stops accepting and closes the listener at once (connects are
    // refused), tells every connection to close after its current response, then waits for
    // them: the drain task lets the answers still owed go out, then closes the sessions,
    // which ends the streams holding connections open.
    let serving = axum::serve(listener, app).with_graceful_shutdown(draining.cancelled_owned());
    let result = tokio::select! {
        r = serving.into_future() => r.map_err(|e| format!("HTTP server failed: {e}")),
        _ = async {
            stop.cancelled().await;
            tokio::time::sleep(CLOSE_GRACE).await;
        } => {
            tracing::warn!(
                "connections still open {} s after the sessions closed; exiting",
                CLOSE_GRACE.as_secs()
            );
            Ok(())
        }
    };
    drain.abort();
    result
}

/// Waits for SIGINT/SIGTERM, then refuses new work, lets the admitted work finish (bounded by
/// `drain`) and closes every session.
async fn drain_on_signal(
    signal: impl Future<Output = ()>,
    state: Arc<AppState>,
    draining: CancellationToken,
    admitted: Arc<InFlight>,
    drain: Duration,
) {
    signal.await;
    draining.cancel();
    tracing::info!("signal received; draining in-flight calls");
    // A subscription is never done on its own; ended now, its stream is not waited for.
    state.server.shared().peers.close_subscriptions();
    let settled = async {
        // Requests admitted before the signal first: until their handler has answered, their
        // tool call or owed answer may not be counted yet.
        admitted.settled().await;
        state.server.shared().wait_idle().await;
        state.owed.settled().await;
    };
    if tokio::time::timeout(drain, settled).await.is_err() {
        tracing::warn!(
            "in-flight calls still running after {} s; closing",
            drain.as_secs()
        );
    }
    // Streams never end on their own: closing every session lets the connections finish.
    state.stop.cancel();
}

/// rmcp answers a successful session DELETE with 202, but the official Python SDK counts
/// only 200, 204 and 405 as success and warns "Session termination failed: 202" on every
/// close. The session is gone by the time rmcp answers, so 200 (empty body) is the truth.
async fn session_closed_ok(req: Request, next: Next) -> Response {
    let delete = req.method() == Method::DELETE;
    let mut resp = next.run(req).await;
    if delete && resp.status() == StatusCode::ACCEPTED {
        *resp.status_mut() = StatusCode::OK;
    }
    resp
}

/// Counts a POST's answer as owed until its response stream has been sent completely.
async fn track_answers(State(owed): State<Arc<InFlight>>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let owed = owed.enter();
    let resp = next.run(req).await;
    let streamed = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !streamed {
        return resp;
    }
    resp.map(|body| {
        Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _owed = &owed;
            chunk
        }))
    })
}
