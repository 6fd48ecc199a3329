//! What tools share (the client, the policy, the granted scopes, name caches, the connected
//! peers from `server::peers`) and what each call gets (cancellation, progress).

use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::Peer;
use tokio::sync::{RwLock, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::names::NameCache;
use super::policy::{Hidden, Policy};
use super::{ToolDef, catalog};
use crate::lark::{ErrorKind, GrantedScopes, LarkClient, ScopeCache};
use crate::server::ScopeCheck;
use crate::server::catalog::ChatDirectory;
use crate::server::peers::Peers;
use crate::tools::{Acting, Identity, IdentityMode};

#[derive(Debug, Clone, Default)]
pub struct ScopeState {
    pub granted: Option<GrantedScopes>,
    /// Why the last read failed, if it did.
    pub error: Option<String>,
    pub read_at: Option<Instant>,
    /// The scopes the signed-in user granted (`login`); None when nobody is signed in.
    pub user_scopes: Option<Vec<String>>,
}

pub struct Shared {
    pub client: LarkClient,
    pub policy: Policy,
    pub scope_check: ScopeCheck,
    pub names: NameCache,
    scopes: RwLock<ScopeState>,
    /// Becomes true after the first scope read (or at once when checks are off).
    ready: watch::Sender<bool>,
    /// tools/list waits for the first read at most until then, so a slow Lark never
    /// stalls the handshake.
    ready_deadline: Instant,
    refreshing: tokio::sync::Mutex<()>,
    /// Where the last scope set read is kept for the next start (`with_scope_cache`).
    scope_cache: Option<ScopeCache>,
    /// The connected clients, told when the visible tool set changes.
    pub peers: Peers,
    /// `--identity` (unset: auto).
    identity_mode: std::sync::OnceLock<IdentityMode>,
    /// `--allow-send-as-user` (unset: no).
    send_as_user: std::sync::OnceLock<bool>,
    /// How often the scopes are re-read (milliseconds; 0 until a refresh loop starts).
    scope_refresh_ms: std::sync::atomic::AtomicU64,
    /// The bot's chats, cached briefly for argument completion.
    pub chat_directory: ChatDirectory,
    /// People and chats by name (`find_people`, `find_chats`), built on first use.
    pub directory: std::sync::Arc<crate::directory::Directory>,
    /// How long a find call waits for the directory's first build.
    pub directory_wait: Duration,
    /// Messages received over the long connection (toolset `events`).
    pub inbox: std::sync::Arc<crate::lark::inbox::Inbox>,
    /// The long connection, once started.
    pub longconn: std::sync::OnceLock<crate::lark::longconn::LongConn>,
    /// The guard rails on writes (`--allow-recipients`, `--send-budget`, `--confirm`,
    /// `--audit-log`).
    pub guard: super::guard::Guard,
    /// Tool calls running now, for a graceful shutdown.
    in_flight: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// Counts one running tool call; dropped when the call ends.
pub struct CallGuard<'a>(&'a Shared);

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if self
            .0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.idle.notify_waiters();
        }
    }
}

/// How long tools/list may wait for the first scope read.
pub const SCOPE_WAIT: Duration = Duration::from_secs(3);
/// On-demand re-reads (a hidden tool was called) happen at most this often.
const REREAD_MIN_INTERVAL: Duration = Duration::from_secs(5);

impl Shared {
    pub fn new(client: LarkClient, policy: Policy, scope_check: ScopeCheck) -> Shared {
        let (ready, _) = watch::channel(scope_check == ScopeCheck::Off);
        Shared {
            client,
            policy,
            scope_check,
            names: NameCache::new(Duration::from_secs(600), 10_000),
            scopes: RwLock::new(ScopeState::default()),
            ready,
            ready_deadline: Instant::now() + SCOPE_WAIT,
            refreshing: tokio::sync::Mutex::new(()),
            scope_cache: None,
            peers: Peers::default(),
            identity_mode: std::sync::OnceLock::new(),
            send_as_user: std::sync::OnceLock::new(),
            scope_refresh_ms: std::sync::atomic::AtomicU64::new(0),
            chat_directory: ChatDirectory::default(),
            directory: std::sync::Arc::new(crate::directory::Directory::new(
                crate::directory::DirectoryConfig::default(),
            )),
            directory_wait: Duration::from_secs(3),
            inbox: std::sync::Arc::new(crate::lark::inbox::Inbox::new(200, 5000)),
            longconn: std::sync::OnceLock::new(),
            guard: super::guard::Guard::default(),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        }
    }

