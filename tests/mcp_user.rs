//! Acting as the user, end to end: `login` (the real binary, device flow at the sandbox),
//! then a server on the same profile offers the user tools (list_changed), refreshes the
//! single-use refresh token exactly once however many calls or processes race across an
//! expiry, and says to run `login` when Lark revokes the login.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::Sbx;
use common::login::{command, env, login, login_with};
use common::mcp::McpServer;
use lark_mcp_server::sandbox::Options;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(30);
/// A user token this short-lived is refreshed a second before it expires.
const TTL_SECS: u64 = 4;

fn home(test: &str) -> std::path::PathBuf {
    common::config_home("mcp-user", test)
}

fn short_lived() -> Options {
    serde_json::from_value(json!({"user_token_ttl_secs": TTL_SECS})).expect("options")
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

/// A group the signed-in person (the seed's first tenant manager) is in and the bot is not.
const HR_CHAT: &str = "oc_e71b5d3c2b56c8e28e8a4306d67d8577";
const ME: &str = "ou_39154d448993dfd2bfec4d420bd70486";
const AS_YOU: &str = "Acts as you, the signed-in user.";

async fn description(s: &McpServer, tool: &str) -> String {
    s.tools()
        .await
        .into_iter()
        .find(|t| t.name == tool)
        .and_then(|t| t.description.map(|d| d.to_string()))
        .unwrap_or_else(|| panic!("{tool} is listed"))
}

async fn server_with(sbx: &Sbx, home: &std::path::Path, args: &[&str]) -> McpServer {
    let env = env(home);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut all = vec!["--scope-refresh-secs", "1"];
    all.extend_from_slice(args);
    McpServer::start_env(sbx, &all, &env).await
}

#[tokio::test]
async fn reads_act_as_you_after_login_where_the_bot_cannot() {
    let sbx = Sbx::start().await;
    let home = home("reads_as_you");
    let s = server(&sbx, &home).await;
    // As the bot: listed without the note, and the bot is not in the HR group.
    assert!(!description(&s, "list_messages").await.contains(AS_YOU));
    let text = s.err("list_messages", json!({"chat_id": HR_CHAT})).await;
    assert!(text.contains("230002") || text.contains("not in"), "{text}");
    // `--identity user` waits for the login instead of falling back to the bot.
    let strict = server_with(&sbx, &home, &["--identity", "user"]).await;
    assert!(
        !strict
            .tool_names()
            .await
            .iter()
            .any(|n| n == "list_messages")
    );
    let text = strict
        .err("list_messages", json!({"chat_id": HR_CHAT}))
        .await;
    assert!(text.contains("lark-mcp-server login"), "{text}");

    login(&sbx, &home).await;
    let seen = s
        .events
        .wait_for(Duration::from_secs(5), |e| e.tool_list_changed >= 1)
        .await;
    assert!(seen.tool_list_changed >= 1, "{}", s.stderr.text());
    assert!(description(&s, "list_messages").await.ends_with(AS_YOU));
    let history = s.ok("list_messages", json!({"chat_id": HR_CHAT})).await;
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["text"].as_str()).collect())
        .unwrap_or_default();
    assert!(texts.iter().any(|t| t.contains("调薪方案")), "{history}");
    let chat = s.ok("get_chat", json!({"chat_id": HR_CHAT})).await;
    assert_eq!(chat["name"], "HR private", "{chat}");
    assert_eq!(chat["bot_is_member"], false, "{chat}");
    // The bot's tools still act as the bot: sending without --allow-send-as-user.
    assert!(!description(&s, "send_message").await.contains(AS_YOU));
    strict
        .events
        .wait_for(Duration::from_secs(5), |e| e.tool_list_changed >= 1)
        .await;
    let strict_names = strict.tool_names().await;
    assert!(
        strict_names.iter().any(|n| n == "list_messages"),
        "{strict_names:?}"
    );
}

