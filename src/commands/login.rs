//! `login`, `whoami`, `logout`: the person's own Lark identity, next to the app's.
//!
//! `login` runs the OAuth device flow for the app of the chosen profile (or of the
//! flags/environment) — or, with `--pkce` or when the device flow is refused, the browser
//! sign-in (authorization code + PKCE, redirected to 127.0.0.1) — and stores the user's
//! tokens where the profile keeps its secret: the OS keychain, else the 0600 file beside it.
//! `whoami` shows who is logged in, the granted scopes and the expiries, refreshing first if
//! the access token is due, and where the tokens are (never printing a token). `logout`
//! forgets the tokens (file and keychain entry).

use std::io::IsTerminal;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::lark::LarkConfig;
use crate::lark::pkce;
use crate::lark::registration::{Accounts, Failure};
use crate::lark::shared_limits::SharedLimits;
use crate::lark::user_auth::{App, Oauth, UserAuthError, UserSession, UserTokens};
use crate::tools::{catalog, scope_plan};

/// The Redis `login`, `whoami` and `logout` share the login through (`--redis-url`), set
/// once by `main` before the command runs.
static SHARED: std::sync::OnceLock<SharedLimits> = std::sync::OnceLock::new();

/// `login`/`whoami`/`logout` reach the login replicas share in `limits` too.
pub fn share_through(limits: SharedLimits) {
    let _ = SHARED.set(limits);
}

/// As [`session`], sharing through the Redis of [`share_through`], if any.
fn shared_session(cfg: &LarkConfig, profile: &str) -> Result<UserSession, String> {
    let s = session(cfg, profile)?;
    if let Some(limits) = SHARED.get() {
        s.share(limits.clone());
    }
    Ok(s)
}

/// The user session of profile `profile` for the app in `cfg`.
pub fn session(cfg: &LarkConfig, profile: &str) -> Result<UserSession, String> {
    let accounts = Accounts::for_api_base(&cfg.base_url);
    let app = App {
        app_id: cfg.app_id.clone(),
        app_secret: cfg.app_secret.clone(),
        accounts: accounts.for_api(&cfg.base_url).to_string(),
        api: cfg.base_url.clone(),
    };
    let file = crate::profile::user_tokens_path(profile)?;
    let account = crate::profile::user_tokens_account(profile);
    Ok(UserSession::new(Oauth::new(app)?, file, account))
}

/// `--scopes auto`: for each tool that can act as the user, a scope the app offers for
/// user identity (the consent page drops any other), read from the app's own scope list;
/// the least-privilege plan when that list cannot be read. Sending in the person's name
/// (both of Lark's scopes for it) only with `send_as_user`. `offline_access` is added when
/// the flow begins.
async fn auto_scopes(cfg: &LarkConfig, send_as_user: bool) -> Vec<String> {
    let metas: Vec<_> = catalog()
        .iter()
        .map(|d| &d.meta)
        .filter(|m| !m.user_scopes().is_empty() && !m.identity.speaks())
        .collect();
    let mut chosen = choose(cfg, &metas).await;
    if send_as_user {
        for s in crate::lark::scope_sets::SEND_AS_USER_ALL {
            if !chosen.iter().any(|c| c == s) {
                chosen.push(s.to_string());
            }
        }
    }
    chosen.sort();
    chosen
}

async fn choose(cfg: &LarkConfig, metas: &[&crate::tools::ToolMeta]) -> Vec<String> {
    let offered = match crate::lark::LarkClient::new(cfg.clone()) {
        Ok(client) => client
            .granted_scopes(&CancellationToken::new())
            .await
            .ok()
            .map(|g| g.user),
        Err(_) => None,
    };
    let Some(offered) = offered.filter(|o| !o.is_empty()) else {
        return scope_plan::plan_user(metas)
            .into_iter()
            .map(String::from)
            .collect();
    };
    let mut chosen: Vec<String> = Vec::new();
    for m in metas {
        let scopes = m.user_scopes();
        if scopes.iter().any(|s| chosen.iter().any(|c| c == s)) {
            continue;
        }
        // The tool's own order puts its usual scope first; take the first the app offers.
        if let Some(s) = scopes.iter().find(|s| offered.contains(**s)) {
            chosen.push(s.to_string());
        } else if let Some(s) = scopes.first() {
            tracing::warn!(
                tool = m.name,
                "the app offers none of {scopes:?} for user identity; asking for {s} anyway",
            );
            chosen.push(s.to_string());
        }
    }
    chosen
}

/// The browser sign-in (authorization code + PKCE): asked for, and where it comes back.
#[derive(Debug, Clone, Copy, Default)]
pub struct Browser {
    /// Skip the device flow.
    pub pkce: bool,
    /// `--redirect-port`; default [`pkce::default_port`].
    pub redirect_port: Option<u16>,
}

