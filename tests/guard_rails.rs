//! The guard rails on writes, against the real binary over MCP with the sandbox as Lark:
//! recipient rules on every write tool that reaches someone (0 requests when refused),
//! send budgets, confirmation through elicitation (accept, decline, cancel, a client that
//! cannot ask, the 2026-07-28 input_required form), dry runs (0 requests) and the audit log.

mod common;

use common::http::HttpServer;
use common::mcp::{Answer, Events, McpServer, text_of};
use common::{
    ALL_HANDS_CHAT, BAI_XUE, HR_PRIVATE_CHAT, MA_CHAO, PERCEPTION_DEPT, RANDOM_CHAT, Sbx,
    ZHANG_WEI, ZHANG_WEI_EMAIL, seed,
};
use serde_json::{Value, json};

/// A message in `chat` (from the seed), and the server taught which chat it is in (as any
/// agent's earlier read does), so that rules on it need no request.
async fn message_in(sbx: &Sbx, s: &McpServer, chat: &str) -> String {
    let id = sbx
        .state()
        .messages(Some(chat))
        .first()
        .map(|m| m.message_id.clone())
        .expect("the chat has messages");
    s.ok("get_message", json!({"message_id": id})).await;
    id
}

/// A chat the bot creates, so it may dissolve it.
async fn bots_chat(s: &McpServer) -> String {
    let made = s
        .ok(
            "create_chat",
            json!({"name": "guard test", "members": [ZHANG_WEI]}),
        )
        .await;
    made["chat_id"].as_str().unwrap_or_default().to_string()
}

