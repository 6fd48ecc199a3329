//! Acting as the user: the OAuth device flow (`{accounts}/oauth/v1/device_authorization`,
//! HTTP Basic app credentials), the v2 token endpoint (`/open-apis/authen/v2/oauth/token`:
//! device code and refresh grants), and refresh that never burns a single-use refresh
//! token twice. Facts and sources: `shared/reference/lark-auth-registration-events.md`,
//! part B.
//!
//! Refresh is single-flight within a process (one async mutex per profile) and across
//! processes (an exclusive lock on `<profile>.user.lock` around read → refresh → write): the
//! second process to get the lock reads the tokens the first one wrote instead of using the
//! refresh token that is already spent.
//!
//! Where the login lives follows the profile's store (`crate::profile`): the two tokens go
//! into one OS keychain entry (`NAME.user`, a small JSON) when the keychain is wanted and
//! takes them, and `NAME.user.json` (0600) keeps the rest (who, scopes, expiries,
//! `"secrets": "keychain"`); otherwise everything is in that file (`"secrets": "file"`, or no
//! `secrets` in files written before). A refresh writes the rotated tokens — keychain, else
//! the file — before the lock is released: the refresh token works once, so it is never lost.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::registration::{Failure, Status};
use super::shared_limits::{RedisLimits, SharedLimits, USER_LOCK_LEASE, warn_user};
pub use crate::profile::SecretStore;
use crate::profile::{Keystore, OsKeychain, bounded};

const DEVICE_PATH: &str = "/oauth/v1/device_authorization";
const TOKEN_PATH: &str = "/open-apis/authen/v2/oauth/token";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const OFFLINE_ACCESS: &str = "offline_access";
/// Refresh this long before expiry at most (the official CLI's 5 min), or a quarter of the
/// token's lifetime when that is shorter.
const REFRESH_AHEAD: Duration = Duration::from_secs(300);
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// Codes after which a refresh token is gone for good (B.2's table): expired (365 days),
/// invalid, revoked or already used, the app not allowed to refresh.
const REFRESH_GONE: &[i64] = &[20026, 20037, 20064, 20073, 20074, 20024];
/// Retried once, as the official clients do.
const REFRESH_RETRY: i64 = 20050;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The user's login: the tokens and what goes with them (never logged; stored as
/// `OnDisk` and, in the keychain, `Secrets`).
#[derive(Clone)]
pub struct UserTokens {
    access_token: String,
    refresh_token: Option<String>,
    /// Unix seconds.
    pub access_expires_at: u64,
    pub access_lifetime_secs: u64,
    pub refresh_expires_at: u64,
    pub scope: Vec<String>,
    pub open_id: Option<String>,
    pub name: Option<String>,
}

impl std::fmt::Debug for UserTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTokens")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("scope", &self.scope)
            .field("open_id", &self.open_id)
            .finish_non_exhaustive()
    }
}

impl UserTokens {
    pub fn access_token(&self) -> SecretString {
        SecretString::from(self.access_token.clone())
    }

    fn fresh(&self, now: u64) -> bool {
        fresh(self.access_expires_at, self.access_lifetime_secs, now)
    }

    fn refreshable(&self, now: u64) -> bool {
        self.refresh_token.is_some() && now < self.refresh_expires_at
    }

    /// When Lark issued these tokens (unix seconds): see [`issued_at`].
    fn issued_at(&self) -> u64 {
        issued_at(self.access_expires_at, self.access_lifetime_secs)
    }

    /// From a token endpoint answer; what it leaves out is kept from `previous`.
    fn from_answer(a: TokenAnswer, previous: Option<&UserTokens>) -> UserTokens {
        let now = now_secs();
        let lifetime = a.expires_in.unwrap_or(7200);
        let refresh_token = a
            .refresh_token
            .filter(|t| !t.is_empty())
            .or_else(|| previous.and_then(|p| p.refresh_token.clone()));
        let refresh_expires_at = match a.refresh_token_expires_in {
            Some(s) => now + s,
            None => previous.map_or(now + lifetime, |p| p.refresh_expires_at),
        };
        let scope = match a.scope {
            Some(s) if !s.trim().is_empty() => s.split_whitespace().map(String::from).collect(),
            _ => previous.map(|p| p.scope.clone()).unwrap_or_default(),
        };
        UserTokens {
            access_token: a.access_token.unwrap_or_default(),
            refresh_token,
            access_expires_at: now + lifetime,
            access_lifetime_secs: lifetime,
            refresh_expires_at,
            scope,
            open_id: previous.and_then(|p| p.open_id.clone()),
            name: previous.and_then(|p| p.name.clone()),
        }
    }
}

/// An access token is due for refresh 5 minutes before it expires, or at three quarters of
/// a shorter life.
fn fresh(access_expires_at: u64, lifetime_secs: u64, now: u64) -> bool {
    let ahead = REFRESH_AHEAD.as_secs().min(lifetime_secs / 4);
    now + ahead < access_expires_at
}

/// When Lark issued an access token (unix seconds), by a login or a refresh: its expiry
/// less its lifetime.
///
/// Between this machine's login and the one replicas share in Redis, **the tokens issued
/// later win**. A `login` anywhere issues tokens newer than any refresh before it, and a
/// refresh (on any replica) tokens newer than the login or refresh it spent: so a fresh
/// login replaces the shared one, and a replica whose file holds tokens another replica has
/// since rotated takes Redis's. (Clocks of the machines are trusted to a few seconds; two
/// logins within the same second tie, and then Redis's is kept.)
fn issued_at(access_expires_at: u64, lifetime_secs: u64) -> u64 {
    access_expires_at.saturating_sub(lifetime_secs)
}

const KEYCHAIN: &str = "keychain";
const FILE: &str = "file";

/// A login's two secrets together: the value of its keychain entry (JSON).
#[derive(Serialize, Deserialize)]
struct Secrets {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// `NAME.user.json`: what is not secret, and the two tokens too when `secrets` is `file`.
/// Files written before the keychain was used have no `secrets` and the tokens inline.
#[derive(Serialize, Deserialize)]
struct OnDisk {
    /// `keychain` or `file`; absent (older files) means `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secrets: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// With `secrets: keychain`: whether the entry holds a refresh token, so the file alone
    /// tells whether the login is usable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    has_refresh_token: Option<bool>,
    access_expires_at: u64,
    access_lifetime_secs: u64,
    refresh_expires_at: u64,
    #[serde(default)]
    scope: Vec<String>,
    #[serde(default)]
    open_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl std::fmt::Debug for OnDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnDisk")
            .field("secrets", &self.secrets)
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("scope", &self.scope)
            .field("open_id", &self.open_id)
            .finish_non_exhaustive()
    }
}

impl OnDisk {
    /// `t` for `store`: the file's part (with the tokens when `store` is the file), and the
    /// secrets (the keychain entry's value when `store` is the keychain).
    fn split(t: &UserTokens, store: &SecretStore) -> (OnDisk, Secrets) {
        let secrets = Secrets {
            access_token: t.access_token.clone(),
            refresh_token: t.refresh_token.clone(),
        };
        let in_file = *store == SecretStore::File;
        let disk = OnDisk {
            secrets: Some(if in_file { FILE } else { KEYCHAIN }.into()),
            access_token: in_file.then(|| t.access_token.clone()),
            refresh_token: t.refresh_token.clone().filter(|_| in_file),
            has_refresh_token: (!in_file).then_some(t.refresh_token.is_some()),
            access_expires_at: t.access_expires_at,
            access_lifetime_secs: t.access_lifetime_secs,
            refresh_expires_at: t.refresh_expires_at,
            scope: t.scope.clone(),
            open_id: t.open_id.clone(),
            name: t.name.clone(),
        };
        (disk, secrets)
    }

