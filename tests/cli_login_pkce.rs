//! `login --pkce`: the real binary signs in through the sandbox's authorize page
//! (authorization code + PKCE S256) and its own loopback redirect. The test plays the
//! browser: it opens the printed link without following redirects, then follows the 302 to
//! the login's listener, as a browser would.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{APP_ID, Sbx};
use lark_mcp_server::sandbox::Options;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(30);

fn home(test: &str) -> std::path::PathBuf {
    common::config_home("cli-login-pkce", test)
}

fn command(sbx: &Sbx, home: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = common::login::command(sbx, home, args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A browser that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WAIT)
        .build()
        .expect("a client")
}

/// `login --pkce --no-browser`; the printed link, the lines before it, and the child.
async fn start_login(sbx: &Sbx, home: &std::path::Path) -> (Child, String, Vec<String>) {
    start_login_with(sbx, home, &["login", "--pkce", "--no-browser"]).await
}

async fn start_login_with(
    sbx: &Sbx,
    home: &std::path::Path,
    args: &[&str],
) -> (Child, String, Vec<String>) {
    let mut child = command(sbx, home, args).spawn().expect("login starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    let url = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("Link: ") {
                return url.to_string();
            }
            seen.push(line);
        }
        panic!("no link from login: {seen:?}");
    })
    .await
    .expect("the link");
    // Drain the rest of stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url, seen)
}

/// Opens `url` and gives the 302's Location.
async fn authorize(url: &str) -> String {
    let resp = browser().get(url).send().await.expect("the authorize page");
    assert_eq!(resp.status().as_u16(), 302, "{url}");
    resp.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .expect("a Location")
        .to_string()
}

async fn finish(mut child: Child) -> (i32, String) {
    let mut err = String::new();
    let mut stderr = child.stderr.take().expect("stderr");
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("login ends")
        .expect("wait");
    let _ = stderr.read_to_string(&mut err).await;
    (status.code().unwrap_or(-1), err)
}

fn query(url: &str, key: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn with_query(url: &str, key: &str, value: &str) -> String {
    let mut u = reqwest::Url::parse(url).expect("a URL");
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key {
                value.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

#[tokio::test]
async fn pkce_login_through_the_loopback_then_whoami() {
    let sbx = Sbx::start().await;
    let home = home("approve");
    let (child, url, before) = start_login(&sbx, &home).await;
    assert!(
        url.starts_with(&format!("{}/open-apis/authen/v1/authorize?", sbx.base)),
        "{url}"
    );
    assert_eq!(
        query(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(query(&url, "response_type").as_deref(), Some("code"));
    assert_eq!(query(&url, "client_id").as_deref(), Some(APP_ID));
    assert!(
        query(&url, "scope").is_some_and(|s| s.split(' ').any(|x| x == "offline_access")),
        "{url}"
    );
    let redirect = query(&url, "redirect_uri").expect("a redirect_uri");
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    assert!(redirect.ends_with("/callback"), "{redirect}");
    assert!(
        before.iter().any(|l| l.contains(&redirect)),
        "the redirect URL to register is shown: {before:?}"
    );

    let location = authorize(&url).await;
    assert!(location.starts_with(&redirect), "{location}");
    let code = query(&location, "code").expect("a code");

    // A redirect with another state is refused, and the login keeps waiting.
    let forged = with_query(&location, "state", "not-the-state");
    let r = browser().get(&forged).send().await.expect("the listener");
    assert_eq!(r.status().as_u16(), 400);
    let r = browser()
        .get(format!("{redirect}?code=x"))
        .send()
        .await
        .expect("the listener");
    assert_eq!(r.status().as_u16(), 400, "no state at all is refused too");

    // The real one ends it.
    let page = browser().get(&location).send().await.expect("the listener");
    assert_eq!(page.status().as_u16(), 200);
    let text = page.text().await.unwrap_or_default();
    assert!(text.contains("close this page"), "{text}");
    assert!(!text.contains(&code));
    let (status, err) = finish(child).await;
    assert_eq!(status, 0, "{err}");
    assert!(!err.contains(&code), "the code is never printed: {err}");

    // The sandbox traded the code with a verifier it checked (a wrong one is 20049).
    let requests = sbx.state().requests();
    let grants: Vec<_> = requests
        .iter()
        .filter(|r| r.endpoint == "oauth_token_v2")
        .filter_map(|r| r.body.as_ref().map(|b| (r.status, b.clone())))
        .collect();
    assert!(
        grants.iter().any(|(status, b)| *status == 200
            && b["grant_type"] == json!("authorization_code")
            && b.get("code_verifier").is_some()
            && b["redirect_uri"] == json!(redirect)),
        "{grants:?}"
    );
    assert_eq!(sbx.state().user_auth_summary().tokens_issued, 1);

    let out = command(&sbx, &home, &["whoami"])
        .output()
        .await
        .expect("whoami");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {:?}", out.stderr);
    assert!(stdout.contains("ou_"), "{stdout}");
    assert!(stdout.contains("offline_access"), "{stdout}");
}

#[tokio::test]
async fn a_denial_in_the_browser_ends_the_login_with_exit_1() {
    let options: Options =
        serde_json::from_value(json!({"user_authorize_outcome": "deny"})).expect("options");
    let sbx = Sbx::with_options(options).await;
    let home = home("deny");
    let (child, url, _) = start_login(&sbx, &home).await;
    let location = authorize(&url).await;
    assert_eq!(query(&location, "error").as_deref(), Some("access_denied"));
    let page = browser().get(&location).send().await.expect("the listener");
    assert_eq!(page.status().as_u16(), 200);
    let (status, err) = finish(child).await;
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("denied"), "{err}");
    assert_eq!(sbx.state().user_auth_summary().tokens_issued, 0);

    let out = command(&sbx, &home, &["whoami"])
        .output()
        .await
        .expect("whoami");
    assert!(!out.status.success(), "nothing was stored");
}

#[tokio::test]
async fn a_refused_device_flow_falls_back_to_the_browser_login() {
    let options: Options =
        serde_json::from_value(json!({"user_device_flow_enabled": false})).expect("options");
    let sbx = Sbx::with_options(options).await;
    let home = home("fallback");
    // No --pkce: the device flow is tried first, refused, and the browser login follows.
    let (child, url, seen) = start_login_with(&sbx, &home, &["login", "--no-browser"]).await;
    assert!(
        seen.iter()
            .any(|l| l.contains("not enabled") && l.contains("through the browser")),
        "{seen:?}"
    );
    assert!(url.contains("/open-apis/authen/v1/authorize"), "{url}");
    assert!(query(&url, "code_challenge").is_some(), "{url}");
    let location = authorize(&url).await;
    let page = browser().get(&location).send().await.expect("the listener");
    assert_eq!(page.status().as_u16(), 200);
    let (status, err) = finish(child).await;
    assert_eq!(status, 0, "{err}");
    let out = command(&sbx, &home, &["whoami"])
        .output()
        .await
        .expect("whoami");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