    /// The guard rails on writes, before the server starts.
    pub fn with_guard(mut self, config: super::guard::GuardConfig) -> Shared {
        use secrecy::ExposeSecret;
        let secret = self
            .client
            .config()
            .app_secret
            .expose_secret()
            .as_bytes()
            .to_vec();
        self.guard = super::guard::Guard::new(config, &secret);
        self
    }

    /// The directory's settings (`--directory-*`), before the server starts.
    pub fn with_directory(
        mut self,
        config: crate::directory::DirectoryConfig,
        wait: Duration,
    ) -> Shared {
        self.directory = std::sync::Arc::new(crate::directory::Directory::new(config));
        self.directory_wait = wait;
        self
    }

    /// Starts from the scope set `cache` kept from the last run, if it has one for this
    /// app: tools/list is then answered at once instead of after a read from Lark, which
    /// still happens (the refresh loop) and tells clients if the set changed. Only with
    /// `--scope-check auto`: strict must read before serving, off never reads.
    pub fn with_scope_cache(mut self, cache: ScopeCache) -> Shared {
        if self.scope_check != ScopeCheck::Auto {
            return self;
        }
        if let Some(granted) = cache.load() {
            let user_scopes = self.user_scopes_now();
            let state = self.scopes.get_mut();
            state.granted = Some(granted);
            state.user_scopes = user_scopes;
            self.ready.send_replace(true);
        }
        self.scope_cache = Some(cache);
        self
    }

