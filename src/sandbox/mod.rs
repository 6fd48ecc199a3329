//! A faithful Lark Open Platform emulator on loopback: the same paths, parameters,
//! envelope, error codes, statuses and headers as Lark, plus faults and inspection for tests.
//!
//! Endpoint groups live in [`api`]; each is a list of [`endpoint::Endpoint`]s.

pub mod api;
pub mod control;
pub mod endpoint;
pub mod envelope;
pub mod faults;
pub mod longconn;
pub mod options;
pub mod pipeline;
pub mod registration;
pub mod scopes;
pub mod seed;
pub mod seed_gen;
pub mod user_auth;
pub mod world;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use axum::Router;
use axum::http::{Method, Uri};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, on};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use faults::{FaultAction, FaultRule, Phase};
pub use options::Options;
pub use registration::{Registration, RegistrationState};
pub use seed::Seed;
pub use user_auth::UserAuthSummary;
pub use world::{Chat, Message, Reaction, RecordedRequest, RegisteredApp};

use envelope::{ApiError, codes, new_log_id, render_error};
use world::{Recorder, World, now_ms};

/// Everything the sandbox knows; shared by the API, the control path and in-process tests.
pub struct SandboxState {
    pub world: Mutex<World>,
    pub options: RwLock<Options>,
    pub faults: Mutex<Vec<FaultRule>>,
    pub recorder: Mutex<Recorder>,
    /// Endpoint → call times within the last second, for `qps_limit_per_endpoint`.
    endpoint_windows: Mutex<HashMap<&'static str, VecDeque<u64>>>,
    /// The long connection: tickets, live WebSockets, events and their acks.
    pub longconn: Arc<longconn::Hub>,
    /// `http://HOST:PORT` once [`Sandbox::start`] has bound: the base of the verification URLs.
    base_url: OnceLock<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking handler must not take the whole sandbox down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SandboxState {
    pub fn new(seed: Seed, options: Options) -> SandboxState {
        SandboxState {
            world: Mutex::new(World::new(seed)),
            options: RwLock::new(options),
            faults: Mutex::new(Vec::new()),
            recorder: Mutex::new(Recorder::default()),
            endpoint_windows: Mutex::new(HashMap::new()),
            longconn: Arc::new(longconn::Hub::default()),
            base_url: OnceLock::new(),
        }
    }

    /// The sandbox's own base URL (`http://127.0.0.1:PORT`), as [`Sandbox::base_url`].
    pub fn base_url(&self) -> String {
        self.base_url
            .get()
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1".into())
    }

    /// Sets the base URL verification links point at; only the first call counts.
    pub fn set_base_url(&self, base: String) {
        let _ = self.base_url.set(base);
    }

    pub fn options(&self) -> Options {
        self.options
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_options(&self, options: Options) {
        *self.options.write().unwrap_or_else(|e| e.into_inner()) = options;
    }

    pub fn record(&self, r: RecordedRequest, limit: usize) {
        lock(&self.recorder).record(r, limit);
    }

    fn admit_endpoint_call(&self, endpoint: &'static str, qps: u32) -> bool {
        let now = now_ms();
        let mut windows = lock(&self.endpoint_windows);
        let w = windows.entry(endpoint).or_default();
        while w.front().is_some_and(|t| now.saturating_sub(*t) >= 1000) {
            w.pop_front();
        }
        if w.len() >= qps as usize {
            return false;
        }
        w.push_back(now);
        true
    }

    // ---- inspection, used by in-process tests and the control path -------------------

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.recorder).requests.iter().cloned().collect()
    }

