//! The messages toolset end to end: the real binary over stdio (rmcp client), Lark played by
//! an in-process sandbox with the demo org. Every tool's success path checked at the
//! sandbox, typical Lark errors in-band with code and log id, size limits and unknown
//! mentions refused before anything is sent, markdown → post on tricky inputs, exactly-once
//! sends under after-write faults, a paced burst, relative time windows, rendering, the
//! upload/download directory policy and the tool annotations (the file tools' path and
//! name handling is in mcp_files.rs).

mod common;

use std::time::Instant;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use common::im::*;
use common::mcp::{McpServer, log_id_in, read_only_tools, text_of};
use common::*;
use lark_mcp_server::sandbox::{FaultAction, FaultRule, Message, Options, Phase};
use lark_mcp_server::tools::{self, Toolset};
use serde_json::{Value, json};

async fn setup() -> (Sbx, McpServer) {
    let sbx = Sbx::start().await;
    let server = McpServer::start(&sbx, &[]).await;
    (sbx, server)
}

/// Lark's millisecond time as the tools print it.
fn iso(ms: u64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms as i64)
        .expect("a valid time")
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn t(text: &str) -> Value {
    json!({"tag": "text", "text": text})
}

fn styled(text: &str, style: &[&str]) -> Value {
    json!({"tag": "text", "text": text, "style": style})
}

fn a(text: &str, href: &str) -> Value {
    json!({"tag": "a", "text": text, "href": href})
}

fn at(open_id: &str, name: &str) -> Value {
    json!({"tag": "at", "user_id": open_id, "user_name": name})
}

fn post(paragraphs: Vec<Vec<Value>>) -> Value {
    json!({"zh_cn": {"title": "", "content": paragraphs}})
}

fn ids_of(messages: &[Message]) -> Vec<String> {
    messages.iter().map(|m| m.message_id.clone()).collect()
}

fn message_ids(out: &Value) -> Vec<String> {
    out["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages in {out}"))
        .iter()
        .map(|m| str_of(m, "message_id").to_string())
        .collect()
}

// ---- send_message: receivers and content forms ------------------------------------------------

#[tokio::test]
async fn send_message_to_an_email_lands_in_the_bots_p2p_chat_and_the_open_id_reaches_the_same_chat()
{
    let (sbx, s) = setup().await;
    let out = s
        .ok(
            "send_message",
            json!({"to": ZHANG_WEI_EMAIL, "text": "你好，张伟 👋"}),
        )
        .await;
    let m = stored(&sbx, str_of(&out, "message_id"));
    assert_eq!(
        out,
        json!({"message_id": m.message_id, "chat_id": m.chat_id, "time": iso(m.create_time_ms)})
    );
    assert!(m.sender_is_bot);
    assert_eq!(m.msg_type, "text");
    assert_eq!(content_of(&m), json!({"text": "你好，张伟 👋"}));
    let p2p = chat(&sbx, &m.chat_id);
    assert_eq!(p2p.chat_mode, "p2p");
    assert_eq!(p2p.p2p_user.as_deref(), Some(ZHANG_WEI));

    let again = s
        .ok("send_message", json!({"to": ZHANG_WEI, "text": "second"}))
        .await;
    assert_eq!(again["chat_id"], out["chat_id"], "the same p2p chat");
    let queries: Vec<String> = recorded(&sbx, "send_message")
        .into_iter()
        .map(|r| r.query)
        .collect();
    assert_eq!(
        queries,
        ["receive_id_type=email", "receive_id_type=open_id"],
        "the receiver type is inferred from `to`"
    );
    assert_eq!(sbx.state().messages(Some(&m.chat_id)).len(), 2);
}

#[tokio::test]
async fn send_message_to_a_chat_turns_every_mention_form_into_lark_at_tags_and_reads_back_names() {
    let (sbx, s) = setup().await;
    let text =
        format!("@{ZHANG_WEI_EMAIL} 请看 <at id=\"{LI_NA}\"></at> 和 @all，mail me at x@y.io");
    let out = s
        .ok("send_message", json!({"to": PERCEPTION_CHAT, "text": text}))
        .await;
    assert_eq!(out["chat_id"], PERCEPTION_CHAT);
    let m = stored(&sbx, str_of(&out, "message_id"));
    assert_eq!(
        content_of(&m),
        json!({"text": format!(
            "<at user_id=\"{ZHANG_WEI}\">张伟</at> 请看 <at user_id=\"{LI_NA}\">李娜</at> 和 <at user_id=\"all\"></at>，mail me at x@y.io"
        )})
    );
    assert_eq!(m.mentions, [ZHANG_WEI, LI_NA]);
    assert_eq!(
        recorded(&sbx, "send_message")[0].query,
        "receive_id_type=chat_id"
    );

    // Read back, every mention is a name again, @all included.
    let got = s
        .ok("get_message", json!({"message_id": m.message_id}))
        .await;
    assert_eq!(
        got["text"], "@张伟 请看 @李娜 和 @all，mail me at x@y.io",
        "{got}"
    );
    assert_eq!(got["sender"], json!({"id": APP_ID, "name": BOT_NAME}));
}

#[tokio::test]
async fn send_message_markdown_is_a_post_that_reads_back_as_the_same_markdown() {
    let (sbx, s) = setup().await;
    let md = "**周报** 已发布，见 [链接](https://docs.northwind.example/w/31) `v0.5`";
    let out = s
        .ok(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "markdown": md}),
        )
        .await;
    let m = stored(&sbx, str_of(&out, "message_id"));
    assert_eq!(m.msg_type, "post");
    assert_eq!(
        content_of(&m),
        post(vec![vec![
            styled("周报", &["bold"]),
            t(" 已发布，见 "),
            a("链接", "https://docs.northwind.example/w/31"),
            t(" "),
            t("`v0.5`"),
        ]])
    );
    let got = s
        .ok("get_message", json!({"message_id": m.message_id}))
        .await;
    assert_eq!(got["type"], "post");
    assert_eq!(got["text"], md);
}

#[tokio::test]
async fn send_message_card_is_an_interactive_message_holding_the_card() {
    let (sbx, s) = setup().await;
    let card = json!({
        "config": {"update_multi": true},
        "header": {"title": {"tag": "plain_text", "content": "Build #1289"}, "template": "blue"},
        "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "**passed** ✅"}}],
    });
    let out = s
        .ok("send_message", json!({"to": INCIDENT_CHAT, "card": card}))
        .await;
    let m = stored(&sbx, str_of(&out, "message_id"));
    assert_eq!(m.msg_type, "interactive");
    assert_eq!(content_of(&m), card);
    let got = s
        .ok("get_message", json!({"message_id": m.message_id}))
        .await;
    assert_eq!(got["text"], "[card] **Build #1289** / **passed** ✅");
}

