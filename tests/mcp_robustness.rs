//! Inputs that used to crash or tie up the server, each answered as an `isError` result an
//! agent can act on, over stdio (and HTTP where the transport matters), with the server
//! still serving afterwards. Counted at the sandbox.

mod common;

use common::http::{HttpServer, LATEST, text};
use common::im::*;
use common::mcp::McpServer;
use common::*;
use serde_json::json;

/// Debug builds honour `LARK_MCP_PANIC_IN_TOOL`: a stand-in for a bug in one tool.
const PANIC_ENV: (&str, &str) = ("LARK_MCP_PANIC_IN_TOOL", "get_user");

#[tokio::test]
async fn a_panicking_tool_answers_an_internal_error_and_the_server_keeps_serving() {
    let sbx = Sbx::start().await;
    let s = McpServer::start_env(&sbx, &[], &[PANIC_ENV]).await;
    for _ in 0..3 {
        let text = s.err("get_user", json!({"user_id": ZHANG_WEI})).await;
        assert!(text.contains("internal error"), "{text}");
        assert!(text.contains("get_user"), "{text}");
    }
    // Other tools, and the process, are unharmed.
    let found = s
        .ok("lookup_user_by_email", json!({"emails": [ZHANG_WEI_EMAIL]}))
        .await;
    assert_eq!(found["found"][0]["open_id"], ZHANG_WEI);
    let log = s.stderr.text();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("panicked") && l.contains("get_user")),
        "the panic is logged with the tool name:\n{log}"
    );
}

#[tokio::test]
async fn a_panicking_tool_over_http_is_answered_too() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start_env(&sbx.base, &[], &[PANIC_ENV]).await;
    let mut c = srv.mcp();
    c.connect(LATEST).await;
    let r = c.call("get_user", json!({"user_id": ZHANG_WEI})).await;
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("internal error"), "{r}");
    let r = c
        .call("lookup_user_by_email", json!({"emails": [ZHANG_WEI_EMAIL]}))
        .await;
    assert_ne!(r["isError"], true, "still serving: {r}");
}

#[tokio::test]
async fn spans_beyond_any_history_are_refused_not_overflowed() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    for since in ["100000000d", "9223372036854775807s", "99999999999w"] {
        let text = s
            .err(
                "list_messages",
                json!({"chat_id": RND_CENTER_CHAT, "since": since}),
            )
            .await;
        assert!(text.contains("out of range"), "{since}: {text}");
    }
    assert!(recorded(&sbx, "list_messages").is_empty(), "nothing sent");
    s.ok(
        "list_messages",
        json!({"chat_id": RND_CENTER_CHAT, "since": "3650d"}),
    )
    .await;
}

#[tokio::test]
async fn an_over_long_id_is_refused_at_once_and_never_sent() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    let huge = "o".repeat(64 * 1024);
    let text = s.err("get_user", json!({"user_id": huge})).await;
    assert!(
        text.contains("user_id") && text.contains("256 bytes"),
        "{text}"
    );
    assert!(
        !text.contains("try again"),
        "not dressed up as network trouble: {text}"
    );
    let text = s
        .err(
            "get_message",
            json!({"message_id": "om_".to_string() + &huge}),
        )
        .await;
    assert!(text.contains("message_id"), "{text}");
    let sent = sbx
        .state()
        .requests()
        .iter()
        .filter(|r| r.endpoint == "get_user" || r.endpoint == "get_message")
        .count();
    assert_eq!(sent, 0, "refused before any request");
}

#[tokio::test]
async fn a_rate_limit_reset_of_u64_max_is_an_error_within_the_budget() {
    use lark_mcp_server::sandbox::{FaultAction, FaultRule};
    let sbx = Sbx::start().await;
    let s = McpServer::start_env(&sbx, &[], &[("LARK_CALL_TIMEOUT", "5")]).await;
    sbx.state().add_fault(
        FaultRule::new(FaultAction::RateLimit {
            status: 429,
            reset_secs: u64::MAX,
            limit: 50,
        })
        .path("/open-apis/contact/v3/users/")
        .times(1),
    );
    let text = s.err("get_user", json!({"user_id": ZHANG_WEI})).await;
    // Not the 5 s budget running out: the wait was refused at once, with Lark's facts.
    assert!(text.contains("rate limit"), "{text}");
    assert!(!text.contains("call budget"), "{text}");
    assert_eq!(recorded(&sbx, "get_user").len(), 1);
    let user = s.ok("get_user", json!({"user_id": ZHANG_WEI})).await;
    assert_eq!(user["open_id"], ZHANG_WEI, "still serving");
}
