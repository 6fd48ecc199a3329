//! The one client every Lark call goes through: tenant token cache with a single
//! in-flight fetch, rate-limit waits, retries that can never apply a write twice, a time
//! budget per call, and cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::LarkConfig;
use super::error::{ErrorKind, LarkError};
use super::pacer::Pacer;
use super::scopes::GrantedScopes;
use super::shared_limits::SharedLimits;

const TOKEN_PATH: &str = "/open-apis/auth/v3/tenant_access_token/internal";
/// Fresh tokens one call may ask for after Lark rejects one (revoked, rotated secret).
const MAX_TOKEN_REFRESHES: u32 = 3;
/// The first pause after a failed token fetch before a background refresh tries again.
const REFRESH_BACKOFF: Duration = Duration::from_millis(500);
/// A rate-limit reset further out than this is not waited for.
const MAX_RESET: Duration = Duration::from_secs(3600);

/// How a call may be repeated after a failure that leaves its outcome unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Safety {
    /// Reads, and writes whose repetition is harmless.
    Idempotent,
    /// A write Lark dedupes by `uuid`: the same key goes with every retry.
    Dedupe { key: Option<String>, in_query: bool },
    /// A write that could apply twice: retried only when it certainly was not sent.
    Unsafe,
}

tokio::task_local! {
    /// The log ids of the Lark calls one tool call made, for its audit line.
    static LOG_IDS: std::cell::RefCell<Vec<String>>;
}

/// Runs `work`, returning with its output the log ids of the successful Lark calls it made.
pub async fn with_log_ids<F: std::future::Future>(work: F) -> (F::Output, Vec<String>) {
    LOG_IDS
        .scope(std::cell::RefCell::new(Vec::new()), async {
            let out = work.await;
            let ids = LOG_IDS.try_with(|ids| ids.take()).unwrap_or_default();
            (out, ids)
        })
        .await
}

#[derive(Debug, Clone)]
pub struct Request {
    /// What the call does, in words an agent understands ("look up users by email").
    pub op: String,
    pub method: Method,
    /// Built with [`super::api_path`].
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    /// A multipart/form-data body instead of JSON (uploads).
    pub form: Option<Vec<FormPart>>,
    pub safety: Safety,
    /// Receiver (chat or user) whose send rate Lark limits.
    pub pace_key: Option<String>,
    /// Sent with the signed-in user's token instead of the app's tenant token.
    pub as_user: bool,
}

/// One multipart field; kept as data so every retry can rebuild the form.
#[derive(Debug, Clone)]
pub enum FormPart {
    Text {
        name: String,
        value: String,
    },
    File {
        name: String,
        file_name: String,
        mime: String,
        bytes: bytes::Bytes,
    },
}

fn build_form(parts: &[FormPart]) -> Result<reqwest::multipart::Form, String> {
    let mut form = reqwest::multipart::Form::new();
    for p in parts {
        form = match p {
            FormPart::Text { name, value } => form.text(name.clone(), value.clone()),
            FormPart::File {
                name,
                file_name,
                mime,
                bytes,
            } => {
                let part = reqwest::multipart::Part::stream(reqwest::Body::from(bytes.clone()))
                    .file_name(file_name.clone())
                    .mime_str(mime)
                    .map_err(|e| format!("bad MIME type {mime}: {e}"))?;
                form.part(name.clone(), part)
            }
        };
    }
    Ok(form)
}

impl Request {
    pub fn new(op: impl Into<String>, method: Method, path: String) -> Request {
        let safety = if method == Method::GET {
            Safety::Idempotent
        } else {
            Safety::Unsafe
        };
        Request {
            op: op.into(),
            method,
            path,
            query: Vec::new(),
            body: None,
            form: None,
            safety,
            pace_key: None,
            as_user: false,
        }
    }

    /// With the signed-in user's token (`login`); fails naming `login` when nobody is.
    pub fn as_user(mut self) -> Request {
        self.as_user = true;
        self
    }

    pub fn get(op: impl Into<String>, path: String) -> Request {
        Request::new(op, Method::GET, path)
    }

    pub fn post(op: impl Into<String>, path: String, body: Value) -> Request {
        Request::new(op, Method::POST, path).json(body)
    }

    pub fn query(mut self, key: &str, value: impl Into<String>) -> Request {
        self.query.push((key.to_string(), value.into()));
        self
    }

    /// Adds the parameter only when there is a value.
    pub fn query_opt(self, key: &str, value: Option<impl Into<String>>) -> Request {
        match value {
            Some(v) => self.query(key, v),
            None => self,
        }
    }

    pub fn json(mut self, body: Value) -> Request {
        self.body = Some(body);
        self
    }