#[tokio::test]
async fn upload_image_gives_an_image_key_that_send_message_sends_as_an_image() {
    let sbx = Sbx::start().await;
    let dir = TempDir::new("img");
    let s = McpServer::start(&sbx, &["--allow-read-dir", dir.arg()]).await;
    let path = dir.write("chart.png", &TINY_PNG);
    let up = s.ok("upload_image", json!({"path": path})).await;
    let key = str_of(&up, "image_key").to_string();
    assert!(key.starts_with("img_v3_"), "{up}");
    assert_eq!(up, json!({"image_key": key, "bytes": TINY_PNG.len()}));
    {
        let world = sbx.state().world.lock().unwrap();
        let res = &world.resources[&key];
        assert_eq!(res.bytes, TINY_PNG, "the bytes arrived unchanged");
        assert_eq!(res.content_type, "image/png");
        assert_eq!(res.file_name, "chart.png");
    }
    let out = s
        .ok(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "image_key": key}),
        )
        .await;
    let m = stored(&sbx, str_of(&out, "message_id"));
    assert_eq!(m.msg_type, "image");
    assert_eq!(content_of(&m), json!({"image_key": key}));
    let got = s
        .ok("get_message", json!({"message_id": m.message_id}))
        .await;
    assert_eq!(
        (&got["text"], &got["keys"]),
        (&json!("[image]"), &json!([key]))
    );
}

#[tokio::test]
async fn upload_file_gives_a_file_key_that_send_message_sends_as_a_file() {
    let sbx = Sbx::start().await;
    let dir = TempDir::new("file");
    let s = McpServer::start(&sbx, &["--allow-read-dir", dir.arg()]).await;
    let bytes = b"%PDF-1.4\n% weekly report\n%%EOF\n";
    let path = dir.write("weekly-report.pdf", bytes);
    let up = s.ok("upload_file", json!({"path": path})).await;
    let key = str_of(&up, "file_key").to_string();
    assert!(key.starts_with("file_v3_"), "{up}");
    assert_eq!(up, json!({"file_key": key, "bytes": bytes.len()}));
    {
        let world = sbx.state().world.lock().unwrap();
        let res = &world.resources[&key];
        assert_eq!(res.bytes, bytes);
        assert_eq!(res.file_name, "weekly-report.pdf");
        assert_eq!(res.sub_type, "pdf", "file_type from the extension");
    }
    let out = s
        .ok(
            "send_message",
            json!({"to": RND_WEEKLY_CHAT, "file_key": key}),
        )
        .await;
    let m = stored(&sbx, str_of(&out, "message_id"));
    assert_eq!(m.msg_type, "file");
    assert_eq!(content_of(&m), json!({"file_key": key}));
}

#[tokio::test]
async fn send_message_shares_a_chat_and_a_contact_card() {
    let (sbx, s) = setup().await;
    let chat_card = s
        .ok(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "share_chat": RANDOM_CHAT}),
        )
        .await;
    let m = stored(&sbx, str_of(&chat_card, "message_id"));
    assert_eq!(
        (m.msg_type.as_str(), content_of(&m)),
        ("share_chat", json!({"chat_id": RANDOM_CHAT}))
    );
    let user_card = s
        .ok(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "share_user": ZHANG_WEI}),
        )
        .await;
    let m = stored(&sbx, str_of(&user_card, "message_id"));
    assert_eq!(
        (m.msg_type.as_str(), content_of(&m)),
        ("share_user", json!({"user_id": ZHANG_WEI}))
    );
    let got = s
        .ok("get_message", json!({"message_id": m.message_id}))
        .await;
    assert_eq!(got["text"], format!("[shared contact {ZHANG_WEI}]"));
}

#[tokio::test]
async fn send_message_needs_exactly_one_content_form_and_sends_nothing_otherwise() {
    let (sbx, s) = setup().await;
    let both = s
        .err(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "text": "a", "markdown": "b"}),
        )
        .await;
    assert!(
        both.contains("Give exactly one of text, markdown"),
        "{both}"
    );
    assert!(both.contains("(got 2)"), "{both}");
    let none = s.err("send_message", json!({"to": PERCEPTION_CHAT})).await;
    assert!(none.contains("(got 0)"), "{none}");
    assert_eq!(sbx.state().count("send_message"), 0);
}

// ---- reply, edit, recall, forward ------------------------------------------------------------

#[tokio::test]
async fn reply_message_in_thread_opens_a_thread_on_the_root_and_a_plain_reply_does_not() {
    let (sbx, s) = setup().await;
    let plain_target = "om_117b26bdcda73c6a049555ae12ed3c99";
    let thread_target = "om_3f46a93772ba0da7737b7a798d9f5e25";

    let plain = s
        .ok(
            "reply_message",
            json!({"message_id": plain_target, "text": "收到"}),
        )
        .await;
    assert!(plain.get("thread_id").is_none(), "{plain}");
    let m = stored(&sbx, str_of(&plain, "message_id"));
    assert_eq!(m.chat_id, PERCEPTION_CHAT);
    assert_eq!(m.parent_id.as_deref(), Some(plain_target));
    assert_eq!(m.root_id.as_deref(), Some(plain_target));
    assert_eq!(m.thread_id, None);
    assert_eq!(content_of(&m), json!({"text": "收到"}));

    let threaded = s
        .ok(
            "reply_message",
            json!({"message_id": thread_target, "markdown": "**跟进** in thread", "in_thread": true}),
        )
        .await;
    let thread_id = str_of(&threaded, "thread_id").to_string();
    assert!(thread_id.starts_with("omt_"), "{threaded}");
    assert_eq!(threaded["chat_id"], PERCEPTION_CHAT);
    let r = stored(&sbx, str_of(&threaded, "message_id"));
    assert_eq!(r.msg_type, "post");
    assert_eq!(r.thread_id.as_deref(), Some(thread_id.as_str()));
    assert_eq!(
        stored(&sbx, thread_target).thread_id.as_deref(),
        Some(thread_id.as_str()),
        "the root now heads the thread"
    );
    let bodies: Vec<Value> = recorded(&sbx, "reply_message")
        .into_iter()
        .map(|r| r.body.expect("a JSON body")["reply_in_thread"].clone())
        .collect();
    assert_eq!(bodies, [json!(false), json!(true)]);

    // The thread reads back root first.
    let listed = s
        .ok(
            "list_messages",
            json!({"thread_id": thread_id, "order": "oldest_first"}),
        )
        .await;
    assert_eq!(
        message_ids(&listed),
        [thread_target.to_string(), r.message_id.clone()]
    );
    assert_eq!(listed["messages"][1]["reply_to"], thread_target);
    assert_eq!(listed["messages"][1]["text"], "**跟进** in thread");
}

#[tokio::test]
async fn edit_message_replaces_the_text_with_put_and_get_message_shows_it_edited() {
    let (sbx, s) = setup().await;
    let sent = s
        .ok(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "text": "draft"}),
        )
        .await;
    let id = str_of(&sent, "message_id").to_string();
    let out = s
        .ok(
            "edit_message",
            json!({"message_id": id, "text": "final ✅"}),
        )
        .await;
    assert_eq!(out, json!({"message_id": id, "ok": true}));
    let m = stored(&sbx, &id);
    assert_eq!(content_of(&m), json!({"text": "final ✅"}));
    assert!(m.updated);
    assert_eq!(
        (
            sbx.state().count("edit_message"),
            sbx.state().count("update_card_message")
        ),
        (1, 0)
    );
    let got = s.ok("get_message", json!({"message_id": id})).await;
    assert_eq!(
        (&got["text"], &got["edited"]),
        (&json!("final ✅"), &json!(true))
    );

    // Markdown turns the text message into a post.
    s.ok(
        "edit_message",
        json!({"message_id": id, "markdown": "**final** v2"}),
    )
    .await;
    let m = stored(&sbx, &id);
    assert_eq!(m.msg_type, "post");
    assert_eq!(
        content_of(&m),
        post(vec![vec![styled("final", &["bold"]), t(" v2")]])
    );
}