fn requests(sbx: &Sbx) -> Vec<String> {
    sbx.state()
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn every_write_tool_is_refused_outside_the_allowed_recipients_with_no_request() {
    let sbx = Sbx::start().await;
    let rules = format!("{ALL_HANDS_CHAT},{ZHANG_WEI},!{RANDOM_CHAT}");
    let s = McpServer::start(&sbx, &["--allow-recipients", &rules, "--confirm", "none"]).await;
    let denied_msg = message_in(&sbx, &s, RANDOM_CHAT).await;
    let allowed_msg = message_in(&sbx, &s, ALL_HANDS_CHAT).await;
    let deny_rule = format!("denied by `!{RANDOM_CHAT}`");
    let unlisted = "is not in the allow-list";
    let table: Vec<(&str, Value, &str)> = vec![
        (
            "send_message",
            json!({"to": RANDOM_CHAT, "text": "hi"}),
            &deny_rule,
        ),
        (
            "send_message",
            json!({"to": MA_CHAO, "text": "hi"}),
            unlisted,
        ),
        (
            "send_message",
            json!({"to": HR_PRIVATE_CHAT, "text": "hi"}),
            unlisted,
        ),
        (
            "reply_message",
            json!({"message_id": denied_msg, "text": "hi"}),
            &deny_rule,
        ),
        (
            "forward_message",
            json!({"message_id": allowed_msg, "to": RANDOM_CHAT}),
            &deny_rule,
        ),
        (
            "forward_message",
            json!({"message_id": allowed_msg, "to": MA_CHAO}),
            unlisted,
        ),
        (
            "add_reaction",
            json!({"message_id": denied_msg, "emoji": "OK"}),
            &deny_rule,
        ),
        (
            "remove_reaction",
            json!({"message_id": denied_msg, "reaction_id": "r1"}),
            &deny_rule,
        ),
        ("pin_message", json!({"message_id": denied_msg}), &deny_rule),
        (
            "unpin_message",
            json!({"message_id": denied_msg}),
            &deny_rule,
        ),
        (
            "edit_message",
            json!({"message_id": denied_msg, "text": "x"}),
            &deny_rule,
        ),
        (
            "recall_message",
            json!({"message_id": denied_msg}),
            &deny_rule,
        ),
        (
            "add_chat_members",
            json!({"chat_id": RANDOM_CHAT, "members": [ZHANG_WEI]}),
            &deny_rule,
        ),
        (
            "add_chat_members",
            json!({"chat_id": ALL_HANDS_CHAT, "members": [MA_CHAO]}),
            unlisted,
        ),
        (
            "remove_chat_members",
            json!({"chat_id": RANDOM_CHAT, "members": [ZHANG_WEI]}),
            &deny_rule,
        ),
        (
            "create_chat",
            json!({"name": "x", "members": [MA_CHAO]}),
            unlisted,
        ),
        (
            "update_chat",
            json!({"chat_id": RANDOM_CHAT, "name": "x"}),
            &deny_rule,
        ),
        (
            "update_chat",
            json!({"chat_id": ALL_HANDS_CHAT, "owner": MA_CHAO}),
            unlisted,
        ),
        ("dissolve_chat", json!({"chat_id": RANDOM_CHAT}), &deny_rule),
    ];
    for (tool, args, why) in &table {
        sbx.state().clear_requests();
        let text = s.err(tool, args.clone()).await;
        assert!(
            text.starts_with("Refused:") && text.contains(why) && text.contains("Nothing was sent"),
            "{tool} {args}: {text}"
        );
        assert_eq!(requests(&sbx), Vec::<String>::new(), "{tool} {args}");
    }
    // Every tool that writes to a receiver is in the table.
    for t in lark_mcp_server::tools::catalog() {
        let m = &t.meta;
        let reaches =
            !m.read_only && !m.name.starts_with("upload_") && m.name != "download_resource";
        if reaches && m.toolset != lark_mcp_server::tools::Toolset::Events {
            assert!(
                table.iter().any(|(n, _, _)| *n == m.name),
                "{} untested",
                m.name
            );
        }
    }
    // Allowed receivers still work.
    s.ok(
        "send_message",
        json!({"to": ALL_HANDS_CHAT, "text": "hello all"}),
    )
    .await;
    s.ok("send_message", json!({"to": ZHANG_WEI, "text": "hello"}))
        .await;
    s.ok(
        "reply_message",
        json!({"message_id": allowed_msg, "text": "re"}),
    )
    .await;
    s.ok(
        "add_reaction",
        json!({"message_id": allowed_msg, "emoji": "OK"}),
    )
    .await;
}

#[tokio::test]
async fn email_and_department_rules_match_people_however_they_are_named() {
    let sbx = Sbx::start().await;
    let in_dept = seed()
        .users
        .iter()
        .find(|u| u.departments.iter().any(|d| d == PERCEPTION_DEPT) && u.email.is_some())
        .map(|u| (u.open_id.clone(), u.email.clone().unwrap_or_default()))
        .expect("someone in Perception");
    let rules = format!("{ZHANG_WEI_EMAIL},{PERCEPTION_DEPT},!{BAI_XUE}");
    let s = McpServer::start(&sbx, &["--allow-recipients", &rules, "--confirm", "none"]).await;
    // An email rule allows the person by open_id too; a department rule its members by
    // email or open_id.
    for to in [ZHANG_WEI, ZHANG_WEI_EMAIL, &in_dept.0, &in_dept.1] {
        s.ok("send_message", json!({"to": to, "text": "hi"})).await;
    }
    let text = s
        .err("send_message", json!({"to": MA_CHAO, "text": "hi"}))
        .await;
    assert!(text.contains("not in the allow-list"), "{text}");
    let text = s
        .err("send_message", json!({"to": BAI_XUE, "text": "hi"}))
        .await;
    assert!(text.contains(&format!("denied by `!{BAI_XUE}`")), "{text}");
}

#[tokio::test]
async fn the_send_budget_refuses_beyond_it_and_says_when_it_refills() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &["--send-budget", "2/h", "--confirm", "none"]).await;
    // A send Lark refuses (the bot is not in that chat) spends nothing.
    let refused = s
        .err("send_message", json!({"to": HR_PRIVATE_CHAT, "text": "x"}))
        .await;
    assert!(refused.contains("230002"), "{refused}");
    for i in 0..2 {
        s.ok(
            "send_message",
            json!({"to": ALL_HANDS_CHAT, "text": format!("n{i}")}),
        )
        .await;
    }
    sbx.state().clear_requests();
    let text = s
        .err(
            "send_message",
            json!({"to": ALL_HANDS_CHAT, "text": "one more"}),
        )
        .await;
    assert!(text.contains("send budget (2/h"), "{text}");
    // A sliding hour from the first send: about an hour away.
    assert!(
        text.contains("possible in 59 min") || text.contains("possible in 1 h 0 min"),
        "{text}"
    );
    assert_eq!(requests(&sbx), Vec::<String>::new());
    // Changes that send nothing are not counted.
    let msg = message_in(&sbx, &s, ALL_HANDS_CHAT).await;
    s.ok("add_reaction", json!({"message_id": msg, "emoji": "OK"}))
        .await;
    let status = s.ok("get_app_status", json!({})).await;
    assert_eq!(
        status["guard_rails"]["send_budget"], "2/h (0 left now)",
        "{status}"
    );
}