#[tokio::test]
async fn sending_as_you_needs_allow_send_as_user() {
    let sbx = Sbx::start().await;
    let home = home("send_as_you");
    login_with(&sbx, &home, &["--allow-send-as-user"]).await;
    let to = "ou_fbff9ad2cc7e0b38887c2a58bd4e1706";
    let sender_of = |id: &str| {
        sbx.state()
            .messages(None)
            .into_iter()
            .find(|m| m.message_id == id)
            .map(|m| (m.sender_is_bot, m.sender))
            .expect("the message is stored")
    };

    let bot = server(&sbx, &home).await;
    let sent = bot
        .ok("send_message", json!({"to": to, "text": "from the bot"}))
        .await;
    let (is_bot, _) = sender_of(sent["message_id"].as_str().unwrap_or_default());
    assert!(is_bot, "without the flag the bot sends");

    let you = server_with(&sbx, &home, &["--allow-send-as-user"]).await;
    assert!(description(&you, "send_message").await.ends_with(AS_YOU));
    let sent = you
        .ok("send_message", json!({"to": to, "text": "from me"}))
        .await;
    let (is_bot, sender) = sender_of(sent["message_id"].as_str().unwrap_or_default());
    assert!(!is_bot && sender == ME, "sent as the person: {sender}");
    // --identity bot wins over the flag.
    let bot_only = server_with(&sbx, &home, &["--allow-send-as-user", "--identity", "bot"]).await;
    assert!(
        !description(&bot_only, "send_message")
            .await
            .contains(AS_YOU)
    );
}

#[tokio::test]
async fn search_messages_finds_what_you_can_see_with_names() {
    let sbx = Sbx::start().await;
    let home = home("search");
    login(&sbx, &home).await;
    let s = server(&sbx, &home).await;
    let found = s.ok("search_messages", json!({"query": "调薪"})).await;
    let hits = found["messages"].as_array().cloned().unwrap_or_default();
    let hr = hits
        .iter()
        .find(|m| m["chat_id"] == HR_CHAT)
        .unwrap_or_else(|| panic!("a hit in the HR group: {found}"));
    assert_eq!(hr["chat_name"], "HR private", "{found}");
    assert_eq!(hr["sender"]["name"], "朱丽", "{found}");
    // Narrowed to another chat, the HR hits are gone.
    let elsewhere = s
        .call(
            "search_messages",
            json!({"query": "调薪", "chat_id": "oc_565504f375c752f3e721d59fac70afd9"}),
        )
        .await;
    assert_eq!(elsewhere.is_error, Some(false));
    assert_eq!(
        elsewhere.structured_content,
        Some(json!({"messages": []})),
        "filtered by chat"
    );
    // Files only: the spreadsheet, not the text.
    let files = s
        .ok("search_messages", json!({"query": "调薪", "kind": "file"}))
        .await;
    let kinds: Vec<&str> = files["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["type"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        !kinds.is_empty() && kinds.iter().all(|k| *k == "file"),
        "{files}"
    );
    let text = s.err("search_messages", json!({"query": "  "})).await;
    assert!(text.contains("query"), "{text}");
    // One search per call that reached Lark; the blank query never did.
    let searches = sbx
        .state()
        .requests()
        .iter()
        .filter(|r| r.endpoint == "search_messages")
        .count();
    assert_eq!(searches, 3);
}

#[tokio::test]
async fn find_people_adds_larks_people_search_when_you_are_signed_in() {
    // 薛明 works in legal, outside the app's contact range: the index never sees him.
    const XUE_MING: &str = "ou_d0746ea879393f08fe81a80ed7f4cfd3";
    let sbx = Sbx::start().await;
    let home = home("find_people");
    let s = server(&sbx, &home).await;
    let before = s.call("find_people", json!({"query": "薛明"})).await;
    assert!(!format!("{:?}", before.structured_content).contains(XUE_MING));
    login(&sbx, &home).await;
    s.events
        .wait_for(Duration::from_secs(5), |e| e.tool_list_changed >= 1)
        .await;
    let after = s.ok("find_people", json!({"query": "薛明"})).await;
    assert_eq!(after["people"][0]["open_id"], XUE_MING, "{after}");
    assert!(
        after["people"][0]["matched"]
            .as_str()
            .is_some_and(|m| m.contains("people search")),
        "{after}"
    );
}
