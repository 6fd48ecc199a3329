//! What replicas of `serve --http` must agree on to stay inside Lark's limits: the tenant
//! token (one fetch for all of them), each receiver's send slots, and the outcome of a write
//! made under an agent's idempotency key. One replica keeps all of it in process and nothing
//! here runs; with `--redis-url` it lives in Redis.
//!
//! Redis helps, it is not needed for correctness: every call to it is bounded by
//! [`OP_TIMEOUT`], and when it fails the replica carries on alone (its own token fetch, its
//! own pacer, Lark's `uuid` dedupe), with a warning.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::{CachedToken, Response};
use super::config::LarkConfig;
use super::error::{ErrorKind, LarkError};
use scripts::*;

mod scripts;
mod user;

pub(crate) use user::{USER_LOCK_LEASE, warn_user};

/// The longest any single Redis command may take before the replica goes on without it.
const OP_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a caller looks again while another replica holds what it waits for.
const POLL: Duration = Duration::from_millis(40);
/// Lark dedupes a `uuid` for an hour; an outcome is kept as long.
const OUTCOME_TTL: Duration = Duration::from_secs(3600);
/// The longest wait for another replica's write under the same key; after that Lark's own
/// `uuid` dedupe decides.
const OUTCOME_WAIT: Duration = Duration::from_secs(10);
/// How late a replica may learn that another was refused for a kind of call (Lark's reset
/// windows are whole seconds).
const HOLD_RECHECK: Duration = Duration::from_millis(250);
/// How long a replica goes on alone after Redis failed it.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// How long a learned name → chat mapping is kept after the last one learned.
const ALIAS_TTL: Duration = Duration::from_secs(24 * 3600);

/// Where the state replicas share lives.
#[derive(Clone, Default)]
pub enum SharedLimits {
    /// This process alone: nothing is shared, and nothing costs anything.
    #[default]
    InProcess,
    Redis(Arc<RedisLimits>),
}

impl std::fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SharedLimits::InProcess => f.write_str("InProcess"),
            SharedLimits::Redis(r) => f.debug_tuple("Redis").field(&r.shown).finish(),
        }
    }
}

pub struct RedisLimits {
    conn: ConnectionManager,
    /// The URL without its password, for messages.
    shown: String,
    /// The password, scrubbed from any error text that might echo it.
    password: Option<SecretString>,
    /// Keys of one app at one Lark domain: several apps may share one Redis.
    prefix: String,
    per_second: u32,
    /// How long a send slot counts while its answer is awaited; a replica that dies with
    /// one in flight frees it after this.
    lease: Duration,
    window: Duration,
    claim_ttl: Duration,
    /// Redis failed lately: until then, nobody asks it.
    paused_until: std::sync::Mutex<Option<Instant>>,
    /// Kinds of call Redis lately said were not held back, and when.
    clear_seen: std::sync::Mutex<std::collections::HashMap<String, Instant>>,
}

/// A send slot taken in Redis; dropping it (the answer is in) starts its window.
pub struct RemoteSlot {
    limits: Arc<RedisLimits>,
    lane: String,
    id: String,
}

impl Drop for RemoteSlot {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (limits, lane, id) = (self.limits.clone(), self.lane.clone(), self.id.clone());
        rt.spawn(async move {
            let script = Script::new(PACE_DONE);
            let mut inv = script.key(&lane);
            inv.arg(limits.window.as_millis() as u64).arg(&id);
            let mut c = limits.conn.clone();
            // Failing, the slot still frees when its lease ends.
            if let Err(e) = limits
                .run("end a send slot", inv.invoke_async::<i64>(&mut c))
                .await
            {
                warn(&e);
            }
        });
    }
}

/// A Redis failure worth a line in the log (a paused Redis answers with an empty one).
fn warn(e: &str) {
    if !e.is_empty() {
        tracing::warn!("{e}");
    }
}

/// `redis://user:***@host:port/db`: the URL as it may be shown.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            if u.query().is_some() {
                u.set_query(Some("…"));
            }
            u.to_string()
        }
        Err(_) => "(an unparsable URL)".to_string(),
    }
}

