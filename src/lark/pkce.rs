//! Acting as the user through the browser: the authorization-code flow with PKCE (S256,
//! RFC 7636) and a loopback redirect (RFC 8252), for when the device flow is refused or the
//! person asks for it (`login --pkce`). Reference: `shared/reference/lark-auth-registration-
//! events.md`, part B.2.
//!
//! 1. A random verifier (43 characters of `[A-Za-z0-9-_]`), its challenge
//!    `BASE64URL(SHA256(verifier))` and a random `state`.
//! 2. A listener on `127.0.0.1:<port>` whose `/callback` is the `redirect_uri`.
//! 3. The person opens `{accounts}/open-apis/authen/v1/authorize?…` and approves; Lark
//!    redirects the browser to `/callback?code=…&state=…` (or `error=…`).
//! 4. The first callback carrying our `state` ends the wait (others are answered 400 and
//!    ignored); the code is traded at the v2 token endpoint with the verifier.
//!
//! The verifier, code and tokens are never printed or logged.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use secrecy::ExposeSecret;
use sha2::Digest;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::registration::Failure;
use super::user_auth::{App, OFFLINE_ACCESS, Oauth, UserTokens};

const AUTHORIZE_PATH: &str = "/open-apis/authen/v1/authorize";
pub const CALLBACK_PATH: &str = "/callback";
/// How long the browser has to come back: Lark's authorization code lives 5 minutes, and a
/// person who has not approved by then has gone away.
pub const WAIT: Duration = Duration::from_secs(300);
/// The redirect port for a real Lark: the redirect URL must be registered in the developer
/// console beforehand, so it cannot change from run to run (the official lark-mcp's is 3000).
pub const DEFAULT_PORT: u16 = 3000;