#[tokio::test]
async fn edit_message_with_a_card_updates_the_card_message_with_patch() {
    let (sbx, s) = setup().await;
    let card = |status: &str| {
        json!({"config": {"update_multi": true},
               "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": status}}]})
    };
    let sent = s
        .ok(
            "send_message",
            json!({"to": INCIDENT_CHAT, "card": card("deploying…")}),
        )
        .await;
    let id = str_of(&sent, "message_id").to_string();
    let out = s
        .ok(
            "edit_message",
            json!({"message_id": id, "card": card("deployed ✅")}),
        )
        .await;
    assert_eq!(out, json!({"message_id": id, "ok": true}));
    assert_eq!(
        (
            sbx.state().count("update_card_message"),
            sbx.state().count("edit_message")
        ),
        (1, 0)
    );
    let patches = recorded(&sbx, "update_card_message");
    assert_eq!(patches[0].method, "PATCH");
    let m = stored(&sbx, &id);
    assert_eq!(m.msg_type, "interactive");
    assert_eq!(content_of(&m), card("deployed ✅"));
}

#[tokio::test]
async fn recall_message_deletes_it_for_everyone_and_later_writes_are_230011_with_log_id() {
    let (sbx, s) = setup().await;
    let sent = s
        .ok(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "text": "oops"}),
        )
        .await;
    let id = str_of(&sent, "message_id").to_string();
    let out = s.ok("recall_message", json!({"message_id": id})).await;
    assert_eq!(out, json!({"message_id": id, "ok": true}));
    assert!(stored(&sbx, &id).deleted);
    assert_eq!(recorded(&sbx, "recall_message")[0].method, "DELETE");

    let got = s.ok("get_message", json!({"message_id": id})).await;
    assert_eq!(
        (&got["text"], &got["recalled"]),
        (&json!("[recalled]"), &json!(true))
    );

    let edit = s
        .err("edit_message", json!({"message_id": id, "text": "fixed"}))
        .await;
    assert_lark_error(&edit, "edit message", 230011, 400);
    let reply = s
        .err("reply_message", json!({"message_id": id, "text": "re"}))
        .await;
    assert_lark_error(&reply, "reply to message", 230011, 400);
    let again = s.err("recall_message", json!({"message_id": id})).await;
    assert_lark_error(&again, "recall message", 230011, 400);
    assert_ne!(log_id_in(&edit), log_id_in(&reply), "one log id per call");
}

#[tokio::test]
async fn forward_message_to_a_chat_copies_the_message_there() {
    let (sbx, s) = setup().await;
    let before = sbx.state().messages(Some(PERCEPTION_CHAT));
    let out = s
        .ok(
            "forward_message",
            json!({"message_id": MILK_TEA_MSG, "to": PERCEPTION_CHAT}),
        )
        .await;
    assert_eq!(out["chat_id"], PERCEPTION_CHAT);
    let new = new_messages(&sbx, PERCEPTION_CHAT, &before);
    assert_eq!(ids_of(&new), [str_of(&out, "message_id")]);
    let source = stored(&sbx, MILK_TEA_MSG);
    assert_eq!(
        (&new[0].msg_type, &new[0].content),
        (&source.msg_type, &source.content)
    );
    assert!(new[0].sender_is_bot);
    assert!(
        recorded(&sbx, "forward_message")[0]
            .query
            .starts_with("receive_id_type=chat_id"),
        "{:?}",
        recorded(&sbx, "forward_message")[0].query
    );
}

#[tokio::test]
async fn forward_message_to_a_thread_lands_in_that_thread() {
    let (sbx, s) = setup().await;
    let out = s
        .ok(
            "forward_message",
            json!({"message_id": MILK_TEA_MSG, "to": INCIDENT_THREAD}),
        )
        .await;
    assert_eq!(out["thread_id"], INCIDENT_THREAD);
    assert_eq!(out["chat_id"], INCIDENT_CHAT);
    let m = stored(&sbx, str_of(&out, "message_id"));
    assert_eq!(m.thread_id.as_deref(), Some(INCIDENT_THREAD));
    assert_eq!(m.root_id.as_deref(), Some(INCIDENT_THREAD_ROOT));
    assert!(
        recorded(&sbx, "forward_message")[0]
            .query
            .starts_with("receive_id_type=thread_id")
    );
    let newest = s
        .ok(
            "list_messages",
            json!({"thread_id": INCIDENT_THREAD, "page_size": 1}),
        )
        .await;
    assert_eq!(message_ids(&newest), [m.message_id]);
}

// ---- reading: get, list, windows, rendering ----------------------------------------------------

#[tokio::test]
async fn get_message_renders_mention_placeholders_as_names_and_names_the_sender() {
    let (sbx, s) = setup().await;
    let out = s
        .ok("get_message", json!({"message_id": MILK_TEA_MSG}))
        .await;
    let m = stored(&sbx, MILK_TEA_MSG);
    assert_eq!(
        out,
        json!({
            "message_id": MILK_TEA_MSG,
            "time": iso(m.create_time_ms),
            "sender": {"id": SUN_HAO, "name": "孙浩"},
            "type": "text",
            "text": "今天谁点奶茶？拼单 🧋 @李娜 @韩雪",
            "chat_id": RANDOM_CHAT,
        })
    );
}

#[tokio::test]
async fn posts_render_as_markdown_cards_as_summaries_and_media_with_their_keys() {
    let (_sbx, s) = setup().await;
    let post = s
        .ok("get_message", json!({"message_id": SIGNING_POST_MSG}))
        .await;
    assert_eq!(
        post["sender"],
        json!({"id": "ou_eef5703ce329cfb1c30bc3b4b23170a0", "name": "曹雨"})
    );
    assert_eq!(post["type"], "post");
    assert_eq!(
        post["text"],
        "**华润智能仓储项目签约 🎉**\n\
         **客户：华润智能仓储（一期）**\n\
         **内容：NW-Arm 3 × 60 台 + 感知套件 + 3 年维保，合同额 ¥12,800,000**\n\
         感谢 @彭飞 @田野 以及感知组的现场支持！\n\
         项目详情见 [CRM](https://crm.northwind.example/opportunity/8812)"
    );

    let card = s
        .ok("get_message", json!({"message_id": DEPLOY_CARD_MSG}))
        .await;
    assert_eq!(card["sender"], json!({"id": APP_ID, "name": BOT_NAME}));
    assert_eq!(card["type"], "interactive");
    assert_eq!(
        card["text"],
        "[card] **Deploy finished** / **prod** ota-service v2.3.1 ✅\nDeployed by **赵敏** · 12/12 pods healthy"
    );

    let image = s
        .ok("get_message", json!({"message_id": ALL_HANDS_IMAGE_MSG}))
        .await;
    assert_eq!(
        (&image["type"], &image["text"], &image["keys"]),
        (
            &json!("image"),
            &json!("[image]"),
            &json!([ALL_HANDS_IMAGE_KEY])
        )
    );
    assert_eq!(
        image["sender"],
        json!({"id": LIN_XIAOWEN, "name": "林晓雯"})
    );
}