    /// Where this file says the tokens are.
    fn store(&self) -> Result<SecretStore, String> {
        match self.secrets.as_deref() {
            None | Some(FILE) => Ok(SecretStore::File),
            Some(KEYCHAIN) => Ok(SecretStore::Keychain),
            Some(other) => Err(format!("unknown secrets store `{other}`")),
        }
    }

    /// The login again: this file's part, and with `secrets: keychain` the entry's
    /// `secrets` (ignored otherwise).
    fn merge(self, secrets: Option<Secrets>) -> Result<UserTokens, String> {
        let (access_token, refresh_token) = match self.store()? {
            SecretStore::File => (
                self.access_token.ok_or("the file holds no access token")?,
                self.refresh_token,
            ),
            SecretStore::Keychain => {
                let s = secrets.ok_or("the keychain gave no tokens")?;
                (s.access_token, s.refresh_token)
            }
        };
        Ok(UserTokens {
            access_token,
            refresh_token: refresh_token.filter(|t| !t.is_empty()),
            access_expires_at: self.access_expires_at,
            access_lifetime_secs: self.access_lifetime_secs,
            refresh_expires_at: self.refresh_expires_at,
            scope: self.scope,
            open_id: self.open_id,
            name: self.name,
        })
    }

    fn issued_at(&self) -> u64 {
        issued_at(self.access_expires_at, self.access_lifetime_secs)
    }

    /// Whether the login can give a token now or after a refresh: from the file alone.
    fn usable(&self, now: u64) -> bool {
        let has_refresh = self.refresh_token.is_some() || self.has_refresh_token == Some(true);
        (has_refresh && now < self.refresh_expires_at)
            || fresh(self.access_expires_at, self.access_lifetime_secs, now)
    }
}

#[derive(Deserialize, Default)]
struct TokenAnswer {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token_expires_in: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
    // Device authorization.
    #[serde(default)]
    device_code: Option<String>,
    #[serde(default)]
    verification_uri: Option<String>,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    #[serde(default)]
    interval: Option<u64>,
}

impl TokenAnswer {
    /// Some deployments wrap the fields in `data` (reference B.1, variant 2).
    fn parse(body: &[u8]) -> Option<TokenAnswer> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let inner = match v.get("data") {
            Some(d) if d.is_object() && v.get("access_token").is_none() => {
                let mut d = d.clone();
                if let (Some(o), Some(code)) = (d.as_object_mut(), v.get("code")) {
                    o.entry("code").or_insert(code.clone());
                }
                d
            }
            _ => v,
        };
        serde_json::from_value(inner).ok()
    }

    fn failed(&self) -> bool {
        self.access_token.as_deref().is_none_or(str::is_empty)
            && (self.error.is_some() || self.code.is_some_and(|c| c != 0))
    }
}

/// The app the user authorizes, and where it lives.
#[derive(Clone)]
pub struct App {
    pub app_id: String,
    pub app_secret: SecretString,
    /// Accounts host (device authorization).
    pub accounts: String,
    /// Open API base (token endpoint, user_info).
    pub api: String,
}

/// `device_authorization`'s answer.
pub struct DeviceBegun {
    device_code: String,
    pub url: String,
    pub interval: Duration,
    pub expires_in: Duration,
}

pub struct Oauth {
    http: reqwest::Client,
    app: App,
}

/// Why a usable user token could not be had.
#[derive(Debug, Clone)]
pub enum UserAuthError {
    /// Nobody is logged in, or the login is gone for good: `lark-mcp-server login`.
    LoginNeeded(String),
    /// Could not reach Lark or it failed for now; the stored login is kept.
    Transient(String),
}

impl std::fmt::Display for UserAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserAuthError::LoginNeeded(why) => write!(
                f,
                "{why}; run `lark-mcp-server login` to sign in as yourself again"
            ),
            UserAuthError::Transient(why) => write!(f, "{why}; try again shortly"),
        }
    }
}

impl Oauth {
    pub fn new(app: App) -> Result<Oauth, String> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(super::tls::client_config())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Oauth { http, app })
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: bool,
    ) -> Result<TokenAnswer, String> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut rb = self
            .http
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        if basic {
            let pair = format!(
                "{}:{}",
                self.app.app_id,
                self.app.app_secret.expose_secret()
            );
            rb = rb.header(
                reqwest::header::AUTHORIZATION,
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ),
            );
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {}", e.without_url()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| format!("{url} did not answer completely: {}", e.without_url()))?;
        TokenAnswer::parse(&bytes)
            .ok_or_else(|| format!("{url} answered HTTP {status} without a JSON body"))
    }

    /// Starts the device flow for `scopes` (`offline_access` added, so a refresh token
    /// comes back).
    pub async fn device_begin(&self, scopes: &[String]) -> Result<DeviceBegun, String> {
        let mut scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        if !scopes.contains(&OFFLINE_ACCESS) {
            scopes.push(OFFLINE_ACCESS);
        }
        let scope = scopes.join(" ");
        let url = format!("{}{DEVICE_PATH}", self.app.accounts);
        let a = self
            .post_form(
                &url,
                &[("client_id", &self.app.app_id), ("scope", &scope)],
                true,
            )
            .await?;
        if let Some(e) = &a.error {
            return Err(format!(
                "the device login was refused: {}",
                a.error_description.as_deref().unwrap_or(e)
            ));
        }
        let expires_in = Duration::from_secs(a.expires_in_or(240));
        let interval = Duration::from_secs(a.interval.unwrap_or(5)).min(MAX_INTERVAL);
        let device_code = a
            .device_code
            .filter(|d| !d.is_empty())
            .ok_or("the accounts host began without a device code")?;
        let url = a
            .verification_uri_complete
            .or(a.verification_uri)
            .filter(|u| !u.is_empty())
            .ok_or("the accounts host began without a verification URL")?;
        Ok(DeviceBegun {
            device_code,
            url,
            interval,
            expires_in,
        })
    }

    /// Polls the token endpoint until the user approves, refuses, time runs out or `cancel`.
    pub async fn device_wait(
        &self,
        begun: &DeviceBegun,
        cancel: &CancellationToken,
        mut status: impl FnMut(Status),
    ) -> Result<UserTokens, Failure> {
        let deadline = tokio::time::Instant::now() + begun.expires_in;
        let mut interval = begun.interval;
        let url = format!("{}{TOKEN_PATH}", self.app.api);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(Failure::Expired);
            }
            status(Status::Polling { left });
            // The official clients wait first: the user cannot have approved yet.
            tokio::select! {
                _ = cancel.cancelled() => return Err(Failure::Cancelled),
                _ = tokio::time::sleep(interval.min(left)) => {}
            }
            let secret = self.app.app_secret.expose_secret().to_string();
            let form = [
                ("grant_type", DEVICE_GRANT),
                ("device_code", begun.device_code.as_str()),
                ("client_id", self.app.app_id.as_str()),
                ("client_secret", secret.as_str()),
            ];
            let answer = tokio::select! {
                _ = cancel.cancelled() => return Err(Failure::Cancelled),
                a = self.post_form(&url, &form, false) => a,
            };
            let a = match answer {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!("device login poll failed: {e}");
                    interval = (interval + Duration::from_secs(1)).min(MAX_INTERVAL);
                    continue;
                }
            };
            if !a.failed() && a.access_token.as_deref().is_some_and(|t| !t.is_empty()) {
                return Ok(UserTokens::from_answer(a, None));
            }
            match a.error.as_deref().unwrap_or("") {
                "authorization_pending" => {}
                "slow_down" => {
                    interval = (interval + SLOW_DOWN_STEP).min(MAX_INTERVAL);
                    status(Status::SlowDown { interval });
                }
                "access_denied" => {
                    return Err(Failure::Denied(a.error_description.unwrap_or_default()));
                }
                "expired_token" | "invalid_grant" => return Err(Failure::Expired),
                other => {
                    return Err(Failure::Other(format!(
                        "the login failed: {} {}",
                        a.code.map(|c| c.to_string()).unwrap_or_default(),
                        a.error_description.as_deref().unwrap_or(other)
                    )));
                }
            }
        }
    }

    /// One refresh; the old refresh token is spent whatever happens after the request.
    async fn refresh(&self, old: &UserTokens) -> Result<UserTokens, UserAuthError> {
        let Some(refresh_token) = old.refresh_token.as_deref() else {
            return Err(UserAuthError::LoginNeeded(
                "the login has no refresh token".into(),
            ));
        };
        let url = format!("{}{TOKEN_PATH}", self.app.api);
        let secret = self.app.app_secret.expose_secret().to_string();
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.app.app_id.as_str()),
            ("client_secret", secret.as_str()),
            ("refresh_token", refresh_token),
        ];
        let mut last = String::new();
        for attempt in 0..2 {
            let a = self
                .post_form(&url, &form, false)
                .await
                .map_err(UserAuthError::Transient)?;
            if !a.failed() && a.access_token.as_deref().is_some_and(|t| !t.is_empty()) {
                return Ok(UserTokens::from_answer(a, Some(old)));
            }
            let code = a.code.unwrap_or_default();
            last = format!(
                "Lark refused to refresh the user token (code {code}: {})",
                a.error_description
                    .as_deref()
                    .or(a.error.as_deref())
                    .unwrap_or("no reason given")
            );
            if code == REFRESH_RETRY && attempt == 0 {
                continue;
            }
            if REFRESH_GONE.contains(&code) || a.error.as_deref() == Some("invalid_grant") {
                return Err(UserAuthError::LoginNeeded(last));
            }
            return Err(UserAuthError::Transient(last));
        }
        Err(UserAuthError::Transient(last))
    }
}

