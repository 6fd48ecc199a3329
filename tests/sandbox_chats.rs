//! im/v1/chats against the default org: list, search, get, create / update / dissolve,
//! share links and members.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::{Value, json};

const CHATS: &str = "/open-apis/im/v1/chats";
/// Perception standup: private, owned by 张伟, 7 members.
const PERCEPTION_CHAT: &str = "oc_4191333043007bafa4e56877d72d329b";
/// The department chat of R&D.
const RND_CHAT: &str = "oc_56b040fdf2bf75f73d4f2092632e7193";
const ALL_HANDS_OWNER: &str = "ou_3aae29888a3b17ff80b7bb423fa914e6";
const LIU_YANG: &str = "ou_e5ea1be5cdb96ef281462003d7005cae";

fn chat_path(id: &str) -> String {
    format!("{CHATS}/{id}")
}

fn members_path(id: &str) -> String {
    format!("{CHATS}/{id}/members")
}

fn ids_of(data: &Value) -> Vec<String> {
    data["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["chat_id"].as_str().unwrap().to_string())
        .collect()
}

async fn list_all(s: &Sbx, token: &str, query: &[(&str, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let mut q = query.to_vec();
        q.push(("page_size", "4"));
        if !page_token.is_empty() {
            q.push(("page_token", &page_token));
        }
        let r = s.get(token, CHATS, &q).await;
        let d = r.ok().clone();
        out.extend(ids_of(&d));
        if d["has_more"] != true {
            return out;
        }
        page_token = d["page_token"].as_str().unwrap().to_string();
    }
}

/// A chat created by the bot with 张伟 as owner and Bai Xue as member.
async fn create_chat(s: &Sbx, token: &str, extra: Value) -> String {
    let mut body = json!({
        "name": "Sandbox project",
        "description": "created by the test",
        "owner_id": ZHANG_WEI,
        "user_id_list": [BAI_XUE],
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = s.post(token, CHATS, &[], &body).await;
    r.ok()["chat_id"].as_str().unwrap().to_string()
}

// ---- list, search, get ---------------------------------------------------------------------------

#[tokio::test]
async fn list_shows_the_bots_group_chats_in_both_orders() {
    let s = Sbx::start().await;
    let token = s.token().await;
    // A p2p chat appears after a DM, but is never listed.
    s.send_text(&token, "open_id", ZHANG_WEI, "hi").await.ok();
    let by_create = list_all(&s, &token, &[]).await;
    let expected: Vec<String> = {
        let mut chats: Vec<_> = s
            .state()
            .chats()
            .into_iter()
            .filter(|c| c.bot_member && c.chat_mode == "group")
            .collect();
        chats.sort_by_key(|c| c.create_time_ms);
        chats.into_iter().map(|c| c.chat_id).collect()
    };
    assert_eq!(expected.len(), 9);
    assert_eq!(by_create, expected);
    assert!(!by_create.contains(&HR_PRIVATE_CHAT.to_string()));

    // The chat written to last is the most active.
    s.send_text(&token, "chat_id", RND_CHAT, "activity")
        .await
        .ok();
    let by_active = list_all(&s, &token, &[("sort_type", "ByActiveTimeDesc")]).await;
    assert_eq!(by_active[0], RND_CHAT);
    assert_eq!(
        by_active.iter().collect::<HashSet<_>>(),
        expected.iter().collect::<HashSet<_>>()
    );

    let r = s.get(&token, CHATS, &[("page_size", "2")]).await;
    let item = &r.ok()["items"][0];
    for key in [
        "chat_id",
        "avatar",
        "name",
        "description",
        "owner_id",
        "owner_id_type",
        "tenant_key",
        "chat_status",
    ] {
        assert!(item.get(key).is_some(), "{key} in {item}");
    }
    assert_eq!(item["external"], false);
    let r = s.get(&token, CHATS, &[("sort_type", "ByName")]).await;
    assert_eq!(r.violated_field(), "sort_type");
    let r = s.get(&token, CHATS, &[("page_size", "101")]).await;
    assert_eq!(r.violated_field(), "page_size");
    let r = s
        .get(
            &token,
            CHATS,
            &[("user_id_type", "user_id"), ("page_size", "1")],
        )
        .await;
    assert_eq!(r.ok()["items"][0]["owner_id_type"], "user_id");
    assert!(
        !r.ok()["items"][0]["owner_id"]
            .as_str()
            .unwrap()
            .starts_with("ou_")
    );
}

#[tokio::test]
async fn search_matches_names_and_descriptions_case_insensitively() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let search = |q: &'static str| {
        let s = &s;
        let token = token.clone();
        async move {
            let r = s
                .get(&token, &format!("{CHATS}/search"), &[("query", q)])
                .await;
            ids_of(r.ok())
        }
    };
    assert_eq!(search("RANDOM").await, [RANDOM_CHAT]);
    assert_eq!(search("cats").await, [RANDOM_CHAT], "description matches");
    let rd = search("研发").await;
    assert!(
        rd.contains(&RND_CHAT.to_string()) && rd.len() >= 2,
        "{rd:?}"
    );
    // Private chats the bot is not in stay hidden; an empty query finds nothing.
    assert_eq!(search("HR private").await, Vec::<String>::new());
    assert_eq!(search("").await, Vec::<String>::new());

    // A public chat the bot left is still found.
    let chat = create_chat(
        &s,
        &token,
        json!({"chat_type": "public", "name": "Open Robotics Forum"}),
    )
    .await;
    let r = s
        .send_json(
            reqwest::Method::DELETE,
            &token,
            &members_path(&chat),
            &[("member_id_type", "app_id")],
            Some(&json!({"id_list": [APP_ID]})),
        )
        .await;
    r.ok();
    assert_eq!(search("robotics forum").await, std::slice::from_ref(&chat));
    assert!(!list_all(&s, &token, &[]).await.contains(&chat));
}

#[tokio::test]
async fn get_returns_detail_for_members_and_basics_for_public_outsiders() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s.get(&token, &chat_path(ALL_HANDS_CHAT), &[]).await;
    let d = r.ok();
    assert_eq!(d["owner_id"], ALL_HANDS_OWNER);
    assert_eq!(d["owner_id_type"], "open_id");
    assert_eq!(d["user_count"], "46");
    assert_eq!(d["bot_count"], "1");
    assert_eq!(d["chat_mode"], "group");
    assert_eq!(d["chat_type"], "public");
    assert_eq!(d["external"], false);
    assert_eq!(d["tenant_key"], "2f6e4b1a9c3d5e70");
    assert_eq!(d["chat_status"], "normal");
    assert_eq!(d["group_message_type"], "chat");
    assert!(d["name"].as_str().unwrap().contains("All Hands"));
    let r = s.get(&token, &chat_path(RND_CHAT), &[]).await;
    assert_eq!(r.ok()["chat_tag"], "department");
    let r = s
        .get(
            &token,
            &chat_path(PERCEPTION_CHAT),
            &[("user_id_type", "user_id")],
        )
        .await;
    assert_eq!(r.ok()["owner_id"], ZHANG_WEI_USER_ID);
    assert_eq!(r.ok()["owner_id_type"], "user_id");

    s.get(&token, &chat_path(HR_PRIVATE_CHAT), &[])
        .await
        .err(400, 232011);
    s.get(
        &token,
        &chat_path("oc_00000000000000000000000000000000"),
        &[],
    )
    .await
    .err(400, 232006);
    // A public chat the bot left: the basics only.
    let chat = create_chat(&s, &token, json!({"chat_type": "public"})).await;
    s.send_json(
        reqwest::Method::DELETE,
        &token,
        &members_path(&chat),
        &[("member_id_type", "app_id")],
        Some(&json!({"id_list": [APP_ID]})),
    )
    .await
    .ok();
    let r = s.get(&token, &chat_path(&chat), &[]).await;
    let d = r.ok();
    assert_eq!(d["name"], "Sandbox project");
    assert_eq!(d["bot_count"], "0");
    assert!(d.get("owner_id").is_none() && d.get("add_member_permission").is_none());
}

#[tokio::test]
async fn chat_reads_need_one_of_the_scopes_from_the_seed() {
    let s = Sbx::with_seed(seed_without_scopes(&[
        "im:chat",
        "im:chat:readonly",
        "im:chat:read",
    ]))
    .await;
    let token = s.token().await;
    let r = s.get(&token, CHATS, &[]).await;
    let v = r.err(400, 99991672);
    let subjects: Vec<&str> = v["permission_violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        [
            "im:chat",
            "im:chat:readonly",
            "im:chat:read",
            "im:chat.group_info:readonly"
        ]
    );
    // Members are readable through im:chat.members:read.
    s.get(&token, &members_path(ALL_HANDS_CHAT), &[]).await.ok();
}