#[tokio::test]
async fn list_messages_since_30m_24h_7d_returns_exactly_the_seeded_messages_in_the_window_newest_first()
 {
    let (sbx, s) = setup().await;
    let all = sbx.state().messages(Some(PERCEPTION_CHAT));
    assert!(
        all.iter().all(|m| m.thread_id.is_none()),
        "Perception standup has no threads: every message shows in the chat"
    );
    let mut counts = Vec::new();
    for (since, secs) in [("30m", 1_800u64), ("24h", 86_400), ("7d", 604_800)] {
        let now = Utc::now().timestamp_millis() as u64;
        let lo = now - secs * 1000;
        // The seed keeps its messages minutes away from these edges, so the server's clock
        // (read a few ms later) draws the same line.
        assert!(
            all.iter().all(|m| m.create_time_ms.abs_diff(lo) > 60_000),
            "a seeded message sits on the {since} edge"
        );
        let mut expected: Vec<&Message> = all.iter().filter(|m| m.create_time_ms >= lo).collect();
        expected.sort_by_key(|m| std::cmp::Reverse(m.create_time_ms));
        let out = s
            .ok(
                "list_messages",
                json!({"chat_id": PERCEPTION_CHAT, "since": since}),
            )
            .await;
        let want: Vec<String> = expected.iter().map(|m| m.message_id.clone()).collect();
        assert_eq!(message_ids(&out), want, "since {since}");
        let times: Vec<&Value> = out["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| &m["time"])
            .collect();
        let want_times: Vec<Value> = expected
            .iter()
            .map(|m| json!(iso(m.create_time_ms)))
            .collect();
        assert_eq!(
            times,
            want_times.iter().collect::<Vec<_>>(),
            "since {since}"
        );
        assert!(out.get("next_page_token").is_none(), "one page: {since}");
        counts.push(want.len());
    }
    // Each window holds more than the last, and none holds the whole chat.
    assert!(
        counts[0] >= 2 && counts[0] < counts[1] && counts[1] < counts[2] && counts[2] < all.len(),
        "{counts:?} of {}",
        all.len()
    );
    let queries: Vec<String> = recorded(&sbx, "list_messages")
        .into_iter()
        .map(|r| r.query)
        .collect();
    assert!(
        queries
            .iter()
            .all(|q| q.contains("start_time=") && q.contains("sort_type=ByCreateTimeDesc")),
        "{queries:?}"
    );
}

#[tokio::test]
async fn list_messages_refuses_since_after_until_and_a_bad_window_before_asking_lark() {
    let (sbx, s) = setup().await;
    let reversed = s
        .err(
            "list_messages",
            json!({"chat_id": PERCEPTION_CHAT, "since": "1h", "until": "2h"}),
        )
        .await;
    assert_eq!(reversed, "Invalid argument `since`: is after until");
    let bad = s
        .err(
            "list_messages",
            json!({"chat_id": PERCEPTION_CHAT, "since": "last tuesday"}),
        )
        .await;
    assert!(
        bad.starts_with("Invalid argument `since`: `last tuesday` is not a time"),
        "{bad}"
    );
    let bad_until = s
        .err(
            "list_messages",
            json!({"chat_id": PERCEPTION_CHAT, "until": "-3d"}),
        )
        .await;
    assert!(
        bad_until.starts_with("Invalid argument `until`:"),
        "{bad_until}"
    );
    let neither = s.err("list_messages", json!({})).await;
    assert_eq!(neither, "Give exactly one of chat_id or thread_id.");
    assert_eq!(sbx.state().count("list_messages"), 0);
}

#[tokio::test]
async fn list_messages_of_a_thread_reads_it_oldest_first_with_sender_names() {
    let (sbx, s) = setup().await;
    let mut thread: Vec<Message> = sbx
        .state()
        .messages(None)
        .into_iter()
        .filter(|m| m.thread_id.as_deref() == Some(JETSON_THREAD))
        .collect();
    thread.sort_by_key(|m| m.create_time_ms);
    assert_eq!(thread.len(), 5);
    let out = s
        .ok(
            "list_messages",
            json!({"thread_id": JETSON_THREAD, "order": "oldest_first"}),
        )
        .await;
    assert_eq!(message_ids(&out), ids_of(&thread));
    let msgs = out["messages"].as_array().unwrap();
    assert_eq!(
        msgs[0]["sender"],
        json!({"id": "ou_b99137359f4e1e33442c2c4794084a28", "name": "陈建国"})
    );
    assert!(msgs[0].get("reply_to").is_none());
    for m in &msgs[1..] {
        assert_eq!(m["root_id"], msgs[0]["message_id"]);
        assert_eq!(m["thread_id"], JETSON_THREAD);
        assert!(m["sender"]["name"].is_string(), "{m}");
    }
    // The last reply mentions 张伟: the placeholder becomes his name.
    assert_eq!(
        msgs[4]["text"],
        "OK，下周 demo 上看结果 👍 @张伟 记得把功耗数据也带上"
    );
}

// ---- reactions, pins, read receipts --------------------------------------------------------------

#[tokio::test]
async fn add_list_and_remove_reaction_round_trip_at_the_sandbox() {
    let (sbx, s) = setup().await;
    // A seeded message someone already reacted to.
    let perception = ids_of(&sbx.state().messages(Some(PERCEPTION_CHAT)));
    let seeded = sbx
        .state()
        .world
        .lock()
        .unwrap()
        .reactions
        .iter()
        .find(|r| perception.contains(&r.message_id))
        .cloned()
        .expect("a seeded reaction in Perception standup");
    let msg = seeded.message_id.clone();
    let names: std::collections::HashMap<String, String> = sbx
        .state()
        .world
        .lock()
        .unwrap()
        .users
        .iter()
        .map(|u| (u.open_id.clone(), u.name.clone()))
        .collect();

    let added = s
        .ok(
            "add_reaction",
            json!({"message_id": msg, "emoji": "THUMBSUP"}),
        )
        .await;
    let rid = str_of(&added, "reaction_id").to_string();
    assert_eq!(added["emoji"], "THUMBSUP");
    assert_eq!(added["by"], json!({"id": APP_ID}));
    let ids: Vec<String> = bot_reactions(&sbx, &msg)
        .into_iter()
        .map(|r| r.reaction_id)
        .collect();
    assert_eq!(ids, [rid.as_str()]);

    let listed = s.ok("list_reactions", json!({"message_id": msg})).await;
    assert_eq!(
        listed["reactions"],
        json!([
            {"reaction_id": seeded.reaction_id, "emoji": seeded.emoji_type,
             "by": {"id": seeded.operator_id, "name": names[&seeded.operator_id]},
             "time": iso(seeded.action_time_ms)},
            {"reaction_id": rid, "emoji": "THUMBSUP", "by": {"id": APP_ID}, "time": added["time"]},
        ])
    );

    let removed = s
        .ok(
            "remove_reaction",
            json!({"message_id": msg, "reaction_id": rid}),
        )
        .await;
    assert_eq!(removed, json!({"message_id": msg, "ok": true}));
    assert!(
        !sbx.state()
            .world
            .lock()
            .unwrap()
            .reactions
            .iter()
            .any(|r| r.reaction_id == rid)
    );
    let after = s.ok("list_reactions", json!({"message_id": msg})).await;
    assert_eq!(after["reactions"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn pin_list_and_unpin_round_trip_at_the_sandbox() {
    let (sbx, s) = setup().await;
    let msg = "om_117b26bdcda73c6a049555ae12ed3c99";
    let pinned = s.ok("pin_message", json!({"message_id": msg})).await;
    let time = str_of(&pinned, "time").to_string();
    assert_eq!(
        pinned,
        json!({"message_id": msg, "chat_id": PERCEPTION_CHAT, "by": {"id": APP_ID}, "time": time})
    );
    let pins: Vec<String> = sbx
        .state()
        .world
        .lock()
        .unwrap()
        .pins
        .iter()
        .map(|p| p.message_id.clone())
        .collect();
    assert_eq!(pins, [msg]);

    let listed = s
        .ok(
            "list_pins",
            json!({"chat_id": PERCEPTION_CHAT, "since": "1h"}),
        )
        .await;
    assert_eq!(listed, json!({"pins": [pinned.clone()]}));
    let too_early = ok_lenient(
        &s,
        "list_pins",
        json!({"chat_id": PERCEPTION_CHAT, "until": "2h"}),
    )
    .await;
    assert_eq!(too_early, json!({"pins": []}));

    let unpinned = s.ok("unpin_message", json!({"message_id": msg})).await;
    assert_eq!(unpinned, json!({"message_id": msg, "ok": true}));
    assert!(sbx.state().world.lock().unwrap().pins.is_empty());
    let after = ok_lenient(&s, "list_pins", json!({"chat_id": PERCEPTION_CHAT})).await;
    assert_eq!(after, json!({"pins": []}));
}

#[tokio::test]
async fn get_read_users_lists_the_chat_members_who_read_the_bots_message_with_names() {
    let sbx = Sbx::with_options(Options {
        read_receipt_delay_secs: 0,
        ..Options::default()
    })
    .await;
    let s = McpServer::start(&sbx, &[]).await;
    let sent = s
        .ok(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "text": "站会 10 分钟后开始"}),
        )
        .await;
    let id = str_of(&sent, "message_id");
    let out = s.ok("get_read_users", json!({"message_id": id})).await;
    let members = chat(&sbx, PERCEPTION_CHAT).members;
    let world = sbx.state().world.lock().unwrap();
    let expected: Vec<Value> = members
        .iter()
        .map(|m| {
            let u = world.users.iter().find(|u| &u.open_id == m).unwrap();
            json!({"id": m, "name": u.name, "read_at": sent["time"]})
        })
        .collect();
    drop(world);
    assert_eq!(expected.len(), 7);
    assert_eq!(out, json!({"readers": expected}));
    assert_eq!(
        recorded(&sbx, "message_read_users")[0].query,
        "user_id_type=open_id&page_size=100"
    );
}

// ---- downloads and uploads --------------------------------------------------------------------

#[tokio::test]
async fn download_resource_writes_a_seeded_image_to_the_download_dir_and_shows_it() {
    let sbx = Sbx::start().await;
    let dir = TempDir::new("dl");
    let s = McpServer::start(&sbx, &["--download-dir", dir.arg()]).await;
    let r = s
        .call(
            "download_resource",
            json!({"message_id": ALL_HANDS_IMAGE_MSG, "file_key": ALL_HANDS_IMAGE_KEY}),
        )
        .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    let target = dir.path().join(format!("{ALL_HANDS_IMAGE_KEY}.png"));
    let bytes = std::fs::read(&target).expect("the image was written into the download dir");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    let w = wire(&r);
    let content = w["content"].as_array().expect("content");
    assert_eq!(content.len(), 2, "a text block and an image block: {w}");
    assert_eq!(content[1]["type"], "image");
    assert_eq!(content[1]["mimeType"], "image/png");
    let shown = base64::engine::general_purpose::STANDARD
        .decode(str_of(&content[1], "data"))
        .expect("base64 image data");
    assert_eq!(shown, bytes, "the image shown is the file saved");
    let structured = json!({
        "path": target.to_str().unwrap(),
        "bytes": bytes.len(),
        "content_type": "image/png",
        "shown": true,
    });
    assert_eq!(w["structuredContent"], structured);
    let text: Value = serde_json::from_str(str_of(&content[0], "text")).unwrap();
    assert_eq!(text, structured);
    assert_eq!(
        recorded(&sbx, "download_message_resource")[0].query,
        "type=image"
    );

    // A file is saved under its own name and not shown; save_as cannot leave the directory.
    let file = s
        .ok(
            "download_resource",
            json!({"message_id": "om_a3267e59f62217af7be9703b77ac624b",
                   "file_key": "file_v3_00a87c967e20627217023993a7"}),
        )
        .await;
    let pdf = dir.path().join("Northwind-Employee-Handbook-2025.pdf");
    assert_eq!(file["path"], pdf.to_str().unwrap());
    assert_eq!(file["shown"], false);
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF"));
    let escaped = s
        .call(
            "download_resource",
            json!({"message_id": ALL_HANDS_IMAGE_MSG, "file_key": ALL_HANDS_IMAGE_KEY,
                   "save_as": "../../escape.png"}),
        )
        .await;
    assert_eq!(
        wire(&escaped)["structuredContent"]["path"],
        dir.path().join("escape.png").to_str().unwrap()
    );
    assert!(dir.path().join("escape.png").exists());
}

#[tokio::test]
async fn upload_and_download_tools_are_hidden_until_their_directories_are_configured() {
    let sbx = Sbx::start().await;
    let dir = TempDir::new("cfg");
    let plain = McpServer::start(&sbx, &[]).await;
    let names = plain.tool_names().await;
    assert!(names.iter().any(|n| n == "send_message"));
    for hidden in ["upload_image", "upload_file", "download_resource"] {
        assert!(!names.iter().any(|n| n == hidden), "{hidden} is hidden");
    }
    let up = plain
        .err("upload_image", json!({"path": "/etc/hostname"}))
        .await;
    assert_eq!(
        up,
        "Tool `upload_image` is not available: it needs the operator to start the server with --allow-read-dir (LARK_MCP_ALLOW_READ_DIRS)."
    );
    let down = plain
        .err(
            "download_resource",
            json!({"message_id": ALL_HANDS_IMAGE_MSG, "file_key": ALL_HANDS_IMAGE_KEY}),
        )
        .await;
    assert_eq!(
        down,
        "Tool `download_resource` is not available: it needs the operator to start the server with --download-dir (LARK_MCP_DOWNLOAD_DIR)."
    );
    assert_eq!(sbx.state().count("download_message_resource"), 0);

    let reads = McpServer::start(&sbx, &["--allow-read-dir", dir.arg()]).await;
    let names = reads.tool_names().await;
    assert!(names.iter().any(|n| n == "upload_image") && names.iter().any(|n| n == "upload_file"));
    assert!(!names.iter().any(|n| n == "download_resource"));

    let downloads = McpServer::start(&sbx, &["--download-dir", dir.arg()]).await;
    let names = downloads.tool_names().await;
    assert!(names.iter().any(|n| n == "download_resource"));
    assert!(
        !names.iter().any(|n| n == "upload_image") && !names.iter().any(|n| n == "upload_file")
    );
}

// ---- Lark errors in band -----------------------------------------------------------------------

#[tokio::test]
async fn sending_to_a_chat_without_the_bot_is_230002_with_log_id_and_advice() {
    let (sbx, s) = setup().await;
    let text = s
        .err(
            "send_message",
            json!({"to": HR_PRIVATE_CHAT, "text": "hello HR"}),
        )
        .await;
    assert_lark_error(&text, "send message", 230002, 400);
    assert!(
        text.contains("The bot is not a member of that chat"),
        "{text}"
    );
    assert_eq!(sbx.state().count("send_message"), 1, "not retried");
    assert!(sbx.state().messages(Some(HR_PRIVATE_CHAT)).len() == 5);
    let read = s
        .err("list_messages", json!({"chat_id": HR_PRIVATE_CHAT}))
        .await;
    assert_lark_error(&read, "list messages", 230002, 400);
}

#[tokio::test]
async fn without_the_im_scopes_the_tools_are_hidden_and_calling_one_names_the_missing_scope() {
    let base = seed();
    let im = im_scopes(&base);
    let im_refs: Vec<&str> = im.iter().map(String::as_str).collect();
    let sbx = Sbx::with_seed(seed_without_scopes(&im_refs)).await;
    let s = McpServer::start(&sbx, &[]).await;
    let names = s.tool_names().await;
    assert!(
        names.iter().any(|n| n == "get_user"),
        "contact stays: {names:?}"
    );
    let im_tools: Vec<&String> = names
        .iter()
        .filter(|n| {
            matches!(
                tools::find(n).unwrap().meta.toolset,
                Toolset::Messages | Toolset::Chats
            )
        })
        .collect();
    assert!(im_tools.is_empty(), "hidden: {im_tools:?}");

    let text = s
        .err("send_message", json!({"to": PERCEPTION_CHAT, "text": "hi"}))
        .await;
    assert_eq!(
        text,
        format!(
            "Tool `send_message` is not available: the Lark app has not been granted any of [im:message, im:message:send_as_bot, im:message:send]; an app admin can enable one at https://open.feishu.cn/app/{APP_ID}/auth?q=im:message,im:message:send_as_bot,im:message:send&op_from=openapi and publish a new version."
        )
    );
    let chats = s.err("list_chats", json!({})).await;
    assert!(
        chats.contains("[im:chat, im:chat:readonly, im:chat:read, im:chat.group_info:readonly]"),
        "{chats}"
    );
    assert_eq!(sbx.state().count("send_message"), 0);
    assert_eq!(sbx.state().count("list_chats"), 0);
}

#[tokio::test]
async fn a_scope_revoked_at_lark_is_99991672_in_band_naming_the_scopes() {
    let (sbx, s) = setup().await;
    assert!(s.tool_names().await.iter().any(|n| n == "send_message"));
    sbx.state().set_scopes(
        &[],
        &[
            "im:message".to_string(),
            "im:message:send_as_bot".to_string(),
        ],
    );
    let text = s
        .err("send_message", json!({"to": PERCEPTION_CHAT, "text": "hi"}))
        .await;
    assert_lark_error(&text, "send message", 99991672, 400);
    assert!(
        text.contains("must enable one of [im:message, im:message:send_as_bot, im:message:send]"),
        "{text}"
    );
    assert!(
        text.contains(&format!("https://open.feishu.cn/app/{APP_ID}/auth?q=")),
        "{text}"
    );
    assert_eq!(sbx.state().count("send_message"), 1, "never retried");
    assert_eq!(sbx.state().messages(Some(PERCEPTION_CHAT)).len(), 22);
}

#[tokio::test]
async fn oversized_text_and_markdown_are_refused_before_the_call_naming_the_limit() {
    let (sbx, s) = setup().await;
    let text = s
        .err(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "text": "a".repeat(150 * 1024)}),
        )
        .await;
    assert!(
        text.starts_with("Invalid argument `text`: ")
            && text.contains("at most 150 KB")
            && text.contains("nothing was sent"),
        "{text}"
    );
    let md = s
        .err(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "markdown": "**x** ".repeat(6 * 1024)}),
        )
        .await;
    assert!(
        md.starts_with("Invalid argument `markdown`: ")
            && md.contains("at most 30 KB")
            && md.contains("nothing was sent"),
        "{md}"
    );
    let reply = s
        .err(
            "reply_message",
            json!({"message_id": MILK_TEA_MSG, "text": "字".repeat(52 * 1024)}),
        )
        .await;
    assert!(reply.contains("at most 150 KB"), "{reply}");
    assert_eq!(
        (
            sbx.state().count("send_message"),
            sbx.state().count("reply_message")
        ),
        (0, 0)
    );
    // Just under the limit goes through.
    s.ok(
        "send_message",
        json!({"to": PERCEPTION_CHAT, "text": "a".repeat(150 * 1024 - 20)}),
    )
    .await;
    assert_eq!(sbx.state().count("send_message"), 1);
}