/// Exit code: 0 logged in, 1 refused/expired/failed, 130 Ctrl-C.
pub async fn login(
    cfg: &LarkConfig,
    profile: &str,
    scopes: Option<Vec<String>>,
    no_browser: bool,
    sandbox: bool,
    browser: Browser,
    send_as_user: bool,
) -> i32 {
    let session = match shared_session(cfg, profile) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let scopes = match scopes {
        Some(s) => s,
        None => auto_scopes(cfg, send_as_user).await,
    };
    say!(
        "lark-mcp-server login: sign in as yourself to the app {}, asking for {} scopes (+ offline_access).",
        cfg.app_id,
        scopes.len()
    );
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let device = if browser.pkce {
        None
    } else {
        match session.oauth().device_begin(&scopes).await {
            Ok(b) => Some(b),
            Err(e) => {
                say!(
                    "The device login is not available ({e}); signing in through the browser instead."
                );
                None
            }
        }
    };
    let result = match device {
        Some(begun) => {
            super::init::show_link(&begun.url, begun.expires_in, no_browser || sandbox);
            if sandbox {
                super::init::confirm_in_sandbox(&begun.url).await;
            }
            let live = std::io::stderr().is_terminal();
            let result = session
                .oauth()
                .device_wait(&begun, &cancel, |s| super::init::progress(s, live))
                .await;
            super::init::end_progress(live);
            result
        }
        None => {
            let port = browser
                .redirect_port
                .unwrap_or_else(|| pkce::default_port(&cfg.base_url));
            let begun = match pkce::begin(session.oauth().app(), &scopes, port).await {
                Ok(b) => b,
                Err(e) => return fail(&e),
            };
            say!(
                "The browser comes back to {} (it must be a redirect URL of the app: developer console → Security settings).",
                begun.redirect_uri
            );
            super::init::show_link(&begun.url, pkce::WAIT, no_browser || sandbox);
            if sandbox {
                // The built-in sandbox approves at once; follow its redirect as a browser would.
                let url = begun.url.clone();
                tokio::spawn(async move { super::init::confirm_in_sandbox(&url).await });
            }
            pkce::finish(session.oauth(), begun, pkce::WAIT, &cancel).await
        }
    };
    let mut tokens = match result {
        Ok(t) => t,
        Err(Failure::Cancelled) => {
            eprintln!("\ncancelled: not logged in");
            return 130;
        }
        Err(Failure::Denied(why)) => {
            return fail(&if why.is_empty() {
                "the login was denied: not logged in".to_string()
            } else {
                format!("the login was denied ({why}): not logged in")
            });
        }
        Err(Failure::Expired) => {
            return fail("the login expired before it was confirmed; run login again");
        }
        Err(f) => return fail(&f.to_string()),
    };
    if let Some((open_id, name)) = user_info(&session, &tokens).await {
        tokens.open_id = Some(open_id);
        tokens.name = Some(name);
    }
    let store = match session.save(&tokens).await {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    say!(
        "Logged in as {} ({}); {} scopes granted. Stored for profile `{profile}`: the tokens are in {}.",
        tokens.name.as_deref().unwrap_or("?"),
        tokens.open_id.as_deref().unwrap_or("?"),
        tokens.scope.len(),
        session.location(&store)
    );
    0
}

/// `authen/v1/user_info` with the user's token: (open_id, name).
async fn user_info(session: &UserSession, t: &UserTokens) -> Option<(String, String)> {
    let url = format!(
        "{}/open-apis/authen/v1/user_info",
        session.oauth().app().api
    );
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(crate::lark::tls::client_config())
        .build()
        .ok()?;
    let v: Value = http
        .get(url)
        .bearer_auth(t.access_token().expose_secret())
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let d = v.get("data")?;
    Some((
        d.get("open_id")?.as_str()?.to_string(),
        d.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    ))
}

pub async fn whoami(cfg: &LarkConfig, profile: &str) -> i32 {
    let session = match shared_session(cfg, profile) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    // A due token is refreshed first, as a tool call would.
    if let Err(e) = session.access_token().await {
        return match e {
            UserAuthError::LoginNeeded(_) => {
                eprintln!("Not logged in ({e})");
                1
            }
            UserAuthError::Transient(_) => fail(&e.to_string()),
        };
    }
    let (t, place) = match session.stored().await {
        Ok(Some((t, store))) => (t, session.location(&store)),
        // None here, but the one replicas share (`--redis-url`) gave the token above.
        Ok(None) => match session.in_use().await {
            Some((t, shown)) => (t, format!("Redis at {shown} (shared by the replicas)")),
            None => return fail("not logged in; run `lark-mcp-server login`"),
        },
        Err(e) => return fail(&e),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let user = user_info(&session, &t).await;
    say!(
        "User:    {} ({})",
        user.as_ref()
            .map(|u| u.1.as_str())
            .or(t.name.as_deref())
            .unwrap_or("?"),
        user.as_ref()
            .map(|u| u.0.as_str())
            .or(t.open_id.as_deref())
            .unwrap_or("?")
    );
    say!("App:     {}", cfg.app_id);
    say!(
        "Access:  valid for {} s more",
        t.access_expires_at.saturating_sub(now)
    );
    say!(
        "Refresh: valid for {} days more",
        t.refresh_expires_at.saturating_sub(now) / 86_400
    );
    say!("Scopes:  {}", t.scope.join(" "));
    say!("Tokens:  in {place}");
    0
}

pub async fn logout(cfg: &LarkConfig, profile: &str) -> i32 {
    let session = match shared_session(cfg, profile) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let was = match session.clear().await {
        Ok(was) => was,
        Err(e) => return fail(&e),
    };
    if was {
        // Lark documents no revocation endpoint for user tokens: the stored ones are gone,
        // the refresh token is never used again, and the access token lapses within 2 h.
        say!(
            "Logged out of profile `{profile}`: the tokens are deleted. To withdraw the app's access entirely, remove it in Feishu/Lark's settings."
        );
    } else {
        say!("Profile `{profile}` had no login.");
    }
    0
}

fn fail(e: &str) -> i32 {
    eprintln!("error: {e}");
    1
}