    /// Opens Lark's long connection and keeps what it delivers in the inbox, until
    /// `cancel`. Once per process: Lark counts connections per app.
    pub fn start_long_connection(&self, cancel: tokio_util::sync::CancellationToken) {
        if self.longconn.get().is_some() {
            return;
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let conn = crate::lark::longconn::LongConn::start(self.client.config().clone(), tx, cancel);
        if self.longconn.set(conn).is_err() {
            return;
        }
        let inbox = self.inbox.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                if inbox.push_event(&event.envelope).is_none() {
                    tracing::debug!(event_type = %event.event_type, "an event that is not a message");
                }
            }
        });
    }

    pub fn set_scope_refresh_every(&self, every: Duration) {
        let ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
        self.scope_refresh_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long clients may cache the tool, prompt and resource lists: they change only
    /// when the scopes are re-read (and subscribers hear of it at once); never, when
    /// nothing re-reads them.
    pub fn lists_ttl_ms(&self) -> u64 {
        /// Without re-reads the lists change only with a restart.
        const FIXED_MS: u64 = 3_600_000;
        match self.scope_check {
            ScopeCheck::Off => FIXED_MS,
            _ => self
                .scope_refresh_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    pub fn begin_call(&self) -> CallGuard<'_> {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        CallGuard(self)
    }

    /// Resolves once no tool call is running.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.in_flight.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    pub async fn scope_state(&self) -> ScopeState {
        self.scopes.read().await.clone()
    }

    /// Waits for the first scope read, bounded by the start-up deadline.
    pub async fn wait_for_scopes(&self) {
        let mut rx = self.ready.subscribe();
        let _ = tokio::time::timeout_at(self.ready_deadline, rx.wait_for(|r| *r)).await;
    }

    /// Whether `def` is offered now, and if so whom it acts as.
    pub async fn visibility(&self, def: &ToolDef) -> Result<Acting, Hidden> {
        let state = self.scopes.read().await;
        self.visible_in(def, &state)
    }

    /// `--identity` and `--allow-send-as-user`: set once at start.
    pub fn set_identity_mode(&self, mode: IdentityMode, allow_send_as_user: bool) {
        let _ = self.identity_mode.set(mode);
        let _ = self.send_as_user.set(allow_send_as_user);
    }

    fn mode(&self) -> IdentityMode {
        self.identity_mode.get().copied().unwrap_or_default()
    }

    /// The policy's decision, then the identity's: a user tool needs someone signed in
    /// who granted one of its user scopes; a tool that can act either way acts as the
    /// person when it can (with `--identity user`, only then).
    pub fn visible_in(&self, def: &ToolDef, state: &ScopeState) -> Result<Acting, Hidden> {
        let as_bot = || {
            self.policy
                .visibility(def, state.granted.as_ref())
                .map(|()| Acting::Bot)
        };
        let speaks = match def.meta.identity {
            Identity::Bot => return as_bot(),
            Identity::User => false,
            Identity::Either { speaks, .. } => speaks,
        };
        let mode = self.mode();
        let as_user = self.user_allowed(def, state, mode, speaks);
        match (def.meta.identity, as_user) {
            (_, Ok(())) => Ok(Acting::User),
            (Identity::User, Err(why)) => Err(why),
            // Sending in the person's name is off: the bot sends, whatever the mode.
            (_, Err(Hidden::SendAsUserOff)) => as_bot(),
            (_, Err(why)) if mode == IdentityMode::User => Err(why),
            _ => as_bot(),
        }
    }

    /// Whether the tool may act as the signed-in person now.
    fn user_allowed(
        &self,
        def: &ToolDef,
        state: &ScopeState,
        mode: IdentityMode,
        speaks: bool,
    ) -> Result<(), Hidden> {
        self.policy.configured(&def.meta)?;
        if mode == IdentityMode::Bot {
            return Err(Hidden::BotOnly);
        }
        if speaks && self.send_as_user.get() != Some(&true) {
            return Err(Hidden::SendAsUserOff);
        }
        let Some(granted) = &state.user_scopes else {
            return Err(Hidden::NeedsLogin);
        };
        let scopes = def.meta.user_scopes();
        if !scopes.is_empty() && !scopes.iter().any(|s| granted.iter().any(|g| g == s)) {
            return Err(Hidden::MissingUserScope {
                any_of: scopes.iter().map(|s| s.to_string()).collect(),
            });
        }
        Ok(())
    }

    /// What a client's tool list shows: the visible tools and whom each acts as (a
    /// change of either is a list change).
    fn visible_names(&self, state: &ScopeState) -> Vec<(&'static str, Acting)> {
        catalog()
            .iter()
            .filter_map(|d| self.visible_in(d, state).ok().map(|a| (d.meta.name, a)))
            .collect()
    }

    fn user_scopes_now(&self) -> Option<Vec<String>> {
        self.client.user_session()?.granted_scopes()
    }

    pub async fn visible_tools(&self) -> Vec<(&'static ToolDef, Acting)> {
        let state = self.scopes.read().await;
        catalog()
            .iter()
            .filter_map(|d| self.visible_in(d, &state).ok().map(|a| (d, a)))
            .collect()
    }

    /// Reads the granted scopes again. Returns whether the visible tool set changed; when
    /// it did, every connected client gets `notifications/tools/list_changed`.
    pub async fn refresh_scopes(&self, cancel: &CancellationToken) -> bool {
        // A login shared by other replicas (Redis) may have come or gone meanwhile.
        if let Some(user) = self.client.user_session() {
            user.reread_shared().await;
        }
        if self.scope_check == ScopeCheck::Off {
            // Scopes are not read, but a login may have come or gone.
            let changed = {
                let mut state = self.scopes.write().await;
                let before = self.visible_names(&state);
                state.user_scopes = self.user_scopes_now();
                before != self.visible_names(&state)
            };
            if changed {
                self.peers.notify_tools_changed().await;
            }
            return changed;
        }
        let _one_at_a_time = self.refreshing.lock().await;
        let result = self.client.granted_scopes(cancel).await;
        if matches!(&result, Err(e) if e.kind == ErrorKind::Cancelled) {
            // Shutting down (or the caller gave up): nothing was learned about the scopes.
            return false;
        }
        let mut to_store = None;
        let changed = {
            let mut state = self.scopes.write().await;
            let before = self.visible_names(&state);
            state.user_scopes = self.user_scopes_now();
            match result {
                Ok(granted) => {
                    if state.error.take().is_some() {
                        tracing::info!("granted scopes readable again");
                    }
                    if self.scope_cache.is_some() && state.granted.as_ref() != Some(&granted) {
                        to_store = Some(granted.clone());
                    }
                    state.granted = Some(granted);
                }
                Err(e) => {
                    if state.error.is_none() {
                        if state.granted.is_some() {
                            tracing::warn!(
                                "cannot re-read the app's granted scopes; keeping the last ones read: {e}"
                            );
                        } else if self.scope_check == ScopeCheck::Auto {
                            tracing::warn!(
                                "cannot read the app's granted scopes; exposing every configured tool: {e}"
                            );
                        }
                        // Strict with nothing read yet: the caller refuses to start and says why.
                    }
                    state.error = Some(e.to_string());
                }
            }
            state.read_at = Some(Instant::now());
            before != self.visible_names(&state)
        };
        // Until the first read completes, tools/list waits for it (up to the start-up
        // deadline), so no client has seen the list it changes unless that deadline passed.
        let listed_before = *self.ready.borrow() || Instant::now() >= self.ready_deadline;
        self.ready.send_replace(true);
        if changed && listed_before {
            self.peers.notify_tools_changed().await;
        }
        if changed {
            let state = self.scopes.read().await.clone();
            let lost = super::find("find_people").is_some_and(|d| {
                matches!(self.visible_in(d, &state), Err(Hidden::MissingScope { .. }))
            });
            if lost {
                self.directory
                    .forget("the app no longer has the scopes to read the directory");
            }
        }
        // Written after tools/list was released: the first run never waits for the disk.
        if let (Some(cache), Some(granted)) = (&self.scope_cache, to_store) {
            cache.store(&granted);
        }
        changed
    }

    /// A re-read on demand (a hidden tool was called, Lark said a scope is missing),
    /// throttled so a looping agent cannot turn it into a request storm.
    pub async fn reread_scopes_soon(&self, cancel: &CancellationToken) -> bool {
        let recent = self
            .scopes
            .read()
            .await
            .read_at
            .is_some_and(|t| t.elapsed() < REREAD_MIN_INTERVAL);
        if recent {
            return false;
        }
        // Boxed: a rare path whose Lark request would otherwise be reserved, tens of KB,
        // in every tool call's future.
        Box::pin(self.refresh_scopes(cancel)).await
    }
}