#[tokio::test]
async fn http_sessions_each_have_their_own_budget_inside_the_servers() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(
        &sbx.base,
        &[
            "--send-budget",
            "3/h",
            "--session-send-budget",
            "2/h",
            "--confirm",
            "none",
        ],
    )
    .await;
    let mut a = srv.mcp();
    a.connect("2025-11-25").await;
    let mut b = srv.mcp();
    b.connect("2025-11-25").await;
    let send = json!({"to": ALL_HANDS_CHAT, "text": "hi"});
    let is_error = |r: &Value| r["isError"] == true;
    assert!(!is_error(&a.call("send_message", send.clone()).await));
    assert!(!is_error(&a.call("send_message", send.clone()).await));
    let third = a.call("send_message", send.clone()).await;
    assert!(
        text_of_json(&third).contains("session's send budget (2/h"),
        "{third}"
    );
    assert!(!is_error(&b.call("send_message", send.clone()).await));
    let fourth = b.call("send_message", send.clone()).await;
    assert!(
        text_of_json(&fourth).contains("server's send budget (3/h"),
        "{fourth}"
    );
}

fn text_of_json(result: &Value) -> String {
    common::http::text(result)
}

#[tokio::test]
async fn destructive_calls_ask_the_person_first() {
    let sbx = Sbx::start().await;
    let events = Events::default();
    let s = McpServer::start_with(&sbx, &[], &[], events.clone()).await;
    // Accept: the recall runs, after the person saw what it does.
    let sent = s
        .ok(
            "send_message",
            json!({"to": ALL_HANDS_CHAT, "text": "oops"}),
        )
        .await;
    let id = sent["message_id"].as_str().unwrap_or_default().to_string();
    assert!(
        events.snapshot().elicitations.is_empty(),
        "sends are not destructive"
    );
    s.ok("recall_message", json!({"message_id": id})).await;
    let asked = events.snapshot().elicitations;
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].contains("Recall") && asked[0].contains(&id),
        "{asked:?}"
    );
    assert!(asked[0].contains("cannot be undone"), "{asked:?}");
    let stored = sbx.state().messages(Some(ALL_HANDS_CHAT));
    assert!(stored.iter().any(|m| m.message_id == id && m.deleted));

    // Decline and cancel: nothing happens, and the result says so.
    let chat = bots_chat(&s).await;
    for (answer, says) in [(Answer::Decline, "declined"), (Answer::Cancel, "dismissed")] {
        events.answer(answer);
        sbx.state().clear_requests();
        let text = s.err("dissolve_chat", json!({"chat_id": chat})).await;
        assert!(
            text.contains(says) && text.contains("Nothing was sent"),
            "{text}"
        );
        assert!(
            !requests(&sbx).iter().any(|r| r.starts_with("DELETE")),
            "{:?}",
            requests(&sbx)
        );
        assert!(
            sbx.state()
                .chats()
                .iter()
                .any(|c| c.chat_id == chat && !c.dissolved)
        );
    }
    assert_eq!(events.snapshot().elicitations.len(), 3);
}

