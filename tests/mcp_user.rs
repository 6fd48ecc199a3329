//! Acting as the user, end to end: `login` (the real binary, device flow at the sandbox),
//! then a server on the same profile offers the user tools (list_changed), refreshes the
//! single-use refresh token exactly once however many calls or processes race across an
//! expiry, and says to run `login` when Lark revokes the login.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::http::BIN;
use common::mcp::McpServer;
use common::{APP_ID, APP_SECRET, Sbx};
use lark_mcp_server::sandbox::Options;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(30);
/// A user token this short-lived is refreshed a second before it expires.
const TTL_SECS: u64 = 4;

fn home(test: &str) -> std::path::PathBuf {
    common::config_home("mcp-user", test)
}

fn env(home: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("XDG_CONFIG_HOME", home.display().to_string()),
        ("HOME", home.display().to_string()),
        ("LARK_MCP_KEYCHAIN", "off".into()),
    ]
}

fn command(sbx: &Sbx, home: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).args(["--domain", &sbx.base]);
    for (k, _) in std::env::vars() {
        if k.starts_with("LARK_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("LARK_APP_ID", APP_ID)
        .env("LARK_APP_SECRET", APP_SECRET)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    for (k, v) in env(home) {
        cmd.env(k, v);
    }
    cmd
}

fn short_lived() -> Options {
    serde_json::from_value(json!({"user_token_ttl_secs": TTL_SECS})).expect("options")
}

/// `login --no-browser`, confirmed by opening the link as a person would.
async fn login(sbx: &Sbx, home: &std::path::Path) {
    let mut child = command(sbx, home, &["login", "--no-browser"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("login starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("Link: ") {
                return url.to_string();
            }
        }
        panic!("no link from login");
    })
    .await
    .expect("the link");
    let page = reqwest::get(&url).await.expect("the page");
    assert_eq!(page.status().as_u16(), 200, "{url}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("login ends")
        .expect("wait");
    assert!(status.success(), "login: {status:?}");
}

fn refreshes(sbx: &Sbx) -> u64 {
    sbx.state().refreshes()
}

async fn server(sbx: &Sbx, home: &std::path::Path) -> McpServer {
    let env = env(home);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    McpServer::start_env(sbx, &["--scope-refresh-secs", "1"], &env).await
}

#[tokio::test]
async fn user_tools_appear_after_login_with_list_changed() {
    let sbx = Sbx::start().await;
    let home = home("appear");
    let s = server(&sbx, &home).await;
    assert!(!s.tool_names().await.iter().any(|t| t == "get_me"));
    let text = s.err("get_me", json!({})).await;
    assert!(text.contains("lark-mcp-server login"), "{text}");

    login(&sbx, &home).await;
    let seen = s
        .events
        .wait_for(Duration::from_secs(5), |e| e.tool_list_changed >= 1)
        .await;
    assert!(seen.tool_list_changed >= 1, "{}", s.stderr.text());
    assert!(s.tool_names().await.iter().any(|t| t == "get_me"));
    let me = s.ok("get_me", json!({})).await;
    assert!(
        me["open_id"].as_str().is_some_and(|o| o.starts_with("ou_")),
        "{me}"
    );
    // The user's own tools came with the login: people search and their chats.
    let names = s.tool_names().await;
    for t in ["search_users", "list_my_chats"] {
        assert!(names.iter().any(|n| n == t), "{t} in {names:?}");
    }
    let found = s.ok("search_users", json!({"query": "张"})).await;
    assert!(
        found["users"].as_array().is_some_and(|u| !u.is_empty()),
        "{found}"
    );
    let mine = s.ok("list_my_chats", json!({})).await;
    assert!(mine["chats"].is_array(), "{mine}");
    // Every call went with the user's token, none with the app's.
    let user_calls = sbx
        .state()
        .requests()
        .iter()
        .filter(|r| r.endpoint == "search_users" || r.endpoint == "get_user_info_me")
        .count();
    assert!(user_calls >= 2, "{user_calls}");
}

/// `login` against a sandbox with these options; (exit code, stderr).
async fn login_outcome(options: serde_json::Value, test: &str) -> (i32, String) {
    let sbx = Sbx::with_options(serde_json::from_value(options).expect("options")).await;
    let home = home(test);
    let mut child = command(&sbx, &home, &["login", "--no-browser"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("login starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("login ends")
        .expect("output");
    let stored = home
        .join("lark-mcp-server/profiles/default.user.json")
        .exists();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        stored,
        out.status.success(),
        "tokens stored only on success: {err}"
    );
    (out.status.code().unwrap_or(-1), err)
}

#[tokio::test]
async fn login_ends_cleanly_on_denial_expiry_and_slow_down() {
    let (code, err) = login_outcome(json!({"user_device_outcome": "deny"}), "deny").await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("denied"), "{err}");
    let (code, err) = login_outcome(json!({"user_device_outcome": "expire"}), "expire").await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("expired"), "{err}");
    let (code, err) = login_outcome(json!({"user_device_slow_down_polls": 1}), "slow").await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("every 6 s"), "{err}");
}