    pub fn form(mut self, parts: Vec<FormPart>) -> Request {
        self.form = Some(parts);
        self
    }

    pub fn idempotent(mut self) -> Request {
        self.safety = Safety::Idempotent;
        self
    }

    /// Lark's `uuid` in the JSON body (message create, reply).
    pub fn dedupe_in_body(mut self, key: Option<String>) -> Request {
        self.safety = Safety::Dedupe {
            key,
            in_query: false,
        };
        self
    }

    /// Lark's `uuid` as a query parameter (forward, chat create).
    pub fn dedupe_in_query(mut self, key: Option<String>) -> Request {
        self.safety = Safety::Dedupe {
            key,
            in_query: true,
        };
        self
    }

    pub fn pace(mut self, receiver: impl Into<String>) -> Request {
        self.pace_key = Some(receiver.into());
        self
    }

    /// Puts the dedupe key in place once, so every retry carries the same one.
    fn fix_dedupe_key(&mut self) {
        let Safety::Dedupe { key, in_query } = &mut self.safety else {
            return;
        };
        let key = key.get_or_insert_with(super::new_uuid).clone();
        if *in_query {
            self.query.retain(|(k, _)| k != "uuid");
            self.query.push(("uuid".into(), key));
        } else if let Some(Value::Object(body)) = &mut self.body {
            body.insert("uuid".into(), json!(key));
        }
    }
}

/// A successful Lark answer (`code == 0`).
#[derive(Debug, Clone)]
pub struct Response {
    pub body: Value,
    pub log_id: Option<String>,
}

/// Where [`LarkClient::download`] puts a file's bytes as they arrive, so no file is ever
/// held in memory whole.
pub trait FileSink: Send {
    /// Called before the first chunk of every attempt: a retry after a body cut off halfway
    /// starts the file over, so no byte is written twice.
    fn restart(&mut self) -> impl Future<Output = std::io::Result<()>> + Send;
    /// The next chunk of the body, in order.
    fn write(&mut self, chunk: &[u8]) -> impl Future<Output = std::io::Result<()>> + Send;
}

/// A file [`LarkClient::download`] delivered to its sink in full.
#[derive(Debug, Clone)]
pub struct Download {
    /// Bytes written to the sink by the attempt that succeeded.
    pub len: u64,
    pub content_type: Option<String>,
    /// From `Content-Disposition`, when Lark sent one.
    pub file_name: Option<String>,
    pub log_id: Option<String>,
}

/// Why [`LarkClient::download`] delivered no file.
#[derive(Debug)]
pub enum DownloadError {
    /// Lark refused, the connection failed, the budget ran out or the caller cancelled.
    Lark(LarkError),
    /// The file is over the cap the caller set; reading stopped there.
    TooLarge { max: u64 },
    /// The sink refused the bytes (a full disk, say); nothing was retried.
    Sink(std::io::Error),
}

impl Response {
    pub fn data(&self) -> &Value {
        self.body.get("data").unwrap_or(&Value::Null)
    }
    pub fn into_data(mut self) -> Value {
        self.body
            .get_mut("data")
            .map(Value::take)
            .unwrap_or(Value::Null)
    }
}

#[derive(Clone)]
pub(super) struct CachedToken {
    pub(super) value: SecretString,
    pub(super) obtained: Instant,
    pub(super) lifetime: Duration,
}

impl CachedToken {
    /// Used until shortly before Lark's `expire`, so a request never carries a dying token.
    pub(super) fn usable(&self) -> bool {
        let margin = (self.lifetime / 10).min(Duration::from_secs(120));
        self.obtained.elapsed() + margin < self.lifetime
    }
    /// Refreshed in the background ahead of that, so callers do not wait at the boundary.
    pub(super) fn due_for_refresh(&self) -> bool {
        let ahead = (self.lifetime / 4).min(Duration::from_secs(600));
        self.obtained.elapsed() + ahead >= self.lifetime
    }
}

/// One token fetch, awaited by every caller that needs its result.
type TokenFetch = Shared<BoxFuture<'static, Result<SecretString, LarkError>>>;

#[derive(Default)]
struct TokenState {
    cached: Option<CachedToken>,
    /// The fetch under way, if any: callers join it instead of starting their own, and
    /// all of them get its result, success or failure.
    in_flight: Option<TokenFetch>,
    /// After failed fetches, no background refresh starts before this.
    refresh_not_before: Option<Instant>,
    failures: u32,
}

