//! `POST /open-apis/im/v1/messages?receive_id_type=…` against the default org.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use lark_mcp_server::sandbox::Options;
use serde_json::{Value, json};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn p2p_chats(s: &Sbx) -> Vec<lark_mcp_server::sandbox::Chat> {
    s.state()
        .chats()
        .into_iter()
        .filter(|c| c.chat_mode == "p2p")
        .collect()
}

#[tokio::test]
async fn text_to_a_chat_is_stored_and_returned() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let before_count = s.state().messages(Some(ALL_HANDS_CHAT)).len();
    let before = now_ms();
    let r = s
        .send_text(&token, "chat_id", ALL_HANDS_CHAT, "hello from the test")
        .await;
    let after = now_ms();
    let m = r.ok().clone();
    let id = m["message_id"].as_str().expect("message_id");
    assert!(id.starts_with("om_"), "{id}");
    assert_eq!(m["chat_id"], ALL_HANDS_CHAT);
    assert_eq!(m["msg_type"], "text");
    assert_eq!(m["sender"]["sender_type"], "app");
    assert_eq!(m["sender"]["id"], APP_ID);
    assert_eq!(m["body"]["content"], r#"{"text":"hello from the test"}"#);
    let created = m["create_time"].as_str().expect("create_time is a string");
    assert_eq!(created.len(), 13, "milliseconds: {created}");
    let created: u64 = created.parse().unwrap();
    assert!(
        (before..=after).contains(&created),
        "{before} <= {created} <= {after}"
    );

    let stored = s.state().messages(Some(ALL_HANDS_CHAT));
    assert_eq!(stored.len(), before_count + 1);
    let last = stored.iter().find(|x| x.message_id == id).expect("stored");
    assert!(last.sender_is_bot);
    assert_eq!(last.content, r#"{"text":"hello from the test"}"#);
    assert_eq!(last.create_time_ms, created);
}

#[tokio::test]
async fn first_message_to_a_user_opens_one_p2p_chat_reused_after() {
    let s = Sbx::start().await;
    let token = s.token().await;
    assert!(p2p_chats(&s).is_empty());
    let first = s
        .send_text(&token, "email", ZHANG_WEI_EMAIL, "by email")
        .await;
    let chat = first.ok()["chat_id"].as_str().unwrap().to_string();
    assert!(chat.starts_with("oc_"));
    let second = s
        .send_text(&token, "open_id", ZHANG_WEI, "by open_id")
        .await;
    assert_eq!(second.ok()["chat_id"], chat.as_str());
    let third = s
        .send_text(&token, "user_id", ZHANG_WEI_USER_ID, "by user_id")
        .await;
    assert_eq!(third.ok()["chat_id"], chat.as_str());
    let p2p = p2p_chats(&s);
    assert_eq!(p2p.len(), 1);
    assert_eq!(p2p[0].chat_id, chat);
    assert_eq!(p2p[0].p2p_user.as_deref(), Some(ZHANG_WEI));
    assert_eq!(s.state().messages(Some(&chat)).len(), 3);
    // A different user gets a chat of their own.
    let other = s.send_text(&token, "open_id", BAI_XUE, "hi").await;
    assert_ne!(other.ok()["chat_id"], chat.as_str());
    assert_eq!(p2p_chats(&s).len(), 2);
}

#[tokio::test]
async fn content_must_be_a_json_encoded_string() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let body = json!({"receive_id": ALL_HANDS_CHAT, "msg_type": "text", "content": {"text": "hi"}});
    let r = s
        .post(
            &token,
            MESSAGES_PATH,
            &[("receive_id_type", "chat_id")],
            &body,
        )
        .await;
    assert_eq!(r.violated_field(), "content");
    assert!(
        s.state()
            .messages(Some(ALL_HANDS_CHAT))
            .iter()
            .all(|m| !m.sender_is_bot || m.content != r#"{"text":"hi"}"#)
    );
}

#[tokio::test]
async fn content_that_is_not_json_or_does_not_fit_is_230001() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let q = [("receive_id_type", "chat_id")];
    let before = s.state().messages(None).len();
    for (msg_type, content) in [
        ("text", "{not json"),
        ("text", r#"{"txt":"wrong key"}"#),
        (
            "post",
            r#"{"zh_cn":{"title":"t","content":"not paragraphs"}}"#,
        ),
        ("image", r#"{"image_key":""}"#),
    ] {
        let body = json!({"receive_id": ALL_HANDS_CHAT, "msg_type": msg_type, "content": content});
        let r = s.post(&token, MESSAGES_PATH, &q, &body).await;
        r.err(400, 230001);
    }
    assert_eq!(s.state().messages(None).len(), before);
}

#[tokio::test]
async fn oversized_content_is_230025_with_limits_per_type() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let q = [("receive_id_type", "chat_id")];
    let send = |msg_type: &str, content: String| json!({"receive_id": RANDOM_CHAT, "msg_type": msg_type, "content": content});
    let text = |n: usize| json!({"text": "a".repeat(n)}).to_string();
    let post = |n: usize| {
        json!({"zh_cn": {"title": "big", "content": [[{"tag": "text", "text": "b".repeat(n)}]]}})
            .to_string()
    };
    // 150 KB for text…
    s.post(
        &token,
        MESSAGES_PATH,
        &q,
        &send("text", text(150 * 1024 + 1)),
    )
    .await
    .err(400, 230025);
    s.post(&token, MESSAGES_PATH, &q, &send("text", text(100 * 1024)))
        .await
        .ok();
    // …but 30 KB for a post.
    s.post(
        &token,
        MESSAGES_PATH,
        &q,
        &send("post", post(30 * 1024 + 1)),
    )
    .await
    .err(400, 230025);
    s.post(&token, MESSAGES_PATH, &q, &send("post", post(20 * 1024)))
        .await
        .ok();
    assert_eq!(s.state().count("send_message"), 4);
}

#[tokio::test]
async fn bot_outside_the_chat_is_230002() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s.send_text(&token, "chat_id", HR_PRIVATE_CHAT, "hi").await;
    r.err(400, 230002);
    assert!(
        s.state()
            .messages(Some(HR_PRIVATE_CHAT))
            .iter()
            .all(|m| !m.sender_is_bot)
    );
    s.send_text(
        &token,
        "chat_id",
        "oc_00000000000000000000000000000000",
        "hi",
    )
    .await
    .err(400, 99992356);
}