    /// Calls per endpoint name since start (or the last [`Self::clear_requests`]).
    pub fn count(&self, endpoint: &str) -> u64 {
        lock(&self.recorder)
            .counters
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    pub fn counters(&self) -> BTreeMap<String, u64> {
        lock(&self.recorder)
            .counters
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.recorder).clear();
    }

    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.faults).push(rule);
    }

    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        *lock(&self.faults) = rules;
    }

    pub fn faults(&self) -> Vec<FaultRule> {
        lock(&self.faults).clone()
    }

    pub fn revoke_tokens(&self, seq: Option<u64>) -> usize {
        lock(&self.world).revoke_tokens(seq)
    }

    pub fn set_scopes(&self, grant: &[String], revoke: &[String]) {
        lock(&self.world).set_scopes(grant, revoke);
    }

    /// Changes what the app may see of the directory, as an admin editing the app's
    /// contact range would.
    pub fn set_contact_range(&self, range: seed::ContactRangeSeed) {
        lock(&self.world).range = range;
    }

    /// A person resigns, joins or is frozen, as an admin would record it.
    pub fn set_user_status(&self, open_id: &str, status: seed::UserStatusSeed) {
        let mut world = lock(&self.world);
        if let Some(u) = world.users.iter_mut().find(|u| u.open_id == open_id) {
            u.status = status;
        }
    }

    pub fn messages(&self, chat_id: Option<&str>) -> Vec<Message> {
        lock(&self.world)
            .messages
            .iter()
            .filter(|m| chat_id.is_none_or(|c| m.chat_id == c))
            .cloned()
            .collect()
    }

    pub fn chats(&self) -> Vec<Chat> {
        lock(&self.world).chats.clone()
    }

    /// Apps created through one-click registration, with their scopes.
    pub fn registered_apps(&self) -> Vec<RegisteredApp> {
        lock(&self.world).apps.clone()
    }

    /// The tenant scopes granted to `app_id` (the seed app or a registered one), sorted.
    pub fn granted_scopes(&self, app_id: &str) -> Vec<String> {
        let world = lock(&self.world);
        let mut v: Vec<String> = world
            .app_scopes(Some(app_id))
            .iter()
            .filter(|s| s.granted && s.token_types.iter().any(|t| t == "tenant"))
            .map(|s| s.scope.clone())
            .collect();
        v.sort();
        v
    }

    /// User access tokens (`u-`) issued so far, by any grant.
    pub fn user_tokens_issued(&self) -> u64 {
        lock(&self.world).user_auth.issued
    }

    /// Successful `refresh_token` grants so far.
    pub fn refreshes(&self) -> u64 {
        lock(&self.world).user_auth.refreshes
    }

    /// Revokes the live refresh tokens of `open_id` (all users for `None`): their next use
    /// answers 20064. Returns how many were revoked.
    pub fn revoke_user_refresh_tokens(&self, open_id: Option<&str>) -> usize {
        lock(&self.world).user_auth.revoke_refresh_tokens(open_id)
    }

    /// Counts and device flows of the user-identity side (no token, code or device_code).
    pub fn user_auth_summary(&self) -> UserAuthSummary {
        lock(&self.world).user_auth.summary()
    }

    /// Long connection counters: connections, disconnects, pushes, re-pushes, acks.
    pub fn ws_stats(&self) -> longconn::LongConnStats {
        self.longconn.stats()
    }

    /// Events published to the long connection (the last 1000), oldest first.
    pub fn ws_events(&self) -> Vec<longconn::EventRecord> {
        self.longconn.events()
    }

    /// Publishes a schema 2.0 event envelope to one live connection of `app_id` (queued
    /// when none); returns how many connections got it (0 or 1).
    pub fn publish_event(&self, app_id: &str, envelope: &serde_json::Value) -> usize {
        self.longconn.publish(app_id, envelope, &self.options())
    }

    /// Drops every live long connection without a close frame; returns how many.
    pub fn ws_disconnect_all(&self) -> usize {
        self.longconn.disconnect_all()
    }

    /// Every one-click registration begun, oldest first: requested name, scopes, polls, state.
    pub fn registrations(&self) -> Vec<Registration> {
        let mut v: Vec<Registration> = lock(&self.world).registrations.values().cloned().collect();
        v.sort_by_key(|r| r.created_ms);
        v
    }
}

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    addr: SocketAddr,
    state: Arc<SandboxState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sandbox {
    /// Binds 127.0.0.1:`port` (0 picks a free port) and serves in the background.
    pub async fn start(seed: Seed, options: Options, port: u16) -> std::io::Result<Sandbox> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SandboxState::new(seed, options));
        state.set_base_url(format!("http://{addr}"));
        let app = router(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, app, rx));
        Ok(Sandbox {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`: what a Lark client takes as its domain.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &Arc<SandboxState> {
        &self.state
    }

    /// Waits until the server stops (never, unless shut down).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Upgraded WebSockets outlive the HTTP accept loop: end them with the sandbox.
        self.state.longconn.disconnect_all();
    }
}

/// HTTP/1 accept loop with title-cased response header names (`Content-Type`,
/// `X-Tt-Logid`, `Content-Disposition`), as Lark sends them. `axum::serve` cannot be
/// configured to do this, and hyper lowercases names by default; the official Python
/// SDK looks these headers up case-sensitively, so lowercase names lose the log id,
/// error codes on raw requests and downloaded file names.
async fn serve(listener: TcpListener, app: Router, shutdown: oneshot::Receiver<()>) {
    // Dropping `stop_tx` tells every open connection to finish its request and close.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Usually out of file descriptors: back off rather than spin.
                    tracing::warn!("sandbox accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Small request/response pairs: don't let Nagle delay them.
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .title_case_headers(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                // The long connection's `/ws/v2` is a WebSocket upgrade.
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!("sandbox connection ended: {e}");
                    }
                    return;
                }
                _ = stop.changed() => conn.as_mut().graceful_shutdown(),
            }
            if let Err(e) = conn.await {
                tracing::debug!("sandbox connection ended: {e}");
            }
        });
    }
    drop(stop_tx);
}

/// All endpoint groups plus the control path.
pub fn router(state: Arc<SandboxState>) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter> = BTreeMap::new();
    for ep in api::all_endpoints() {
        let filter = MethodFilter::try_from(ep.method.clone()).unwrap_or(MethodFilter::GET);
        let mut route = on(filter, pipeline::handle).with_state((state.clone(), ep));
        if let Some(limit) = ep.body_limit {
            route = route.layer(axum::extract::DefaultBodyLimit::max(limit));
        }
        let merged = match by_path.remove(ep.path) {
            Some(existing) => existing.merge(route),
            None => route,
        };
        by_path.insert(ep.path, merged);
    }
    let mut app = Router::new();
    for (path, route) in by_path {
        app = app.route(path, route.fallback(method_mismatch));
    }
    app.merge(registration::router(state.clone()))
        .merge(user_auth::router(state.clone()))
        .merge(longconn::router(state.clone()))
        .nest("/_sandbox", control::router(state))
        .fallback(unknown_path)
}

async fn unknown_path(uri: Uri) -> Response {
    let e = ApiError::new(404, codes::NOT_FOUND_PATH, "resource not find");
    tracing::debug!("sandbox: no endpoint at {}", uri.path());
    render_error(e, &new_log_id(), &[])
}

async fn method_mismatch(method: Method) -> Response {
    let e = ApiError::new(
        405,
        codes::METHOD_MISMATCH,
        format!("request method doesn't match: {method}"),
    );
    render_error(e, &new_log_id(), &[])
}