#[tokio::test]
async fn six_hundred_kb_of_unclosed_mention_tags_is_refused_as_too_large_not_hung_on() {
    let (sbx, s) = setup().await;
    let unclosed = "<at id=\"x\">".repeat(600 * 1024 / 11);
    let text = s
        .err(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "text": unclosed}),
        )
        .await;
    assert!(
        text.starts_with("Invalid argument `text`: ")
            && text.contains("at most 150 KB")
            && text.contains("nothing was sent"),
        "{text}"
    );
    let md = s
        .err(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "markdown": unclosed}),
        )
        .await;
    assert!(
        md.starts_with("Invalid argument `markdown`: ") && md.contains("at most 30 KB"),
        "{md}"
    );
    let reply = s
        .err(
            "reply_message",
            json!({"message_id": MILK_TEA_MSG, "text": unclosed}),
        )
        .await;
    assert!(reply.contains("at most 150 KB"), "{reply}");
    // Under the limit the same tags are read in full: one person, `x`, who does not exist.
    let under = "<at id=\"x\">".repeat(100 * 1024 / 11);
    let text = s
        .err(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "text": under}),
        )
        .await;
    assert!(text.contains("Cannot mention x:"), "{text}");
    assert_eq!(
        (
            sbx.state().count("send_message"),
            sbx.state().count("reply_message")
        ),
        (0, 0)
    );
}