/// `BASE64URL(SHA256(verifier))` without padding (RFC 7636 S256).
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// `bytes` random bytes, base64url without padding (only `[A-Za-z0-9-_]`).
fn random_b64(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| format!("no randomness for the login: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// A fresh verifier: 32 random bytes → 43 characters, the shortest RFC 7636 allows.
pub fn new_verifier() -> Result<String, String> {
    random_b64(32)
}

/// Whether `v` is a verifier RFC 7636 accepts: 43–128 characters of `[A-Za-z0-9-._~]`.
pub fn verifier_well_formed(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The redirect port when none is given: any free one for a sandbox on this machine (it
/// accepts any redirect URL), else [`DEFAULT_PORT`], which must be registered.
pub fn default_port(api_base: &str) -> u16 {
    let loopback = reqwest::Url::parse(api_base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|h| h == "localhost" || h == "[::1]" || h.starts_with("127."));
    if loopback { 0 } else { DEFAULT_PORT }
}

/// The authorize link the person opens.
pub fn authorize_url(
    app: &App,
    redirect_uri: &str,
    scopes: &[String],
    state: &str,
    challenge: &str,
) -> String {
    let mut scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    if !scopes.contains(&OFFLINE_ACCESS) {
        scopes.push(OFFLINE_ACCESS);
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &app.app_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    format!("{}{AUTHORIZE_PATH}?{query}", app.accounts)
}

/// A login waiting for the browser: the link to open and the listener it comes back to.
pub struct Begun {
    pub url: String,
    pub redirect_uri: String,
    listener: tokio::net::TcpListener,
    state: String,
    verifier: String,
}

impl std::fmt::Debug for Begun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Begun")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// Listens on `127.0.0.1:port` (0: any free port) and builds the authorize link.
pub async fn begin(app: &App, scopes: &[String], port: u16) -> Result<Begun, String> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|e| {
            format!(
                "cannot listen on 127.0.0.1:{port} for the browser's redirect ({e}); pass \
                 --redirect-port with a free port and register http://127.0.0.1:<port>{CALLBACK_PATH} \
                 as a redirect URL of the app"
            )
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("the redirect listener has no address: {e}"))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");
    let verifier = new_verifier()?;
    let state = random_b64(16)?;
    let url = authorize_url(app, &redirect_uri, scopes, &state, &challenge(&verifier));
    Ok(Begun {
        url,
        redirect_uri,
        listener,
        state,
        verifier,
    })
}

/// Waits (at most `within`, or until `cancel`) for the browser to come back, then trades
/// the code for the user's tokens.
pub async fn finish(
    oauth: &Oauth,
    begun: Begun,
    within: Duration,
    cancel: &CancellationToken,
) -> Result<UserTokens, Failure> {
    let Begun {
        redirect_uri,
        listener,
        state,
        verifier,
        ..
    } = begun;
    let code = wait_for_code(listener, state, within, cancel).await?;
    let secret = oauth.app().app_secret.expose_secret().to_string();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", oauth.app().app_id.as_str()),
        ("client_secret", secret.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    tokio::select! {
        _ = cancel.cancelled() => Err(Failure::Cancelled),
        r = oauth.code_grant(&form) => r.map_err(Failure::Other),
    }
}

type Outcome = Result<String, Failure>;

struct Callback {
    state: String,
    done: Mutex<Option<oneshot::Sender<Outcome>>>,
}

/// Serves `/callback` until the first answer with our `state`; gives back its code.
async fn wait_for_code(
    listener: tokio::net::TcpListener,
    state: String,
    within: Duration,
    cancel: &CancellationToken,
) -> Result<String, Failure> {
    let (tx, rx) = oneshot::channel();
    let cb = Arc::new(Callback {
        state,
        done: Mutex::new(Some(tx)),
    });
    let app = Router::new()
        .route(CALLBACK_PATH, get(callback))
        .fallback(|| async { page(StatusCode::NOT_FOUND, "Not found", "Nothing here.") })
        .with_state(cb);
    let stop = CancellationToken::new();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
    );
    let outcome = tokio::select! {
        _ = cancel.cancelled() => Err(Failure::Cancelled),
        _ = tokio::time::sleep(within) => Err(Failure::Expired),
        r = rx => r.unwrap_or_else(|_| Err(Failure::Other("the redirect listener stopped".into()))),
    };
    // Let the page that ended the wait reach the browser, then stop listening.
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    outcome
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{text}</p></body></html>\n"
    );
    (
        status,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Html(body),
    )
        .into_response()
}

async fn callback(State(cb): State<Arc<Callback>>, RawQuery(q): RawQuery) -> Response {
    let q = q.unwrap_or_default();
    let params: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let ours = get("state").is_some_and(|s| {
        use subtle::ConstantTimeEq;
        bool::from(s.as_bytes().ct_eq(cb.state.as_bytes()))
    });
    if !ours {
        tracing::warn!("ignored a sign-in redirect whose state is not this login's");
        return page(
            StatusCode::BAD_REQUEST,
            "Not this login",
            "This answer does not belong to the sign-in the terminal is waiting for (its \
             state does not match), so it was ignored. Use the link the terminal printed.",
        );
    }
    let outcome: Outcome = match (get("code").filter(|c| !c.is_empty()), get("error")) {
        (Some(code), _) => Ok(code.to_string()),
        (None, Some("access_denied")) => Err(Failure::Denied(
            get("error_description").unwrap_or("").to_string(),
        )),
        (None, Some(e)) => Err(Failure::Other(format!(
            "the authorization failed: {e}{}",
            get("error_description")
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ))),
        (None, None) => Err(Failure::Other(
            "the browser came back with neither a code nor an error".into(),
        )),
    };
    let Some(tx) = cb.done.lock().ok().and_then(|mut d| d.take()) else {
        return page(
            StatusCode::CONFLICT,
            "Already done",
            "This sign-in is already finished. You can close this page.",
        );
    };
    let resp = match &outcome {
        Ok(_) => page(
            StatusCode::OK,
            "Signed in",
            "lark-mcp-server received the authorization. You can close this page and return \
             to the terminal.",
        ),
        Err(Failure::Denied(_)) => page(
            StatusCode::OK,
            "Authorization denied",
            "The authorization was denied; nothing was stored. You can close this page.",
        ),
        Err(_) => page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The authorization failed; the terminal says why. You can close this page.",
        ),
    };
    let _ = tx.send(outcome);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(challenge(v), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn agrees_with_the_sandboxs_own_sha256() {
        for _ in 0..20 {
            let v = new_verifier().unwrap_or_default();
            assert_eq!(challenge(&v), crate::sandbox::user_auth::s256_challenge(&v));
        }
    }

    #[test]
    fn verifiers_are_well_formed_and_fresh() {
        let a = new_verifier().unwrap_or_default();
        let b = new_verifier().unwrap_or_default();
        assert!(verifier_well_formed(&a), "{}", a.len());
        assert!(verifier_well_formed(&b));
        assert_ne!(a, b);
        assert_eq!(challenge(&a).len(), 43);
        assert!(!verifier_well_formed("short"));
        assert!(!verifier_well_formed(&"a+".repeat(30)));
    }

    #[test]
    fn the_port_is_free_only_for_a_local_sandbox() {
        assert_eq!(default_port("http://127.0.0.1:4010"), 0);
        assert_eq!(default_port("http://localhost:4010"), 0);
        assert_eq!(default_port("https://open.feishu.cn"), DEFAULT_PORT);
        assert_eq!(default_port("https://open.larksuite.com"), DEFAULT_PORT);
    }

    #[test]
    fn the_link_carries_the_challenge_and_offline_access() {
        let app = App {
            app_id: "cli_x".into(),
            app_secret: "s".to_string().into(),
            accounts: "https://accounts.feishu.cn".into(),
            api: "https://open.feishu.cn".into(),
        };
        let url = authorize_url(
            &app,
            "http://127.0.0.1:3000/callback",
            &["im:message".into()],
            "st",
            "ch",
        );
        assert!(url.starts_with("https://accounts.feishu.cn/open-apis/authen/v1/authorize?"));
        let q: Vec<(String, String)> = reqwest::Url::parse(&url)
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default();
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("client_id"), Some("cli_x"));
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("redirect_uri"), Some("http://127.0.0.1:3000/callback"));
        assert_eq!(get("scope"), Some("im:message offline_access"));
        assert_eq!(get("state"), Some("st"));
        assert_eq!(get("code_challenge"), Some("ch"));
        assert_eq!(get("code_challenge_method"), Some("S256"));
    }
}