// ---- create, update, dissolve --------------------------------------------------------------------

#[tokio::test]
async fn create_makes_the_bot_a_member_with_owner_and_users() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s
        .post(
            &token,
            CHATS,
            &[("set_bot_manager", "true")],
            &json!({"name": "Launch", "owner_id": ZHANG_WEI, "user_id_list": [BAI_XUE, ZHANG_WEI], "chat_type": "private"}),
        )
        .await;
    let d = r.ok().clone();
    let chat = d["chat_id"].as_str().unwrap().to_string();
    assert!(chat.starts_with("oc_"));
    assert_eq!(d["owner_id"], ZHANG_WEI);
    // Create answers without counts or manager lists; get reports them.
    let d = s.get(&token, &chat_path(&chat), &[]).await.ok().clone();
    assert_eq!(d["bot_manager_id_list"], json!([APP_ID]));
    assert_eq!(d["user_count"], "2");
    assert_eq!(d["bot_count"], "1");
    let r = s
        .get(&token, &format!("{}/is_in_chat", members_path(&chat)), &[])
        .await;
    assert_eq!(r.ok()["is_in_chat"], true);
    let r = s.get(&token, &members_path(&chat), &[]).await;
    let members: Vec<&str> = r.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member_id"].as_str().unwrap())
        .collect();
    assert_eq!(members, [ZHANG_WEI, BAI_XUE]);
    // The bot can talk there at once.
    s.send_text(&token, "chat_id", &chat, "welcome").await.ok();

    // Without an owner the bot owns it: no owner_id is reported.
    let r = s
        .post(&token, CHATS, &[], &json!({"name": "Bot-owned"}))
        .await;
    let id = r.ok()["chat_id"].as_str().unwrap().to_string();
    let d = s.get(&token, &chat_path(&id), &[]).await;
    assert!(d.ok().get("owner_id").is_none());
    assert_eq!(d.ok()["user_count"], "0");
    // user_id_type applies to owner_id and user_id_list.
    let r = s
        .post(
            &token,
            CHATS,
            &[("user_id_type", "user_id")],
            &json!({"owner_id": ZHANG_WEI_USER_ID}),
        )
        .await;
    assert_eq!(r.ok()["owner_id"], ZHANG_WEI_USER_ID);
}