// ---- markdown → post ------------------------------------------------------------------------------

/// (what it shows, markdown, the post's paragraphs, the open_ids Lark records as mentioned)
type MarkdownCase = (&'static str, String, Vec<Vec<Value>>, Vec<&'static str>);

#[tokio::test]
async fn markdown_becomes_the_expected_post_on_tricky_inputs() {
    let (sbx, s) = setup().await;
    let b = |x: &str| styled(x, &["bold"]);
    let cases: Vec<MarkdownCase> = vec![
        (
            "nested lists",
            "- one\n  - two\n    - three\n- four".into(),
            vec![
                vec![t("• "), t("one")],
                vec![t("    • "), t("two")],
                vec![t("        • "), t("three")],
                vec![t("• "), t("four")],
            ],
            vec![],
        ),
        (
            "ordered list with a nested bullet",
            "1. first\n2. second\n   - sub\n3. third".into(),
            vec![
                vec![t("1. "), t("first")],
                vec![t("2. "), t("second")],
                vec![t("    • "), t("sub")],
                vec![t("3. "), t("third")],
            ],
            vec![],
        ),
        (
            "bold inside a link",
            "[**Lark** docs](https://open.larksuite.com)".into(),
            vec![vec![
                json!({"tag": "a", "text": "Lark", "href": "https://open.larksuite.com", "style": ["bold"]}),
                a(" docs", "https://open.larksuite.com"),
            ]],
            vec![],
        ),
        (
            "code blocks with and without a language",
            "```python\nprint(\"你好\")\nx = 1\n```\n\n```\nplain\n```".into(),
            vec![
                vec![json!({"tag": "code_block", "language": "python", "text": "print(\"你好\")\nx = 1"})],
                vec![json!({"tag": "code_block", "text": "plain"})],
            ],
            vec![],
        ),
        (
            "inline code",
            "Run `cargo test` now".into(),
            vec![vec![t("Run "), t("`cargo test`"), t(" now")]],
            vec![],
        ),
        (
            "links and emphasis",
            "See [the docs](https://example.com/a?b=1&c=2). *斜体* ~~删除~~".into(),
            vec![vec![
                t("See "),
                a("the docs", "https://example.com/a?b=1&c=2"),
                t(". "),
                styled("斜体", &["italic"]),
                t(" "),
                styled("删除", &["lineThrough"]),
            ]],
            vec![],
        ),
        (
            "headings",
            "# Title\n\n### Sub 标题\n\nbody".into(),
            vec![vec![b("Title")], vec![b("Sub 标题")], vec![t("body")]],
            vec![],
        ),
        (
            "quotes",
            "> 引用 quoted\n> second line".into(),
            vec![
                vec![t("┃ "), t("引用 quoted")],
                vec![t("┃ "), t("second line")],
            ],
            vec![],
        ),
        (
            "CJK text",
            "中文段落，含标点。日本語のテキスト。한국어 문장".into(),
            vec![vec![t("中文段落，含标点。日本語のテキスト。한국어 문장")]],
            vec![],
        ),
        (
            "emoji",
            "Ship it 🚀🎉 ✅ 👨‍👩‍👧".into(),
            vec![vec![t("Ship it 🚀🎉 ✅ 👨‍👩‍👧")]],
            vec![],
        ),
        (
            "a table degrades to ` | ` lines, header bold",
            "| 名称 | 数量 |\n|---|---:|\n| 苹果 🍎 | 3 |\n| `香蕉` | 5 |".into(),
            vec![
                vec![b("名称 | 数量")],
                vec![t("苹果 🍎 | 3")],
                vec![t("`香蕉` | 5")],
            ],
            vec![],
        ),
        (
            "a mention in a table cell stays in its row",
            format!("| 负责人 | 状态 |\n|---|---|\n| @{ZHANG_WEI_EMAIL} | ✅ |\n\nafter"),
            vec![
                vec![b("负责人 | 状态")],
                vec![at(ZHANG_WEI, "张伟"), t(" | ✅")],
                vec![t("after")],
            ],
            vec![ZHANG_WEI],
        ),
        (
            "mention syntax inside code is shown as written and never resolved",
            "Use `@all` or `@nobody@northwind.example`:\n\n```\ngit log --author=@nobody@northwind.example\n```".into(),
            vec![
                vec![
                    t("Use "),
                    t("`@all`"),
                    t(" or "),
                    t("`@nobody@northwind.example`"),
                    t(":"),
                ],
                vec![json!({"tag": "code_block", "text": "git log --author=@nobody@northwind.example"})],
            ],
            vec![],
        ),
        (
            "images by URL stay visible as links",
            "![架构图](https://example.com/arch.png) and ![](https://example.com/x.png)".into(),
            vec![vec![
                a("🖼 架构图", "https://example.com/arch.png"),
                t(" and "),
                a("🖼 image", "https://example.com/x.png"),
            ]],
            vec![],
        ),
        (
            "a mention by email, also inside a list",
            format!("请 @{ZHANG_WEI_EMAIL} 看一下\n\n- 负责人 @{WANG_LEI_EMAIL}"),
            vec![
                vec![t("请 "), at(ZHANG_WEI, "张伟"), t(" 看一下")],
                vec![t("• "), t("负责人 "), at(WANG_LEI, "王磊")],
            ],
            vec![ZHANG_WEI, WANG_LEI],
        ),
        (
            "mentions by <at id>, the name inside replaced by the real one",
            format!(
                "<at id=\"{LI_NA}\"></at> please review **now**, <at id=\"{ZHANG_WEI}\">someone</at>"
            ),
            vec![vec![
                at(LI_NA, "李娜"),
                t(" please review "),
                b("now"),
                t(", "),
                at(ZHANG_WEI, "张伟"),
            ]],
            vec![LI_NA, ZHANG_WEI],
        ),
        (
            "@all",
            "@all 下午茶到了 🍰".into(),
            vec![vec![json!({"tag": "at", "user_id": "all"}), t(" 下午茶到了 🍰")]],
            vec![],
        ),
    ];
    // Spread over the bot's chats so the per-chat pacing never has to wait.
    let chats = [
        PERCEPTION_CHAT,
        INCIDENT_CHAT,
        RND_WEEKLY_CHAT,
        SALES_WINS_CHAT,
        RND_CENTER_CHAT,
        SALES_MARKETING_CHAT,
        HR_DEPT_CHAT,
        RANDOM_CHAT,
        ALL_HANDS_CHAT,
    ];
    let mut failures = Vec::new();
    for (i, (name, md, paragraphs, mentions)) in cases.into_iter().enumerate() {
        let r = s
            .call(
                "send_message",
                json!({"to": chats[i % chats.len()], "markdown": md}),
            )
            .await;
        if r.is_error != Some(false) {
            failures.push(format!("{name}: failed: {}", text_of(&r)));
            continue;
        }
        let id = r.structured_content.as_ref().unwrap()["message_id"]
            .as_str()
            .unwrap()
            .to_string();
        let m = stored(&sbx, &id);
        let want = post(paragraphs);
        if m.msg_type != "post" || content_of(&m) != want {
            failures.push(format!(
                "{name}:\n  markdown {md:?}\n  want {want}\n  got  {} {}",
                m.msg_type, m.content
            ));
        }
        if m.mentions != mentions {
            failures.push(format!(
                "{name}: mentions {:?}, want {mentions:?}",
                m.mentions
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn mentioning_an_unknown_person_is_an_error_and_nothing_is_sent() {
    let (sbx, s) = setup().await;
    let unknown_email = s
        .err(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "text": "hi @nobody@northwind.example"}),
        )
        .await;
    assert!(
        unknown_email.starts_with("Cannot mention nobody@northwind.example: ")
            && unknown_email.ends_with("Nothing was sent."),
        "{unknown_email}"
    );
    let resigned = s
        .err(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "markdown": format!("**ping** @{MA_CHAO_EMAIL}")}),
        )
        .await;
    assert!(
        resigned.starts_with(&format!("Cannot mention {MA_CHAO_EMAIL}: ")),
        "{resigned}"
    );
    let unknown_id = "ou_00000000000000000000000000000000";
    let by_id = s
        .err(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "markdown": format!("<at id=\"{unknown_id}\"></at> hi")}),
        )
        .await;
    assert!(
        by_id.starts_with(&format!("Cannot mention {unknown_id}: "))
            && by_id.contains("lookup_user_by_email"),
        "{by_id}"
    );
    let reply = s
        .err(
            "reply_message",
            json!({"message_id": MILK_TEA_MSG, "text": "@nobody@northwind.example ?"}),
        )
        .await;
    assert!(
        reply.starts_with("Cannot mention nobody@northwind.example"),
        "{reply}"
    );
    assert_eq!(
        (
            sbx.state().count("send_message"),
            sbx.state().count("reply_message")
        ),
        (0, 0)
    );
}