/// MCP progress for one call: a no-op when the client asked for none.
#[derive(Clone, Default)]
pub struct Progress {
    target: Option<(Peer<RoleServer>, ProgressToken)>,
}

impl Progress {
    pub fn new(peer: Peer<RoleServer>, token: Option<ProgressToken>) -> Progress {
        Progress {
            target: token.map(|t| (peer, t)),
        }
    }

    pub async fn report(&self, done: u64, total: Option<u64>, message: impl Into<String>) {
        if let Some((peer, token)) = &self.target {
            let mut p = ProgressNotificationParam::new(token.clone(), done as f64)
                .with_message(message.into());
            if let Some(t) = total {
                p = p.with_total(t as f64);
            }
            if peer.notify_progress(p).await.is_err() {
                tracing::debug!("progress notification not delivered");
            }
        }
    }
}

/// One tool call's context.
#[derive(Clone)]
pub struct ToolCtx {
    pub shared: std::sync::Arc<Shared>,
    pub cancel: CancellationToken,
    pub progress: Progress,
    /// Whom this call acts as (set by the server from [`Shared::visibility`]).
    pub acting: Acting,
    /// What the guard rails need of this call.
    pub call: CallInfo,
}

/// One call as the guard rails see it (set by the server).
#[derive(Clone, Default)]
pub struct CallInfo {
    pub tool: Option<&'static super::ToolMeta>,
    /// `dry_run: true`: answer with what would be sent, send nothing.
    pub dry_run: bool,
    /// How a person can be asked to confirm.
    pub asker: super::guard::Asker,
    /// The MCP session (HTTP sessions have their own send budget).
    pub session: Option<std::sync::Arc<crate::server::peers::Session>>,
    /// Binds a 2026-07-28 confirmation to these very arguments.
    pub args_digest: u64,
    /// Filled by the guard; read for the audit log when the call ends.
    pub record: std::sync::Arc<std::sync::Mutex<super::guard::Record>>,
}

impl ToolCtx {
    /// A call acting as the bot until the server decides otherwise.
    pub fn new(
        shared: std::sync::Arc<Shared>,
        cancel: CancellationToken,
        progress: Progress,
    ) -> ToolCtx {
        ToolCtx {
            shared,
            cancel,
            progress,
            acting: Acting::Bot,
            call: CallInfo::default(),
        }
    }

    pub fn client(&self) -> &LarkClient {
        &self.shared.client
    }

    /// `req` sent with this call's identity: the person's token when the call acts as them.
    pub fn acting(&self, req: crate::lark::Request) -> crate::lark::Request {
        match self.acting {
            Acting::User => req.as_user(),
            Acting::Bot => req,
        }
    }

    /// A write: through the guard rails, then to Lark.
    pub async fn write(
        &self,
        w: super::guard::Write,
        req: crate::lark::Request,
    ) -> Result<crate::lark::Response, super::ToolError> {
        self.guard(w, &req).await?;
        Ok(self.client().call(req, &self.cancel).await?)
    }

    /// A DELETE whose repetition is harmless (recall, unpin, dissolve, …).
    pub async fn delete(
        &self,
        w: super::guard::Write,
        op: &str,
        path: String,
    ) -> Result<(), super::ToolError> {
        let req = crate::lark::Request::new(op, crate::lark::Method::DELETE, path).idempotent();
        self.write(w, req).await?;
        Ok(())
    }
}
