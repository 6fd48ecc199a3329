//! Send pacing end to end: the real binary over stdio, Lark played by the sandbox with its
//! 5 sends per second per receiver (230020 beyond). Counted at the sandbox.

mod common;

use common::im::*;
use common::mcp::{McpServer, text_of};
use common::*;
use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest, ServerResult};
use rmcp::service::PeerRequestOptions;
use serde_json::json;

fn send_params(to: &str, text: &str) -> CallToolRequestParams {
    let args = json!({"to": to, "text": text});
    CallToolRequestParams::new("send_message").with_arguments(
        args.as_object()
            .cloned()
            .unwrap_or_else(|| panic!("object: {args}")),
    )
}

fn texts_in(sbx: &Sbx, chat: &str, before: &[lark_mcp_server::sandbox::Message]) -> Vec<String> {
    let mut texts: Vec<String> = new_messages(sbx, chat, before)
        .iter()
        .map(|m| content_of(m)["text"].as_str().unwrap_or("").to_string())
        .collect();
    texts.sort();
    texts
}

/// 100 sends to one chat, 20 of them cancelled while they wait for a slot. The call budget
/// (17 s) fits the 80 that remain (16 windows), not 100 (20 windows): slots the cancelled
/// calls held would push the last sends past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100_with_20_cancelled_delivers_the_other_80_unrefused() {
    let sbx = Sbx::start().await;
    let s = McpServer::start_env(&sbx, &[], &[("LARK_CALL_TIMEOUT", "17")]).await;
    // Token and scopes are fetched before the burst.
    s.ok("get_chat", json!({"chat_id": RND_CENTER_CHAT})).await;
    let before = sbx.state().messages(Some(RND_CENTER_CHAT));
    let peer = s.client.peer().clone();
    let send = |i: usize| {
        let peer = peer.clone();
        async move {
            let req = ClientRequest::CallToolRequest(CallToolRequest::new(send_params(
                RND_CENTER_CHAT,
                &format!("burst {i:03}"),
            )));
            peer.send_cancellable_request(req, PeerRequestOptions::no_options())
                .await
                .unwrap_or_else(|e| panic!("request {i} not sent: {e}"))
        }
    };
    let sent = || recorded(&sbx, "send_message").len();

    // Thirty go first; two windows later they are all queued at the pacer.
    let mut kept = Vec::new();
    for i in 0..30 {
        kept.push((i, send(i).await));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sent() < 10 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Twenty queue behind them and give up at once.
    let mut doomed = Vec::new();
    for i in 30..50 {
        doomed.push(send(i).await);
    }
    // The client writes a cancellation on another path than its requests: give the
    // requests time to reach the server first, or it ignores cancellations of unknown ids.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for h in doomed {
        h.cancel(Some("test gives up".into()))
            .await
            .unwrap_or_else(|e| panic!("cancel: {e}"));
    }
    assert!(
        sent() < 25,
        "precondition: with at least 6 of the first 30 unanswered, no cancelled send had a slot yet"
    );
    // Fifty more come after them.
    for i in 50..100 {
        kept.push((i, send(i).await));
    }

    for (i, h) in kept {
        match h.await_response().await {
            Ok(ServerResult::CallToolResult(r)) => {
                assert_eq!(r.is_error, Some(false), "send {i}: {}", text_of(&r))
            }
            other => panic!("send {i}: {other:?}; stderr:\n{}", s.stderr.text()),
        }
    }
    let cancelled = s
        .stderr
        .text()
        .lines()
        .filter(|l| l.contains("cancelled") && l.contains("test gives up"))
        .count();
    assert_eq!(
        cancelled, 20,
        "precondition: the server saw every cancellation"
    );
    let want: Vec<String> = (0..100)
        .filter(|i| !(30..50).contains(i))
        .map(|i| format!("burst {i:03}"))
        .collect();
    assert_eq!(
        texts_in(&sbx, RND_CENTER_CHAT, &before),
        want,
        "the 80 kept sends arrived exactly once, the cancelled 20 never"
    );
    let refused = recorded(&sbx, "send_message")
        .iter()
        .filter(|r| r.code == 230020)
        .count();
    assert_eq!(refused, 0, "pacing kept every send inside Lark's limit");
}

/// An email and the open_id of the same person reach one p2p chat: once the first send says
/// which chat that is, sends under either name share its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_to_an_email_and_its_open_id_are_paced_as_one_receiver() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    let first = s
        .ok(
            "send_message",
            json!({"to": ZHANG_WEI_EMAIL, "text": "first"}),
        )
        .await;
    let chat = str_of(&first, "chat_id").to_string();
    let before = sbx.state().messages(Some(&chat));
    let calls = (0..12).map(|i| {
        let to = if i % 2 == 0 {
            ZHANG_WEI_EMAIL
        } else {
            ZHANG_WEI
        };
        s.call(
            "send_message",
            json!({"to": to, "text": format!("mixed {i:02}")}),
        )
    });
    for (i, r) in futures::future::join_all(calls).await.iter().enumerate() {
        assert_eq!(r.is_error, Some(false), "send {i}: {}", text_of(r));
    }
    assert_eq!(texts_in(&sbx, &chat, &before).len(), 12);
    let refused = recorded(&sbx, "send_message")
        .iter()
        .filter(|r| r.code == 230020)
        .count();
    assert_eq!(refused, 0, "both names were paced as one receiver");
}