#[tokio::test]
async fn create_validates_ids_and_limits() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let many: Vec<String> = (0..51).map(|i| format!("ou_{i:032x}")).collect();
    let r = s
        .post(&token, CHATS, &[], &json!({"user_id_list": many}))
        .await;
    assert_eq!(r.violated_field(), "user_id_list");
    let r = s
        .post(&token, CHATS, &[], &json!({"chat_type": "secret"}))
        .await;
    assert_eq!(r.violated_field(), "chat_type");
    let r = s
        .post(&token, CHATS, &[], &json!({"name": "x".repeat(61)}))
        .await;
    assert_eq!(r.violated_field(), "name");
    let r = s
        .post(&token, CHATS, &[("set_bot_manager", "yes")], &json!({}))
        .await;
    assert_eq!(r.violated_field(), "set_bot_manager");
    s.post(&token, CHATS, &[], &json!({"user_id_list": [MA_CHAO]}))
        .await
        .err(400, 232024);
    s.post(&token, CHATS, &[], &json!({"owner_id": XUE_MING}))
        .await
        .err(400, 232024);
    s.post(
        &token,
        CHATS,
        &[],
        &json!({"user_id_list": ["ou_00000000000000000000000000000000"]}),
    )
    .await
    .err(400, 99992351);
    s.post(
        &token,
        CHATS,
        &[],
        &json!({"bot_id_list": ["cli_someone_else"]}),
    )
    .await
    .err(400, 232001);
    s.post(&token, CHATS, &[], &json!({"external": true}))
        .await
        .err(400, 232033);
    assert_eq!(s.state().count("create_chat"), 9);
    assert_eq!(
        s.state().chats().len(),
        10,
        "no refused call created a chat"
    );
}