impl TokenAnswer {
    fn expires_in_or(&self, default: u64) -> u64 {
        self.expires_in.unwrap_or(default)
    }
}

/// One profile's user login: the stored tokens and the refresh that keeps them fresh.
pub struct UserSession {
    oauth: Oauth,
    file: PathBuf,
    lock: PathBuf,
    /// The keychain entry's account (`NAME.user`).
    account: String,
    keystore: Arc<dyn Keystore>,
    /// New tokens go to the keychain; off when it is not wanted, and for the rest of the
    /// process once it failed to take them (no 30 s wait on every refresh).
    use_keychain: AtomicBool,
    current: tokio::sync::Mutex<Option<UserTokens>>,
    rejected: tokio::sync::Mutex<Option<String>>,
    /// Replicas' Redis (`serve --http --redis-url`, `login`/`logout --redis-url`): the login
    /// lives there too, and one replica at a time refreshes it, under a lock there.
    shared: std::sync::OnceLock<SharedLimits>,
    /// The login Redis held when last read or written, without its tokens: what
    /// [`UserSession::granted_scopes`] goes by when the file here is not newer.
    shared_view: std::sync::Mutex<Option<OnDisk>>,
}

impl UserSession {
    /// `file` is where the login lives (0600), `account` its OS keychain entry (used when
    /// [`crate::profile::keychain_wanted`]); `<file>.lock` serializes refreshes.
    pub fn new(oauth: Oauth, file: PathBuf, account: String) -> UserSession {
        let wanted = crate::profile::keychain_wanted();
        UserSession::with_keystore(oauth, file, account, Arc::new(OsKeychain), wanted)
    }

    /// As [`UserSession::new`], the tokens kept in `keystore` when `use_keystore`.
    pub fn with_keystore(
        oauth: Oauth,
        file: PathBuf,
        account: String,
        keystore: Arc<dyn Keystore>,
        use_keystore: bool,
    ) -> UserSession {
        let lock = file.with_extension("lock");
        UserSession {
            oauth,
            file,
            lock,
            account,
            keystore,
            use_keychain: AtomicBool::new(use_keystore),
            current: tokio::sync::Mutex::new(None),
            rejected: tokio::sync::Mutex::new(None),
            shared: std::sync::OnceLock::new(),
            shared_view: std::sync::Mutex::new(None),
        }
    }

    /// Shares the login with other replicas through `limits` (set once, at start): without
    /// Redis nothing changes.
    pub fn share(&self, limits: SharedLimits) {
        if limits.redis_limits().is_some() {
            let _ = self.shared.set(limits);
        }
    }

    fn redis(&self) -> Option<&RedisLimits> {
        self.shared.get().and_then(SharedLimits::redis_limits)
    }

    pub fn oauth(&self) -> &Oauth {
        &self.oauth
    }

    /// Where tokens kept in `store` are, for people: never a token.
    pub fn location(&self, store: &SecretStore) -> String {
        match store {
            SecretStore::Keychain => format!(
                "the OS keychain (entry `{}`; the rest in {})",
                self.account,
                self.file.display()
            ),
            SecretStore::File => format!("{} (0600)", self.file.display()),
        }
    }

    /// The stored login and where its tokens are, if any (read under the lock).
    pub async fn stored(&self) -> Result<Option<(UserTokens, SecretStore)>, String> {
        let guard = self.lock().await?;
        let stored = self.read().await.map_err(|e| e.to_string());
        drop(guard);
        stored
    }

    /// Stores a new login (under the lock); says where the tokens went.
    pub async fn save(&self, t: &UserTokens) -> Result<SecretStore, String> {
        let guard = self.lock().await?;
        let written = self.write(t, false).await;
        drop(guard);
        if let Some(r) = self.redis() {
            self.put_shared(r, t).await;
        }
        written
    }

    /// Forgets the login: the file, the keychain entry, memory. Says whether there was one.
    pub async fn clear(&self) -> Result<bool, String> {
        *self.current.lock().await = None;
        let guard = self.lock().await?;
        let forgotten = self.forget().await;
        drop(guard);
        let Some(r) = self.redis() else {
            return forgotten;
        };
        self.set_view(None);
        match r.user_forget(&self.account, None).await {
            Ok(in_redis) => forgotten.map(|here| here || in_redis),
            Err(e) => {
                warn_user(&e);
                let e = format!(
                    "the login shared in Redis at {} could not be deleted; run `lark-mcp-server logout` again when it answers",
                    r.shown()
                );
                forgotten.and(Err(e))
            }
        }
    }

    /// The scopes the signed-in user granted, when a usable login is stored (a tool that
    /// acts as the user is offered only then, and only with its scope). The file alone
    /// says: the keychain is not asked.
    ///
    /// With Redis, the login shared there (as last read: at start, and at each refresh)
    /// counts too, and the newer of the two wins: a replica that never ran `login` offers
    /// the user's tools as soon as another one shared its login.
    pub fn granted_scopes(&self) -> Option<Vec<String>> {
        let now = now_secs();
        let local = read_disk(&self.file)
            .ok()
            .flatten()
            .filter(|d| d.usable(now));
        let view = self.shared_view.lock().unwrap_or_else(|e| e.into_inner());
        let shared = view.as_ref().filter(|d| d.usable(now));
        match (local, shared) {
            (Some(l), Some(s)) if s.issued_at() >= l.issued_at() => Some(s.scope.clone()),
            (Some(l), _) => Some(l.scope),
            (None, s) => s.map(|s| s.scope.clone()),
        }
    }

