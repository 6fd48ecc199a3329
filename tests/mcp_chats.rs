//! The chats toolset end to end: the real binary over stdio (rmcp client), Lark played by an
//! in-process sandbox with the demo org. Listing, searching and reading chats, creating,
//! changing and dissolving them, share links and members — each checked at the sandbox —
//! plus the typical Lark errors in band and the 50-member limit checked before any call.

mod common;

use common::im::*;
use common::mcp::McpServer;
use common::*;
use lark_mcp_server::sandbox::Seed;
use serde_json::{Value, json};

/// A public chat the bot is not in (added to the demo org by [`seed_with_forum`]).
const FORUM_CHAT: &str = "oc_9d1f0a2b3c4d5e6f708192a3b4c5d6e7";

async fn setup() -> (Sbx, McpServer) {
    let sbx = Sbx::start().await;
    let server = McpServer::start(&sbx, &[]).await;
    (sbx, server)
}

/// The demo org plus a public chat without the bot.
fn seed_with_forum() -> Seed {
    let mut s = seed();
    s.chats.push(
        serde_json::from_value(json!({
            "chat_id": FORUM_CHAT,
            "name": "Open Robotics Forum",
            "description": "public forum for robotics enthusiasts",
            "owner": WANG_LEI,
            "chat_type": "public",
            "chat_mode": "group",
            "bot_member": false,
            "members": [WANG_LEI, ZHANG_WEI, LI_NA],
            "created_ago_secs": 86_400,
        }))
        .expect("a chat seed"),
    );
    s
}

/// `{chat_id, name, description, owner}` as list_chats and search_chats print a chat.
fn brief(sbx: &Sbx, chat_id: &str, owner_name: &str) -> Value {
    let c = chat(sbx, chat_id);
    json!({
        "chat_id": chat_id,
        "name": c.name,
        "description": c.description,
        "owner": {"id": c.owner, "name": owner_name},
    })
}

/// Creates a chat through the tool with these members; returns its id.
async fn create(s: &McpServer, name: &str, members: &[&str]) -> String {
    let out = s
        .ok("create_chat", json!({"name": name, "members": members}))
        .await;
    str_of(&out, "chat_id").to_string()
}

// ---- reading --------------------------------------------------------------------------------------

#[tokio::test]
async fn list_chats_lists_the_bots_nine_group_chats_oldest_first_with_owner_names() {
    let (sbx, s) = setup().await;
    let out = s.ok("list_chats", json!({})).await;
    let expected = json!({"chats": [
        brief(&sbx, ALL_HANDS_CHAT, "林晓雯"),
        brief(&sbx, RND_CENTER_CHAT, "陈建国"),
        brief(&sbx, SALES_MARKETING_CHAT, "杨帆"),
        brief(&sbx, HR_DEPT_CHAT, "朱丽"),
        brief(&sbx, RND_WEEKLY_CHAT, "刘洋"),
        brief(&sbx, SALES_WINS_CHAT, "杨帆"),
        brief(&sbx, PERCEPTION_CHAT, "张伟"),
        brief(&sbx, INCIDENT_CHAT, "罗斌"),
        brief(&sbx, RANDOM_CHAT, "林晓雯"),
    ]});
    assert_eq!(out, expected);
    assert!(
        !out.to_string().contains(HR_PRIVATE_CHAT),
        "the bot is not in HR private"
    );
    // One page of up to 100, and one batch lookup for the owners' names.
    let q = &recorded(&sbx, "list_chats")[0].query;
    assert!(q.contains("page_size=100"), "{q}");
    assert_eq!(sbx.state().count("list_chats"), 1);
}

#[tokio::test]
async fn list_chats_pages_with_page_size_and_page_token() {
    let (_sbx, s) = setup().await;
    let first = s.ok("list_chats", json!({"page_size": 4})).await;
    assert_eq!(first["chats"].as_array().map(Vec::len), Some(4));
    let token = str_of(&first, "next_page_token").to_string();
    let rest = s
        .ok("list_chats", json!({"page_size": 5, "page_token": token}))
        .await;
    assert_eq!(rest["chats"].as_array().map(Vec::len), Some(5));
    assert!(rest.get("next_page_token").is_none(), "{rest}");
    let all = s
        .ok("list_chats", json!({"page_size": 2, "all_pages": true}))
        .await;
    let mut joined = first["chats"].as_array().unwrap().clone();
    joined.extend(rest["chats"].as_array().unwrap().iter().cloned());
    assert_eq!(all["chats"], json!(joined));
}