#[tokio::test]
async fn create_uuid_dedupes_with_the_owner() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let before = s.state().chats().len();
    let body = json!({"name": "Once", "owner_id": ZHANG_WEI});
    let q = [("uuid", "create-once-1")];
    let a = s.post(&token, CHATS, &q, &body).await;
    let b = s.post(&token, CHATS, &q, &body).await;
    assert_eq!(a.ok()["chat_id"], b.ok()["chat_id"]);
    assert_eq!(s.state().chats().len(), before + 1);
    // Same uuid, another owner: another chat.
    let c = s
        .post(
            &token,
            CHATS,
            &q,
            &json!({"name": "Once", "owner_id": BAI_XUE}),
        )
        .await;
    assert_ne!(c.ok()["chat_id"], a.ok()["chat_id"]);
    assert_eq!(s.state().chats().len(), before + 2);
    let r = s
        .post(&token, CHATS, &[("uuid", &"u".repeat(51))], &body)
        .await;
    assert_eq!(r.violated_field(), "uuid");
}

#[tokio::test]
async fn update_changes_what_the_bot_may_change() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let chat = create_chat(&s, &token, json!({})).await;
    let r = s
        .put(
            &token,
            &chat_path(&chat),
            &json!({"name": "Renamed", "description": "new", "edit_permission": "only_owner"}),
        )
        .await;
    assert_eq!(r.ok(), &json!({}));
    let d = s.get(&token, &chat_path(&chat), &[]).await;
    assert_eq!(d.ok()["name"], "Renamed");
    assert_eq!(d.ok()["edit_permission"], "only_owner");
    // The creator bot may hand ownership to a member…
    s.put(&token, &chat_path(&chat), &json!({"owner_id": BAI_XUE}))
        .await
        .ok();
    let d = s.get(&token, &chat_path(&chat), &[]).await;
    assert_eq!(d.ok()["owner_id"], BAI_XUE);
    // …but not to a non-member.
    s.put(&token, &chat_path(&chat), &json!({"owner_id": LIU_YANG}))
        .await
        .err(400, 232001);
    let r = s
        .put(
            &token,
            &chat_path(&chat),
            &json!({"membership_approval": "sometimes"}),
        )
        .await;
    assert_eq!(r.violated_field(), "membership_approval");

    // Seeded chats: names are editable (all_members), ownership is not the bot's to give.
    s.put(
        &token,
        &chat_path(RANDOM_CHAT),
        &json!({"description": "Off-topic"}),
    )
    .await
    .ok();
    s.put(
        &token,
        &chat_path(RANDOM_CHAT),
        &json!({"owner_id": ZHANG_WEI}),
    )
    .await
    .err(400, 232017);
    s.put(&token, &chat_path(HR_PRIVATE_CHAT), &json!({"name": "x"}))
        .await
        .err(400, 232011);
}

#[tokio::test]
async fn dissolve_ends_the_chat_and_later_use_is_232009() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let chat = create_chat(&s, &token, json!({})).await;
    let msg = s.send_text(&token, "chat_id", &chat, "before").await;
    let msg_id = msg.ok()["message_id"].as_str().unwrap().to_string();
    let r = s.delete(&token, &chat_path(&chat), &[]).await;
    assert_eq!(r.ok(), &json!({}));
    assert!(
        s.state()
            .chats()
            .iter()
            .any(|c| c.chat_id == chat && c.dissolved)
    );

    s.get(&token, &chat_path(&chat), &[]).await.err(400, 232009);
    s.delete(&token, &chat_path(&chat), &[])
        .await
        .err(400, 232009);
    s.get(&token, &members_path(&chat), &[])
        .await
        .err(400, 232009);
    s.put(&token, &chat_path(&chat), &json!({"name": "zombie"}))
        .await
        .err(400, 232009);
    s.send_text(&token, "chat_id", &chat, "after")
        .await
        .err(400, 232009);
    s.get(
        &token,
        MESSAGES_PATH,
        &[("container_id_type", "chat"), ("container_id", &chat)],
    )
    .await
    .err(400, 232009);
    s.get(&token, &format!("{MESSAGES_PATH}/{msg_id}"), &[])
        .await
        .err(400, 232009);
    s.post(
        &token,
        &format!("{MESSAGES_PATH}/{msg_id}/reply"),
        &[],
        &json!({"msg_type": "text", "content": json!({"text": "x"}).to_string()}),
    )
    .await
    .err(400, 232009);
    assert!(!list_all(&s, &token, &[]).await.contains(&chat));

    // A seeded chat the bot neither owns nor created.
    s.delete(&token, &chat_path(RANDOM_CHAT), &[])
        .await
        .err(400, 232017);
    s.delete(&token, &chat_path(HR_PRIVATE_CHAT), &[])
        .await
        .err(400, 232011);
}