struct Inner {
    cfg: LarkConfig,
    http: reqwest::Client,
    token: std::sync::Mutex<TokenState>,
    pacer: Pacer,
    /// Lark has answered at least once. Until then a connection that fails says more about
    /// the configured domain than about the network.
    reached: AtomicBool,
    /// The signed-in user's login, for requests sent [`Request::as_user`].
    user: std::sync::OnceLock<Arc<super::user_auth::UserSession>>,
    /// What other replicas share with this one (set once, at start); unset: nothing.
    limits: std::sync::OnceLock<SharedLimits>,
}

static IN_PROCESS: SharedLimits = SharedLimits::InProcess;

#[derive(Clone)]
pub struct LarkClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LarkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LarkClient")
            .field("config", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

impl LarkClient {
    pub fn new(cfg: LarkConfig) -> Result<LarkClient, LarkError> {
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(super::tls::client_config())
            .connect_timeout(cfg.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            // Bursts open many connections; only this many stay parked afterwards.
            .pool_max_idle_per_host(32)
            .user_agent(concat!("lark-mcp-server/", env!("CARGO_PKG_VERSION")));
        if is_loopback(&cfg.base_url) {
            // A proxy from the environment must not capture calls to a local sandbox.
            builder = builder.no_proxy();
        }
        let http = builder
            .build()
            .map_err(|e| LarkError::config(format!("cannot build the HTTP client: {e}")))?;
        Ok(LarkClient {
            inner: Arc::new(Inner {
                pacer: Pacer::new(cfg.sends_per_second),
                cfg,
                http,
                token: std::sync::Mutex::new(TokenState::default()),
                reached: AtomicBool::new(false),
                user: std::sync::OnceLock::new(),
                limits: std::sync::OnceLock::new(),
            }),
        })
    }

    pub fn config(&self) -> &LarkConfig {
        &self.inner.cfg
    }

    /// Where user-identity requests get their token (set once, at start).
    pub fn set_user_session(&self, session: Arc<super::user_auth::UserSession>) {
        let _ = self.inner.user.set(session);
    }

    /// Shares the tenant token, send slots and idempotent writes with other replicas
    /// (set once, at start, before any call).
    pub fn share_limits(&self, limits: SharedLimits) {
        let _ = self.inner.limits.set(limits);
    }

    /// Whether `what` (a one-time token) is claimed here first, among all replicas sharing
    /// limits through Redis, for `ttl`; always so for a process alone.
    pub async fn claim_once(&self, what: &str, ttl: Duration) -> bool {
        self.limits().claim(what, ttl).await
    }

    /// Whether this client shares limits with other replicas (through Redis).
    pub fn shares_limits(&self) -> bool {
        matches!(self.limits(), SharedLimits::Redis(_))
    }

    /// Counts one send against the `--send-budget` the replicas share through Redis:
    /// `Some(Ok(id))` counted, `Some(Err(wait))` used up; `None` for a process alone, or
    /// when Redis fails (the replica's own window decides then).
    pub async fn shared_budget_take(
        &self,
        sends: usize,
        period: Duration,
    ) -> Option<Result<String, Duration>> {
        self.limits().budget_take(sends, period).await
    }

    /// The send counted as `id` never reached Lark: it stops counting on every replica.
    pub async fn shared_budget_give_back(&self, sends: usize, period: Duration, id: &str) {
        self.limits().budget_give_back(sends, period, id).await
    }

    /// Sends left in the shared budget and the wait until the oldest stops counting;
    /// `None` for a process alone, or when Redis fails.
    pub async fn shared_budget_left(
        &self,
        sends: usize,
        period: Duration,
    ) -> Option<(usize, Duration)> {
        self.limits().budget_left(sends, period).await
    }

    fn limits(&self) -> &SharedLimits {
        self.inner.limits.get().unwrap_or(&IN_PROCESS)
    }

    pub fn user_session(&self) -> Option<&Arc<super::user_auth::UserSession>> {
        self.inner.user.get()
    }

    /// The token a request goes with: the user's or the tenant's.
    async fn token_for(&self, req: &Request) -> Result<SecretString, LarkError> {
        if !req.as_user {
            return self.token().await;
        }
        let Some(user) = self.inner.user.get() else {
            return Err(LarkError::new(
                ErrorKind::UserNotAuthorized,
                &req.op,
                "nobody is signed in as a user; run `lark-mcp-server login` to act as yourself",
            ));
        };
        user.access_token()
            .await
            .map_err(|e| LarkError::new(ErrorKind::UserNotAuthorized, &req.op, e.to_string()))
    }

    /// Runs one logical call: retries, waits and token refreshes included, within the
    /// call budget, abandoned as soon as `cancel` fires.
    pub async fn call(
        &self,
        mut req: Request,
        cancel: &CancellationToken,
    ) -> Result<Response, LarkError> {
        // A key the agent chose may come again on another replica: the outcome is shared.
        let agent_key = match &req.safety {
            // Lark dedupes per target (forward's receive_id is in the query): so does this.
            Safety::Dedupe { key: Some(k), .. } => Some(format!(
                "{}:{} {}?{}:{k}",
                if req.as_user { "user" } else { "app" },
                req.method,
                req.path,
                req.query
                    .iter()
                    .filter(|(n, _)| n != "uuid")
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            )),
            _ => None,
        };
        req.fix_dedupe_key();
        let req = &req;
        let run = self.retried(req, cancel, || {
            self.attempt(req, |token| async move { self.send(req, &token).await })
        });
        let out = match agent_key {
            Some(key) => self.limits().once(&key, cancel, run).await,
            None => run.await,
        };
        if let Ok(Response {
            log_id: Some(id), ..
        }) = &out
        {
            let _ = LOG_IDS.try_with(|ids| ids.borrow_mut().push(id.clone()));
        }
        out
    }

    /// Downloads the file `req` (a GET) answers into `sink`, chunk by chunk, refusing one
    /// over `max_bytes`. Retries, the call budget and cancellation work as in
    /// [`LarkClient::call`]; `request_timeout` bounds the wait for the headers and each
    /// pause between chunks, not the whole body, so a large file on a slow link is cut
    /// only by the call budget. Lark's JSON error envelopes fail the call as usual.
    pub async fn download<S: FileSink>(
        &self,
        req: Request,
        max_bytes: u64,
        cancel: &CancellationToken,
        sink: &mut S,
    ) -> Result<Download, DownloadError> {
        // Every attempt writes to the one sink; the lock only lets each attempt's future
        // borrow it in turn (attempts never overlap).
        let sink = tokio::sync::Mutex::new(sink);
        let (req, sink) = (&req, &sink);
        let outcome = self
            .retried(req, cancel, || {
                self.attempt(req, |token| async move {
                    let mut sink = sink.lock().await;
                    self.fetch_file(req, &token, max_bytes, &mut **sink).await
                })
            })
            .await;
        match outcome {
            Ok(done) => done,
            Err(e) => Err(DownloadError::Lark(e)),
        }
    }

    /// Runs `attempt` until it succeeds, a retry is not allowed, the call budget is spent
    /// or `cancel` fires.
    async fn retried<T, Fut>(
        &self,
        req: &Request,
        cancel: &CancellationToken,
        attempt: impl FnMut() -> Fut,
    ) -> Result<T, LarkError>
    where
        Fut: Future<Output = Result<T, LarkError>>,
    {
        let cfg = &self.inner.cfg;
        let budget = cfg.call_budget;
        let deadline = Instant::now()
            .checked_add(budget)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let refreshes = AtomicU32::new(0);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(cfg.max_retries)
            .with_jitter();
        let retrying = attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|e: &LarkError| {
                // A rejected token means the request was refused before it took effect,
                // so even a write may go again, with a fresh token, within the budget.
                if e.is_stale_token() {
                    return refreshes.fetch_add(1, Ordering::SeqCst) < MAX_TOKEN_REFRESHES;
                }
                may_retry(e, &req.safety)
            })
            .adjust(|e: &LarkError, next| wait_before_retry(e, next, deadline))
            .notify(|e: &LarkError, wait| {
                // What failed may be a step of the call (its token), and the log should say
                // what is retried in the words the final error will use.
                let op = if e.operation == req.op {
                    req.op.clone()
                } else {
                    format!("{} for {}", e.operation, req.op)
                };
                tracing::warn!(%op, kind = ?e.kind, code = ?e.code, wait_ms = wait.as_millis() as u64, "retrying Lark call");
            });
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(LarkError::new(ErrorKind::Cancelled, &req.op, "cancelled by the caller")),
            r = tokio::time::timeout_at(deadline, retrying) => r.unwrap_or_else(|_| {
                Err(LarkError::new(
                    ErrorKind::Timeout,
                    &req.op,
                    format!("no answer within the {} s call budget", budget.as_secs()),
                ))
            }),
        }
    }

    /// One try: a token, the pacer's slot, then `send` with the token.
    async fn attempt<T, Fut>(
        &self,
        req: &Request,
        send: impl FnOnce(SecretString) -> Fut,
    ) -> Result<T, LarkError>
    where
        Fut: Future<Output = Result<T, LarkError>>,
    {
        self.limits().wait_out_hold(&req.op).await;
        let token = self.token_for(req).await?;
        let slot = match &req.pace_key {
            Some(key) => Some(
                self.inner
                    .pacer
                    .wait_and(key, |lane| self.limits().pace(lane))
                    .await,
            ),
            None => None,
        };
        let result = send(token.clone()).await;
        if let Err(e) = &result {
            let remote = slot.as_ref().and_then(|(_, r)| r.as_ref());
            self.limits().refused(&req.op, e, remote).await;
        }
        if let Err(e) = &result
            && e.is_stale_token()
        {
            tracing::info!(op = %req.op, code = ?e.code, "token rejected; fetching a new one");
            match (req.as_user, self.inner.user.get()) {
                (true, Some(user)) => user.reject(&token).await,
                _ => {
                    self.invalidate(&token);
                    self.limits().forget_token(&token).await;
                }
            }
        }
        result
    }

    /// Tells the pacer that sends to `name` (an email, open_id, message id) reach
    /// `chat_id`, so all of its names are paced as one receiver.
    pub fn learn_receiver(&self, name: &str, chat_id: &str) {
        self.inner.pacer.learn(name, chat_id);
        if !name.is_empty() && !chat_id.is_empty() && name != chat_id {
            self.limits().learn(Pacer::normalize(name), chat_id);
        }
    }

    /// The chat a message (or another name of a receiver) is known to be in, from what
    /// was read or sent before.
    pub fn known_chat(&self, name: &str) -> Option<String> {
        self.inner.pacer.chat_of(name)
    }

    /// The HTTP request for `req`, without a timeout: each caller bounds its own waits.
    fn build(
        &self,
        req: &Request,
        token: &SecretString,
    ) -> Result<reqwest::RequestBuilder, LarkError> {
        let cfg = &self.inner.cfg;
        let mut rb = self
            .inner
            .http
            .request(req.method.clone(), format!("{}{}", cfg.base_url, req.path))
            .bearer_auth(token.expose_secret());
        if !req.query.is_empty() {
            rb = rb.query(&req.query);
        }
        if let Some(parts) = &req.form {
            let form = build_form(parts)
                .map_err(|e| LarkError::new(ErrorKind::InvalidArgument, &req.op, e))?;
            rb = rb.multipart(form);
        } else if let Some(body) = &req.body {
            rb = rb
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .body(body.to_string());
        }
        Ok(rb)
    }

    async fn send(&self, req: &Request, token: &SecretString) -> Result<Response, LarkError> {
        let cfg = &self.inner.cfg;
        let resp = self
            .build(req, token)?
            .timeout(cfg.request_timeout)
            .send()
            .await
            .map_err(|e| transport_error(&req.op, e, cfg))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_error(&req.op, e, cfg))?;
        decode(&req.op, status, &headers, &bytes)
    }

    /// One download attempt. `Ok(Err(_))` is an end no retry can change (over the cap, a
    /// failing sink), kept out of the retry policy, which sees only [`LarkError`]s;
    /// `Err(_)` goes to that policy like any call's failure.
    async fn fetch_file<S: FileSink>(
        &self,
        req: &Request,
        token: &SecretString,
        max: u64,
        sink: &mut S,
    ) -> Result<Result<Download, DownloadError>, LarkError> {
        let cfg = &self.inner.cfg;
        let op = req.op.as_str();
        // Each wait, not the whole body, gets `request_timeout`: a slow but moving
        // download is bounded by the call budget alone.
        let idle = cfg.request_timeout;
        let mut resp = tokio::time::timeout(idle, self.build(req, token)?.send())
            .await
            .map_err(|_| silent(op, cfg, "no response"))?
            .map_err(|e| transport_error(op, e, cfg))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type");
        // Lark answers a failed download with its JSON envelope, even under HTTP 200.
        let is_file = status == 200
            && !content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("application/json"));
        if !is_file {
            let bytes = tokio::time::timeout(idle, resp.bytes())
                .await
                .map_err(|_| silent(op, cfg, "no complete answer"))?
                .map_err(|e| transport_error(op, e, cfg))?;
            decode(op, status, &headers, &bytes)?;
            let mut e = LarkError::new(ErrorKind::Decode, op, "Lark answered without a file");
            e.http_status = Some(status);
            e.log_id = header("x-tt-logid");
            return Err(e);
        }
        if resp.content_length().is_some_and(|n| n > max) {
            return Ok(Err(DownloadError::TooLarge { max }));
        }
        if let Err(e) = sink.restart().await {
            return Ok(Err(DownloadError::Sink(e)));
        }
        let mut len: u64 = 0;
        loop {
            let chunk = tokio::time::timeout(idle, resp.chunk())
                .await
                .map_err(|_| silent(op, cfg, "the download stalled: no data"))?
                .map_err(|e| transport_error(op, e, cfg))?;
            let Some(chunk) = chunk else { break };
            len = len.saturating_add(chunk.len() as u64);
            // Checked before writing, so the sink never holds more than `max` bytes.
            if len > max {
                return Ok(Err(DownloadError::TooLarge { max }));
            }
            if let Err(e) = sink.write(&chunk).await {
                return Ok(Err(DownloadError::Sink(e)));
            }
        }
        Ok(Ok(Download {
            len,
            content_type,
            file_name: header("content-disposition").and_then(|d| disposition_name(&d)),
            log_id: header("x-tt-logid"),
        }))
    }

    // ---- tenant_access_token -------------------------------------------------------

    fn token_state(&self) -> std::sync::MutexGuard<'_, TokenState> {
        self.inner.token.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn token(&self) -> Result<SecretString, LarkError> {
        let fetch = {
            let mut st = self.token_state();
            if let Some(t) = st.cached.as_ref().filter(|t| t.usable()) {
                let value = t.value.clone();
                let backing_off = st.refresh_not_before.is_some_and(|at| Instant::now() < at);
                if t.due_for_refresh() && st.in_flight.is_none() && !backing_off {
                    // Ahead of expiry, in the background: callers keep the current token.
                    drop(self.start_fetch(&mut st));
                }
                return Ok(value);
            }
            match &st.in_flight {
                Some(f) => f.clone(),
                None => self.start_fetch(&mut st),
            }
        };
        fetch.await
    }

    /// Starts the one fetch everybody waits on. It runs in its own task so that a caller
    /// giving up does not abandon it for the others.
    fn start_fetch(&self, st: &mut TokenState) -> TokenFetch {
        let me = self.clone();
        let task = tokio::spawn(async move {
            let result = me.limits().tenant_token(|| me.fetch_token()).await;
            let mut st = me.token_state();
            st.in_flight = None;
            match result {
                Ok(t) => {
                    let value = t.value.clone();
                    st.cached = Some(t);
                    st.failures = 0;
                    st.refresh_not_before = None;
                    Ok(value)
                }
                Err(e) => {
                    st.failures = st.failures.saturating_add(1);
                    let wait = REFRESH_BACKOFF
                        .saturating_mul(1 << st.failures.min(6))
                        .min(Duration::from_secs(60));
                    st.refresh_not_before = Some(Instant::now() + wait);
                    if st.cached.as_ref().is_some_and(|t| t.usable()) {
                        tracing::warn!(
                            retry_in_s = wait.as_secs(),
                            "background token refresh failed: {e}"
                        );
                    }
                    Err(e)
                }
            }
        });
        let fetch = async move {
            task.await.unwrap_or_else(|_| {
                Err(unsent(LarkError::new(
                    ErrorKind::Transient,
                    "get a tenant_access_token",
                    "the token fetch was interrupted",
                )))
            })
        }
        .boxed()
        .shared();
        st.in_flight = Some(fetch.clone());
        fetch
    }

    fn invalidate(&self, rejected: &SecretString) {
        let mut st = self.token_state();
        if st
            .cached
            .as_ref()
            .is_some_and(|t| t.value.expose_secret() == rejected.expose_secret())
        {
            st.cached = None;
        }
    }

    async fn fetch_token(&self) -> Result<CachedToken, LarkError> {
        const OP: &str = "get a tenant_access_token";
        let cfg = &self.inner.cfg;
        let resp = self
            .inner
            .http
            .post(format!("{}{TOKEN_PATH}", cfg.base_url))
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(json!({"app_id": cfg.app_id, "app_secret": cfg.secret()}).to_string())
            .timeout(cfg.request_timeout)
            .send()
            .await
            .map_err(|e| {
                let never_reached = !self.inner.reached.load(Ordering::Relaxed);
                unsent(if never_reached && e.is_connect() {
                    unreachable_domain(OP, cfg)
                } else {
                    transport_error(OP, e, cfg)
                })
            })?;
        self.inner.reached.store(true, Ordering::Relaxed);
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| unsent(transport_error(OP, e, cfg)))?;
        let body = decode(OP, status, &headers, &bytes).map_err(unsent)?.body;
        let value = body
            .get("tenant_access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        let expire = body.get("expire").and_then(Value::as_u64);
        match (value, expire) {
            (Some(v), Some(secs)) if secs > 0 => Ok(CachedToken {
                value: SecretString::from(v.to_string()),
                obtained: Instant::now(),
                lifetime: Duration::from_secs(secs),
            }),
            _ => Err(unsent(LarkError::new(
                ErrorKind::Decode,
                OP,
                "the answer has no tenant_access_token or expire",
            ))),
        }
    }

    // ---- app facts ---------------------------------------------------------------------

    /// `bot/v3/info`: the bot object (top-level `bot`, not `data`).
    pub async fn bot_info(&self, cancel: &CancellationToken) -> Result<Value, LarkError> {
        let req = Request::get("get the bot's info", "/open-apis/bot/v3/info".into());
        let mut resp = self.call(req, cancel).await?;
        Ok(resp
            .body
            .get_mut("bot")
            .map(Value::take)
            .unwrap_or(Value::Null))
    }

    /// The app's granted scopes: `applications/me` (with token types), falling back to
    /// `application/v6/scopes`. The first failure is reported if both fail.
    pub async fn granted_scopes(
        &self,
        cancel: &CancellationToken,
    ) -> Result<GrantedScopes, LarkError> {
        let app = Request::get(
            "read the app's scopes",
            "/open-apis/application/v6/applications/me".into(),
        )
        .query("lang", "en_us");
        let first = match self.call(app, cancel).await {
            Ok(r) => match GrantedScopes::from_app_info(r.data()) {
                Some(s) => return Ok(s),
                None => LarkError::new(
                    ErrorKind::Decode,
                    "read the app's scopes",
                    "no data.app.scopes in the answer",
                ),
            },
            Err(e) => e,
        };
        if first.kind == ErrorKind::Cancelled {
            return Err(first);
        }
        tracing::debug!("applications/me failed ({first}); trying application/v6/scopes");
        let fallback = Request::get(
            "read the app's scope grants",
            "/open-apis/application/v6/scopes".into(),
        );
        match self.call(fallback, cancel).await {
            Ok(r) => GrantedScopes::from_grant_status(r.data()).ok_or(first),
            Err(_) => Err(first),
        }
    }
}