#[tokio::test]
async fn a_hundred_calls_across_an_expiry_refresh_once() {
    let sbx = Sbx::with_options(short_lived()).await;
    let home = home("hundred");
    login(&sbx, &home).await;
    let s = server(&sbx, &home).await;
    s.ok("get_me", json!({})).await;
    tokio::time::sleep(Duration::from_secs(TTL_SECS)).await;
    let calls = (0..100).map(|_| s.call("get_me", json!({})));
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.is_error, Some(false), "{:?}", r.content);
    }
    assert_eq!(refreshes(&sbx), 1, "one refresh for 100 calls");
}

#[tokio::test]
async fn two_processes_on_one_profile_refresh_once() {
    let sbx = Sbx::with_options(short_lived()).await;
    let home = home("two");
    login(&sbx, &home).await;
    tokio::time::sleep(Duration::from_secs(TTL_SECS)).await;
    let a = command(&sbx, &home, &["whoami"]).output();
    let b = command(&sbx, &home, &["whoami"]).output();
    let (a, b) = tokio::join!(a, b);
    for out in [a.expect("whoami a"), b.expect("whoami b")] {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("User:") && text.contains("ou_"), "{text}");
        assert!(!text.contains("u-"), "no token printed: {text}");
    }
    assert_eq!(
        refreshes(&sbx),
        1,
        "the second process used the first one's refresh"
    );
}

#[tokio::test]
async fn a_revoked_login_tells_the_person_to_log_in_again() {
    let sbx = Sbx::with_options(short_lived()).await;
    let home = home("revoked");
    login(&sbx, &home).await;
    let s = server(&sbx, &home).await;
    sbx.state().revoke_user_refresh_tokens(None);
    tokio::time::sleep(Duration::from_secs(TTL_SECS)).await;
    let text = s.err("get_me", json!({})).await;
    assert!(text.contains("lark-mcp-server login"), "{text}");
    let tokens = home
        .join("lark-mcp-server")
        .join("profiles")
        .join("default.user.json");
    assert!(!tokens.exists(), "the dead login is deleted");
}

#[tokio::test]
async fn identity_bot_keeps_the_user_tools_hidden_after_login() {
    let sbx = Sbx::start().await;
    let home = home("bot_only");
    login(&sbx, &home).await;
    let env = env(&home);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = McpServer::start_env(&sbx, &["--identity", "bot"], &env).await;
    let names = s.tool_names().await;
    for t in ["get_me", "search_users", "list_my_chats"] {
        assert!(!names.iter().any(|n| n == t), "{t} hidden: {names:?}");
    }
    let text = s.err("get_me", json!({})).await;
    assert!(text.contains("--identity bot"), "{text}");
    // Without the flag the same login shows them.
    let s = server(&sbx, &home).await;
    assert!(s.tool_names().await.iter().any(|n| n == "get_me"));
}