// ---- share link ----------------------------------------------------------------------------------

#[tokio::test]
async fn share_links_expire_per_validity_period() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let link = |body: Value| {
        let s = &s;
        let token = token.clone();
        async move {
            s.post(
                &token,
                &format!("{}/link", chat_path(RANDOM_CHAT)),
                &[],
                &body,
            )
            .await
        }
    };
    let r = link(json!({})).await;
    let d = r.ok();
    assert!(
        d["share_link"]
            .as_str()
            .unwrap()
            .starts_with("https://applink.feishu.cn/client/chat/chatter/add_by_link?link_token=")
    );
    let expire: u64 = d["expire_time"].as_str().unwrap().parse().unwrap();
    assert!((now + 7 * 86_400..=now + 7 * 86_400 + 5).contains(&expire));
    assert_eq!(d["is_permanent"], false);
    let r = link(json!({"validity_period": "year"})).await;
    let expire: u64 = r.ok()["expire_time"].as_str().unwrap().parse().unwrap();
    assert!(expire >= now + 365 * 86_400);
    let r = link(json!({"validity_period": "permanently"})).await;
    assert_eq!(r.ok()["is_permanent"], true);
    assert!(r.ok().get("expire_time").is_none());
    let r = link(json!({"validity_period": "forever"})).await;
    assert_eq!(r.violated_field(), "validity_period");
    s.post(
        &token,
        &format!("{}/link", chat_path(HR_PRIVATE_CHAT)),
        &[],
        &json!({}),
    )
    .await
    .err(400, 232011);
}

// ---- members -------------------------------------------------------------------------------------

#[tokio::test]
async fn members_page_without_bots_with_a_total() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let mut q = vec![("page_size", "10"), ("member_id_type", "union_id")];
        if !page_token.is_empty() {
            q.push(("page_token", &page_token));
        }
        let r = s.get(&token, &members_path(ALL_HANDS_CHAT), &q).await;
        let d = r.ok().clone();
        assert_eq!(d["member_total"], 46);
        for m in d["items"].as_array().unwrap() {
            assert_eq!(m["member_id_type"], "union_id");
            assert!(m["name"].as_str().is_some() && m["tenant_key"].as_str().is_some());
            seen.push(m["member_id"].as_str().unwrap().to_string());
        }
        if d["has_more"] != true {
            break;
        }
        page_token = d["page_token"].as_str().unwrap().to_string();
    }
    assert_eq!(seen.len(), 46);
    assert!(
        seen.iter().all(|id| id.starts_with("on_")),
        "no bots, union ids"
    );
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 46);
    s.get(
        &token,
        &members_path(ALL_HANDS_CHAT),
        &[("member_id_type", "app_id")],
    )
    .await
    .err(400, 232015);
    s.get(&token, &members_path(HR_PRIVATE_CHAT), &[])
        .await
        .err(400, 232011);
    let r = s
        .get(
            &token,
            &format!("{}/is_in_chat", members_path(HR_PRIVATE_CHAT)),
            &[],
        )
        .await;
    assert_eq!(r.ok()["is_in_chat"], false);
    s.get(&token, &format!("{}/is_in_chat", members_path("oc_x")), &[])
        .await
        .err(400, 232006);
}