#[tokio::test]
async fn a_client_that_cannot_ask_is_refused_unless_confirm_is_none() {
    let sbx = Sbx::start().await;
    let s = McpServer::start_with(&sbx, &[], &[], Events::with_answer(Answer::CannotAsk)).await;
    let chat = bots_chat(&s).await;
    let text = s.err("dissolve_chat", json!({"chat_id": chat})).await;
    assert!(
        text.contains("--confirm none") && text.contains("elicitation"),
        "{text}"
    );
    assert!(
        sbx.state()
            .chats()
            .iter()
            .any(|c| c.chat_id == chat && !c.dissolved)
    );
    // Writes that are not destructive need no confirmation by default.
    s.ok("send_message", json!({"to": ALL_HANDS_CHAT, "text": "hi"}))
        .await;
    drop(s);
    let s = McpServer::start_with(
        &sbx,
        &["--confirm", "none"],
        &[],
        Events::with_answer(Answer::CannotAsk),
    )
    .await;
    s.ok("dissolve_chat", json!({"chat_id": chat})).await;
    assert!(
        !sbx.state()
            .chats()
            .iter()
            .any(|c| c.chat_id == chat && !c.dissolved)
    );
}

#[tokio::test]
async fn confirm_writes_asks_before_a_send_and_shows_what_it_sends() {
    let sbx = Sbx::start().await;
    let events = Events::default();
    let s = McpServer::start_with(&sbx, &["--confirm", "writes"], &[], events.clone()).await;
    s.ok(
        "send_message",
        json!({"to": ZHANG_WEI, "text": "lunch at noon?"}),
    )
    .await;
    let asked = events.snapshot().elicitations;
    assert_eq!(asked.len(), 1, "{asked:?}");
    // Whom (with the resolved name) and what.
    assert!(
        asked[0].contains("张伟") && asked[0].contains("lunch at noon?"),
        "{asked:?}"
    );
    events.answer(Answer::Decline);
    let before = sbx.state().messages(Some(ALL_HANDS_CHAT)).len();
    s.err("send_message", json!({"to": ALL_HANDS_CHAT, "text": "no"}))
        .await;
    assert_eq!(sbx.state().messages(Some(ALL_HANDS_CHAT)).len(), before);
}

/// 2026-07-28 has no server-to-client requests: the call answers `input_required` with an
/// elicitation, and the retry carrying the answer and the request state runs it.
#[tokio::test]
async fn stateless_clients_confirm_through_input_required() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(&sbx.base, &[]).await;
    let mut c = srv.mcp();
    c.protocol = Some("2026-07-28".into());
    let meta = |elicitation: bool| {
        let caps = if elicitation {
            json!({"elicitation": {}})
        } else {
            json!({})
        };
        json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": caps,
            "io.modelcontextprotocol/clientInfo": {"name": "guard-tests", "version": "0"}
        })
    };
    let made = send(
        &c,
        "create_chat",
        json!({"name": "create_chat", "arguments": {"name": "to dissolve", "members": [ZHANG_WEI]},
               "_meta": meta(false)}),
    )
    .await;
    let chat = made["result"]["structuredContent"]["chat_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{made}"))
        .to_string();
    let exists = || {
        sbx.state()
            .chats()
            .iter()
            .any(|c| c.chat_id == chat && !c.dissolved)
    };
    let call = |extra: Value, elicitation: bool| {
        let mut p = json!({"name": "dissolve_chat", "arguments": {"chat_id": chat},
                           "_meta": meta(elicitation)});
        if let (Some(p), Value::Object(e)) = (p.as_object_mut(), extra) {
            p.extend(e);
        }
        p
    };
    // Without elicitation: refused, with the flag named.
    let r = send(&c, "dissolve_chat", call(json!({}), false)).await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(r.to_string().contains("--confirm none"), "{r}");

    let r = send(&c, "dissolve_chat", call(json!({}), true)).await;
    let result = &r["result"];
    assert_eq!(result["resultType"], "input_required", "{r}");
    assert_eq!(
        result["inputRequests"]["confirm"]["method"], "elicitation/create",
        "{r}"
    );
    let state = result["requestState"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!state.is_empty(), "{r}");
    assert!(exists());

    // A made-up state is not an answer: it is asked again, nothing runs.
    let forged =
        json!({"inputResponses": {"confirm": {"action": "accept"}}, "requestState": "forged"});
    let r = send(&c, "dissolve_chat", call(forged, true)).await;
    assert_eq!(r["result"]["resultType"], "input_required", "{r}");
    // Declined: nothing runs (the state is used up either way).
    let declined = json!({"inputResponses": {"confirm": {"action": "decline"}}, "requestState": r["result"]["requestState"]});
    let r = send(&c, "dissolve_chat", call(declined, true)).await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(exists());
    // Accepted with the state it was given: the chat is dissolved.
    let accepted =
        json!({"inputResponses": {"confirm": {"action": "accept"}}, "requestState": state});
    let r = send(&c, "dissolve_chat", call(accepted, true)).await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    assert!(!exists());
}

