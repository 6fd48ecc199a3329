//! What a new user meets in the first ten minutes, end to end against the sandbox: Lark
//! errors that stand alone, emoji keys in any case, ids sent as JSON numbers, an empty root
//! department that says where people are, a typed `card` schema, and a session DELETE the
//! official SDKs count as success.

mod common;

use common::http::{HttpServer, LATEST};
use common::im::{PERCEPTION_CHAT, bot_reactions};
use common::mcp::{McpServer, log_id_in};
use common::*;
use lark_mcp_server::sandbox::{FaultAction, FaultRule};
use serde_json::{Value, json};

/// A message in Perception standup, where the bot is a member.
const PERCEPTION_MESSAGE: &str = "om_117b26bdcda73c6a049555ae12ed3c99";

async fn setup() -> (Sbx, McpServer) {
    let sbx = Sbx::start().await;
    let server = McpServer::start(&sbx, &[]).await;
    (sbx, server)
}

#[tokio::test]
async fn an_unknown_lark_code_gives_a_self_contained_error() {
    let (sbx, s) = setup().await;
    sbx.state().add_fault(
        FaultRule::new(FaultAction::LarkError {
            code: 12345,
            msg: "something Lark has not documented".into(),
            status: 400,
        })
        .path("/open-apis/contact/v3/departments"),
    );
    let text = s
        .err("get_department", json!({"department_id": RND_DEPT}))
        .await;
    assert!(
        text.starts_with("get department failed: something Lark has not documented ("),
        "{text}"
    );
    assert!(
        text.contains("Lark code 12345, HTTP 400, log_id "),
        "{text}"
    );
    let log_id = log_id_in(&text);
    assert!(
        text.contains("Lark refused the request with code 12345."),
        "{text}"
    );
    assert!(
        text.contains("Check the arguments against the tool's description"),
        "{text}"
    );
    assert!(
        text.contains(
            "https://open.feishu.cn/document/server-docs/api-call-guide/generic-error-code"
        ),
        "{text}"
    );
    assert!(text.contains(&format!("quoting log id {log_id}")), "{text}");
    assert!(!text.contains("above"), "{text}");
}

#[tokio::test]
async fn add_reaction_takes_an_emoji_key_in_any_case() {
    let (sbx, s) = setup().await;
    let added = s
        .ok(
            "add_reaction",
            json!({"message_id": PERCEPTION_MESSAGE, "emoji": "thumbsup"}),
        )
        .await;
    assert_eq!(added["emoji"], "THUMBSUP");
    // Lark's mixed-case keys too.
    let added = s
        .ok(
            "add_reaction",
            json!({"message_id": PERCEPTION_MESSAGE, "emoji": "ONIT"}),
        )
        .await;
    assert_eq!(added["emoji"], "OnIt");
    let stored: Vec<String> = bot_reactions(&sbx, PERCEPTION_MESSAGE)
        .into_iter()
        .map(|r| r.emoji_type)
        .collect();
    assert_eq!(stored, ["THUMBSUP", "OnIt"]);

    let listed = s
        .ok(
            "list_reactions",
            json!({"message_id": PERCEPTION_MESSAGE, "emoji": "onit"}),
        )
        .await;
    let emojis: Vec<&Value> = listed["reactions"]
        .as_array()
        .map(|a| a.iter().map(|r| &r["emoji"]).collect())
        .unwrap_or_default();
    assert_eq!(emojis, [&json!("OnIt")]);
}

#[tokio::test]
async fn an_emoji_key_lark_does_not_know_says_how_keys_are_spelled() {
    let (_sbx, s) = setup().await;
    let text = s
        .err(
            "add_reaction",
            json!({"message_id": PERCEPTION_MESSAGE, "emoji": "thumbs_up"}),
        )
        .await;
    assert!(text.contains("Lark code 231001"), "{text}");
    assert!(text.contains("`thumbs_up`"), "{text}");
    assert!(text.contains("case-sensitive, e.g. THUMBSUP"), "{text}");
    assert!(text.contains("emojis-introduce"), "{text}");

    // `YEAH` and `Yeah` are two emoji: no guessing.
    let text = s
        .err(
            "add_reaction",
            json!({"message_id": PERCEPTION_MESSAGE, "emoji": "yeah"}),
        )
        .await;
    assert!(text.starts_with("Invalid argument `emoji`"), "{text}");
    assert!(text.contains("YEAH, Yeah"), "{text}");
}

#[tokio::test]
async fn ids_sent_as_json_numbers_are_taken_as_strings() {
    let (_sbx, s) = setup().await;
    let by_number = s
        .call("list_department_users", json!({"department_id": 0}))
        .await;
    assert_eq!(by_number.is_error, Some(false), "{by_number:?}");
    let by_string = s
        .call("list_department_users", json!({"department_id": "0"}))
        .await;
    assert_eq!(by_number.structured_content, by_string.structured_content);

    let by_number = s
        .ok("list_departments", json!({"parent_id": 0, "page_size": 5}))
        .await;
    let by_string = s
        .ok(
            "list_departments",
            json!({"parent_id": "0", "page_size": 5}),
        )
        .await;
    assert_eq!(by_number, by_string);

    let root = s.call("get_department", json!({"department_id": 0})).await;
    assert!(
        !common::mcp::text_of(&root).contains("expected a string"),
        "{root:?}"
    );
    let by_string = s
        .call("get_department", json!({"department_id": "0"}))
        .await;
    assert_eq!(root.is_error, by_string.is_error);
    assert_eq!(root.structured_content, by_string.structured_content);

    // Only integers: a float or a boolean is still a type error naming the field.
    for bad in [json!(0.5), json!(true)] {
        let text = s
            .err("list_department_users", json!({"department_id": bad}))
            .await;
        assert!(
            text.starts_with("Invalid argument `department_id`"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn an_empty_department_listing_says_where_people_are() {
    let (_sbx, s) = setup().await;
    let root = s
        .ok("list_department_users", json!({"department_id": "0"}))
        .await;
    assert!(root.get("users").is_none_or(|u| u == &json!([])), "{root}");
    let hint = root["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("list_departments with parent_id \"0\""),
        "{root}"
    );
    assert!(hint.contains("get_contact_scope"), "{root}");

    // A department with people has no hint.
    let perception = s
        .ok(
            "list_department_users",
            json!({"department_id": PERCEPTION_DEPT}),
        )
        .await;
    assert!(perception.get("hint").is_none(), "{perception}");
}

#[tokio::test]
async fn the_card_argument_has_a_type() {
    let (_sbx, s) = setup().await;
    let tools = s.tools().await;
    for name in ["send_message", "reply_message", "edit_message"] {
        let tool = tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} is listed"));
        let card = &tool.input_schema["properties"]["card"];
        assert_eq!(card["type"], "object", "{name}: {card}");
    }
    // A card given as a JSON string is refused naming the field.
    let text = s
        .err(
            "send_message",
            json!({"to": PERCEPTION_CHAT, "card": "{\"elements\": []}"}),
        )
        .await;
    assert!(text.starts_with("Invalid argument `card`"), "{text}");
}

#[tokio::test]
async fn a_session_delete_is_answered_200() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(&sbx.base, &[]).await;
    let mut c = srv.mcp();
    c.connect(LATEST).await;
    let r = c
        .request(reqwest::Method::DELETE)
        .send()
        .await
        .expect("DELETE completes");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap_or_default(), "");
    // The session is really gone.
    let (_, reply) = c.rpc("tools/list", json!({})).await;
    assert_eq!(reply.status, 404, "{}", reply.text);
}