    /// Lark refused `token` (expired early, revoked): the next call refreshes.
    pub async fn reject(&self, token: &SecretString) {
        let mut current = self.current.lock().await;
        if current
            .as_ref()
            .is_some_and(|t| t.access_token == token.expose_secret())
        {
            *current = None;
        }
        *self.rejected.lock().await = Some(token.expose_secret().to_string());
    }

    /// A user access token good for a while; refreshed ahead of expiry, once, whoever asks.
    pub async fn access_token(&self) -> Result<SecretString, UserAuthError> {
        let mut current = self.current.lock().await;
        let now = now_secs();
        if let Some(t) = current.as_ref().filter(|t| t.fresh(now)) {
            return Ok(t.access_token());
        }
        let rejected = self.rejected.lock().await.take();
        // Boxed: a refresh (locks, Lark, Redis) is rare, and would otherwise take room in
        // the future of every call made as the user.
        let tokens = match self.redis() {
            Some(r) => Box::pin(self.refresh_shared(r, rejected.as_deref())).await?,
            None => Box::pin(self.refresh_locked(rejected.as_deref())).await?,
        };
        let token = tokens.access_token();
        *current = Some(tokens);
        Ok(token)
    }

    /// The cross-process lock on `<file>.lock`, until the returned file is dropped (the
    /// profiles directory is made first: the first login may come before any profile).
    async fn lock(&self) -> Result<std::fs::File, String> {
        let lock = self.lock.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::profile::create_private_dir(dir)?;
            }
            lock_file(&lock)
        })
        .await
        .map_err(|e| format!("the token lock failed: {e}"))?
    }

    /// Under the cross-process lock: reread, and refresh only if nobody else just did (a
    /// stored token Lark `rejected` counts as due). The rotated tokens are written before
    /// the lock is released.
    async fn refresh_locked(&self, rejected: Option<&str>) -> Result<UserTokens, UserAuthError> {
        let guard = self.lock().await.map_err(UserAuthError::Transient)?;
        let result = self.refresh_under_lock(rejected).await;
        drop(guard);
        result
    }

    async fn refresh_under_lock(
        &self,
        rejected: Option<&str>,
    ) -> Result<UserTokens, UserAuthError> {
        let (stored, _) = self
            .read()
            .await?
            .ok_or_else(|| UserAuthError::LoginNeeded("nobody is logged in".into()))?;
        let now = now_secs();
        if stored.fresh(now) && rejected != Some(stored.access_token.as_str()) {
            return Ok(stored);
        }
        if !stored.refreshable(now) {
            self.forget_quietly().await;
            return Err(UserAuthError::LoginNeeded("the login has expired".into()));
        }
        match self.oauth.refresh(&stored).await {
            Ok(new) => {
                self.write(&new, true)
                    .await
                    .map_err(UserAuthError::Transient)?;
                tracing::info!("user token refreshed");
                Ok(new)
            }
            Err(UserAuthError::LoginNeeded(why)) => {
                tracing::warn!("the user login is gone: {why}");
                self.forget_quietly().await;
                Err(UserAuthError::LoginNeeded(why))
            }
            Err(e) => Err(e),
        }
    }

    /// The stored login (file, and the keychain when the file says so). Call under the lock.
    async fn read(&self) -> Result<Option<(UserTokens, SecretStore)>, UserAuthError> {
        let Some(disk) = read_disk(&self.file).map_err(UserAuthError::Transient)? else {
            return Ok(None);
        };
        let bad = |e: String| UserAuthError::Transient(format!("{}: {e}", self.file.display()));
        let store = disk.store().map_err(bad)?;
        let secrets = match store {
            SecretStore::File => None,
            SecretStore::Keychain => {
                let (keystore, account) = (self.keystore.clone(), self.account.clone());
                match bounded(move || keystore.get(&account)).await {
                    // The value's parse error is not shown: it could quote the value.
                    Ok(Some(v)) => Some(serde_json::from_str::<Secrets>(&v).map_err(|_| {
                        UserAuthError::LoginNeeded(format!(
                            "the OS keychain entry `{}` does not hold a login",
                            self.account
                        ))
                    })?),
                    Ok(None) => {
                        return Err(UserAuthError::LoginNeeded(format!(
                            "the OS keychain no longer holds the login's tokens (entry `{}`)",
                            self.account
                        )));
                    }
                    Err(e) => {
                        return Err(UserAuthError::Transient(format!(
                            "the login's tokens are in the OS keychain, which did not give them ({e})"
                        )));
                    }
                }
            }
        };
        Ok(Some((disk.merge(secrets).map_err(bad)?, store)))
    }

    /// Writes `t`: the tokens into the keychain when it is used and takes them, else into
    /// the file; then the file. Says where the tokens went. Call under the lock.
    async fn write(&self, t: &UserTokens, refreshed: bool) -> Result<SecretStore, String> {
        let mut store = SecretStore::File;
        if self.use_keychain.load(Ordering::Relaxed) {
            let (_, secrets) = OnDisk::split(t, &SecretStore::Keychain);
            let value = serde_json::to_string(&secrets).map_err(|e| e.to_string())?;
            let (keystore, account) = (self.keystore.clone(), self.account.clone());
            match bounded(move || keystore.set(&account, &value)).await {
                Ok(()) => store = SecretStore::Keychain,
                Err(e) => {
                    // Not again in this process: a keychain that hangs would hold every
                    // refresh for its timeout.
                    self.use_keychain.store(false, Ordering::Relaxed);
                    let file = self.file.display();
                    if refreshed {
                        tracing::warn!(
                            "the OS keychain did not take the refreshed user tokens ({e}); they go into {file} (0600) instead"
                        );
                    } else {
                        tracing::info!("no keychain ({e}); the user tokens go into {file}");
                    }
                }
            }
        }
        let (disk, _) = OnDisk::split(t, &store);
        let json = serde_json::to_vec_pretty(&disk).map_err(|e| e.to_string())?;
        crate::profile::write_private(&self.file, &json)?;
        Ok(store)
    }

    /// Deletes the file and, when it may hold the tokens, the keychain entry. Says whether
    /// there was a login. Call under the lock.
    async fn forget(&self) -> Result<bool, String> {
        let disk = read_disk(&self.file);
        let in_keychain = matches!(&disk, Ok(Some(d)) if d.store() == Ok(SecretStore::Keychain));
        let was = !matches!(disk, Ok(None));
        match std::fs::remove_file(&self.file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", self.file.display())),
        }
        // An entry may be left from before a fallback to the file: removed when the
        // keychain is used at all, quietly if the file did not point at it.
        if in_keychain || self.use_keychain.load(Ordering::Relaxed) {
            let (keystore, account) = (self.keystore.clone(), self.account.clone());
            match bounded(move || keystore.delete(&account)).await {
                Ok(()) => {}
                Err(e) if in_keychain => {
                    return Err(format!(
                        "{} is removed, but the OS keychain entry `{}` (service {}) that holds the tokens could not be deleted ({e}); delete it with the system's keychain tool",
                        self.file.display(),
                        self.account,
                        crate::profile::KEYCHAIN_SERVICE
                    ));
                }
                Err(e) => tracing::debug!("no keychain entry deleted ({e})"),
            }
        }
        Ok(was)
    }

    async fn forget_quietly(&self) {
        if let Err(e) = self.forget().await {
            tracing::warn!("{e}");
        }
    }

    // ---- the login shared by replicas (Redis) -------------------------------------------

    /// At a replica's start: reads the login Redis holds (so [`Self::granted_scopes`] sees
    /// it), and stores this machine's login there when there is none or this one is newer
    /// (see [`issued_at`]). Each Redis step is bounded; a failure is a warning.
    pub async fn sync_shared(&self) {
        let Some(r) = self.redis() else {
            return;
        };
        let remote = match self.read_shared(r).await {
            Ok(t) => t,
            Err(e) => {
                warn_user(&e);
                return;
            }
        };
        let Some(local_at) = self.local_issued_at() else {
            return;
        };
        if remote.is_some_and(|t| t.issued_at() >= local_at) {
            return;
        }
        let guard = match self.lock().await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!("the user login is not shared with the other replicas: {e}");
                return;
            }
        };
        match self.read().await {
            Ok(Some((t, _))) => {
                if self.put_shared(r, &t).await {
                    tracing::info!("this machine's user login is shared with the other replicas");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("the user login is not shared with the other replicas: {e}")
            }
        }
        drop(guard);
    }

    /// The login in use when it came from Redis (this machine has none), with the Redis
    /// it came from as it may be shown.
    pub async fn in_use(&self) -> Option<(UserTokens, String)> {
        let r = self.redis()?;
        let t = self.current.lock().await.clone()?;
        Some((t, r.shown().to_string()))
    }

    /// Reads the login Redis holds again, for [`Self::granted_scopes`] (each re-read of the
    /// scopes): a login shared or deleted since shows. Nothing without Redis; bounded.
    pub async fn reread_shared(&self) {
        if let Some(r) = self.redis()
            && let Err(e) = self.read_shared(r).await
        {
            warn_user(&e);
        }
    }

    /// When the tokens in this machine's file were issued, if it has a login (the file
    /// alone: the keychain is not asked).
    fn local_issued_at(&self) -> Option<u64> {
        read_disk(&self.file).ok().flatten().map(|d| d.issued_at())
    }

    fn set_view(&self, t: Option<&UserTokens>) {
        let view = t.map(|t| OnDisk::split(t, &SecretStore::Keychain).0);
        *self.shared_view.lock().unwrap_or_else(|e| e.into_inner()) = view;
    }

    /// The login in Redis (and the view of it updated). A value that does not parse counts
    /// as none; its parse error is not shown (it could quote a token).
    async fn read_shared(&self, r: &RedisLimits) -> Result<Option<UserTokens>, String> {
        let t = match r.user_get(&self.account).await? {
            None => None,
            Some((_, json)) => {
                let t = serde_json::from_str::<OnDisk>(&json)
                    .ok()
                    .and_then(|d| d.merge(None).ok());
                if t.is_none() {
                    tracing::warn!(
                        "the user login in Redis at {} is not readable; it is ignored",
                        r.shown()
                    );
                }
                t
            }
        };
        self.set_view(t.as_ref());
        Ok(t)
    }

    /// Stores `t` in Redis unless a newer login is there, for as long as it can be
    /// refreshed. Says whether Redis answered (and so holds `t` or a newer login).
    async fn put_shared(&self, r: &RedisLimits, t: &UserTokens) -> bool {
        let now = now_secs();
        let until = if t.refresh_token.is_some() {
            t.refresh_expires_at.max(t.access_expires_at)
        } else {
            t.access_expires_at
        };
        if until <= now {
            return true;
        }
        let (disk, _) = OnDisk::split(t, &SecretStore::File);
        let Ok(json) = serde_json::to_string(&disk) else {
            return false;
        };
        let ttl = Duration::from_secs(until - now);
        match r.user_put(&self.account, t.issued_at(), &json, ttl).await {
            Ok(stored) => {
                if stored {
                    self.set_view(Some(t));
                }
                true
            }
            Err(e) => {
                warn_user(&e);
                false
            }
        }
    }

    /// As [`Self::refresh_locked`], with the login shared in Redis: the newest login of
    /// Redis and this machine is used; when it is due, one replica refreshes it under a
    /// Redis lock (taken before the file lock, always in that order) and stores the rotated
    /// tokens in Redis — and in this machine's store when it has a login — before the lock
    /// is released. The others wait (bounded) and take the new tokens from Redis. When Redis
    /// fails, this replica goes on with its own store as without Redis.
    async fn refresh_shared(
        &self,
        r: &RedisLimits,
        rejected: Option<&str>,
    ) -> Result<UserTokens, UserAuthError> {
        let deadline = tokio::time::Instant::now() + USER_LOCK_LEASE;
        loop {
            let remote = match self.read_shared(r).await {
                Ok(t) => t,
                Err(e) => return self.refresh_alone(r, &e, rejected).await,
            };
            let local_at = self.local_issued_at();
            let remote = remote.filter(|t| local_at.is_none_or(|l| t.issued_at() >= l));
            let not_rejected = |t: &UserTokens| rejected != Some(t.access_token.as_str());
            if let Some(t) = remote
                .as_ref()
                .filter(|t| t.fresh(now_secs()) && not_rejected(t))
            {
                self.keep_locally(t, local_at).await;
                return Ok(t.clone());
            }
            match r.user_lock(&self.account).await {
                Err(e) => return self.refresh_alone(r, &e, rejected).await,
                Ok(true) => {
                    let result = self.refresh_holding(r, rejected).await;
                    r.user_unlock(&self.account).await;
                    return result;
                }
                Ok(false) => {}
            }
            // Another replica refreshes: a token not yet expired does meanwhile.
            if let Some(t) = remote.filter(|t| now_secs() < t.access_expires_at && not_rejected(t))
            {
                return Ok(t);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(UserAuthError::Transient(format!(
                    "another replica has been refreshing the user login for {} s",
                    USER_LOCK_LEASE.as_secs()
                )));
            }
            tokio::time::sleep(r.poll()).await;
        }
    }

    /// Redis failed (`e`): this machine's login alone, as without Redis.
    async fn refresh_alone(
        &self,
        r: &RedisLimits,
        e: &str,
        rejected: Option<&str>,
    ) -> Result<UserTokens, UserAuthError> {
        warn_user(e);
        if self.local_issued_at().is_none() {
            return Err(UserAuthError::Transient(format!(
                "the user login is shared in Redis at {}, which does not answer",
                r.shown()
            )));
        }
        self.refresh_locked(rejected).await
    }

    /// Redis holds tokens newer than this machine's login: they replace it here too, so
    /// that this replica has them should Redis fail later.
    async fn keep_locally(&self, t: &UserTokens, local_at: Option<u64>) {
        if local_at.is_none_or(|l| l >= t.issued_at()) {
            return;
        }
        let Ok(guard) = self.lock().await else {
            return;
        };
        if self.local_issued_at().is_some_and(|l| l < t.issued_at())
            && let Err(e) = self.write(t, true).await
        {
            tracing::warn!("the user login shared in Redis is not kept here too: {e}");
        }
        drop(guard);
    }

    /// Holding the Redis lock: the newest login of Redis and this machine (under the file
    /// lock), refreshed when due or `rejected`, and stored where it belongs.
    async fn refresh_holding(
        &self,
        r: &RedisLimits,
        rejected: Option<&str>,
    ) -> Result<UserTokens, UserAuthError> {
        // Read after the lock was taken: another replica may have just rotated the tokens.
        let remote = match self.read_shared(r).await {
            Ok(t) => t,
            Err(e) => return self.refresh_alone(r, &e, rejected).await,
        };
        let guard = self.lock().await.map_err(UserAuthError::Transient)?;
        let result = self.refresh_newest(r, remote, rejected).await;
        drop(guard);
        result
    }

    async fn refresh_newest(
        &self,
        r: &RedisLimits,
        remote: Option<UserTokens>,
        rejected: Option<&str>,
    ) -> Result<UserTokens, UserAuthError> {
        let local = match self.read().await {
            Ok(l) => l.map(|(t, _)| t),
            Err(e) if remote.is_some() => {
                tracing::debug!("this machine's user login is not readable ({e}); Redis has one");
                None
            }
            Err(e) => return Err(e),
        };
        let local_at = local.as_ref().map(UserTokens::issued_at);
        let from_local = match (&remote, local_at) {
            (Some(r), Some(l)) => l > r.issued_at(),
            (None, Some(_)) => true,
            _ => false,
        };
        let newest = if from_local { local } else { remote }
            .ok_or_else(|| UserAuthError::LoginNeeded("nobody is logged in".into()))?;
        let now = now_secs();
        if newest.fresh(now) && rejected != Some(newest.access_token.as_str()) {
            if from_local {
                self.put_shared(r, &newest).await;
            } else if local_at.is_some_and(|l| l < newest.issued_at())
                && let Err(e) = self.write(&newest, true).await
            {
                tracing::warn!("the user login shared in Redis is not kept here too: {e}");
            }
            return Ok(newest);
        }
        if !newest.refreshable(now) {
            self.forget_everywhere(r, newest.issued_at(), local_at.is_some())
                .await;
            return Err(UserAuthError::LoginNeeded("the login has expired".into()));
        }
        match self.oauth.refresh(&newest).await {
            Ok(new) => {
                // The spent refresh token is useless now: the rotated one goes to Redis,
                // and here too when this machine has a login — or when Redis did not take
                // it, so that it is not lost.
                let shared = self.put_shared(r, &new).await;
                if (local_at.is_some() || !shared)
                    && let Err(e) = self.write(&new, true).await
                {
                    if !shared {
                        return Err(UserAuthError::Transient(e));
                    }
                    tracing::warn!("the refreshed user login is in Redis, not here: {e}");
                }
                tracing::info!("user token refreshed for all replicas");
                Ok(new)
            }
            Err(UserAuthError::LoginNeeded(why)) => {
                tracing::warn!("the user login is gone: {why}");
                self.forget_everywhere(r, newest.issued_at(), local_at.is_some())
                    .await;
                Err(UserAuthError::LoginNeeded(why))
            }
            Err(e) => Err(e),
        }
    }

    /// The login issued at `issued_at` is gone for good: out of Redis (unless a newer one
    /// is there) and out of this machine's store when it has one.
    async fn forget_everywhere(&self, r: &RedisLimits, issued_at: u64, here: bool) {
        self.set_view(None);
        if let Err(e) = r.user_forget(&self.account, Some(issued_at)).await {
            warn_user(&e);
        }
        if here {
            self.forget_quietly().await;
        }
    }
}