async fn send(c: &common::http::McpClient, tool: &str, params: Value) -> Value {
    let id = c.next_id();
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
    let rb = c
        .post(&body)
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool);
    c.send(rb).await.response(id).clone()
}

#[tokio::test]
async fn dry_runs_show_the_exact_request_and_send_nothing() {
    let sbx = Sbx::start().await;
    let events = Events::default();
    let s = McpServer::start_with(&sbx, &["--confirm", "writes"], &[], events.clone()).await;
    let msg = message_in(&sbx, &s, ALL_HANDS_CHAT).await;
    sbx.state().clear_requests();
    let r = s
        .call(
            "send_message",
            json!({"to": ALL_HANDS_CHAT, "markdown": "**ship** it @all", "dry_run": true}),
        )
        .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    let v = r.structured_content.unwrap_or_default();
    assert_eq!(v["dry_run"], true, "{v}");
    assert_eq!(v["request"]["method"], "POST", "{v}");
    assert_eq!(v["request"]["query"]["receive_id_type"], "chat_id", "{v}");
    assert_eq!(v["request"]["body"]["msg_type"], "post", "{v}");
    // The post as Lark would get it, the mention in it.
    let post = v["request"]["body"]["content"].to_string();
    assert!(
        post.contains("ship") && post.contains("\"user_id\":\"all\""),
        "{v}"
    );
    assert!(v["bytes"].as_u64().is_some_and(|b| b > 0), "{v}");
    // Every write tool: nothing reaches Lark, and nobody is asked.
    let table = [
        ("reply_message", json!({"message_id": msg, "text": "x"})),
        (
            "forward_message",
            json!({"message_id": msg, "to": RANDOM_CHAT}),
        ),
        ("edit_message", json!({"message_id": msg, "text": "x"})),
        ("recall_message", json!({"message_id": msg})),
        ("add_reaction", json!({"message_id": msg, "emoji": "OK"})),
        (
            "remove_reaction",
            json!({"message_id": msg, "reaction_id": "r"}),
        ),
        ("pin_message", json!({"message_id": msg})),
        ("unpin_message", json!({"message_id": msg})),
        ("create_chat", json!({"name": "x", "members": [ZHANG_WEI]})),
        ("update_chat", json!({"chat_id": RANDOM_CHAT, "name": "x"})),
        ("dissolve_chat", json!({"chat_id": RANDOM_CHAT})),
        (
            "add_chat_members",
            json!({"chat_id": RANDOM_CHAT, "members": [ZHANG_WEI]}),
        ),
        (
            "remove_chat_members",
            json!({"chat_id": RANDOM_CHAT, "members": [ZHANG_WEI]}),
        ),
    ];
    for (tool, mut args) in table {
        args["dry_run"] = json!(true);
        let r = s.call(tool, args.clone()).await;
        assert_eq!(r.is_error, Some(false), "{tool}: {}", text_of(&r));
        assert_eq!(
            r.structured_content.unwrap_or_default()["dry_run"],
            true,
            "{tool}"
        );
    }
    assert_eq!(requests(&sbx), Vec::<String>::new());
    assert!(events.snapshot().elicitations.is_empty());
    // A mention by email is resolved (a read) into the preview; still nothing written.
    let r = s
        .call(
            "send_message",
            json!({"to": ALL_HANDS_CHAT, "text": format!("hi @{ZHANG_WEI_EMAIL}"), "dry_run": true}),
        )
        .await;
    let v = r.structured_content.unwrap_or_default();
    assert!(
        v["request"]["body"]["content"]
            .to_string()
            .contains(ZHANG_WEI),
        "{v}"
    );
    assert!(
        requests(&sbx)
            .iter()
            .all(|r| !r.contains("/im/v1/messages")),
        "{:?}",
        requests(&sbx)
    );
    let r = s
        .call(
            "send_message",
            json!({"to": ALL_HANDS_CHAT, "text": "x", "dry_run": "yes"}),
        )
        .await;
    assert!(text_of(&r).contains("`dry_run`"), "{}", text_of(&r));
}