#[tokio::test]
async fn search_chats_finds_by_name_or_description_among_the_bots_and_public_chats() {
    let sbx = Sbx::with_seed(seed_with_forum()).await;
    let s = McpServer::start(&sbx, &[]).await;
    let by_name = s.ok("search_chats", json!({"query": "standup"})).await;
    assert_eq!(
        by_name,
        json!({"chats": [brief(&sbx, PERCEPTION_CHAT, "张伟")]})
    );
    let by_description = s.ok("search_chats", json!({"query": "部门群"})).await;
    assert_eq!(
        by_description,
        json!({"chats": [
            brief(&sbx, RND_CENTER_CHAT, "陈建国"),
            brief(&sbx, SALES_MARKETING_CHAT, "杨帆"),
            brief(&sbx, HR_DEPT_CHAT, "朱丽"),
        ]})
    );
    // A public chat is found though the bot is not in it (and list_chats leaves it out).
    let public = s.ok("search_chats", json!({"query": "FORUM"})).await;
    assert_eq!(public, json!({"chats": [brief(&sbx, FORUM_CHAT, "王磊")]}));
    let listed = s.ok("list_chats", json!({})).await;
    assert!(!listed.to_string().contains(FORUM_CHAT));
    // A private chat without the bot is not.
    let private = ok_lenient(&s, "search_chats", json!({"query": "HR private"})).await;
    assert_eq!(private, json!({"chats": []}));
    let empty = s.err("search_chats", json!({"query": "  "})).await;
    assert_eq!(empty, "Invalid argument `query`: must not be empty");
    assert_eq!(sbx.state().count("search_chats"), 4);
}

#[tokio::test]
async fn get_chat_reports_owner_type_counts_and_that_the_bot_is_a_member() {
    let (sbx, s) = setup().await;
    let out = s.ok("get_chat", json!({"chat_id": ALL_HANDS_CHAT})).await;
    let c = chat(&sbx, ALL_HANDS_CHAT);
    assert_eq!(
        out,
        json!({
            "chat_id": ALL_HANDS_CHAT,
            "name": "全员群 Northwind All Hands",
            "description": c.description,
            "owner": {"id": LIN_XIAOWEN, "name": "林晓雯"},
            "chat_type": "public",
            "user_count": 46,
            "bot_count": 1,
            "bot_is_member": true,
        })
    );
    assert_eq!(c.members.len(), 46);
    assert_eq!(sbx.state().count("is_in_chat"), 1);
}

#[tokio::test]
async fn get_chat_of_a_public_chat_without_the_bot_says_so() {
    let sbx = Sbx::with_seed(seed_with_forum()).await;
    let s = McpServer::start(&sbx, &[]).await;
    let out = s.ok("get_chat", json!({"chat_id": FORUM_CHAT})).await;
    assert_eq!(
        out,
        json!({
            "chat_id": FORUM_CHAT,
            "name": "Open Robotics Forum",
            "description": "public forum for robotics enthusiasts",
            "chat_type": "public",
            "user_count": 3,
            "bot_count": 0,
            "bot_is_member": false,
        })
    );
}

#[tokio::test]
async fn get_chat_of_a_private_chat_without_the_bot_is_232011_with_log_id() {
    let (_sbx, s) = setup().await;
    let text = s.err("get_chat", json!({"chat_id": HR_PRIVATE_CHAT})).await;
    assert_lark_error(&text, "get chat", 232011, 400);
    let members = s
        .err("list_chat_members", json!({"chat_id": HR_PRIVATE_CHAT}))
        .await;
    assert_lark_error(&members, "list chat members", 232011, 400);
}

