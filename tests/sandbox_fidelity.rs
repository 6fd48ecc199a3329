//! What the official SDKs depend on: booleans in any case, Lark's header capitalisation on
//! the wire, and the create-chat answer shape.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CHATS: &str = "/open-apis/im/v1/chats";
const DEPTS: &str = "/open-apis/contact/v3/departments";
const HANDBOOK_MSG: &str = "om_a3267e59f62217af7be9703b77ac624b";
const HANDBOOK_KEY: &str = "file_v3_00a87c967e20627217023993a7";

// ---- 1. booleans in the query ------------------------------------------------------------------

#[tokio::test]
async fn bool_queries_accept_any_case() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let children = format!("{DEPTS}/{RND_DEPT}/children");
    let all = HashSet::from([ROBOTICS_DEPT, INFRA_DEPT, PERCEPTION_DEPT, MOTION_DEPT]);
    let direct = HashSet::from([ROBOTICS_DEPT, INFRA_DEPT]);
    // lark-oapi (Python) sends str(True) / str(False).
    for (v, want) in [
        ("true", &all),
        ("True", &all),
        ("TRUE", &all),
        ("false", &direct),
        ("False", &direct),
        ("FALSE", &direct),
    ] {
        let r = s.get(&token, &children, &[("fetch_child", v)]).await;
        let got: HashSet<&str> = r.ok()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["open_department_id"].as_str().unwrap())
            .collect();
        assert_eq!(&got, want, "fetch_child={v}");
    }
    let r = s.get(&token, &children, &[("fetch_child", "yes")]).await;
    r.err(400, 99992402);

    for v in ["True", "tRuE"] {
        let r = s
            .post(
                &token,
                CHATS,
                &[("set_bot_manager", v)],
                &json!({"name": "Py", "owner_id": ZHANG_WEI}),
            )
            .await;
        let id = r.ok()["chat_id"].as_str().unwrap().to_string();
        let d = s.get(&token, &format!("{CHATS}/{id}"), &[]).await;
        assert_eq!(d.ok()["bot_manager_id_list"], json!([APP_ID]), "{v}");
    }
    let r = s
        .post(
            &token,
            CHATS,
            &[("set_bot_manager", "False")],
            &json!({"name": "Py", "owner_id": ZHANG_WEI}),
        )
        .await;
    let id = r.ok()["chat_id"].as_str().unwrap().to_string();
    let d = s.get(&token, &format!("{CHATS}/{id}"), &[]).await;
    assert_eq!(d.ok()["bot_manager_id_list"], json!([]));
}

// ---- 2. header names on the wire -----------------------------------------------------------------

/// One HTTP/1.1 request over a bare socket; returns the response head exactly as sent.
async fn raw_head(s: &Sbx, request: &str) -> String {
    let mut tcp = TcpStream::connect(s.sandbox.addr()).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tcp.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let end = text.find("\r\n\r\n").expect("a complete response head");
    text[..end].to_string()
}

fn header_names(head: &str) -> Vec<&str> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n))
        .collect()
}

#[tokio::test]
async fn response_headers_are_title_cased_on_the_wire() {
    let s = Sbx::start().await;
    let body = format!(r#"{{"app_id":"{APP_ID}","app_secret":"{APP_SECRET}"}}"#);
    let head = raw_head(
        &s,
        &format!(
            "POST {TENANT_TOKEN_PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    let names = header_names(&head);
    assert!(names.contains(&"X-Tt-Logid"), "{head}");
    assert!(names.contains(&"Content-Type"), "{head}");
    assert!(!names.contains(&"x-tt-logid"), "{head}");

    // Errors too: the SDK reads the code of a raw request's error body by Content-Type.
    let head = raw_head(
        &s,
        &format!("GET {CHATS} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 4"), "{head}");
    let names = header_names(&head);
    assert!(names.contains(&"X-Tt-Logid"), "{head}");
    assert!(names.contains(&"Content-Type"), "{head}");

    // Downloads carry their name in Content-Disposition.
    let token = s.token().await;
    let head = raw_head(
        &s,
        &format!(
            "GET {MESSAGES_PATH}/{HANDBOOK_MSG}/resources/{HANDBOOK_KEY}?type=file HTTP/1.1\r\n\
             Host: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let names = header_names(&head);
    assert!(names.contains(&"Content-Disposition"), "{head}");
    assert!(names.contains(&"X-Tt-Logid"), "{head}");
}

// ---- 3. the create-chat answer ------------------------------------------------------------------

#[tokio::test]
async fn chat_create_answers_without_get_only_fields() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s
        .post(
            &token,
            CHATS,
            &[("set_bot_manager", "true")],
            &json!({"name": "Shape", "owner_id": ZHANG_WEI, "user_id_list": [BAI_XUE]}),
        )
        .await;
    let d = r.ok().clone();
    for key in [
        "user_count",
        "bot_count",
        "chat_status",
        "user_manager_id_list",
        "bot_manager_id_list",
    ] {
        assert!(d.get(key).is_none(), "create must not report {key}: {d}");
    }
    for key in [
        "chat_id",
        "name",
        "owner_id",
        "owner_id_type",
        "chat_mode",
        "chat_type",
        "tenant_key",
        "external",
    ] {
        assert!(d.get(key).is_some(), "create must report {key}: {d}");
    }
    assert_eq!(d["name"], "Shape");
    // The same uuid replays the same shape.
    let again = s
        .post(
            &token,
            CHATS,
            &[("uuid", "u-1")],
            &json!({"name": "Once", "owner_id": ZHANG_WEI}),
        )
        .await;
    let first = again.ok().clone();
    let replay = s
        .post(
            &token,
            CHATS,
            &[("uuid", "u-1")],
            &json!({"name": "Once", "owner_id": ZHANG_WEI}),
        )
        .await;
    assert_eq!(replay.ok(), &first);
    assert!(first.get("user_count").is_none());
    // Get still reports the counts.
    let id = d["chat_id"].as_str().unwrap();
    let g = s.get(&token, &format!("{CHATS}/{id}"), &[]).await;
    assert_eq!(g.ok()["user_count"], "2");
    assert_eq!(g.ok()["bot_count"], "1");
    assert_eq!(g.ok()["chat_status"], "normal");
}