// ---- exactly once, bursts ------------------------------------------------------------------------

#[tokio::test]
async fn one_send_survives_after_write_5xx_and_a_dropped_connection_as_exactly_one_message() {
    let (sbx, s) = setup().await;
    sbx.state().add_fault(
        FaultRule::new(FaultAction::ServerError {
            status: 502,
            phase: Phase::After,
        })
        .method("POST")
        .path(MESSAGES_PATH)
        .times(1),
    );
    sbx.state().add_fault(
        FaultRule::new(FaultAction::Drop {
            phase: Phase::After,
        })
        .method("POST")
        .path(MESSAGES_PATH)
        .skip(1)
        .times(1),
    );
    let before = sbx.state().messages(Some(PERCEPTION_CHAT));
    let out = s
        .ok(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "text": "exactly once 🎯"}),
        )
        .await;
    let new = new_messages(&sbx, PERCEPTION_CHAT, &before);
    assert_eq!(ids_of(&new), [str_of(&out, "message_id")], "one message");
    assert_eq!(content_of(&new[0]), json!({"text": "exactly once 🎯"}));

    let attempts = recorded(&sbx, "send_message");
    let faults: Vec<Vec<String>> = attempts.iter().map(|r| r.faults.clone()).collect();
    assert_eq!(
        faults,
        [
            vec!["server_error_after".to_string()],
            vec!["drop_after".to_string()],
            vec![]
        ],
        "both faults struck after the write, then the retry got through"
    );
    let uuids: Vec<&Value> = attempts
        .iter()
        .map(|r| &r.body.as_ref().expect("a JSON body")["uuid"])
        .collect();
    assert!(
        uuids[0].as_str().is_some_and(|u| !u.is_empty()),
        "{uuids:?}"
    );
    assert!(uuids.iter().all(|u| *u == uuids[0]), "one uuid: {uuids:?}");
    assert_eq!(
        new[0].uuid.as_ref(),
        uuids[0].as_str().map(String::from).as_ref()
    );
}