impl SharedLimits {
    /// Connects to Redis and checks that it answers; the error names the URL without its
    /// password.
    pub async fn redis(url: &SecretString, cfg: &LarkConfig) -> Result<SharedLimits, String> {
        let raw = url.expose_secret();
        let shown = redact_url(raw);
        let password = reqwest::Url::parse(raw)
            .ok()
            .and_then(|u| u.password().map(str::to_string))
            .filter(|p| !p.is_empty())
            .map(SecretString::from);
        let scrub = |e: String| match &password {
            Some(p) => e.replace(p.expose_secret(), "***"),
            None => e,
        };
        let client = redis::Client::open(raw).map_err(|_| {
            format!("--redis-url {shown} is not a Redis URL (redis://[:password@]host:port[/db])")
        })?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let cannot = |why: String| scrub(format!("cannot reach Redis at {shown}: {why}"));
        let mut conn = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            redis::aio::ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| {
            cannot(format!(
                "no answer within {} s",
                CONNECT_TIMEOUT.as_secs() * 2
            ))
        })?
        .map_err(|e| cannot(e.to_string()))?;
        tokio::time::timeout(
            OP_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        .map_err(|_| cannot("PING went unanswered".into()))?
        .map_err(|e| cannot(e.to_string()))?;
        let host = reqwest::Url::parse(&cfg.base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let window = super::pacer::WINDOW;
        Ok(SharedLimits::Redis(Arc::new(RedisLimits {
            conn,
            shown,
            password,
            prefix: format!("lark-mcp:{}@{host}:", cfg.app_id),
            per_second: cfg.sends_per_second,
            lease: cfg.request_timeout + window,
            window,
            claim_ttl: cfg.call_budget + Duration::from_secs(5),
            paused_until: std::sync::Mutex::new(None),
            clear_seen: std::sync::Mutex::new(Default::default()),
        })))
    }

    /// A send slot for `lane` shared with the other replicas; `None` in process, or when
    /// Redis fails (the local pacer alone then keeps this replica's pace).
    pub(super) async fn pace(&self, lane: String) -> Option<RemoteSlot> {
        match self {
            SharedLimits::InProcess => None,
            // Boxed here and below: the Redis steps would otherwise take room in every
            // Lark call's future, in process too.
            SharedLimits::Redis(r) => Box::pin(r.pace(lane)).await,
        }
    }

    /// `name` (normalized as the pacer does) reaches `chat_id`: every replica paces them as
    /// one receiver from now on.
    pub(super) fn learn(&self, name: String, chat_id: &str) {
        let SharedLimits::Redis(r) = self else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (r, chat) = (r.clone(), chat_id.to_string());
        rt.spawn(async move {
            let script = Script::new(LEARN);
            let mut inv = script.key(r.aliases_key());
            inv.arg(name)
                .arg(chat)
                .arg(r.lanes_prefix())
                .arg(ALIAS_TTL.as_millis() as u64)
                .arg((r.lease + r.window).as_millis() as u64);
            let mut c = r.conn.clone();
            if let Err(e) = r
                .run("share a receiver's chat", inv.invoke_async::<i64>(&mut c))
                .await
            {
                warn(&e);
            }
        });
    }

    /// Waits while Lark's rate limit for calls like `op` is known to be spent (another
    /// replica was refused); in process this is the retry's wait alone.
    pub(super) async fn wait_out_hold(&self, op: &str) {
        if let SharedLimits::Redis(r) = self {
            Box::pin(r.wait_out_hold(op)).await;
        }
    }

    /// Tells the other replicas what Lark refused: a spent rate limit for calls like `op`
    /// (until its reset), or a full receiver (230020) for the lane of `slot`.
    pub(super) async fn refused(&self, op: &str, e: &LarkError, slot: Option<&RemoteSlot>) {
        if let SharedLimits::Redis(r) = self {
            Box::pin(r.refused(op, e, slot)).await;
        }
    }

    /// The tenant token: from Redis when another replica fetched one, else from `fetch`,
    /// with a lock so only one replica fetches at a time.
    pub(super) async fn tenant_token<Fut>(
        &self,
        fetch: impl FnOnce() -> Fut,
    ) -> Result<CachedToken, LarkError>
    where
        Fut: Future<Output = Result<CachedToken, LarkError>>,
    {
        match self {
            SharedLimits::InProcess => fetch().await,
            SharedLimits::Redis(r) => r.tenant_token(fetch).await,
        }
    }

    /// Lark rejected `token`: no replica should be handed it again.
    pub(super) async fn forget_token(&self, token: &SecretString) {
        if let SharedLimits::Redis(r) = self {
            let script = Script::new(TOKEN_FORGET);
            let mut inv = script.key(r.token_key());
            inv.arg(token.expose_secret());
            let mut c = r.conn.clone();
            if let Err(e) = r
                .run("drop the rejected token", inv.invoke_async::<i64>(&mut c))
                .await
            {
                warn(&e);
            }
        }
    }

    /// Whether this is the first claim of `what` among all replicas for `ttl` (a one-time
    /// token such as a confirmation state). In process, and when Redis fails, the caller's
    /// own record is the answer: `true`.
    pub(super) async fn claim(&self, what: &str, ttl: Duration) -> bool {
        let SharedLimits::Redis(r) = self else {
            return true;
        };
        let mut set = redis::cmd("SET");
        set.arg(format!("{}claimed:{what}", r.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        let mut c = r.conn.clone();
        match r
            .run(
                "record a one-time claim",
                set.query_async::<Option<String>>(&mut c),
            )
            .await
        {
            Ok(set) => set.is_some(),
            Err(e) => {
                warn(&e);
                true
            }
        }
    }

    /// Counts one send against the budget of `sends` per `period` that the replicas share:
    /// `Some(Ok(member))` counted (give it back with [`SharedLimits::budget_give_back`]),
    /// `Some(Err(wait))` used up until then. `None` in process, or when Redis fails (with a
    /// warning): the caller's own window decides.
    pub(super) async fn budget_take(
        &self,
        sends: usize,
        period: Duration,
    ) -> Option<Result<String, Duration>> {
        let SharedLimits::Redis(r) = self else {
            return None;
        };
        let member = super::new_uuid();
        let script = Script::new(BUDGET_TAKE);
        let mut inv = script.key(r.budget_key(sends, period));
        inv.arg(sends)
            .arg(period.as_millis().max(1) as u64)
            .arg(&member);
        let mut c = r.conn.clone();
        match r
            .run(
                "count a send against the send budget",
                inv.invoke_async::<i64>(&mut c),
            )
            .await
        {
            Ok(wait) if wait < 0 => Some(Ok(member)),
            Ok(wait) => Some(Err(Duration::from_millis(wait as u64))),
            Err(e) => {
                warn(&e);
                None
            }
        }
    }

    /// Lark refused the send counted as `member`: it no longer counts on any replica.
    pub(super) async fn budget_give_back(&self, sends: usize, period: Duration, member: &str) {
        let SharedLimits::Redis(r) = self else {
            return;
        };
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(r.budget_key(sends, period)).arg(member);
        let mut c = r.conn.clone();
        if let Err(e) = r
            .run(
                "give back a send to the send budget",
                zrem.query_async::<i64>(&mut c),
            )
            .await
        {
            warn(&e);
        }
    }

    /// The shared send budget now: sends left, and how long until the oldest counted one
    /// stops counting. `None` in process, or when Redis fails.
    pub(super) async fn budget_left(
        &self,
        sends: usize,
        period: Duration,
    ) -> Option<(usize, Duration)> {
        let SharedLimits::Redis(r) = self else {
            return None;
        };
        let script = Script::new(BUDGET_PEEK);
        let mut inv = script.key(r.budget_key(sends, period));
        inv.arg(period.as_millis().max(1) as u64);
        let mut c = r.conn.clone();
        match r
            .run(
                "read the send budget",
                inv.invoke_async::<(i64, i64)>(&mut c),
            )
            .await
        {
            Ok((used, wait)) => Some((
                sends.saturating_sub(used.max(0) as usize),
                Duration::from_millis(wait.max(0) as u64),
            )),
            Err(e) => {
                warn(&e);
                None
            }
        }
    }

    /// Runs the write `run` once for all replicas under `key` (an agent's idempotency key):
    /// a replica that finds its outcome returns it; one that finds it under way waits for
    /// it (bounded). In process, `run` simply runs: Lark's `uuid` dedupe is the guarantee.
    pub(super) async fn once<Fut>(
        &self,
        key: &str,
        cancel: &CancellationToken,
        run: Fut,
    ) -> Result<Response, LarkError>
    where
        Fut: Future<Output = Result<Response, LarkError>>,
    {
        match self {
            SharedLimits::InProcess => run.await,
            SharedLimits::Redis(r) => Box::pin(r.once(key, cancel, run)).await,
        }
    }
}

impl RedisLimits {
    /// [`SharedLimits::wait_out_hold`] through Redis.
    async fn wait_out_hold(&self, op: &str) {
        let r = self;
        if r.clear_lately(op) {
            return;
        }
        let mut c = r.conn.clone();
        let mut pttl = redis::cmd("PTTL");
        pttl.arg(r.hold_key(op));
        match r
            .run("read a rate-limit window", pttl.query_async::<i64>(&mut c))
            .await
        {
            Ok(ms) if ms > 0 => {
                let spread = fastrand::u64(0..=(ms as u64 / 4).max(50));
                tokio::time::sleep(Duration::from_millis(ms as u64 + spread)).await;
            }
            Ok(_) => r.seen_clear(op),
            Err(e) => warn(&e),
        }
    }

    /// [`SharedLimits::refused`] through Redis.
    async fn refused(&self, op: &str, e: &LarkError, slot: Option<&RemoteSlot>) {
        let r = self;
        let mut c = r.conn.clone();
        let outcome = match (e.kind, e.retry_after, slot) {
            (ErrorKind::RateLimited, Some(after), _) if !after.is_zero() => {
                let script = Script::new(HOLD);
                let mut inv = script.key(r.hold_key(op));
                inv.arg(after.as_millis() as u64);
                r.run("share a rate-limit window", inv.invoke_async::<i64>(&mut c))
                    .await
            }
            (ErrorKind::SendRateLimited, _, Some(slot)) => {
                let script = Script::new(PACE_FILL);
                let mut inv = script.key(&slot.lane);
                inv.arg(r.per_second).arg(r.window.as_millis() as u64);
                r.run("share a refused send", inv.invoke_async::<i64>(&mut c))
                    .await
            }
            _ => return,
        };
        if let Err(e) = outcome {
            warn(&e);
        }
    }

    /// Bounds one Redis call; the error names what failed, never the password. After a
    /// failure Redis is left alone for [`PAUSE_AFTER_FAILURE`]: calls do not each wait out
    /// a dead server, and the log gets one line, not one per call (the empty error).
    async fn run<T>(
        &self,
        what: &str,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, String> {
        let paused = |until: &Option<Instant>| until.is_some_and(|u| Instant::now() < u);
        if paused(&self.lock_pause()) {
            return Err(String::new());
        }
        let e = match tokio::time::timeout(OP_TIMEOUT, fut).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", OP_TIMEOUT.as_secs()),
        };
        {
            let mut pause = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            if paused(&pause) {
                return Err(String::new());
            }
            *pause = Some(Instant::now() + PAUSE_AFTER_FAILURE);
        }
        let msg = format!(
            "Redis at {} failed to {what} ({e}); this replica goes on alone for {} s",
            self.shown,
            PAUSE_AFTER_FAILURE.as_secs()
        );
        Err(match &self.password {
            Some(p) => msg.replace(p.expose_secret(), "***"),
            None => msg,
        })
    }

    /// Whether Redis said lately that calls like `op` are not held back: a busy replica
    /// asks at most once per [`HOLD_RECHECK`] per kind of call, not once per call.
    fn clear_lately(&self, op: &str) -> bool {
        let seen = self.clear_seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(op).is_some_and(|at| at.elapsed() < HOLD_RECHECK)
    }

    fn seen_clear(&self, op: &str) {
        let mut seen = self.clear_seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= 1024 {
            seen.clear();
        }
        seen.insert(op.to_string(), Instant::now());
    }

    fn lock_pause(&self) -> Option<Instant> {
        *self.paused_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn aliases_key(&self) -> String {
        format!("{}receivers", self.prefix)
    }

    fn lanes_prefix(&self) -> String {
        format!("{}pace:", self.prefix)
    }

    fn hold_key(&self, op: &str) -> String {
        format!("{}hold:{op}", self.prefix)
    }

    /// One sorted set per budget: replicas started with different `--send-budget` values
    /// count apart rather than mixing their sends under two limits.
    fn budget_key(&self, sends: usize, period: Duration) -> String {
        format!("{}send_budget:{sends}/{}", self.prefix, period.as_secs())
    }

    fn token_key(&self) -> String {
        format!("{}tenant_token", self.prefix)
    }

    async fn pace(self: &Arc<Self>, lane: String) -> Option<RemoteSlot> {
        if self.per_second == 0 {
            return None;
        }
        let id = super::new_uuid();
        let script = Script::new(PACE_TAKE);
        let lanes = self.lanes_prefix();
        loop {
            let mut inv = script.key(self.aliases_key());
            inv.arg(self.per_second)
                .arg(self.window.as_millis() as u64)
                .arg(self.lease.as_millis() as u64)
                .arg(&id)
                .arg(&lane)
                .arg(&lanes);
            let mut c = self.conn.clone();
            match self
                .run(
                    "take a send slot",
                    inv.invoke_async::<(i64, String)>(&mut c),
                )
                .await
            {
                Ok((wait, lane)) if wait < 0 => {
                    return Some(RemoteSlot {
                        limits: self.clone(),
                        lane,
                        id,
                    });
                }
                // A slot in flight elsewhere may free at any moment: look again soon. The
                // jitter keeps replicas that wait together from asking together.
                Ok((wait, _)) => {
                    let wait = Duration::from_millis(wait as u64).min(POLL);
                    let jitter = Duration::from_millis(fastrand::u64(0..5));
                    tokio::time::sleep(wait + jitter).await;
                }
                Err(e) => {
                    warn(&e);
                    return None;
                }
            }
        }
    }

    /// The token in Redis with its age and lifetime, if there is one.
    async fn read_token(&self) -> Result<Option<CachedToken>, String> {
        let mut c = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.get(self.token_key()).pttl(self.token_key());
        let (value, ttl_ms): (Option<String>, i64) = self
            .run("read the tenant token", pipe.query_async(&mut c))
            .await?;
        let Some((lifetime_ms, token)) = value.as_deref().and_then(|v| v.split_once(':')) else {
            return Ok(None);
        };
        let (Ok(lifetime_ms), true) = (lifetime_ms.parse::<u64>(), ttl_ms > 0) else {
            return Ok(None);
        };
        let lifetime = Duration::from_millis(lifetime_ms);
        let age = lifetime.saturating_sub(Duration::from_millis(ttl_ms as u64));
        let now = Instant::now();
        Ok(Some(CachedToken {
            value: SecretString::from(token.to_string()),
            obtained: now.checked_sub(age).unwrap_or(now),
            lifetime,
        }))
    }

    async fn tenant_token<Fut>(&self, fetch: impl FnOnce() -> Fut) -> Result<CachedToken, LarkError>
    where
        Fut: Future<Output = Result<CachedToken, LarkError>>,
    {
        match self.shared_token().await {
            Ok(Some(t)) => return Ok(t),
            Ok(None) => {}
            Err(e) => {
                warn(&e);
                return fetch().await;
            }
        }
        // This replica holds the lock: it fetches for everyone.
        let fetched = fetch().await;
        if let Ok(t) = &fetched {
            let value = format!("{}:{}", t.lifetime.as_millis(), t.value.expose_secret());
            let mut c = self.conn.clone();
            let mut pipe = redis::pipe();
            pipe.cmd("SET")
                .arg(self.token_key())
                .arg(value)
                .arg("PX")
                .arg(t.lifetime.as_millis() as u64)
                .ignore();
            if let Err(e) = self
                .run("store the tenant token", pipe.query_async::<()>(&mut c))
                .await
            {
                warn(&e);
            }
        }
        self.unlock_token().await;
        fetched
    }

    /// A token another replica fetched (`Some`), or `None` once this replica holds the
    /// fetch lock. Bounded: after a Lark request's time with the lock held elsewhere, the
    /// wait ends in an error and the replica fetches alone.
    async fn shared_token(&self) -> Result<Option<CachedToken>, String> {
        let lock = format!("{}tenant_token:lock", self.prefix);
        let deadline = Instant::now() + self.lease;
        loop {
            let current = self.read_token().await?;
            if let Some(t) = current.as_ref().filter(|t| !t.due_for_refresh()) {
                return Ok(Some(t.clone()));
            }
            let mut c = self.conn.clone();
            let mut set = redis::cmd("SET");
            set.arg(&lock)
                .arg(self.owner())
                .arg("NX")
                .arg("PX")
                .arg(self.lease.as_millis() as u64);
            let locked: Option<String> = self
                .run("lock the token fetch", set.query_async(&mut c))
                .await?;
            if locked.is_some() {
                // Another replica may have stored a token between the read and the lock.
                return match self.read_token().await {
                    Ok(Some(t)) if !t.due_for_refresh() => {
                        self.unlock_token().await;
                        Ok(Some(t))
                    }
                    _ => Ok(None),
                };
            }
            // Someone else is refreshing: a token still usable does meanwhile.
            if let Some(t) = current.filter(|t| t.usable()) {
                return Ok(Some(t));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "Redis at {}: another replica has held the token fetch for {} s",
                    self.shown,
                    self.lease.as_secs()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Who holds a lock or claim: this process, so a lock outliving its lease and taken by
    /// another replica is never deleted by this one.
    fn owner(&self) -> String {
        static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        OWNER.get_or_init(super::new_uuid).clone()
    }

    async fn del_if_owned(&self, key: String, what: &str) {
        let script = Script::new(DEL_IF);
        let mut inv = script.key(key);
        inv.arg(self.owner());
        let mut c = self.conn.clone();
        if let Err(e) = self.run(what, inv.invoke_async::<i64>(&mut c)).await {
            warn(&e);
        }
    }

    async fn unlock_token(&self) {
        let lock = format!("{}tenant_token:lock", self.prefix);
        self.del_if_owned(lock, "unlock the token fetch").await;
    }

    async fn once<Fut>(
        &self,
        key: &str,
        cancel: &CancellationToken,
        run: Fut,
    ) -> Result<Response, LarkError>
    where
        Fut: Future<Output = Result<Response, LarkError>>,
    {
        let outcome = format!("{}outcome:{key}", self.prefix);
        let claim = format!("{outcome}:claim");
        let script = Script::new(OUTCOME_CLAIM);
        let give_up = Instant::now() + OUTCOME_WAIT;
        let claimed = loop {
            let mut inv = script.key(&outcome);
            inv.key(&claim)
                .arg(self.owner())
                .arg(self.claim_ttl.as_millis() as u64);
            let mut c = self.conn.clone();
            match self
                .run(
                    "look up an idempotency key",
                    inv.invoke_async::<(i64, String)>(&mut c),
                )
                .await
            {
                Ok((1, body)) => match serde_json::from_str::<Value>(&body) {
                    Ok(body) => return Ok(Response { body, log_id: None }),
                    Err(_) => break false,
                },
                Ok((0, _)) => break true,
                Ok(_) if Instant::now() < give_up => {
                    tokio::select! {
                        _ = cancel.cancelled() => return Err(LarkError::new(ErrorKind::Cancelled, "wait for the same write on another replica", "cancelled by the caller")),
                        _ = tokio::time::sleep(POLL) => {}
                    }
                }
                // Still under way elsewhere: Lark's uuid dedupe answers with its outcome.
                Ok(_) => break false,
                Err(e) => {
                    warn(&e);
                    break false;
                }
            }
        };
        let result = run.await;
        if !claimed {
            return result;
        }
        match &result {
            Ok(resp) => {
                let store = Script::new(OUTCOME_STORE);
                let mut inv = store.key(&outcome);
                inv.key(&claim)
                    .arg(self.owner())
                    .arg(resp.body.to_string())
                    .arg(OUTCOME_TTL.as_millis() as u64);
                let mut c = self.conn.clone();
                if let Err(e) = self
                    .run("store a write's outcome", inv.invoke_async::<i64>(&mut c))
                    .await
                {
                    warn(&e);
                }
            }
            // Nothing to remember: a retry elsewhere may go ahead at once.
            Err(_) => self.del_if_owned(claim, "release an idempotency key").await,
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn shown_urls_hold_no_password() {
        let shown = redact_url("redis://:s3cret-pw@127.0.0.1:6379/0");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(shown.contains("127.0.0.1:6379"), "{shown}");
        let shown = redact_url("redis://app:s3cret-pw@cache.internal:6380");
        assert!(
            !shown.contains("s3cret-pw") && shown.contains("app:"),
            "{shown}"
        );
        assert!(!redact_url("not a url s3cret-pw").contains("s3cret-pw"));
        assert!(!redact_url("redis+unix:///run/redis.sock?pass=s3cret-pw").contains("s3cret-pw"));
    }
}