#[tokio::test]
async fn list_chat_members_names_every_member_with_the_total() {
    let (sbx, s) = setup().await;
    let out = s
        .ok("list_chat_members", json!({"chat_id": PERCEPTION_CHAT}))
        .await;
    assert_eq!(
        out,
        json!({
            "members": [
                {"id": ZHANG_WEI, "name": "张伟"},
                {"id": LI_NA, "name": "李娜"},
                {"id": SUN_HAO, "name": "孙浩"},
                {"id": "ou_ea003336f23816d161d56f63fd6ab8fd", "name": "欧阳晓明"},
                {"id": "ou_02834c642bb18eb95705382bf14a77f3", "name": "Priya Natarajan"},
                {"id": WANG_LEI, "name": "王磊"},
                {"id": "ou_3f08b369b3347edd61f18f1c3bce212e", "name": "田野"},
            ],
            "total": 7,
        })
    );
    let q = &recorded(&sbx, "list_chat_members")[0].query;
    assert!(q.contains("member_id_type=open_id"), "{q}");
}

#[tokio::test]
async fn get_chat_link_is_a_join_link_valid_for_a_week_unless_permanent() {
    let (sbx, s) = setup().await;
    let week = s
        .ok("get_chat_link", json!({"chat_id": PERCEPTION_CHAT}))
        .await;
    assert!(
        str_of(&week, "share_link")
            .starts_with("https://applink.feishu.cn/client/chat/chatter/add_by_link?link_token="),
        "{week}"
    );
    let expires = chrono::DateTime::parse_from_rfc3339(str_of(&week, "expires"))
        .expect("an ISO time")
        .timestamp();
    let in_a_week = chrono::Utc::now().timestamp() + 7 * 86_400;
    assert!((expires - in_a_week).abs() <= 5, "{week}");
    let forever = s
        .ok(
            "get_chat_link",
            json!({"chat_id": PERCEPTION_CHAT, "validity": "permanently"}),
        )
        .await;
    assert!(forever.get("expires").is_none(), "{forever}");
    assert_ne!(forever["share_link"], week["share_link"]);
    let bodies: Vec<Value> = recorded(&sbx, "get_chat_share_link")
        .into_iter()
        .map(|r| r.body.expect("a JSON body"))
        .collect();
    assert_eq!(
        bodies,
        [
            json!({"validity_period": "week"}),
            json!({"validity_period": "permanently"})
        ]
    );
}

// ---- creating and changing ------------------------------------------------------------------------

#[tokio::test]
async fn create_chat_with_members_by_email_creates_a_group_the_bot_owns() {
    let (sbx, s) = setup().await;
    let out = s
        .ok(
            "create_chat",
            json!({
                "name": "Q4 规划 planning",
                "description": "Q4 roadmap",
                "members": [ZHANG_WEI_EMAIL, LI_NA_EMAIL, WANG_LEI],
            }),
        )
        .await;
    let id = str_of(&out, "chat_id").to_string();
    assert_eq!(out, json!({"chat_id": id, "name": "Q4 规划 planning"}));
    let c = chat(&sbx, &id);
    assert_eq!(c.members, [ZHANG_WEI, LI_NA, WANG_LEI]);
    assert_eq!(c.owner, APP_ID, "the bot owns it");
    assert_eq!(
        (c.description.as_str(), c.chat_type.as_str()),
        ("Q4 roadmap", "private")
    );
    assert!(c.bot_member && c.created_by_bot);
    // Both emails were resolved in one lookup; the create carried a uuid.
    assert_eq!(sbx.state().count("lookup_user_by_email_or_mobile"), 1);
    let create = &recorded(&sbx, "create_chat")[0];
    assert!(create.query.contains("uuid="), "{}", create.query);
    assert_eq!(
        create.body.as_ref().unwrap()["user_id_list"],
        json!([ZHANG_WEI, LI_NA, WANG_LEI])
    );

    // It is listed and readable like any other chat of the bot's.
    let listed = s.ok("list_chats", json!({})).await;
    assert_eq!(
        listed["chats"].as_array().unwrap().last().unwrap()["chat_id"],
        id
    );
    let detail = s.ok("get_chat", json!({"chat_id": id})).await;
    assert_eq!(
        (&detail["user_count"], &detail["bot_is_member"]),
        (&json!(3), &json!(true))
    );
}