#[tokio::test]
async fn add_members_follows_succeed_type() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let chat = create_chat(&s, &token, json!({})).await;
    let path = members_path(&chat);
    let unknown = "ou_00000000000000000000000000000000";
    // 0 (default): unknown or invisible ids fail the call; resigned ones are skipped.
    s.post(&token, &path, &[], &json!({"id_list": [LIU_YANG, unknown]}))
        .await
        .err(400, 232001);
    s.post(
        &token,
        &path,
        &[],
        &json!({"id_list": [LIU_YANG, XUE_MING]}),
    )
    .await
    .err(400, 232024);
    let r = s
        .post(&token, &path, &[], &json!({"id_list": [LIU_YANG, MA_CHAO]}))
        .await;
    assert_eq!(
        r.ok(),
        &json!({"invalid_id_list": [MA_CHAO], "not_existed_id_list": [], "pending_approval_id_list": []})
    );
    // 1: add what is valid, report the rest.
    let r = s
        .post(
            &token,
            &path,
            &[("succeed_type", "1")],
            &json!({"id_list": [ALL_HANDS_OWNER, unknown, XUE_MING]}),
        )
        .await;
    assert_eq!(r.ok()["invalid_id_list"], json!([XUE_MING]));
    assert_eq!(r.ok()["not_existed_id_list"], json!([unknown]));
    // 2: anything unusable fails the whole call.
    s.post(
        &token,
        &path,
        &[("succeed_type", "2")],
        &json!({"id_list": [BAI_XUE, MA_CHAO]}),
    )
    .await
    .err(400, 232024);
    let r = s.get(&token, &path, &[]).await;
    assert_eq!(
        r.ok()["member_total"],
        4,
        "张伟, 白雪, 刘洋 and the All Hands owner"
    );
    let r = s.post(&token, &path, &[], &json!({"id_list": []})).await;
    assert_eq!(r.violated_field(), "id_list");
    let fifty_one: Vec<String> = (0..51).map(|i| format!("ou_{i:032x}")).collect();
    let r = s
        .post(&token, &path, &[], &json!({"id_list": fifty_one}))
        .await;
    assert_eq!(r.violated_field(), "id_list");
    let r = s
        .post(
            &token,
            &path,
            &[("succeed_type", "3")],
            &json!({"id_list": [LIU_YANG]}),
        )
        .await;
    assert_eq!(r.violated_field(), "succeed_type");
    // user_id ids work too.
    let r = s
        .post(
            &token,
            &path,
            &[("member_id_type", "user_id")],
            &json!({"id_list": [ZHANG_WEI_USER_ID]}),
        )
        .await;
    assert_eq!(r.ok()["invalid_id_list"], json!([]));
}

#[tokio::test]
async fn remove_members_needs_admin_rights_and_keeps_the_owner() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let chat = create_chat(&s, &token, json!({})).await;
    let path = members_path(&chat);
    let remove = |ids: Value| {
        let s = &s;
        let token = token.clone();
        let path = path.clone();
        async move {
            s.send_json(
                reqwest::Method::DELETE,
                &token,
                &path,
                &[],
                Some(&json!({"id_list": ids})),
            )
            .await
        }
    };
    let r = remove(json!([BAI_XUE, ZHANG_WEI, LIU_YANG])).await;
    assert_eq!(
        r.ok()["invalid_id_list"],
        json!([ZHANG_WEI, LIU_YANG]),
        "owner and non-member"
    );
    let r = s.get(&token, &path, &[]).await;
    assert_eq!(r.ok()["member_total"], 1);
    let r = remove(json!([])).await;
    assert_eq!(r.violated_field(), "id_list");
    // Seeded chats: the bot is neither owner, manager nor creator.
    s.send_json(
        reqwest::Method::DELETE,
        &token,
        &members_path(RANDOM_CHAT),
        &[],
        Some(&json!({"id_list": [ZHANG_WEI]})),
    )
    .await
    .err(400, 232017);
    // The bot removing itself leaves the chat.
    s.send_json(
        reqwest::Method::DELETE,
        &token,
        &path,
        &[("member_id_type", "app_id")],
        Some(&json!({"id_list": [APP_ID]})),
    )
    .await
    .ok();
    let r = s.get(&token, &format!("{path}/is_in_chat"), &[]).await;
    assert_eq!(r.ok()["is_in_chat"], false);
    s.send_text(&token, "chat_id", &chat, "hello?")
        .await
        .err(400, 230002);
}

#[tokio::test]
async fn without_the_bot_ability_chat_calls_are_232025() {
    let mut seed = seed();
    seed.app.bot_activated = false;
    let s = Sbx::with_seed(seed).await;
    let token = s.token().await;
    s.get(&token, CHATS, &[]).await.err(400, 232025);
    s.get(&token, &chat_path(ALL_HANDS_CHAT), &[])
        .await
        .err(400, 232025);
    s.post(&token, CHATS, &[], &json!({}))
        .await
        .err(400, 232025);
}