/// The file name in a `Content-Disposition`: RFC 5987 `filename*=UTF-8''…` (non-ASCII
/// names) preferred over the plain `filename="…"`.
fn disposition_name(header: &str) -> Option<String> {
    let mut plain = None;
    for p in header.split(';').map(str::trim) {
        let Some((key, value)) = p.split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                let decoded = value
                    .trim()
                    .splitn(3, '\'')
                    .nth(2)
                    .and_then(|v| percent_encoding::percent_decode_str(v).decode_utf8().ok())
                    .filter(|n| !n.is_empty());
                // A malformed extended name leaves the plain one to use.
                if let Some(name) = decoded {
                    return Some(name.into_owned());
                }
            }
            "filename" => plain = Some(value.trim().trim_matches('"').to_string()),
            _ => {}
        }
    }
    plain.filter(|n| !n.is_empty())
}

fn is_loopback(base: &str) -> bool {
    reqwest::Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|h| h == "localhost" || h == "[::1]" || h.starts_with("127."))
}

/// A wait of `request_timeout` that ended with nothing from Lark: transient, and the request
/// may have been applied, as with reqwest's own timeout.
fn silent(op: &str, cfg: &LarkConfig, what: &str) -> LarkError {
    LarkError::new(
        ErrorKind::Transient,
        op,
        format!("{what} within {} s", cfg.request_timeout.as_secs()),
    )
}