#[tokio::test]
async fn create_chat_with_an_owner_and_public_type() {
    let (sbx, s) = setup().await;
    let out = s
        .ok(
            "create_chat",
            json!({"name": "Open demo", "members": [LI_NA], "owner": SUN_HAO_EMAIL, "chat_type": "public"}),
        )
        .await;
    let c = chat(&sbx, str_of(&out, "chat_id"));
    assert_eq!(c.owner, SUN_HAO);
    assert_eq!(c.chat_type, "public");
    assert_eq!(c.members, [SUN_HAO, LI_NA]);
}

#[tokio::test]
async fn more_than_50_members_are_refused_before_anything_is_sent() {
    let (sbx, s) = setup().await;
    let many: Vec<String> = (0..51).map(|i| format!("ou_{i:032x}")).collect();
    let chats_before = sbx.state().chats().len();
    let text = s
        .err("create_chat", json!({"name": "too big", "members": many}))
        .await;
    assert_eq!(
        text,
        "Invalid argument `members`: at most 50 per call, got 51"
    );
    let add = s
        .err(
            "add_chat_members",
            json!({"chat_id": PERCEPTION_CHAT, "members": many}),
        )
        .await;
    assert_eq!(
        add,
        "Invalid argument `members`: at most 50 per call, got 51"
    );
    let remove = s
        .err(
            "remove_chat_members",
            json!({"chat_id": PERCEPTION_CHAT, "members": many}),
        )
        .await;
    assert_eq!(
        remove,
        "Invalid argument `members`: at most 50 per call, got 51"
    );
    assert_eq!(sbx.state().chats().len(), chats_before);
    for endpoint in [
        "create_chat",
        "add_chat_members",
        "remove_chat_members",
        "lookup_user_by_email_or_mobile",
    ] {
        assert_eq!(sbx.state().count(endpoint), 0, "{endpoint}");
    }
    // Exactly 50 is fine.
    let fifty: Vec<&str> = many[..50].iter().map(String::as_str).collect();
    let out = s
        .ok(
            "add_chat_members",
            json!({"chat_id": PERCEPTION_CHAT, "members": fifty}),
        )
        .await;
    assert_eq!(out["not_changed"].as_array().map(Vec::len), Some(50));
}

#[tokio::test]
async fn an_email_that_matches_no_one_is_refused_naming_it_and_no_chat_is_created() {
    let (sbx, s) = setup().await;
    let text = s
        .err(
            "create_chat",
            json!({"name": "x", "members": [ZHANG_WEI_EMAIL, "ghost@northwind.example", MA_CHAO_EMAIL]}),
        )
        .await;
    assert_eq!(
        text,
        format!(
            "Invalid argument `members`: no visible person for ghost@northwind.example, {MA_CHAO_EMAIL}; nothing was changed"
        )
    );
    assert_eq!(sbx.state().count("create_chat"), 0);
    let bad_id = s
        .err("create_chat", json!({"name": "x", "members": ["zhangwei"]}))
        .await;
    assert_eq!(
        bad_id,
        "Invalid argument `members`: `zhangwei` is neither an open_id (ou_…) nor an email"
    );
}

#[tokio::test]
async fn update_chat_changes_name_description_and_owner_by_email() {
    let (sbx, s) = setup().await;
    let id = create(&s, "before", &[ZHANG_WEI, LI_NA]).await;
    let out = s
        .ok(
            "update_chat",
            json!({"chat_id": id, "name": "after 之后", "description": "renamed"}),
        )
        .await;
    assert_eq!(out, json!({"chat_id": id, "ok": true}));
    let c = chat(&sbx, &id);
    assert_eq!(
        (c.name.as_str(), c.description.as_str()),
        ("after 之后", "renamed")
    );
    let put = &recorded(&sbx, "update_chat")[0];
    assert_eq!(put.method, "PUT");
    assert_eq!(
        put.body,
        Some(json!({"name": "after 之后", "description": "renamed"}))
    );

    s.ok("update_chat", json!({"chat_id": id, "owner": LI_NA_EMAIL}))
        .await;
    assert_eq!(chat(&sbx, &id).owner, LI_NA);
    let detail = s.ok("get_chat", json!({"chat_id": id})).await;
    assert_eq!(detail["owner"], json!({"id": LI_NA, "name": "李娜"}));

    let nothing = s.err("update_chat", json!({"chat_id": id})).await;
    assert_eq!(
        nothing,
        "Nothing to change: give name, description or owner."
    );
    assert_eq!(sbx.state().count("update_chat"), 2);
}