#[tokio::test]
async fn resigned_or_out_of_range_users_are_230013() {
    let s = Sbx::start().await;
    let token = s.token().await;
    s.send_text(&token, "email", MA_CHAO_EMAIL, "hi")
        .await
        .err(400, 230013);
    s.send_text(&token, "open_id", MA_CHAO, "hi")
        .await
        .err(400, 230013);
    s.send_text(&token, "open_id", XUE_MING, "hi")
        .await
        .err(400, 230013);
    assert!(
        p2p_chats(&s).is_empty(),
        "no chat is opened for a refused send"
    );
}

#[tokio::test]
async fn same_uuid_sends_once() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let before = s.state().messages(Some(RANDOM_CHAT)).len();
    let mut body = Sbx::text_body(RANDOM_CHAT, "exactly once");
    body["uuid"] = json!("4e1c7b0a-retry-safe");
    let q = [("receive_id_type", "chat_id")];
    let first = s.post(&token, MESSAGES_PATH, &q, &body).await;
    let second = s.post(&token, MESSAGES_PATH, &q, &body).await;
    let id = first.ok()["message_id"].clone();
    assert_eq!(second.ok()["message_id"], id);
    assert_eq!(s.state().messages(Some(RANDOM_CHAT)).len(), before + 1);
    // A different uuid is a different message.
    body["uuid"] = json!("another-uuid");
    let third = s.post(&token, MESSAGES_PATH, &q, &body).await;
    assert_ne!(third.ok()["message_id"], id);
    assert_eq!(s.state().messages(Some(RANDOM_CHAT)).len(), before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_with_one_uuid_store_one_message() {
    let s = Sbx::with_options(Options {
        send_qps_per_receiver: 0,
        ..Default::default()
    })
    .await;
    let token = s.token().await;
    let before = s.state().messages(Some(RANDOM_CHAT)).len();
    let mut body = Sbx::text_body(RANDOM_CHAT, "racing");
    body["uuid"] = json!("race-uuid-1");
    let q = [("receive_id_type", "chat_id")];
    let calls = (0..8).map(|_| s.post(&token, MESSAGES_PATH, &q, &body));
    let ids: std::collections::HashSet<String> = futures::future::join_all(calls)
        .await
        .iter()
        .map(|r| r.ok()["message_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(s.state().messages(Some(RANDOM_CHAT)).len(), before + 1);
}

#[tokio::test]
async fn sixth_send_within_a_second_to_one_chat_is_230020() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let started = std::time::Instant::now();
    let mut results: Vec<Resp> = Vec::new();
    for i in 0..6 {
        results.push(
            s.send_text(&token, "chat_id", RANDOM_CHAT, &format!("burst {i}"))
                .await,
        );
    }
    assert!(
        started.elapsed().as_millis() < 1000,
        "the burst must fit in one second to prove anything"
    );
    for r in &results[..5] {
        r.ok();
    }
    let last = &results[5];
    last.err(400, 230020);
    // Another receiver is not affected.
    s.send_text(&token, "chat_id", ALL_HANDS_CHAT, "elsewhere")
        .await
        .ok();
}

#[tokio::test]
async fn receiver_limit_zero_disables_230020() {
    let s = Sbx::with_options(Options {
        send_qps_per_receiver: 0,
        ..Default::default()
    })
    .await;
    let token = s.token().await;
    for i in 0..12 {
        s.send_text(&token, "open_id", ZHANG_WEI, &format!("n{i}"))
            .await
            .ok();
    }
    let chat = p2p_chats(&s)[0].chat_id.clone();
    assert_eq!(s.state().messages(Some(&chat)).len(), 12);
}

#[tokio::test]
async fn receive_id_type_is_required_and_checked() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let body = Sbx::text_body(ALL_HANDS_CHAT, "hi");
    let r = s.post(&token, MESSAGES_PATH, &[], &body).await;
    assert_eq!(r.violated_field(), "receive_id_type");
    let r = s
        .post(&token, MESSAGES_PATH, &[("receive_id_type", "chat")], &body)
        .await;
    assert_eq!(r.violated_field(), "receive_id_type");
    let r = s
        .post(
            &token,
            MESSAGES_PATH,
            &[("receive_id_type", "chat_id")],
            &json!({"receive_id": ALL_HANDS_CHAT, "msg_type": "telegram", "content": "{}"}),
        )
        .await;
    assert_eq!(r.violated_field(), "msg_type");
}

#[tokio::test]
async fn send_needs_one_of_the_send_scopes() {
    let s = Sbx::start().await;
    let token = s.token().await;
    s.state().set_scopes(
        &[],
        &[
            "im:message".to_string(),
            "im:message:send_as_bot".to_string(),
        ],
    );
    let r = s.send_text(&token, "chat_id", ALL_HANDS_CHAT, "hi").await;
    let subjects: Vec<Value> = r.err(400, 99991672)["permission_violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["subject"].clone())
        .collect();
    assert_eq!(
        subjects,
        [
            json!("im:message"),
            json!("im:message:send_as_bot"),
            json!("im:message:send")
        ]
    );
    s.state()
        .set_scopes(&["im:message:send_as_bot".to_string()], &[]);
    s.send_text(&token, "chat_id", ALL_HANDS_CHAT, "hi")
        .await
        .ok();
}

#[tokio::test]
async fn without_the_bot_ability_sends_are_230006() {
    let mut seed = seed();
    seed.app.bot_activated = false;
    let s = Sbx::with_seed(seed).await;
    let token = s.token().await;
    let before = s.state().messages(None).len();
    let r = s.send_text(&token, "chat_id", ALL_HANDS_CHAT, "hi").await;
    r.err(400, 230006);
    assert_eq!(r.json["msg"], "Bot ability is not activated.");
    s.send_text(&token, "open_id", ZHANG_WEI, "hi")
        .await
        .err(400, 230006);
    assert_eq!(s.state().messages(None).len(), before);
    assert!(p2p_chats(&s).is_empty());
    // bot/v3/info tells the same story.
    let info = s.get(&token, "/open-apis/bot/v3/info", &[]).await;
    assert_eq!(info.json["bot"]["activate_status"], 0);
}