fn unsent(mut e: LarkError) -> LarkError {
    e.not_sent = true;
    e
}

/// A retry is allowed when the request was refused before it took effect (rate limits),
/// never left this machine, or cannot apply twice.
fn may_retry(e: &LarkError, safety: &Safety) -> bool {
    match e.kind {
        ErrorKind::RateLimited | ErrorKind::SendRateLimited => true,
        ErrorKind::Transient => e.not_sent || *safety != Safety::Unsafe,
        _ => false,
    }
}

fn wait_before_retry(e: &LarkError, next: Option<Duration>, deadline: Instant) -> Option<Duration> {
    let backoff = next?;
    let wait = match e.kind {
        // Lark says when the window resets; waiting less only earns another 429. The
        // spread keeps callers that were refused together from coming back together.
        ErrorKind::RateLimited => {
            let reset = e.retry_after.unwrap_or(Duration::from_secs(1));
            let spread = (reset / 4).max(Duration::from_secs(1));
            reset.saturating_add(spread.mul_f64(fastrand::f64()))
        }
        ErrorKind::SendRateLimited => Duration::from_millis(fastrand::u64(200..700)),
        _ if e.is_stale_token() => Duration::ZERO,
        _ => backoff,
    };
    // A wait that outlasts the call budget is not started: the caller hears now.
    let left = deadline.saturating_duration_since(Instant::now());
    (wait < left).then_some(wait)
}