fn read_disk(file: &Path) -> Result<Option<OnDisk>, String> {
    match std::fs::read(file) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| format!("{} is not a user login ({e})", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", file.display())),
    }
}

/// An exclusive lock on `path` (created 0600), held until the file is dropped.
fn lock_file(path: &Path) -> Result<std::fs::File, String> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let f = opts
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    f.lock()
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    Ok(f)
}

/// The authorization-code grant (`super::pkce`): one form POST to the token endpoint, read
/// like the device flow's answer. The error says Lark's code and reason, never a credential.
impl Oauth {
    pub(super) async fn code_grant(&self, form: &[(&str, &str)]) -> Result<UserTokens, String> {
        let url = format!("{}{TOKEN_PATH}", self.app.api);
        let a = self.post_form(&url, form, false).await?;
        if !a.failed() && a.access_token.as_deref().is_some_and(|t| !t.is_empty()) {
            return Ok(UserTokens::from_answer(a, None));
        }
        Err(format!(
            "Lark refused the authorization code (code {}: {})",
            a.code.map_or_else(|| "?".into(), |c| c.to_string()),
            a.error_description
                .as_deref()
                .or(a.error.as_deref())
                .unwrap_or("no reason given")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(lifetime: u64, expires_in: u64) -> UserTokens {
        let now = now_secs();
        UserTokens {
            access_token: "u-x".into(),
            refresh_token: Some("r".into()),
            access_expires_at: now + expires_in,
            access_lifetime_secs: lifetime,
            refresh_expires_at: now + 3600,
            scope: vec![],
            open_id: None,
            name: None,
        }
    }

    #[test]
    fn refresh_comes_five_minutes_early_or_at_three_quarters_of_a_short_life() {
        let now = now_secs();
        assert!(tokens(7200, 301).fresh(now));
        assert!(!tokens(7200, 299).fresh(now));
        assert!(tokens(8, 3).fresh(now));
        assert!(!tokens(8, 1).fresh(now));
    }

    #[test]
    fn answers_wrapped_in_data_are_read_too() {
        let a = TokenAnswer::parse(br#"{"code":0,"data":{"access_token":"u-1","expires_in":10}}"#);
        assert_eq!(a.and_then(|a| a.access_token).as_deref(), Some("u-1"));
        let a = TokenAnswer::parse(br#"{"code":20064,"error":"invalid_grant"}"#);
        assert!(a.is_some_and(|a| a.failed()));
    }

    #[test]
    fn debug_never_shows_a_token() {
        let t = tokens(10, 10);
        let d = format!("{t:?}");
        assert!(!d.contains("u-x") && !d.contains("\"r\""), "{d}");
    }
}

#[cfg(test)]
mod store_tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// A keychain in memory; `set` fails when `refuse_set` (a locked or absent keychain).
    #[derive(Default)]
    struct MemKeystore {
        entries: Mutex<HashMap<String, String>>,
        refuse_set: bool,
    }

    impl MemKeystore {
        fn entry(&self, account: &str) -> Option<String> {
            self.entries.lock().expect("map").get(account).cloned()
        }
    }

    impl Keystore for MemKeystore {
        fn set(&self, account: &str, value: &str) -> Result<(), String> {
            if self.refuse_set {
                return Err("Platform secure storage failure: locked".into());
            }
            self.entries
                .lock()
                .expect("map")
                .insert(account.into(), value.into());
            Ok(())
        }
        fn get(&self, account: &str) -> Result<Option<String>, String> {
            Ok(self.entry(account))
        }
        fn delete(&self, account: &str) -> Result<(), String> {
            self.entries.lock().expect("map").remove(account);
            Ok(())
        }
    }

    /// A keychain that answers nothing at all.
    struct BrokenKeystore;

    impl Keystore for BrokenKeystore {
        fn set(&self, _: &str, _: &str) -> Result<(), String> {
            Err("no Secret Service".into())
        }
        fn get(&self, _: &str) -> Result<Option<String>, String> {
            Err("no Secret Service".into())
        }
        fn delete(&self, _: &str) -> Result<(), String> {
            Err("no Secret Service".into())
        }
    }

    const ACCOUNT: &str = "default.user";

    fn login(access: &str, refresh: Option<&str>, expires_in: u64) -> UserTokens {
        let now = now_secs();
        UserTokens {
            access_token: access.into(),
            refresh_token: refresh.map(String::from),
            access_expires_at: now + expires_in,
            access_lifetime_secs: 7200,
            refresh_expires_at: now + 86_400,
            scope: vec!["contact:user.base:readonly".into(), OFFLINE_ACCESS.into()],
            open_id: Some("ou_1".into()),
            name: Some("Zhang Wei".into()),
        }
    }

    fn same(a: &UserTokens, b: &UserTokens) {
        assert_eq!(a.access_token, b.access_token);
        assert_eq!(a.refresh_token, b.refresh_token);
        assert_eq!(a.access_expires_at, b.access_expires_at);
        assert_eq!(a.access_lifetime_secs, b.access_lifetime_secs);
        assert_eq!(a.refresh_expires_at, b.refresh_expires_at);
        assert_eq!(a.scope, b.scope);
        assert_eq!(a.open_id, b.open_id);
        assert_eq!(a.name, b.name);
    }

    fn dir(test: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("lark-mcp-user-store-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    fn session(
        file: &Path,
        api: &str,
        keystore: Arc<dyn Keystore>,
        use_keystore: bool,
    ) -> UserSession {
        let app = App {
            app_id: "cli_test".into(),
            app_secret: SecretString::from("app-secret".to_string()),
            accounts: api.into(),
            api: api.into(),
        };
        let oauth = Oauth::new(app).expect("oauth");
        UserSession::with_keystore(
            oauth,
            file.to_path_buf(),
            ACCOUNT.into(),
            keystore,
            use_keystore,
        )
    }

    fn file_json(file: &Path) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(file).expect("file")).expect("json")
    }

    #[test]
    fn the_keychain_split_leaves_no_token_in_the_file_and_merges_back() {
        let t = login("u-access-1", Some("ur-refresh-1"), 7200);
        let (disk, secrets) = OnDisk::split(&t, &SecretStore::Keychain);
        let on_disk = serde_json::to_string(&disk).expect("json");
        assert!(
            !on_disk.contains("u-access-1") && !on_disk.contains("ur-refresh-1"),
            "{on_disk}"
        );
        assert!(on_disk.contains(r#""secrets":"keychain""#), "{on_disk}");
        assert!(on_disk.contains("Zhang Wei") && on_disk.contains("ou_1"));
        let entry = serde_json::to_string(&secrets).expect("json");
        assert!(entry.contains("u-access-1") && entry.contains("ur-refresh-1"));
        assert!(!entry.contains("ou_1"), "only the secrets: {entry}");
        // The file alone says the login is usable.
        assert!(disk.usable(now_secs()));
        let disk: OnDisk = serde_json::from_str(&on_disk).expect("read back");
        let secrets: Secrets = serde_json::from_str(&entry).expect("read back");
        same(&disk.merge(Some(secrets)).expect("merge"), &t);
    }

    #[test]
    fn the_file_split_keeps_everything_in_the_file() {
        let t = login("u-access-2", Some("ur-refresh-2"), 7200);
        let (disk, _) = OnDisk::split(&t, &SecretStore::File);
        let on_disk = serde_json::to_string(&disk).expect("json");
        assert!(on_disk.contains(r#""secrets":"file""#), "{on_disk}");
        assert!(on_disk.contains("u-access-2") && on_disk.contains("ur-refresh-2"));
        let disk: OnDisk = serde_json::from_str(&on_disk).expect("read back");
        assert_eq!(disk.store(), Ok(SecretStore::File));
        same(&disk.merge(None).expect("merge"), &t);
    }

    #[test]
    fn a_keychain_file_without_the_entry_or_with_an_unknown_store_does_not_merge() {
        let t = login("u-a", None, 7200);
        let (disk, _) = OnDisk::split(&t, &SecretStore::Keychain);
        assert!(!disk.usable(now_secs() + 7200), "no refresh token, expired");
        assert!(disk.merge(None).is_err());
        let odd: OnDisk = serde_json::from_value(serde_json::json!({
            "secrets": "vault", "access_token": "u-a",
            "access_expires_at": 1, "access_lifetime_secs": 1, "refresh_expires_at": 1
        }))
        .expect("parses");
        assert!(odd.merge(None).is_err());
    }

    #[tokio::test]
    async fn an_old_file_loads_as_before_without_asking_the_keychain() {
        let d = dir("old");
        let file = d.join("default.user.json");
        let now = now_secs();
        // Written by the previous version: UserTokens itself, no `secrets`.
        let old = serde_json::json!({
            "access_token": "u-old",
            "refresh_token": "ur-old",
            "access_expires_at": now + 3600,
            "access_lifetime_secs": 7200,
            "refresh_expires_at": now + 86_400,
            "scope": ["contact:user.base:readonly", "offline_access"],
            "open_id": "ou_9",
            "name": "Li Na"
        });
        std::fs::write(&file, serde_json::to_vec(&old).expect("json")).expect("write");
        let s = session(&file, "http://127.0.0.1:9", Arc::new(BrokenKeystore), true);
        let (t, store) = s.stored().await.expect("reads").expect("a login");
        assert_eq!(store, SecretStore::File);
        assert_eq!(t.access_token, "u-old");
        assert_eq!(t.refresh_token.as_deref(), Some("ur-old"));
        assert_eq!(t.name.as_deref(), Some("Li Na"));
        assert_eq!(
            s.granted_scopes(),
            Some(vec![
                "contact:user.base:readonly".to_string(),
                "offline_access".into()
            ])
        );
        let token = s.access_token().await.expect("fresh, no refresh");
        assert_eq!(token.expose_secret(), "u-old");
        // An older file without a refresh token (`null`) loads too.
        let mut old = old;
        old["refresh_token"] = serde_json::Value::Null;
        std::fs::write(&file, serde_json::to_vec(&old).expect("json")).expect("write");
        let (t, _) = s.stored().await.expect("reads").expect("a login");
        assert!(t.refresh_token.is_none());
        // Logging out of a file login does not need the keychain.
        assert_eq!(s.clear().await, Ok(true));
        assert!(!file.exists());
        let _ = std::fs::remove_dir_all(d);
    }

    #[tokio::test]
    async fn with_a_keychain_the_tokens_go_there_and_logout_deletes_the_entry() {
        let d = dir("keychain");
        let file = d.join("default.user.json");
        let keys = Arc::new(MemKeystore::default());
        let s = session(&file, "http://127.0.0.1:9", keys.clone(), true);
        let t = login("u-kc", Some("ur-kc"), 7200);
        assert_eq!(s.save(&t).await, Ok(SecretStore::Keychain));
        let text = std::fs::read_to_string(&file).expect("file");
        assert!(!text.contains("u-kc") && !text.contains("ur-kc"), "{text}");
        assert_eq!(file_json(&file)["secrets"], "keychain");
        let entry = keys.entry(ACCOUNT).expect("an entry");
        assert!(entry.contains("u-kc") && entry.contains("ur-kc"));
        let (back, store) = s.stored().await.expect("reads").expect("a login");
        assert_eq!(store, SecretStore::Keychain);
        same(&back, &t);
        assert!(s.location(&store).contains("keychain"));
        assert!(s.granted_scopes().is_some());
        assert_eq!(
            s.access_token().await.expect("token").expose_secret(),
            "u-kc"
        );
        // Even with the keychain turned off since, the file says where to look.
        let off = session(&file, "http://127.0.0.1:9", keys.clone(), false);
        let (back, _) = off.stored().await.expect("reads").expect("a login");
        same(&back, &t);
        assert_eq!(off.clear().await, Ok(true));
        assert!(!file.exists());
        assert!(keys.entry(ACCOUNT).is_none(), "the entry is deleted");
        assert_eq!(off.clear().await, Ok(false));
        let _ = std::fs::remove_dir_all(d);
    }

    #[tokio::test]
    async fn a_missing_entry_asks_for_a_login_and_a_broken_keychain_is_transient() {
        let d = dir("missing");
        let file = d.join("default.user.json");
        let keys = Arc::new(MemKeystore::default());
        let s = session(&file, "http://127.0.0.1:9", keys.clone(), true);
        s.save(&login("u-m", Some("ur-m"), 7200))
            .await
            .expect("saved");
        keys.delete(ACCOUNT).expect("deleted");
        let e = s.access_token().await.expect_err("no tokens");
        assert!(matches!(e, UserAuthError::LoginNeeded(_)), "{e}");
        let broken = session(&file, "http://127.0.0.1:9", Arc::new(BrokenKeystore), true);
        let e = broken.access_token().await.expect_err("no keychain");
        assert!(matches!(e, UserAuthError::Transient(_)), "{e}");
        // Logout cannot delete an entry the file points at: it says so, the file is gone.
        let e = broken.clear().await.expect_err("entry kept");
        assert!(e.contains(ACCOUNT), "{e}");
        assert!(!file.exists());
        let _ = std::fs::remove_dir_all(d);
    }

    #[tokio::test]
    async fn a_keychain_that_refuses_a_new_login_leaves_it_in_the_file() {
        let d = dir("refuse");
        // The first login may come before any profile: the directory is made.
        let file = d.join("profiles").join("default.user.json");
        let keys = Arc::new(MemKeystore {
            refuse_set: true,
            ..MemKeystore::default()
        });
        let s = session(&file, "http://127.0.0.1:9", keys.clone(), true);
        assert_eq!(
            s.save(&login("u-f", Some("ur-f"), 7200)).await,
            Ok(SecretStore::File)
        );
        let v = file_json(&file);
        assert_eq!(v["secrets"], "file");
        assert_eq!(v["refresh_token"], "ur-f");
        assert!(keys.entry(ACCOUNT).is_none());
        let _ = std::fs::remove_dir_all(d);
    }

    /// A token endpoint that answers one refresh with `u-new`/`ur-new`; gives back the
    /// request body it got.
    async fn token_endpoint() -> (String, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let served = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let body = loop {
                let n = conn.read(&mut buf).await.expect("read");
                assert!(n > 0, "request ended early");
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                let Some((head, body)) = text.split_once("\r\n\r\n") else {
                    continue;
                };
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break body.to_string();
                }
            };
            let answer = r#"{"code":0,"access_token":"u-new","refresh_token":"ur-new","expires_in":7200,"refresh_token_expires_in":604800,"scope":"contact:user.base:readonly offline_access"}"#;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            conn.write_all(resp.as_bytes()).await.expect("write");
            let _ = conn.shutdown().await;
            body
        });
        (base, served)
    }

    #[tokio::test]
    async fn a_refresh_the_keychain_will_not_take_goes_into_the_file() {
        let d = dir("fallback");
        let file = d.join("default.user.json");
        let (api, served) = token_endpoint().await;
        // Logged in with the keychain working; the access token now due.
        let keys = Arc::new(MemKeystore::default());
        let s = session(&file, &api, keys.clone(), true);
        s.save(&login("u-old", Some("ur-old"), 10))
            .await
            .expect("saved");
        // Later the keychain reads but refuses writes.
        let refusing = Arc::new(MemKeystore {
            entries: Mutex::new(keys.entries.lock().expect("map").clone()),
            refuse_set: true,
        });
        let s = session(&file, &api, refusing.clone(), true);
        let token = s.access_token().await.expect("refreshed");
        assert_eq!(token.expose_secret(), "u-new");
        let body = served.await.expect("served");
        assert!(body.contains("refresh_token=ur-old"), "{body}");
        // The rotated refresh token is in the file, and the file says so.
        let v = file_json(&file);
        assert_eq!(v["secrets"], "file");
        assert_eq!(v["refresh_token"], "ur-new");
        assert_eq!(v["access_token"], "u-new");
        assert_eq!(v["name"], "Zhang Wei", "kept from the login");
        let again = session(&file, &api, refusing.clone(), true);
        let (t, store) = again.stored().await.expect("reads").expect("a login");
        assert_eq!(store, SecretStore::File);
        assert_eq!(t.refresh_token.as_deref(), Some("ur-new"));
        // The stale entry goes with the logout.
        assert_eq!(again.clear().await, Ok(true));
        assert!(refusing.entry(ACCOUNT).is_none());
        let _ = std::fs::remove_dir_all(d);
    }

    #[tokio::test]
    async fn a_refresh_with_the_keychain_rotates_the_entry() {
        let d = dir("rotate");
        let file = d.join("default.user.json");
        let (api, served) = token_endpoint().await;
        let keys = Arc::new(MemKeystore::default());
        let s = session(&file, &api, keys.clone(), true);
        s.save(&login("u-old", Some("ur-old"), 10))
            .await
            .expect("saved");
        assert_eq!(
            s.access_token().await.expect("refreshed").expose_secret(),
            "u-new"
        );
        assert!(
            served
                .await
                .expect("served")
                .contains("refresh_token=ur-old")
        );
        let entry = keys.entry(ACCOUNT).expect("entry");
        assert!(
            entry.contains("ur-new") && !entry.contains("ur-old"),
            "rotated"
        );
        let v = file_json(&file);
        assert_eq!(v["secrets"], "keychain");
        assert!(v.get("refresh_token").is_none() && v.get("access_token").is_none());
        let _ = std::fs::remove_dir_all(d);
    }

    /// The rule between this machine's login and the one shared in Redis: the tokens
    /// issued later win, for the scopes offered too.
    #[tokio::test]
    async fn the_newer_of_the_file_and_the_shared_login_gives_the_scopes() {
        let d = dir("newest");
        let file = d.join("default.user.json");
        let s = session(&file, "http://127.0.0.1:9", Arc::new(BrokenKeystore), false);
        let with = |scope: &str, issued_ago: u64| {
            let mut t = login("u-x", Some("ur-x"), 7200 - issued_ago);
            t.scope = vec![scope.into()];
            t
        };
        s.save(&with("file:scope", 100)).await.expect("saved");
        assert_eq!(s.granted_scopes(), Some(vec!["file:scope".to_string()]));
        s.set_view(Some(&with("newer:scope", 10)));
        assert_eq!(s.granted_scopes(), Some(vec!["newer:scope".to_string()]));
        s.set_view(Some(&with("older:scope", 1000)));
        assert_eq!(s.granted_scopes(), Some(vec!["file:scope".to_string()]));
        assert_eq!(s.clear().await, Ok(true));
        assert_eq!(s.granted_scopes(), Some(vec!["older:scope".to_string()]));
        let mut gone = with("gone:scope", 7100);
        gone.refresh_token = None;
        s.set_view(Some(&gone));
        assert_eq!(
            s.granted_scopes(),
            None,
            "an unusable shared login offers nothing"
        );
        assert!(with("a", 10).issued_at() > with("b", 100).issued_at());
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn debug_of_what_holds_tokens_is_redacted() {
        let t = login("u-secret-a", Some("ur-secret-r"), 7200);
        for store in [SecretStore::Keychain, SecretStore::File] {
            let (disk, secrets) = OnDisk::split(&t, &store);
            let d = format!("{disk:?} {secrets:?} {t:?}");
            assert!(!d.contains("secret-a") && !d.contains("secret-r"), "{d}");
        }
    }
}