#[tokio::test]
async fn add_and_remove_chat_members_by_email_and_open_id() {
    let (sbx, s) = setup().await;
    let id = create(&s, "members", &[ZHANG_WEI]).await;
    let added = s
        .ok(
            "add_chat_members",
            json!({"chat_id": id, "members": [LI_NA_EMAIL, SUN_HAO, MA_CHAO]}),
        )
        .await;
    // The resigned person is reported, the others are in.
    assert_eq!(added, json!({"chat_id": id, "not_changed": [MA_CHAO]}));
    assert_eq!(chat(&sbx, &id).members, [ZHANG_WEI, LI_NA, SUN_HAO]);
    let add = &recorded(&sbx, "add_chat_members")[0];
    assert_eq!(add.method, "POST");
    assert!(add.query.contains("succeed_type=1"), "{}", add.query);

    let listed = s.ok("list_chat_members", json!({"chat_id": id})).await;
    assert_eq!(listed["total"], 3);

    let removed = s
        .ok(
            "remove_chat_members",
            json!({"chat_id": id, "members": [ZHANG_WEI_EMAIL, SUN_HAO]}),
        )
        .await;
    assert_eq!(removed, json!({"chat_id": id}));
    assert_eq!(chat(&sbx, &id).members, [LI_NA]);
    let remove = &recorded(&sbx, "remove_chat_members")[0];
    assert_eq!(remove.method, "DELETE");
    assert_eq!(remove.body, Some(json!({"id_list": [ZHANG_WEI, SUN_HAO]})));
}

#[tokio::test]
async fn removing_members_from_a_chat_the_bot_does_not_own_is_232017_in_band() {
    let (sbx, s) = setup().await;
    let text = s
        .err(
            "remove_chat_members",
            json!({"chat_id": PERCEPTION_CHAT, "members": [LI_NA]}),
        )
        .await;
    assert_lark_error(&text, "remove chat members", 232017, 400);
    assert!(
        chat(&sbx, PERCEPTION_CHAT)
            .members
            .contains(&LI_NA.to_string())
    );
    let dissolve = s
        .err("dissolve_chat", json!({"chat_id": PERCEPTION_CHAT}))
        .await;
    assert_lark_error(&dissolve, "dissolve chat", 232017, 400);
    assert!(!chat(&sbx, PERCEPTION_CHAT).dissolved);
}

#[tokio::test]
async fn dissolve_chat_deletes_the_chat_and_later_calls_are_232009_with_log_id() {
    let (sbx, s) = setup().await;
    let id = create(&s, "short-lived", &[ZHANG_WEI]).await;
    let out = s.ok("dissolve_chat", json!({"chat_id": id})).await;
    assert_eq!(out, json!({"chat_id": id, "ok": true}));
    assert!(chat(&sbx, &id).dissolved);
    assert_eq!(recorded(&sbx, "dissolve_chat")[0].method, "DELETE");

    let get = s.err("get_chat", json!({"chat_id": id})).await;
    assert_lark_error(&get, "get chat", 232009, 400);
    let send = s
        .err("send_message", json!({"to": id, "text": "anyone?"}))
        .await;
    assert_lark_error(&send, "send message", 232009, 400);
    assert!(sbx.state().messages(Some(&id)).is_empty());
    let again = s.err("dissolve_chat", json!({"chat_id": id})).await;
    assert_lark_error(&again, "dissolve chat", 232009, 400);
    let listed = s.ok("list_chats", json!({})).await;
    assert!(!listed.to_string().contains(&id), "gone from list_chats");
}

#[tokio::test]
async fn chat_ids_that_are_not_one_path_segment_are_refused_before_the_call() {
    let (sbx, s) = setup().await;
    let text = s.err("get_chat", json!({"chat_id": ".."})).await;
    assert!(text.starts_with("Invalid argument `chat_id`: "), "{text}");
    assert_eq!(sbx.state().count("get_chat"), 0);
}