/// The very first connection failed: most likely a wrong `--domain`, so it is a
/// configuration error, not network trouble worth retrying or "trying again shortly".
fn unreachable_domain(op: &str, cfg: &LarkConfig) -> LarkError {
    LarkError::new(
        ErrorKind::Config,
        op,
        format!(
            "cannot connect to {}, and it has never answered: check --domain / LARK_DOMAIN (feishu, lark or a URL)",
            cfg.base_url
        ),
    )
}

fn transport_error(op: &str, e: reqwest::Error, cfg: &LarkConfig) -> LarkError {
    if e.is_builder() {
        // The request could not even be built here (an over-long id, say): retrying the
        // same arguments cannot help, and it is no network trouble.
        let mut err = LarkError::new(
            ErrorKind::InvalidArgument,
            op,
            format!("the request cannot be built from these arguments ({e})"),
        );
        err.not_sent = true;
        return err;
    }
    let (msg, not_sent) = if e.is_timeout() {
        (
            format!("no response within {} s", cfg.request_timeout.as_secs()),
            false,
        )
    } else if e.is_connect() {
        (format!("cannot connect to {}", cfg.base_url), true)
    } else {
        let mut source = std::error::Error::source(&e);
        let mut text = String::from("request failed");
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        if e.is_body() || e.is_decode() {
            text.push_str(" (the answer was cut off)");
        }
        (format!("the connection failed ({text})"), false)
    };
    let mut err = LarkError::new(ErrorKind::Transient, op, msg);
    err.not_sent = not_sent;
    err
}