#[cfg(unix)]
#[tokio::test]
async fn the_audit_log_records_every_write_attempt_without_bodies() {
    use std::os::unix::fs::PermissionsExt;
    let sbx = Sbx::start().await;
    let dir = std::env::temp_dir().join(format!("lark-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("audit.jsonl");
    let p = path.to_string_lossy().to_string();
    let s = McpServer::start(
        &sbx,
        &[
            "--audit-log",
            &p,
            "--allow-recipients",
            ALL_HANDS_CHAT,
            "--confirm",
            "none",
        ],
    )
    .await;
    let sent = s
        .ok(
            "send_message",
            json!({"to": ALL_HANDS_CHAT, "text": "secret plans"}),
        )
        .await;
    s.err(
        "send_message",
        json!({"to": RANDOM_CHAT, "text": "secret plans"}),
    )
    .await;
    s.call(
        "send_message",
        json!({"to": ALL_HANDS_CHAT, "text": "secret plans", "dry_run": true}),
    )
    .await;
    s.ok("get_user", json!({"user_id": ZHANG_WEI})).await;
    let mode = std::fs::metadata(&path)
        .expect("the log exists")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(
        !text.contains("secret plans"),
        "no bodies by default: {text}"
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(lines.len(), 3, "writes only: {text}");
    let results: Vec<&str> = lines
        .iter()
        .map(|l| l["result"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(results, ["ok", "refused", "dry_run"]);
    assert_eq!(lines[0]["tool"], "send_message");
    assert_eq!(lines[0]["identity"], "bot");
    assert_eq!(
        lines[0]["receivers"],
        json!([format!("chat {ALL_HANDS_CHAT}")])
    );
    assert_eq!(lines[0]["message_id"], sent["message_id"]);
    assert!(
        lines[0]["log_id"].as_str().is_some_and(|l| !l.is_empty()),
        "{text}"
    );
    assert!(
        lines[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("Refused")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["time"].as_str().is_some_and(|t| t.ends_with('Z')))
    );
    drop(s);

    // With --audit-bodies the request is kept too.
    let s = McpServer::start(
        &sbx,
        &["--audit-log", &p, "--audit-bodies", "--confirm", "none"],
    )
    .await;
    s.ok(
        "send_message",
        json!({"to": ALL_HANDS_CHAT, "text": "kept this time"}),
    )
    .await;
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(text.lines().count(), 4, "appended: {text}");
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.contains("kept this time")),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
