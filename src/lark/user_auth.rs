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

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::registration::{Failure, Status};

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

/// The user's tokens, as stored (0600 file; never logged).
#[derive(Serialize, Deserialize, Clone)]
pub struct UserTokens {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    /// Unix seconds.
    pub access_expires_at: u64,
    pub access_lifetime_secs: u64,
    pub refresh_expires_at: u64,
    pub scope: Vec<String>,
    #[serde(default)]
    pub open_id: Option<String>,
    #[serde(default)]
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
        let ahead = REFRESH_AHEAD.as_secs().min(self.access_lifetime_secs / 4);
        now + ahead < self.access_expires_at
    }

    fn refreshable(&self, now: u64) -> bool {
        self.refresh_token.is_some() && now < self.refresh_expires_at
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
    current: tokio::sync::Mutex<Option<UserTokens>>,
    rejected: tokio::sync::Mutex<Option<String>>,
}

impl UserSession {
    /// `file` is where the tokens live (0600); `<file>.lock` serializes refreshes.
    pub fn new(oauth: Oauth, file: PathBuf) -> UserSession {
        let lock = file.with_extension("lock");
        UserSession {
            oauth,
            file,
            lock,
            current: tokio::sync::Mutex::new(None),
            rejected: tokio::sync::Mutex::new(None),
        }
    }

    pub fn oauth(&self) -> &Oauth {
        &self.oauth
    }

    /// The stored tokens, if any (read from disk).
    pub fn stored(&self) -> Result<Option<UserTokens>, String> {
        read_tokens(&self.file)
    }

    pub fn save(&self, t: &UserTokens) -> Result<(), String> {
        crate::profile::write_private(
            &self.file,
            &serde_json::to_vec_pretty(t).map_err(|e| e.to_string())?,
        )
    }

    /// Forgets the login (file and memory).
    pub async fn clear(&self) -> Result<(), String> {
        *self.current.lock().await = None;
        match std::fs::remove_file(&self.file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", self.file.display())),
        }
    }

    /// The scopes the signed-in user granted, when a usable login is stored (a tool that
    /// acts as the user is offered only then, and only with its scope).
    pub fn granted_scopes(&self) -> Option<Vec<String>> {
        let now = now_secs();
        match read_tokens(&self.file) {
            Ok(Some(t)) if t.refreshable(now) || t.fresh(now) => Some(t.scope),
            _ => None,
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
        let tokens = self.refresh_locked(rejected.as_deref()).await?;
        let token = tokens.access_token();
        *current = Some(tokens);
        Ok(token)
    }

    /// Under the cross-process lock: reread, and refresh only if nobody else just did (a
    /// stored token Lark `rejected` counts as due).
    async fn refresh_locked(&self, rejected: Option<&str>) -> Result<UserTokens, UserAuthError> {
        let lock = self.lock.clone();
        let guard = tokio::task::spawn_blocking(move || lock_file(&lock))
            .await
            .map_err(|e| UserAuthError::Transient(format!("the token lock failed: {e}")))?
            .map_err(UserAuthError::Transient)?;
        let result = async {
            let stored = read_tokens(&self.file)
                .map_err(UserAuthError::Transient)?
                .ok_or_else(|| UserAuthError::LoginNeeded("nobody is logged in".into()))?;
            let now = now_secs();
            if stored.fresh(now) && rejected != Some(stored.access_token.as_str()) {
                return Ok(stored);
            }
            if !stored.refreshable(now) {
                let _ = std::fs::remove_file(&self.file);
                return Err(UserAuthError::LoginNeeded("the login has expired".into()));
            }
            match self.oauth.refresh(&stored).await {
                Ok(new) => {
                    self.save(&new).map_err(UserAuthError::Transient)?;
                    tracing::info!("user token refreshed");
                    Ok(new)
                }
                Err(UserAuthError::LoginNeeded(why)) => {
                    tracing::warn!("the user login is gone: {why}");
                    let _ = std::fs::remove_file(&self.file);
                    Err(UserAuthError::LoginNeeded(why))
                }
                Err(e) => Err(e),
            }
        }
        .await;
        drop(guard);
        result
    }
}

fn read_tokens(file: &std::path::Path) -> Result<Option<UserTokens>, String> {
    match std::fs::read(file) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| format!("{} is not a user login ({e})", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", file.display())),
    }
}

/// An exclusive lock on `path` (created 0600), held until the file is dropped.
fn lock_file(path: &std::path::Path) -> Result<std::fs::File, String> {
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
