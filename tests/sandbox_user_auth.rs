//! User identity against the in-process sandbox, over HTTP (reference part B): the device
//! flow, the authorize page with PKCE, the v2 token endpoint's grants and single-use refresh
//! tokens, and `u-` tokens on `/open-apis` (user_info, token types, user scope checks).

mod common;

use std::time::Duration;

use base64::Engine;
use common::{APP_ID, APP_SECRET, Resp, Sbx, ZHANG_WEI};
use lark_mcp_server::sandbox::Options;
use lark_mcp_server::sandbox::options::{RegistrationOutcome, UserAuthorizeOutcome};
use lark_mcp_server::sandbox::user_auth::s256_challenge;
use serde_json::{Value, json};

const DEVICE: &str = "/oauth/v1/device_authorization";
const LARK_DEVICE: &str = "/lark/oauth/v1/device_authorization";
const DEVICE_V2: &str = "/open-apis/authen/v2/oauth/device_authorization";
const TOKEN: &str = "/open-apis/authen/v2/oauth/token";
const AUTHORIZE: &str = "/open-apis/authen/v1/authorize";
const USER_INFO: &str = "/open-apis/authen/v1/user_info";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The seed's first active tenant manager: who approves by default.
const MANAGER: &str = "ou_39154d448993dfd2bfec4d420bd70486";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const CONTACT_BASE: &str = "contact:contact.base:readonly";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn basic(id: &str, secret: &str) -> String {
    let raw = format!("{id}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn encode(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

async fn form_post(s: &Sbx, path: &str, auth: Option<&str>, fields: &[(&str, &str)]) -> Resp {
    let mut rb = s
        .http
        .post(s.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(fields));
    if let Some(a) = auth {
        rb = rb.header("authorization", a);
    }
    s.execute(rb).await
}

async fn json_post(s: &Sbx, path: &str, body: &Value) -> Resp {
    s.execute(
        s.http
            .post(s.url(path))
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string()),
    )
    .await
}

async fn device_begin(s: &Sbx, scope: &str) -> Value {
    let r = form_post(
        s,
        DEVICE,
        Some(&basic(APP_ID, APP_SECRET)),
        &[("client_id", APP_ID), ("scope", scope)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json
}

async fn device_poll(s: &Sbx, device_code: &str) -> Resp {
    form_post(
        s,
        TOKEN,
        None,
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
        ],
    )
    .await
}

fn code_of(b: &Value) -> &str {
    b["device_code"].as_str().expect("device_code")
}

#[track_caller]
fn assert_device_error(r: &Resp, error: &str) {
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (400, Some(error)),
        "{}",
        r.text
    );
    assert!(r.json["error_description"].is_string(), "{}", r.text);
    assert!(r.json.get("access_token").is_none(), "{}", r.text);
}

/// A token-endpoint error of the documented table.
#[track_caller]
fn assert_token_error(r: &Resp, status: u16, code: i64) {
    assert_eq!(
        (r.status, r.json["code"].as_i64()),
        (status, Some(code)),
        "{}",
        r.text
    );
    assert!(r.json["error"].is_string(), "{}", r.text);
    assert!(r.json["error_description"].is_string(), "{}", r.text);
}

#[track_caller]
fn assert_tokens(r: &Resp, with_refresh: bool) {
    assert_eq!(
        (r.status, r.json["code"].as_i64()),
        (200, Some(0)),
        "{}",
        r.text
    );
    let access = r.json["access_token"].as_str().unwrap_or("");
    assert!(access.starts_with("u-"), "{}", r.text);
    assert_eq!(r.json["token_type"], "Bearer");
    assert!(r.json["expires_in"].as_u64().is_some(), "{}", r.text);
    assert!(r.json["scope"].is_string(), "{}", r.text);
    assert!(r.json.get("error").is_none(), "{}", r.text);
    assert_eq!(
        r.json["refresh_token"].is_string(),
        with_refresh,
        "{}",
        r.text
    );
    assert_eq!(
        r.json["refresh_token_expires_in"].is_u64(),
        with_refresh,
        "{}",
        r.text
    );
}

fn access(r: &Resp) -> String {
    r.json["access_token"].as_str().unwrap_or("").to_string()
}

fn refresh_of(r: &Resp) -> String {
    r.json["refresh_token"].as_str().unwrap_or("").to_string()
}

/// A full device flow with default options: the second poll approves.
async fn device_tokens(s: &Sbx, scope: &str) -> Resp {
    let b = device_begin(s, scope).await;
    assert_device_error(&device_poll(s, code_of(&b)).await, "authorization_pending");
    device_poll(s, code_of(&b)).await
}

// ---- device flow ------------------------------------------------------------------------

#[tokio::test]
async fn device_flow_approves_on_the_second_poll_and_the_token_is_the_users() {
    let s = Sbx::start().await;
    let b = device_begin(&s, &format!("{CONTACT_BASE} offline_access")).await;
    for k in [
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
    ] {
        assert!(b[k].as_str().is_some_and(|v| !v.is_empty()), "{k}: {b}");
    }
    assert_eq!(b["expires_in"], 240);
    assert_eq!(b["interval"], 1);
    let complete = b["verification_uri_complete"].as_str().unwrap_or("");
    assert!(complete.contains("/oauth/v1/device/verify?flow_id="), "{b}");

    let first = device_poll(&s, code_of(&b)).await;
    assert_device_error(&first, "authorization_pending");
    let second = device_poll(&s, code_of(&b)).await;
    assert_tokens(&second, true);
    assert_eq!(second.json["expires_in"], 7200);
    assert_eq!(second.json["refresh_token_expires_in"], 604_800);
    assert_eq!(
        second.json["scope"],
        format!("{CONTACT_BASE} offline_access")
    );
    // The device_code is spent.
    assert_device_error(&device_poll(&s, code_of(&b)).await, "invalid_grant");
    assert_eq!(s.state().user_tokens_issued(), 1);

    let me = s.get(&access(&second), USER_INFO, &[]).await;
    let data = me.ok();
    assert_eq!(data["open_id"], MANAGER);
    for k in [
        "name",
        "en_name",
        "email",
        "union_id",
        "tenant_key",
        "avatar_url",
    ] {
        assert!(data[k].is_string(), "{k}: {}", me.text);
    }
    assert!(me.header("x-tt-logid").is_some());
}

#[tokio::test]
async fn device_authorization_requires_the_apps_basic_credentials() {
    let s = Sbx::start().await;
    let fields = [("client_id", APP_ID), ("scope", CONTACT_BASE)];
    let none = form_post(&s, DEVICE, None, &fields).await;
    assert_eq!(
        (none.status, none.json["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let wrong = form_post(&s, DEVICE, Some(&basic(APP_ID, "nope")), &fields).await;
    assert_eq!(
        (wrong.status, wrong.json["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let missing = form_post(&s, DEVICE, Some(&basic(APP_ID, APP_SECRET)), &[]).await;
    assert_eq!(
        (missing.status, missing.json["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // The Lark accounts host shares the state.
    let lark = form_post(&s, LARK_DEVICE, Some(&basic(APP_ID, APP_SECRET)), &fields).await;
    assert_eq!(lark.status, 200, "{}", lark.text);
    assert_device_error(
        &device_poll(&s, code_of(&lark.json)).await,
        "authorization_pending",
    );
    // An unknown device_code.
    assert_device_error(&device_poll(&s, "nope").await, "invalid_grant");
}

#[tokio::test]
async fn device_flow_outcomes_deny_expire_and_slow_down() {
    let s = Sbx::with_options(Options {
        user_device_outcome: RegistrationOutcome::Deny,
        ..Options::default()
    })
    .await;
    let b = device_begin(&s, CONTACT_BASE).await;
    assert_device_error(&device_poll(&s, code_of(&b)).await, "authorization_pending");
    assert_device_error(&device_poll(&s, code_of(&b)).await, "access_denied");
    assert_device_error(&device_poll(&s, code_of(&b)).await, "access_denied");

    s.state().set_options(Options {
        user_device_outcome: RegistrationOutcome::Expire,
        ..Options::default()
    });
    let b = device_begin(&s, CONTACT_BASE).await;
    assert_device_error(&device_poll(&s, code_of(&b)).await, "authorization_pending");
    assert_device_error(&device_poll(&s, code_of(&b)).await, "expired_token");

    s.state().set_options(Options {
        user_device_slow_down_polls: 2,
        user_device_approve_after_polls: 1,
        ..Options::default()
    });
    let b = device_begin(&s, CONTACT_BASE).await;
    assert_device_error(&device_poll(&s, code_of(&b)).await, "slow_down");
    assert_device_error(&device_poll(&s, code_of(&b)).await, "slow_down");
    assert_tokens(&device_poll(&s, code_of(&b)).await, false);
    assert_eq!(s.state().user_tokens_issued(), 1);
}

#[tokio::test]
async fn device_flow_deadline_answers_expired_token() {
    let s = Sbx::with_options(Options {
        user_device_expires_in_secs: 1,
        user_device_approve_after_polls: 0,
        ..Options::default()
    })
    .await;
    let b = device_begin(&s, CONTACT_BASE).await;
    assert_eq!(b["expires_in"], 1);
    assert_device_error(&device_poll(&s, code_of(&b)).await, "authorization_pending");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_device_error(&device_poll(&s, code_of(&b)).await, "expired_token");
    let page = s
        .execute(
            s.http
                .get(b["verification_uri_complete"].as_str().unwrap_or("")),
        )
        .await;
    assert_eq!(page.status, 410);
}

#[tokio::test]
async fn device_verification_page_shows_the_request_and_decides_on_a_click() {
    let s = Sbx::with_options(Options {
        user_device_approve_after_polls: 0,
        ..Options::default()
    })
    .await;
    let b = device_begin(&s, &format!("{CONTACT_BASE} offline_access")).await;
    let url = b["verification_uri_complete"].as_str().unwrap_or("");
    let page = s.execute(s.http.get(url)).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains(CONTACT_BASE), "{}", page.text);
    assert!(page.text.contains(">Approve<") && page.text.contains(">Deny<"));
    // Nobody clicked: pending however often the client polls.
    for _ in 0..3 {
        assert_device_error(&device_poll(&s, code_of(&b)).await, "authorization_pending");
    }
    let user_code = b["user_code"].as_str().unwrap_or("");
    let click = form_post(
        &s,
        "/oauth/v1/device/verify",
        None,
        &[("user_code", user_code), ("decision", "approve")],
    )
    .await;
    assert_eq!(click.status, 200, "{}", click.text);
    assert_tokens(&device_poll(&s, code_of(&b)).await, true);

    let b = device_begin(&s, CONTACT_BASE).await;
    let user_code = b["user_code"].as_str().unwrap_or("");
    form_post(
        &s,
        "/oauth/v1/device/verify",
        None,
        &[("user_code", user_code), ("decision", "deny")],
    )
    .await;
    assert_device_error(&device_poll(&s, code_of(&b)).await, "access_denied");
    let unknown = s
        .execute(
            s.http
                .get(s.url("/oauth/v1/device/verify?user_code=ZZZZ-ZZZZ")),
        )
        .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn device_authorization_variant_2_is_json_without_basic() {
    let s = Sbx::start().await;
    let r = json_post(
        &s,
        DEVICE_V2,
        &json!({"client_id": APP_ID, "scope": CONTACT_BASE}),
    )
    .await;
    assert_eq!(
        (r.status, r.json["code"].as_i64()),
        (200, Some(0)),
        "{}",
        r.text
    );
    let code = code_of(&r.json).to_string();
    let poll = |n: &'static str| {
        let s = &s;
        let code = code.clone();
        async move {
            let _ = n;
            json_post(
                s,
                TOKEN,
                &json!({"grant_type": DEVICE_GRANT, "device_code": code,
                        "client_id": APP_ID, "client_secret": APP_SECRET}),
            )
            .await
        }
    };
    assert_device_error(&poll("1").await, "authorization_pending");
    // No offline_access asked for: no refresh token.
    assert_tokens(&poll("2").await, false);

    s.state().set_options(Options {
        user_device_authorization_v2: false,
        ..Options::default()
    });
    let off = json_post(&s, DEVICE_V2, &json!({"client_id": APP_ID})).await;
    assert_eq!(
        (off.status, off.json["code"].as_i64()),
        (404, Some(99991201))
    );
}

// ---- authorization code + PKCE ----------------------------------------------------------

async fn authorize(s: &Sbx, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut q = vec![
        ("client_id", APP_ID),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("state", "st-42"),
    ];
    q.extend_from_slice(extra);
    no_redirects()
        .get(s.url(AUTHORIZE))
        .query(&q)
        .send()
        .await
        .expect("authorize answers")
}

fn location_params(r: &reqwest::Response) -> Vec<(String, String)> {
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let q = loc.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
}

async fn pkce_code(s: &Sbx, scope: &str) -> String {
    let challenge = s256_challenge(VERIFIER);
    let r = authorize(
        s,
        &[
            ("scope", scope),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(r.status(), 302);
    let p = location_params(&r);
    assert_eq!(param(&p, "state"), Some("st-42"));
    param(&p, "code").expect("code").to_string()
}

async fn exchange(s: &Sbx, code: &str, verifier: &str) -> Resp {
    json_post(
        s,
        TOKEN,
        &json!({"grant_type": "authorization_code", "client_id": APP_ID,
                "client_secret": APP_SECRET, "code": code, "redirect_uri": REDIRECT,
                "code_verifier": verifier}),
    )
    .await
}

#[tokio::test]
async fn pkce_code_exchanges_only_with_the_right_verifier_and_once() {
    let s = Sbx::start().await;
    let code = pkce_code(&s, &format!("{CONTACT_BASE} offline_access")).await;
    let wrong = exchange(&s, &code, &"x".repeat(43)).await;
    assert_token_error(&wrong, 400, 20049);
    let malformed = exchange(&s, &code, "short").await;
    assert_token_error(&malformed, 400, 20049);
    let ok = exchange(&s, &code, VERIFIER).await;
    assert_tokens(&ok, true);
    assert_token_error(&exchange(&s, &code, VERIFIER).await, 400, 20065);
    assert_token_error(&exchange(&s, "nope", VERIFIER).await, 400, 20003);
    assert_eq!(
        s.get(&access(&ok), USER_INFO, &[]).await.ok()["open_id"],
        MANAGER
    );

    // redirect_uri must match the authorize request's.
    let code = pkce_code(&s, CONTACT_BASE).await;
    let r = json_post(
        &s,
        TOKEN,
        &json!({"grant_type": "authorization_code", "client_id": APP_ID,
                "client_secret": APP_SECRET, "code": code,
                "redirect_uri": "http://127.0.0.1:9/other", "code_verifier": VERIFIER}),
    )
    .await;
    assert_token_error(&r, 400, 20071);
}

#[tokio::test]
async fn authorize_redirects_to_a_loopback_listener_without_clicks() {
    let s = Sbx::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let redirect = format!("http://{}/callback", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |axum::extract::RawQuery(q): axum::extract::RawQuery| {
            let tx = tx.clone();
            async move {
                if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                    let _ = tx.send(q.unwrap_or_default());
                }
                "success, you can close this page now"
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let challenge = s256_challenge(VERIFIER);
    let page = s
        .http
        .get(s.url(AUTHORIZE))
        .query(&[
            ("client_id", APP_ID),
            ("redirect_uri", redirect.as_str()),
            ("scope", CONTACT_BASE),
            ("state", "abc"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("browser follows the redirect");
    assert_eq!(page.status(), 200);
    let q = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("callback within 5 s")
        .expect("query");
    let p: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(param(&p, "state"), Some("abc"));
    let code = param(&p, "code").expect("code");
    let r = form_post(
        &s,
        TOKEN,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
            ("code", code),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_tokens(&r, false);
}

#[tokio::test]
async fn authorize_deny_and_consent_page() {
    let s = Sbx::with_options(Options {
        user_authorize_outcome: UserAuthorizeOutcome::Deny,
        ..Options::default()
    })
    .await;
    let r = authorize(&s, &[("scope", CONTACT_BASE)]).await;
    assert_eq!(r.status(), 302);
    let p = location_params(&r);
    assert_eq!(param(&p, "error"), Some("access_denied"));
    assert_eq!(param(&p, "state"), Some("st-42"));
    assert_eq!(param(&p, "code"), None);

    s.state().set_options(Options {
        user_authorize_outcome: UserAuthorizeOutcome::Page,
        ..Options::default()
    });
    let r = authorize(&s, &[("scope", &format!("{CONTACT_BASE} offline_access"))]).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap_or_default();
    assert!(
        html.contains(CONTACT_BASE) && html.contains(">Approve<"),
        "{html}"
    );
    // The click posts the original query back.
    let query = encode(&[
        ("client_id", APP_ID),
        ("redirect_uri", REDIRECT),
        ("scope", CONTACT_BASE),
        ("state", "st-42"),
    ]);
    let click = no_redirects()
        .post(s.url(AUTHORIZE))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("query", &query), ("decision", "approve")]))
        .send()
        .await
        .expect("click");
    assert_eq!(click.status(), 302);
    let p = location_params(&click);
    assert!(param(&p, "code").is_some());

    // Bad requests: an unknown app gets an error page, a bad challenge method a redirect.
    let r = no_redirects()
        .get(s.url(AUTHORIZE))
        .query(&[("client_id", "cli_nope"), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 400);
    let r = authorize(
        &s,
        &[
            ("code_challenge", "abc"),
            ("code_challenge_method", "plain"),
        ],
    )
    .await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        param(&location_params(&r), "error"),
        Some("invalid_request")
    );
}

// ---- refresh ----------------------------------------------------------------------------

async fn refresh(s: &Sbx, token: &str) -> Resp {
    form_post(
        s,
        TOKEN,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
            ("refresh_token", token),
        ],
    )
    .await
}

#[tokio::test]
async fn refresh_rotates_and_the_old_refresh_token_then_fails() {
    let s = Sbx::start().await;
    let first = device_tokens(&s, &format!("{CONTACT_BASE} offline_access")).await;
    assert_tokens(&first, true);
    let second = refresh(&s, &refresh_of(&first)).await;
    assert_tokens(&second, true);
    assert_ne!(refresh_of(&first), refresh_of(&second));
    assert_ne!(access(&first), access(&second));
    assert_eq!(s.state().refreshes(), 1);
    assert_eq!(s.state().user_tokens_issued(), 2);
    // Single use: the old refresh token is spent…
    assert_token_error(&refresh(&s, &refresh_of(&first)).await, 400, 20073);
    // …while the old access token keeps working until it expires.
    s.get(&access(&first), USER_INFO, &[]).await.ok();
    let third = refresh(&s, &refresh_of(&second)).await;
    assert_tokens(&third, true);
    assert_token_error(&refresh(&s, "ur-nope").await, 400, 20026);

    // Narrowing the scope without offline_access: no new refresh token.
    let narrowed = form_post(
        &s,
        TOKEN,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
            ("refresh_token", &refresh_of(&third)),
            ("scope", CONTACT_BASE),
        ],
    )
    .await;
    assert_tokens(&narrowed, false);
    assert_eq!(narrowed.json["scope"], CONTACT_BASE);
}

#[tokio::test]
async fn refresh_reuse_within_the_grace_window_is_tolerated_when_configured() {
    let s = Sbx::with_options(Options {
        user_refresh_reuse_grace_secs: 30,
        ..Options::default()
    })
    .await;
    let first = device_tokens(&s, "offline_access").await;
    assert_tokens(&refresh(&s, &refresh_of(&first)).await, true);
    assert_tokens(&refresh(&s, &refresh_of(&first)).await, true);
    assert_eq!(s.state().refreshes(), 2);
}

#[tokio::test]
async fn revoked_refresh_token_fails_with_20064() {
    let s = Sbx::start().await;
    let t = device_tokens(&s, &format!("{CONTACT_BASE} offline_access")).await;
    assert_eq!(s.state().revoke_user_refresh_tokens(Some(ZHANG_WEI)), 0);
    assert_eq!(s.state().revoke_user_refresh_tokens(Some(MANAGER)), 1);
    assert_token_error(&refresh(&s, &refresh_of(&t)).await, 400, 20064);

    // The same through the control path.
    let t = device_tokens(&s, "offline_access").await;
    let r = s
        .execute(
            s.http
                .post(s.url("/_sandbox/user_auth/revoke"))
                .body(json!({"open_id": MANAGER}).to_string()),
        )
        .await;
    assert_eq!(r.json["revoked"], 1, "{}", r.text);
    assert_token_error(&refresh(&s, &refresh_of(&t)).await, 400, 20064);
    let summary = s.execute(s.http.get(s.url("/_sandbox/user_auth"))).await;
    assert_eq!(summary.json["tokens_issued"], 2, "{}", summary.text);
    assert!(
        !summary.text.contains(&access(&t)),
        "no token in inspection"
    );
}

#[tokio::test]
async fn refresh_token_expires_with_20037() {
    let s = Sbx::with_options(Options {
        user_refresh_ttl_secs: 1,
        ..Options::default()
    })
    .await;
    let t = device_tokens(&s, "offline_access").await;
    assert_eq!(t.json["refresh_token_expires_in"], 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_token_error(&refresh(&s, &refresh_of(&t)).await, 400, 20037);
}

// ---- token endpoint validation ----------------------------------------------------------

#[tokio::test]
async fn token_endpoint_client_and_grant_errors() {
    let s = Sbx::start().await;
    let post = |fields: Vec<(&'static str, &'static str)>, auth: Option<String>| {
        let s = &s;
        async move { form_post(s, TOKEN, auth.as_deref(), &fields).await }
    };
    let r = post(
        vec![("client_id", APP_ID), ("client_secret", APP_SECRET)],
        None,
    )
    .await;
    assert_token_error(&r, 400, 20001);
    let r = post(
        vec![
            ("grant_type", "password"),
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
        ],
        None,
    )
    .await;
    assert_token_error(&r, 400, 20036);
    let r = post(
        vec![
            ("grant_type", "refresh_token"),
            ("client_id", APP_ID),
            ("client_secret", "wrong"),
            ("refresh_token", "ur-x"),
        ],
        None,
    )
    .await;
    assert_token_error(&r, 400, 20002);
    let r = post(
        vec![
            ("grant_type", "refresh_token"),
            ("client_id", "cli_nope"),
            ("client_secret", "x"),
            ("refresh_token", "ur-x"),
        ],
        None,
    )
    .await;
    assert_token_error(&r, 400, 20048);
    let r = post(
        vec![
            ("grant_type", "refresh_token"),
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
            ("refresh_token", "ur-x"),
        ],
        Some(basic(APP_ID, APP_SECRET)),
    )
    .await;
    assert_token_error(&r, 400, 20070);
    let bad_json = s
        .execute(
            s.http
                .post(s.url(TOKEN))
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_token_error(&bad_json, 400, 20063);

    // Scope narrowing: duplicates 20067, not granted 20068.
    let code = pkce_code(&s, CONTACT_BASE).await;
    let narrow = |scope: &'static str, code: String| {
        let s = &s;
        async move {
            json_post(
                s,
                TOKEN,
                &json!({"grant_type": "authorization_code", "client_id": APP_ID,
                        "client_secret": APP_SECRET, "code": code,
                        "code_verifier": VERIFIER, "scope": scope}),
            )
            .await
        }
    };
    assert_token_error(
        &narrow(
            "contact:contact.base:readonly contact:contact.base:readonly",
            code.clone(),
        )
        .await,
        400,
        20067,
    );
    assert_token_error(&narrow("im:chat", code.clone()).await, 400, 20068);
    assert_tokens(&narrow(CONTACT_BASE, code).await, false);
}

#[tokio::test]
async fn the_request_log_keeps_no_credentials() {
    let s = Sbx::start().await;
    let t = device_tokens(&s, "offline_access").await;
    let r = refresh(&s, &refresh_of(&t)).await;
    let log = serde_json::to_string(&s.state().requests()).unwrap_or_default();
    for secret in [APP_SECRET, &refresh_of(&t), &refresh_of(&r), &access(&r)] {
        assert!(!log.contains(secret), "the log leaks a credential: {log}");
    }
    assert!(log.contains("oauth_token_v2") && log.contains("<redacted>"));
}

// ---- user tokens on /open-apis ----------------------------------------------------------

#[tokio::test]
async fn expired_user_token_answers_99991677() {
    let s = Sbx::with_options(Options {
        user_token_ttl_secs: 1,
        ..Options::default()
    })
    .await;
    let t = device_tokens(&s, CONTACT_BASE).await;
    assert_eq!(t.json["expires_in"], 1);
    s.get(&access(&t), USER_INFO, &[]).await.ok();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.get(&access(&t), USER_INFO, &[]).await.err(400, 99991677);
    // An unknown user token is 99991668; a revoked one too.
    s.get("u-nope", USER_INFO, &[]).await.err(400, 99991668);
}

#[tokio::test]
async fn token_types_and_user_scope_checks() {
    let s = Sbx::start().await;
    let user_path = format!("/open-apis/contact/v3/users/{ZHANG_WEI}");
    // Granted contact:contact.base:readonly: get_user (tenant,user) works.
    let with = device_tokens(&s, CONTACT_BASE).await;
    let u = s.get(&access(&with), &user_path, &[]).await;
    assert_eq!(u.ok()["user"]["open_id"], ZHANG_WEI);
    // Not granted by the user: 99991679 with action_privilege_required.
    let without = device_tokens(&s, "im:chat").await;
    let e = s.get(&access(&without), &user_path, &[]).await;
    let err = e.err(400, 99991679);
    assert_eq!(
        err["permission_violations"][0]["type"],
        "action_privilege_required"
    );
    let msg = e.json["msg"].as_str().unwrap_or("");
    assert!(
        msg.contains("required one of these privileges: [contact:contact.base:readonly"),
        "{msg}"
    );
    // The user token sees im:chat endpoints…
    s.get(&access(&without), "/open-apis/im/v1/chats", &[])
        .await
        .ok();
    // …until the app loses the scope for user identity: 99991672, not 99991679.
    s.state().set_scopes(
        &[],
        &[
            "im:chat".into(),
            "im:chat:readonly".into(),
            "im:chat:read".into(),
        ],
    );
    let e = s
        .get(&access(&without), "/open-apis/im/v1/chats", &[])
        .await;
    assert_eq!(
        e.err(400, 99991672)["permission_violations"][0]["type"],
        "action_scope_required"
    );
    // A user token on a tenant-only API; a tenant token on a user-only API.
    let e = s
        .get(&access(&with), "/open-apis/contact/v3/scopes", &[])
        .await;
    e.err(400, 99991668);
    assert_eq!(e.json["msg"], "user access token not support");
    let tenant = s.token().await;
    s.get(&tenant, USER_INFO, &[]).await.err(400, 99991663);
    // Scopes the app has not enabled for user identity are trimmed from the grant.
    let trimmed = device_tokens(&s, "contact:user.id:readonly offline_access").await;
    assert_eq!(trimmed.json["scope"], "offline_access");
}

#[tokio::test]
async fn user_open_id_option_names_the_approving_user() {
    let s = Sbx::with_options(Options {
        user_open_id: Some(ZHANG_WEI.into()),
        ..Options::default()
    })
    .await;
    let t = device_tokens(&s, CONTACT_BASE).await;
    let me = s.get(&access(&t), USER_INFO, &[]).await;
    assert_eq!(me.ok()["open_id"], ZHANG_WEI);
    assert_eq!(me.ok()["email"], common::ZHANG_WEI_EMAIL);
    // An inactive user cannot get a token: 20066.
    s.state().set_options(Options {
        user_open_id: Some(common::MA_CHAO.into()),
        ..Options::default()
    });
    let r = device_tokens(&s, CONTACT_BASE).await;
    assert_token_error(&r, 400, 20066);
    // An unknown user: 20008.
    s.state().set_options(Options {
        user_open_id: Some("ou_nobody".into()),
        ..Options::default()
    });
    assert_token_error(&device_tokens(&s, CONTACT_BASE).await, 400, 20008);
}

#[tokio::test]
async fn revoked_user_access_tokens_answer_99991668() {
    let s = Sbx::start().await;
    let t = device_tokens(&s, CONTACT_BASE).await;
    s.get(&access(&t), USER_INFO, &[]).await.ok();
    // The request log names the token by its issue number only.
    let seq = s
        .state()
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.endpoint == "get_user_info_me")
        .and_then(|r| r.token_seq)
        .expect("token_seq");
    assert_eq!(s.state().revoke_tokens(Some(seq)), 1);
    s.get(&access(&t), USER_INFO, &[]).await.err(400, 99991668);
}

// ---- what a user sees -------------------------------------------------------------------

#[tokio::test]
async fn a_user_token_lists_and_opens_the_users_chats_not_the_bots() {
    let s = Sbx::start().await;
    let t = device_tokens(&s, "im:chat").await;
    let user = access(&t);
    let listed = s.get(&user, "/open-apis/im/v1/chats", &[]).await;
    let ids: Vec<&str> = listed.ok()["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["chat_id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        ids.len(),
        3,
        "the manager is in All Hands, Sales Wins, HR: {}",
        listed.text
    );
    assert!(
        ids.contains(&common::HR_PRIVATE_CHAT),
        "the bot is not in it"
    );
    assert!(
        !ids.contains(&"oc_05c408dcf199665ae65851dd6b0f4cf4"),
        "R&D Weekly"
    );
    // The bot's view is its own.
    let tenant = s.token().await;
    let bot = s.get(&tenant, "/open-apis/im/v1/chats", &[]).await;
    assert!(!bot.text.contains(common::HR_PRIVATE_CHAT));
    // Opening a private chat follows the same membership.
    let path = format!("/open-apis/im/v1/chats/{}", common::HR_PRIVATE_CHAT);
    s.get(&user, &path, &[]).await.ok();
    s.get(&tenant, &path, &[]).await.err(400, 232011);
    let rnd = "/open-apis/im/v1/chats/oc_05c408dcf199665ae65851dd6b0f4cf4";
    s.get(&user, rnd, &[]).await.err(400, 232011);
    let in_chat = format!(
        "/open-apis/im/v1/chats/{}/members/is_in_chat",
        common::HR_PRIVATE_CHAT
    );
    assert_eq!(s.get(&user, &in_chat, &[]).await.ok()["is_in_chat"], true);
}

#[tokio::test]
async fn user_search_needs_a_user_token_and_the_search_scope() {
    let s = Sbx::start().await;
    let path = "/open-apis/search/v1/user";
    // With contact:user:search not enabled for the app (the demo seed enables it): 99991672.
    s.state().set_scopes(&[], &["contact:user:search".into()]);
    let t = device_tokens(&s, CONTACT_BASE).await;
    s.get(&access(&t), path, &[("query", "zhang")])
        .await
        .err(400, 99991672);
    s.state().set_scopes(&["contact:user:search".into()], &[]);
    // Enabled, but this token was not granted it: 99991679.
    s.get(&access(&t), path, &[("query", "zhang")])
        .await
        .err(400, 99991679);
    let t = device_tokens(&s, "contact:user:search").await;
    let r = s.get(&access(&t), path, &[("query", "Zhang Wei")]).await;
    let users = r.ok()["users"].as_array().cloned().unwrap_or_default();
    assert!(
        users.iter().any(|u| u["open_id"] == ZHANG_WEI),
        "{}",
        r.text
    );
    for k in ["name", "open_id", "user_id", "department_ids", "avatar"] {
        assert!(!users[0][k].is_null(), "{k}: {}", r.text);
    }
    // Resigned users are never found.
    let r = s.get(&access(&t), path, &[("query", "ma.chao")]).await;
    assert_eq!(r.ok()["users"], json!([]), "{}", r.text);
    // query is required; page_size 1..=200.
    assert_eq!(
        s.get(&access(&t), path, &[]).await.violated_field(),
        "query"
    );
    let big = s
        .get(&access(&t), path, &[("query", "a"), ("page_size", "201")])
        .await;
    assert_eq!(big.violated_field(), "page_size");
    // A tenant token is refused.
    let tenant = s.token().await;
    s.get(&tenant, path, &[("query", "zhang")])
        .await
        .err(400, 99991663);
}

#[tokio::test]
async fn a_user_token_sends_as_the_user_with_send_as_user() {
    let s = Sbx::start().await;
    let hr = common::HR_PRIVATE_CHAT;
    let msgs = "/open-apis/im/v1/messages";
    let q = [("receive_id_type", "chat_id")];
    let body = Sbx::text_body(hr, "hello from the user");
    // Without im:message.send_as_user enabled for the app: 99991672.
    s.state()
        .set_scopes(&[], &["im:message.send_as_user".into()]);
    let t = device_tokens(&s, "im:message").await;
    s.post(&access(&t), msgs, &q, &body)
        .await
        .err(400, 99991672);
    s.state()
        .set_scopes(&["im:message.send_as_user".into()], &[]);
    // Enabled, but the user granted only im:message: 99991679.
    s.post(&access(&t), msgs, &q, &body)
        .await
        .err(400, 99991679);
    let t = device_tokens(&s, "im:message im:message.send_as_user").await;
    let user = access(&t);
    // The user is in the HR chat, the bot is not.
    let sent = s.post(&user, msgs, &q, &body).await;
    let m = sent.ok().clone();
    assert_eq!(m["sender"]["sender_type"], "user", "{}", sent.text);
    assert_eq!(m["sender"]["id"], MANAGER);
    let listed = s
        .get(
            &user,
            msgs,
            &[("container_id_type", "chat"), ("container_id", hr)],
        )
        .await;
    assert!(listed.ok().to_string().contains("hello from the user"));
    let tenant = s.token().await;
    s.get(
        &tenant,
        msgs,
        &[("container_id_type", "chat"), ("container_id", hr)],
    )
    .await
    .err(400, 230002);
    // Not a member: refused.
    let rnd = Sbx::text_body("oc_05c408dcf199665ae65851dd6b0f4cf4", "x");
    s.post(&user, msgs, &q, &rnd).await.err(400, 230002);
    // To a user: the p2p chat between the two users, reused.
    let to = [("receive_id_type", "open_id")];
    let a = s
        .post(&user, msgs, &to, &Sbx::text_body(ZHANG_WEI, "hi"))
        .await;
    let b = s
        .post(&user, msgs, &to, &Sbx::text_body(ZHANG_WEI, "again"))
        .await;
    assert_eq!(a.ok()["chat_id"], b.ok()["chat_id"]);
    let p2p = s
        .state()
        .chats()
        .into_iter()
        .find(|c| Some(c.chat_id.as_str()) == a.ok()["chat_id"].as_str())
        .expect("p2p chat");
    assert!(!p2p.bot_member && p2p.members.len() == 2);
    // The user may recall their own message; the bot may not edit it.
    let id = m["message_id"].as_str().unwrap_or("");
    let edit = json!({"msg_type": "text", "content": json!({"text": "edited"}).to_string()});
    s.put(&tenant, &format!("{msgs}/{id}"), &edit)
        .await
        .err(400, 230002);
    s.delete(&user, &format!("{msgs}/{id}"), &[]).await.ok();
}

#[tokio::test]
async fn token_endpoint_faults_20050_and_a_lost_rotation() {
    use lark_mcp_server::sandbox::{FaultAction, FaultRule, Phase};
    let s = Sbx::start().await;
    let t = device_tokens(&s, "offline_access").await;
    let rule = |action: FaultAction| -> FaultRule {
        serde_json::from_value(json!({"path": TOKEN, "times": 1, "action": action}))
            .expect("fault rule")
    };
    // 20050 once (HTTP 500, error server_error): the documented retry then succeeds.
    s.state().add_fault(rule(FaultAction::LarkError {
        code: 20050,
        msg: "An unexpected server error occurred. Please retry your request.".into(),
        status: 500,
    }));
    let failed = refresh(&s, &refresh_of(&t)).await;
    assert_token_error(&failed, 500, 20050);
    assert_eq!(failed.json["error"], "server_error");
    assert!(failed.header("x-tt-logid").is_some());
    let second = refresh(&s, &refresh_of(&t)).await;
    assert_tokens(&second, true);
    // The connection drops after the rotation was applied: the client never sees the new
    // refresh token and the one it holds is spent.
    s.state().add_fault(rule(FaultAction::Drop {
        phase: Phase::After,
    }));
    let lost = s
        .try_execute(
            s.http
                .post(s.url(TOKEN))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(encode(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", APP_ID),
                    ("client_secret", APP_SECRET),
                    ("refresh_token", &refresh_of(&second)),
                ])),
        )
        .await;
    assert!(lost.is_err(), "the connection is cut");
    assert_eq!(s.state().refreshes(), 2);
    assert_token_error(&refresh(&s, &refresh_of(&second)).await, 400, 20073);
}

// ---- message search (POST /open-apis/search/v2/message) ---------------------------------

const SEARCH_MESSAGES: &str = "/open-apis/search/v2/message";
const SALES_WINS_CHAT: &str = "oc_c3258bce616c578039268f5552f5cc64";
/// R&D Weekly: the approving manager is not a member.
const RND_WEEKLY_CHAT: &str = "oc_05c408dcf199665ae65851dd6b0f4cf4";
const SEARCH_P2P_CHAT: &str = "oc_5ea4c1f0d2b3a4958677a8b9c0d1e2f3";
/// 林晓雯, in All Hands.
const LIN_XIAOWEN: &str = "ou_3aae29888a3b17ff80b7bb423fa914e6";
/// 朱丽, in HR private.
const ZHU_LI: &str = "ou_fbff9ad2cc7e0b38887c2a58bd4e1706";

// The "zebra" messages of `search_seed`, newest first: what the manager finds.
const Z_P2P: &str = "om_zebra_p2p";
const Z_CARD: &str = "om_zebra_card";
const Z_FILE: &str = "om_zebra_file";
const Z_MEDIA: &str = "om_zebra_media";
const Z_POST: &str = "om_zebra_post";
const Z_TEXT: &str = "om_zebra_text";
const Z_OLD: &str = "om_zebra_old";
const ZEBRAS: [&str; 7] = [Z_P2P, Z_CARD, Z_FILE, Z_MEDIA, Z_POST, Z_TEXT, Z_OLD];

/// The default org plus a p2p chat of the manager and Zhang Wei and messages that all
/// contain "zebra" somewhere a reader sees it, in every kind of chat and content, plus two
/// the manager must never find: one in a chat they are not in, one whose only "zebra" is
/// in an image key.
fn search_seed() -> lark_mcp_server::sandbox::Seed {
    let mut seed = common::seed();
    seed.chats.push(
        serde_json::from_value(json!({
            "chat_id": SEARCH_P2P_CHAT, "name": "", "owner": MANAGER, "chat_type": "p2p",
            "chat_mode": "p2p", "bot_member": false, "members": [MANAGER, ZHANG_WEI],
        }))
        .expect("chat seed"),
    );
    let all_hands = common::ALL_HANDS_CHAT;
    let hr = common::HR_PRIVATE_CHAT;
    let messages = [
        json!({"message_id": Z_OLD, "chat_id": all_hands, "sender": MANAGER, "msg_type": "text",
               "content": {"text": "old zebra notes"}, "sent_ago_secs": 90_000}),
        json!({"message_id": Z_TEXT, "chat_id": all_hands, "sender": ZHANG_WEI,
               "msg_type": "text", "content": {"text": "@_user_1 ZEBRA stripes in the lobby"},
               "sent_ago_secs": 500, "mentions": [LIN_XIAOWEN]}),
        json!({"message_id": Z_POST, "chat_id": SALES_WINS_CHAT, "sender": MANAGER,
               "msg_type": "post", "sent_ago_secs": 400,
               "content": {"title": "Zebra quarterly", "content": [[{"tag": "text", "text": "numbers"}]]}}),
        json!({"message_id": Z_MEDIA, "chat_id": SALES_WINS_CHAT, "sender": MANAGER,
               "msg_type": "media", "sent_ago_secs": 350,
               "content": {"file_key": "file_v3_m1", "image_key": "img_v3_m1", "file_name": "zebra-demo.mp4"}}),
        json!({"message_id": Z_FILE, "chat_id": hr, "sender": ZHU_LI, "msg_type": "file",
               "content": {"file_key": "file_v3_z1", "file_name": "Zebra-Plan.pdf"},
               "sent_ago_secs": 300}),
        json!({"message_id": Z_CARD, "chat_id": all_hands, "sender": "bot",
               "msg_type": "interactive", "sent_ago_secs": 200,
               "content": {"header": {"title": {"tag": "plain_text", "content": "Zebra alert"}},
                           "elements": []}}),
        json!({"message_id": Z_P2P, "chat_id": SEARCH_P2P_CHAT, "sender": ZHANG_WEI,
               "msg_type": "text", "content": {"text": "a zebra, just for you"},
               "sent_ago_secs": 100}),
        json!({"message_id": "om_zebra_hidden", "chat_id": RND_WEEKLY_CHAT,
               "sender": ZHANG_WEI, "msg_type": "text",
               "content": {"text": "zebra in a chat the manager is not in"}, "sent_ago_secs": 50}),
        json!({"message_id": "om_zebra_key_only", "chat_id": all_hands, "sender": MANAGER,
               "msg_type": "image", "content": {"image_key": "img_v3_zebra"},
               "sent_ago_secs": 40}),
    ];
    for m in messages {
        seed.messages
            .push(serde_json::from_value(m).expect("message seed"));
    }
    seed
}

/// The sandbox with `search_seed` and a manager's token granted `search:message`.
async fn searching() -> (Sbx, String) {
    let s = Sbx::with_seed(search_seed()).await;
    let t = device_tokens(&s, "search:message").await;
    assert_tokens(&t, false);
    let user = access(&t);
    (s, user)
}

async fn search(s: &Sbx, token: &str, query: &[(&str, &str)], body: Value) -> Resp {
    s.post(token, SEARCH_MESSAGES, query, &body).await
}

/// The ids of one successful page.
#[track_caller]
fn found(r: &Resp) -> Vec<String> {
    let items = r.ok()["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {}", r.text));
    items
        .iter()
        .map(|i| {
            i.as_str()
                .unwrap_or_else(|| panic!("an item is not an id string: {}", r.text))
                .to_string()
        })
        .collect()
}

/// The ids a search finds with this body (one page of at most 50).
async fn ids(s: &Sbx, token: &str, body: Value) -> Vec<String> {
    let r = search(s, token, &[("page_size", "50")], body).await;
    assert_eq!(r.ok()["has_more"], false, "{}", r.text);
    found(&r)
}

#[tokio::test]
async fn message_search_finds_the_users_messages_newest_first() {
    let (s, user) = searching().await;
    // Case-insensitive, in text, post titles, card headers and file names; not in the
    // chat the manager is not in, nor in an image key.
    let all = ids(&s, &user, json!({"query": "ZeBrA"})).await;
    assert_eq!(all, ZEBRAS, "newest first");
    assert_eq!(ids(&s, &user, json!({"query": "stripes"})).await, [Z_TEXT]);
    assert_eq!(ids(&s, &user, json!({"query": "plan.pdf"})).await, [Z_FILE]);
    // A seeded message of the manager's chats; none of R&D Weekly's.
    assert_eq!(
        ids(&s, &user, json!({"query": "all-hands moves to 4 pm"})).await,
        ["om_ded06bdb54b4f2f697228ecc757e2886"]
    );
    assert!(
        ids(&s, &user, json!({"query": "R&D Weekly #32"}))
            .await
            .is_empty()
    );
    assert!(ids(&s, &user, json!({"query": "img_v3"})).await.is_empty());
    // Someone else sees their own chats: Zhang Wei finds the R&D Weekly one, not HR's.
    s.state().set_options(Options {
        user_open_id: Some(ZHANG_WEI.into()),
        ..Options::default()
    });
    let zhang = access(&device_tokens(&s, "search:message").await);
    let theirs = ids(&s, &zhang, json!({"query": "zebra"})).await;
    assert!(theirs.iter().any(|i| i == "om_zebra_hidden"), "{theirs:?}");
    assert!(!theirs.iter().any(|i| i == Z_FILE), "{theirs:?}");
}

#[tokio::test]
async fn message_search_filters() {
    let (s, user) = searching().await;
    let q = |extra: Value| {
        let mut body = json!({"query": "zebra"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    };
    let hands = common::ALL_HANDS_CHAT;
    assert_eq!(
        ids(&s, &user, q(json!({"chat_ids": [hands]}))).await,
        [Z_CARD, Z_TEXT, Z_OLD]
    );
    assert_eq!(
        ids(&s, &user, q(json!({"chat_ids": [hands, SEARCH_P2P_CHAT]}))).await,
        [Z_P2P, Z_CARD, Z_TEXT, Z_OLD]
    );
    assert!(
        ids(&s, &user, q(json!({"chat_ids": [RND_WEEKLY_CHAT]})))
            .await
            .is_empty(),
        "a chat the user is not in"
    );
    // Senders in the user_id_type asked for.
    assert_eq!(
        ids(&s, &user, q(json!({"from_ids": [ZHANG_WEI]}))).await,
        [Z_P2P, Z_TEXT]
    );
    let by_user_id = search(
        &s,
        &user,
        &[("user_id_type", "user_id")],
        q(json!({"from_ids": [common::ZHANG_WEI_USER_ID]})),
    )
    .await;
    assert_eq!(found(&by_user_id), [Z_P2P, Z_TEXT]);
    assert_eq!(
        ids(&s, &user, q(json!({"from_ids": ["ou_nobody"]}))).await,
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&s, &user, q(json!({"message_type": "file"}))).await,
        [Z_FILE]
    );
    assert_eq!(
        ids(&s, &user, q(json!({"message_type": "media"}))).await,
        [Z_MEDIA]
    );
    assert_eq!(
        ids(&s, &user, q(json!({"at_chatter_ids": [LIN_XIAOWEN]}))).await,
        [Z_TEXT]
    );
    assert_eq!(
        ids(&s, &user, q(json!({"from_type": "bot"}))).await,
        [Z_CARD]
    );
    assert_eq!(
        ids(&s, &user, q(json!({"from_type": "user"}))).await,
        [Z_P2P, Z_FILE, Z_MEDIA, Z_POST, Z_TEXT, Z_OLD]
    );
    assert_eq!(
        ids(&s, &user, q(json!({"chat_type": "p2p_chat"}))).await,
        [Z_P2P]
    );
    assert_eq!(
        ids(&s, &user, q(json!({"chat_type": "group_chat"}))).await,
        [Z_CARD, Z_FILE, Z_MEDIA, Z_POST, Z_TEXT, Z_OLD]
    );
    // Filters combine.
    assert_eq!(
        ids(
            &s,
            &user,
            q(json!({"chat_type": "group_chat", "from_ids": [ZHANG_WEI]}))
        )
        .await,
        [Z_TEXT]
    );
    // The time window is in seconds and inclusive at both ends.
    let secs = |id: &str| {
        s.state()
            .messages(None)
            .into_iter()
            .find(|m| m.message_id == id)
            .map(|m| (m.create_time_ms / 1000).to_string())
            .expect("seeded message")
    };
    let (file, text) = (secs(Z_FILE), secs(Z_TEXT));
    assert_eq!(
        ids(&s, &user, q(json!({"start_time": text, "end_time": file}))).await,
        [Z_FILE, Z_MEDIA, Z_POST, Z_TEXT]
    );
    assert_eq!(
        ids(&s, &user, q(json!({"start_time": file, "end_time": file}))).await,
        [Z_FILE]
    );
    assert_eq!(
        ids(&s, &user, q(json!({"start_time": file}))).await,
        [Z_P2P, Z_CARD, Z_FILE]
    );
    // Invalid values are validation errors naming the field.
    for (field, bad) in [
        ("message_type", json!("video")),
        ("from_type", json!("app")),
        ("chat_type", json!("group")),
        ("start_time", json!("yesterday")),
        ("end_time", json!("-1")),
    ] {
        let r = search(&s, &user, &[], q(json!({ field: bad }))).await;
        assert_eq!(r.violated_field(), field, "{}", r.text);
    }
    let r = search(&s, &user, &[("user_id_type", "email")], q(json!({}))).await;
    assert_eq!(r.violated_field(), "user_id_type");
}

#[tokio::test]
async fn message_search_pages_without_duplicates() {
    let (s, user) = searching().await;
    let body = json!({"query": "zebra"});
    let mut seen: Vec<String> = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![("page_size", "3".to_string())];
        if let Some(t) = &token {
            q.push(("page_token", t.clone()));
        }
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = search(&s, &user, &q, body.clone()).await;
        let page = found(&r);
        pages += 1;
        assert!(page.len() <= 3, "{}", r.text);
        seen.extend(page);
        if r.ok()["has_more"] == true {
            token = r.ok()["page_token"].as_str().map(str::to_string);
            assert!(token.is_some(), "has_more without a page_token: {}", r.text);
        } else {
            break;
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ZEBRAS, "every match once, in order");
    // The default page is 20, the largest 50.
    let r = search(&s, &user, &[], json!({"query": "a"})).await;
    assert_eq!(found(&r).len(), 20, "{}", r.text);
    assert_eq!(r.ok()["has_more"], true);
    let r = search(&s, &user, &[("page_size", "51")], body.clone()).await;
    assert_eq!(r.violated_field(), "page_size");
    // A page token belongs to its search.
    let first = search(&s, &user, &[("page_size", "3")], body).await;
    let t = first.ok()["page_token"].as_str().unwrap_or("").to_string();
    let other = search(
        &s,
        &user,
        &[("page_size", "3"), ("page_token", &t)],
        json!({"query": "zebra", "from_type": "user"}),
    )
    .await;
    assert_eq!(other.violated_field(), "page_token");
}

#[tokio::test]
async fn message_search_skips_recalled_messages() {
    let (s, user) = searching().await;
    let tenant = s.token().await;
    let sent = s
        .send_text(
            &tenant,
            "chat_id",
            common::ALL_HANDS_CHAT,
            "fresh zebra news",
        )
        .await;
    let id = sent.ok()["message_id"].as_str().unwrap_or("").to_string();
    let hits = ids(&s, &user, json!({"query": "zebra", "from_type": "bot"})).await;
    assert_eq!(hits, [id.as_str(), Z_CARD]);
    s.delete(&tenant, &format!("{}/{id}", common::MESSAGES_PATH), &[])
        .await
        .ok();
    let hits = ids(&s, &user, json!({"query": "zebra", "from_type": "bot"})).await;
    assert_eq!(hits, [Z_CARD]);
}

#[tokio::test]
async fn message_search_needs_a_user_token_the_scope_and_a_query() {
    let (s, user) = searching().await;
    let body = json!({"query": "zebra"});
    // A tenant token on this user-only API: 99991663, as for the other user-only ones.
    let tenant = s.token().await;
    search(&s, &tenant, &[], body.clone())
        .await
        .err(400, 99991663);
    // The user did not grant search:message: 99991679 naming it.
    let without = access(&device_tokens(&s, "im:chat").await);
    let r = search(&s, &without, &[], body.clone()).await;
    let e = r.err(400, 99991679);
    assert_eq!(e["permission_violations"][0]["subject"], "search:message");
    // The app lost it for user identity: 99991672, even for the token that was granted it.
    s.state().set_scopes(&[], &["search:message".into()]);
    let r = search(&s, &user, &[], body).await;
    assert_eq!(
        r.err(400, 99991672)["permission_violations"][0]["subject"],
        "search:message"
    );
    s.state().set_scopes(&["search:message".into()], &[]);
    // query is required and must not be blank.
    for bad in [json!({}), json!({"query": ""}), json!({"query": "   "})] {
        let r = search(&s, &user, &[], bad).await;
        assert_eq!(r.violated_field(), "query", "{}", r.text);
    }
    let r = search(
        &s,
        &user,
        &[],
        json!({"query": "zebra", "chat_ids": "oc_x"}),
    )
    .await;
    assert_eq!(r.violated_field(), "body", "{}", r.text);
}