/// Decides on Lark's `code`, never on the HTTP status alone: business errors come with
/// 4xx and sometimes with 200.
fn decode(op: &str, status: u16, headers: &HeaderMap, bytes: &[u8]) -> Result<Response, LarkError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let log_id = header("x-tt-logid").or_else(|| header("x-request-id"));
    let retry_after = header("x-ogw-ratelimit-reset")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| Duration::from_secs(secs).min(MAX_RESET));
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    let code = body
        .as_ref()
        .and_then(|b| b.get("code"))
        .and_then(Value::as_i64);
    match (body, code) {
        (Some(body), Some(0)) if (200..300).contains(&status) => Ok(Response { body, log_id }),
        (Some(body), Some(_)) => Err(LarkError::from_envelope(
            op,
            status,
            &body,
            log_id,
            retry_after,
        )),
        _ => {
            let kind = match status {
                429 => ErrorKind::RateLimited,
                500..=599 => ErrorKind::Transient,
                _ => ErrorKind::Decode,
            };
            let mut e = LarkError::new(
                kind,
                op,
                format!("Lark answered HTTP {status} without a Lark JSON body"),
            );
            e.http_status = Some(status);
            e.log_id = log_id;
            e.retry_after = retry_after;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_refused_together_come_back_spread_over_a_second() {
        let mut e = LarkError::new(ErrorKind::RateLimited, "get a user", "limited");
        e.retry_after = Some(Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(60);
        let waits: Vec<Duration> = (0..200)
            .filter_map(|_| wait_before_retry(&e, Some(Duration::ZERO), deadline))
            .collect();
        assert_eq!(waits.len(), 200);
        let (lo, hi) = (waits.iter().min(), waits.iter().max());
        let (Some(lo), Some(hi)) = (lo, hi) else {
            panic!("no waits")
        };
        assert!(
            *lo >= Duration::from_secs(1),
            "never before the reset: {lo:?}"
        );
        assert!(*hi <= Duration::from_secs(2), "{hi:?}");
        assert!(
            *hi - *lo >= Duration::from_millis(600),
            "spread {lo:?}..{hi:?}"
        );
    }

    #[test]
    fn a_wait_past_the_budget_is_not_started() {
        let mut e = LarkError::new(ErrorKind::RateLimited, "get a user", "limited");
        e.retry_after = Some(Duration::from_secs(u64::MAX));
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(wait_before_retry(&e, Some(Duration::ZERO), deadline), None);
    }

    #[test]
    fn download_names_come_from_either_disposition_form() {
        assert_eq!(
            disposition_name("attachment; filename=\"report.pdf\"").as_deref(),
            Some("report.pdf")
        );
        assert_eq!(
            disposition_name(
                "attachment; filename=\"__-__.pdf\"; filename*=UTF-8''%E5%91%A8%E6%8A%A5-%E8%8D%89%E7%A8%BF.pdf"
            )
            .as_deref(),
            Some("周报-草稿.pdf")
        );
        assert_eq!(disposition_name("inline").as_deref(), None);
        assert_eq!(
            disposition_name("attachment; filename*=UTF-8''%FF%FE; filename=\"plain.txt\"")
                .as_deref(),
            Some("plain.txt"),
            "a malformed filename* falls back to filename"
        );
        assert_eq!(
            disposition_name("attachment; filename=\"plain.txt\"; filename*=garbage").as_deref(),
            Some("plain.txt")
        );
    }
}