#[tokio::test]
async fn a_burst_of_30_sends_to_one_chat_is_paced_and_all_arrive() {
    let (sbx, s) = setup().await;
    // Token and scopes are fetched before the clock starts.
    s.ok("get_chat", json!({"chat_id": RND_CENTER_CHAT})).await;
    let before = sbx.state().messages(Some(RND_CENTER_CHAT));
    let started = Instant::now();
    let results = futures::future::join_all((0..30).map(|i| {
        s.call(
            "send_message",
            json!({"to": RND_CENTER_CHAT, "text": format!("burst {i:02}")}),
        )
    }))
    .await;
    let wall = started.elapsed();
    let refused = recorded(&sbx, "send_message")
        .iter()
        .filter(|r| r.code == 230020)
        .count();
    eprintln!(
        "burst: 30 concurrent send_message calls to one chat took {:.2} s; the sandbox answered 230020 {refused} time(s)",
        wall.as_secs_f64()
    );
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.is_error, Some(false), "send {i}: {}", text_of(r));
    }
    let new = new_messages(&sbx, RND_CENTER_CHAT, &before);
    let mut texts: Vec<String> = new
        .iter()
        .map(|m| content_of(m)["text"].as_str().unwrap().to_string())
        .collect();
    texts.sort();
    let want: Vec<String> = (0..30).map(|i| format!("burst {i:02}")).collect();
    assert_eq!(texts, want, "every message arrived exactly once");
    assert!(refused <= 3, "pacing keeps 230020 rare: {refused}");
}

// ---- annotations and read-only ------------------------------------------------------------------

/// (tool, readOnlyHint, destructiveHint, idempotentHint) for every messages and chats tool.
const HINTS: [(&str, bool, bool, bool); 28] = [
    ("add_chat_members", false, false, true),
    ("add_reaction", false, false, false),
    ("create_chat", false, false, false),
    ("dissolve_chat", false, true, true),
    ("download_resource", false, false, true),
    ("find_chats", true, false, true),
    ("edit_message", false, false, true),
    ("forward_message", false, false, false),
    ("get_chat", true, false, true),
    ("get_chat_link", true, false, false),
    ("get_message", true, false, true),
    ("get_read_users", true, false, true),
    ("list_chat_members", true, false, true),
    ("list_chats", true, false, true),
    ("list_messages", true, false, true),
    ("list_pins", true, false, true),
    ("list_reactions", true, false, true),
    ("pin_message", false, false, true),
    ("recall_message", false, true, true),
    ("remove_chat_members", false, true, true),
    ("remove_reaction", false, true, true),
    ("reply_message", false, false, false),
    ("search_chats", true, false, true),
    ("send_message", false, false, false),
    ("unpin_message", false, true, true),
    ("update_chat", false, false, true),
    ("upload_file", false, false, false),
    ("upload_image", false, false, false),
];

#[tokio::test]
async fn tools_list_annotates_every_messages_and_chats_tool_with_the_right_hints() {
    let sbx = Sbx::start().await;
    let dir = TempDir::new("hints");
    let s = McpServer::start(
        &sbx,
        &["--allow-read-dir", dir.arg(), "--download-dir", dir.arg()],
    )
    .await;
    let listed: Vec<Value> = s
        .tools()
        .await
        .iter()
        .map(|t| serde_json::to_value(t).unwrap())
        .collect();
    let im: Vec<&Value> = listed
        .iter()
        .filter(|t| {
            matches!(
                tools::find(t["name"].as_str().unwrap())
                    .unwrap()
                    .meta
                    .toolset,
                Toolset::Messages | Toolset::Chats
            )
        })
        .collect();
    assert_eq!(
        im.len(),
        HINTS.len(),
        "every messages and chats tool is listed"
    );
    for (name, read_only, destructive, idempotent) in HINTS {
        let tool = im
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} is listed"));
        let a = &tool["annotations"];
        assert_eq!(
            (
                &a["readOnlyHint"],
                &a["destructiveHint"],
                &a["idempotentHint"],
                &a["openWorldHint"]
            ),
            (
                &json!(read_only),
                &json!(destructive),
                &json!(idempotent),
                &json!(true)
            ),
            "{name}: {a}"
        );
    }
}

#[tokio::test]
async fn read_only_hides_every_write_tool_of_messages_and_chats() {
    let sbx = Sbx::start().await;
    let dir = TempDir::new("ro");
    let s = McpServer::start(
        &sbx,
        &[
            "--read-only",
            "--allow-read-dir",
            dir.arg(),
            "--download-dir",
            dir.arg(),
        ],
    )
    .await;
    let tools_listed = s.tools().await;
    let names: Vec<String> = tools_listed.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, read_only_tools());
    for t in &tools_listed {
        assert_eq!(
            t.annotations.as_ref().and_then(|a| a.read_only_hint),
            Some(true),
            "{}",
            t.name
        );
    }
    let reads: Vec<&str> = HINTS.iter().filter(|h| h.1).map(|h| h.0).collect();
    let writes: Vec<&str> = HINTS.iter().filter(|h| !h.1).map(|h| h.0).collect();
    for r in &reads {
        assert!(names.iter().any(|n| n == r), "{r} stays");
    }
    for w in &writes {
        assert!(!names.iter().any(|n| n == w), "{w} is hidden");
    }
    let text = s
        .err("send_message", json!({"to": PERCEPTION_CHAT, "text": "hi"}))
        .await;
    assert_eq!(
        text,
        "Tool `send_message` is not available: the server runs read-only and this tool writes (--read-only / LARK_MCP_READ_ONLY)."
    );
    assert_eq!(sbx.state().count("send_message"), 0);
    // Reads still work.
    let got = s
        .ok("get_message", json!({"message_id": MILK_TEA_MSG}))
        .await;
    assert_eq!(got["message_id"], MILK_TEA_MSG);
}
