//! The contact tools end to end: the real binary over stdio (rmcp client), Lark played by an
//! in-process sandbox with the demo org. Each tool's success path with exact values, one
//! Lark error each (in-band `isError` with the Lark code and log id), paging with progress,
//! argument errors and cancellation.

mod common;

use std::time::Duration;

use common::mcp::{CONTACT_META, CONTACT_META_TOOLS, McpServer, ids, log_id_in};
use common::*;
use lark_mcp_server::sandbox::{FaultAction, FaultRule};
use lark_mcp_server::tools;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

const WANG_LEI: &str = "ou_ebab049a40ef8bbfb87748c12e7b0728";
const LI_NA: &str = "ou_08d35676f46d47cf00b86d2846e575b1";
const LI_NA_USER_ID: &str = "u409f54";
const LEGAL_MEMBER_UNKNOWN: &str = "ou_00000000000000000000000000000000";
const ON_CALL_GROUP: &str = "g_d88fe07f817d";
const ROBOTICS_GUILD: &str = "g_0144307cd8be";

/// Perception's members in Lark's order; 吴婷 has not joined yet.
const PERCEPTION_MEMBERS: [(&str, &str); 6] = [
    (ZHANG_WEI, "张伟"),
    (LI_NA, "李娜"),
    ("ou_96994c41689114572534214a6c4f152e", "孙浩"),
    ("ou_ea003336f23816d161d56f63fd6ab8fd", "欧阳晓明"),
    ("ou_02834c642bb18eb95705382bf14a77f3", "Priya Natarajan"),
    ("ou_ffb0c6447a0dd416565e97291d461c07", "吴婷"),
];

async fn setup() -> (Sbx, McpServer) {
    let sbx = Sbx::start().await;
    let server = McpServer::start(&sbx, &[]).await;
    (sbx, server)
}

/// A Lark error envelope on every request whose path starts with `path`.
fn lark_fault(sbx: &Sbx, path: &str, code: i64, msg: &str) {
    sbx.state().add_fault(
        FaultRule::new(FaultAction::LarkError {
            code,
            msg: msg.into(),
            status: 400,
        })
        .path(path),
    );
}

/// The error text names what failed, Lark's code, the HTTP status and a log id.
#[track_caller]
fn assert_lark_error(text: &str, operation: &str, code: i64, status: u16) {
    assert!(
        text.starts_with(&format!("{operation} failed: ")),
        "operation in: {text}"
    );
    assert!(
        text.contains(&format!("Lark code {code}, HTTP {status}, log_id ")),
        "code/status in: {text}"
    );
    log_id_in(text);
}

/// `(name, id)` pairs of `v[key]` (`open_id`, `open_department_id` or `id`).
fn names(v: &Value, key: &str) -> Vec<(String, String)> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no `{key}` in {v}"))
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap_or("").to_string(),
                x.get("open_id")
                    .or_else(|| x.get("open_department_id"))
                    .or_else(|| x.get("id"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

fn perception_pairs() -> Vec<(String, String)> {
    PERCEPTION_MEMBERS
        .iter()
        .map(|(id, n)| (n.to_string(), id.to_string()))
        .collect()
}

// ---- people -------------------------------------------------------------------------------

#[tokio::test]
async fn lookup_user_by_email_resolves_the_active_user_and_lists_the_resigned_one_as_not_found() {
    let (sbx, s) = setup().await;
    let out = s
        .ok(
            "lookup_user_by_email",
            json!({"emails": [ZHANG_WEI_EMAIL, MA_CHAO_EMAIL], "mobiles": ["17762117949"]}),
        )
        .await;
    let zhang = |query: &str| {
        json!({"query": query, "name": "张伟", "open_id": ZHANG_WEI, "union_id": ZHANG_WEI_UNION,
               "user_id": ZHANG_WEI_USER_ID, "status": "active"})
    };
    assert_eq!(
        out,
        json!({"found": [zhang(ZHANG_WEI_EMAIL), zhang("17762117949")], "not_found": [MA_CHAO_EMAIL]})
    );
    assert_eq!(sbx.state().count("lookup_user_by_email_or_mobile"), 1);

    let out = s
        .ok(
            "lookup_user_by_email",
            json!({"emails": [MA_CHAO_EMAIL], "include_resigned": true}),
        )
        .await;
    assert_eq!(out["found"][0]["open_id"], MA_CHAO);
    assert_eq!(out["found"][0]["name"], "马超");
    assert_eq!(out["found"][0]["status"], "resigned");
    assert!(out.get("not_found").is_none(), "{out}");
}

#[tokio::test]
async fn lookup_user_by_email_reports_a_lark_error_in_band_with_code_and_log_id() {
    let (sbx, s) = setup().await;
    lark_fault(&sbx, BATCH_GET_ID_PATH, 99991401, "ip not in whitelist");
    let text = s
        .err("lookup_user_by_email", json!({"emails": [ZHANG_WEI_EMAIL]}))
        .await;
    assert_lark_error(&text, "look up users by email or mobile", 99991401, 400);
    assert!(text.contains("IP allow-list"), "{text}");
}

#[tokio::test]
async fn get_user_puts_department_and_leader_names_next_to_their_ids() {
    let (_sbx, s) = setup().await;
    let expected = json!({
        "name": "张伟",
        "en_name": "Zhang Wei",
        "open_id": ZHANG_WEI,
        "union_id": ZHANG_WEI_UNION,
        "user_id": ZHANG_WEI_USER_ID,
        "email": ZHANG_WEI_EMAIL,
        "mobile": ZHANG_WEI_MOBILE,
        "job_title": "感知组组长 Perception Lead",
        "status": "active",
        "departments": [{"id": PERCEPTION_DEPT, "name": "感知组"}],
        "leader": {"id": WANG_LEI, "name": "王磊"},
        "city": "深圳",
    });
    assert_eq!(
        s.ok("get_user", json!({"user_id": ZHANG_WEI})).await,
        expected
    );
    // Asked by union_id or user_id, the output still uses open_ids with names.
    assert_eq!(
        s.ok("get_user", json!({"user_id": ZHANG_WEI_UNION})).await,
        expected
    );
    assert_eq!(
        s.ok(
            "get_user",
            json!({"user_id": ZHANG_WEI_USER_ID, "id_type": "user_id"})
        )
        .await,
        expected
    );
}

#[tokio::test]
async fn get_user_outside_the_contact_range_is_41050_with_log_id() {
    let (_sbx, s) = setup().await;
    let text = s.err("get_user", json!({"user_id": XUE_MING})).await;
    assert_lark_error(&text, "get user", 41050, 200);
    assert!(text.contains("contact data range"), "{text}");
}

#[tokio::test]
async fn get_user_of_an_unknown_open_id_is_99992351() {
    let (_sbx, s) = setup().await;
    let text = s
        .err("get_user", json!({"user_id": LEGAL_MEMBER_UNKNOWN}))
        .await;
    assert_lark_error(&text, "get user", 99992351, 400);
    assert!(text.contains(LEGAL_MEMBER_UNKNOWN), "{text}");
}

#[tokio::test]
async fn get_users_takes_mixed_id_types_and_lists_ids_lark_did_not_return() {
    let (_sbx, s) = setup().await;
    let out = s
        .ok(
            "get_users",
            json!({"user_ids": [ZHANG_WEI, ZHANG_WEI_UNION, LI_NA_USER_ID, XUE_MING]}),
        )
        .await;
    // Zhang Wei asked for twice (open_id and union_id) is listed once.
    assert_eq!(
        names(&out, "users"),
        vec![
            ("张伟".to_string(), ZHANG_WEI.to_string()),
            ("李娜".to_string(), LI_NA.to_string())
        ]
    );
    assert_eq!(out["not_returned"], json!([XUE_MING]));
    // Leaders are open_ids with names, whatever id type the person was asked by.
    assert_eq!(
        out["users"][0]["leader"],
        json!({"id": WANG_LEI, "name": "王磊"})
    );
    assert_eq!(
        out["users"][1]["leader"],
        json!({"id": ZHANG_WEI, "name": "张伟"})
    );
    assert_eq!(
        out["users"][1]["departments"],
        json!([{"id": PERCEPTION_DEPT, "name": "感知组"}])
    );
}

#[tokio::test]
async fn get_users_reports_a_lark_error_in_band() {
    let (sbx, s) = setup().await;
    lark_fault(
        &sbx,
        "/open-apis/contact/v3/users/batch",
        2200,
        "internal error",
    );
    let text = s.err("get_users", json!({"user_ids": [ZHANG_WEI]})).await;
    assert_lark_error(&text, "get users", 2200, 400);
}

#[tokio::test]
async fn list_department_users_lists_perception_with_names_and_status() {
    let (_sbx, s) = setup().await;
    let out = s
        .ok(
            "list_department_users",
            json!({"department_id": PERCEPTION_DEPT}),
        )
        .await;
    assert_eq!(names(&out, "users"), perception_pairs());
    assert!(out.get("next_page_token").is_none(), "{out}");
    assert_eq!(out["users"][5]["status"], "unjoined");
    assert_eq!(
        out["users"][1]["leader"],
        json!({"id": ZHANG_WEI, "name": "张伟"})
    );
}

#[tokio::test]
async fn list_department_users_with_a_bad_page_token_is_99992402_naming_the_field() {
    let (_sbx, s) = setup().await;
    let text = s
        .err(
            "list_department_users",
            json!({"department_id": PERCEPTION_DEPT, "page_token": "bogus"}),
        )
        .await;
    assert_lark_error(&text, "list department users", 99992402, 400);
    assert!(text.contains("Field `page_token` = `bogus`"), "{text}");
}

#[tokio::test]
async fn a_page_size_above_larks_maximum_is_clamped_to_it() {
    let (sbx, s) = setup().await;
    let out = s
        .ok(
            "list_department_users",
            json!({"department_id": PERCEPTION_DEPT, "page_size": 51}),
        )
        .await;
    assert_eq!(out["users"].as_array().map(Vec::len), Some(6));
    let listed: Vec<String> = sbx
        .state()
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == "find_users_by_department")
        .map(|r| r.query)
        .collect();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].contains("page_size=50"), "{listed:?}");
    // 0 is refused before Lark is asked.
    let text = s
        .err(
            "list_department_users",
            json!({"department_id": PERCEPTION_DEPT, "page_size": 0}),
        )
        .await;
    assert!(text.contains("`page_size`"), "{text}");
    assert_eq!(sbx.state().count("find_users_by_department"), 1);
}

// ---- departments --------------------------------------------------------------------------

#[tokio::test]
async fn get_department_names_parent_and_leader() {
    let (_sbx, s) = setup().await;
    let out = s
        .ok("get_department", json!({"department_id": PERCEPTION_DEPT}))
        .await;
    assert_eq!(
        out,
        json!({
            "name": "感知组",
            "en_name": "Perception",
            "open_department_id": PERCEPTION_DEPT,
            "department_id": "D111",
            "parent": {"id": ROBOTICS_DEPT, "name": "机器人平台部"},
            "leader": {"id": ZHANG_WEI, "name": "张伟"},
            "member_count": 6,
        })
    );
    // The custom department_id works too.
    let by_custom = s
        .ok(
            "get_department",
            json!({"department_id": "D111", "id_type": "department_id"}),
        )
        .await;
    assert_eq!(by_custom["open_department_id"], PERCEPTION_DEPT);
}

#[tokio::test]
async fn get_department_outside_the_range_is_40004() {
    let (_sbx, s) = setup().await;
    let text = s
        .err("get_department", json!({"department_id": LEGAL_DEPT}))
        .await;
    assert_lark_error(&text, "get department", 40004, 400);
    assert!(text.contains("contact data range"), "{text}");
}

#[tokio::test]
async fn list_departments_at_the_root_falls_back_to_the_granted_departments_with_a_note() {
    let (sbx, s) = setup().await;
    let out = s.ok("list_departments", json!({"parent_id": "0"})).await;
    assert_eq!(
        names(&out, "departments"),
        [
            ("总裁办", "od-50a8939fbc26f59d014386d68fd3a623"),
            ("研发中心", RND_DEPT),
            ("产品与设计", "od-84c562bf7b0c285db33e78e83985ccb2"),
            ("销售与市场", "od-71ed77914ac7074e8aff884e86eafedb"),
            ("人力资源", "od-8f575ab8d0cf855d7c4814bb75a77149"),
            ("财务部", "od-5735fda5d66b118707b179b4a0f4c14b"),
        ]
        .iter()
        .map(|(n, id)| (n.to_string(), id.to_string()))
        .collect::<Vec<_>>()
    );
    let note = out["note"].as_str().expect("a note");
    assert!(
        note.contains("part of the directory") && note.contains("get_contact_scope"),
        "{note}"
    );
    assert!(out.get("next_page_token").is_none());
    // The root was tried first and refused (partial range), then the range was read.
    assert_eq!(sbx.state().count("list_child_departments"), 1);
    assert_eq!(sbx.state().count("list_contact_scopes"), 1);
    // Omitting parent_id means the root too.
    let default_parent = s.ok("list_departments", json!({})).await;
    assert_eq!(default_parent, out);
}

#[tokio::test]
async fn list_departments_recursive_lists_the_whole_rnd_subtree_with_parent_names() {
    let (_sbx, s) = setup().await;
    let out = s
        .ok(
            "list_departments",
            json!({"parent_id": RND_DEPT, "recursive": true}),
        )
        .await;
    assert_eq!(
        ids(&out, "departments"),
        vec![ROBOTICS_DEPT, INFRA_DEPT, PERCEPTION_DEPT, MOTION_DEPT]
    );
    assert!(out.get("note").is_none());
    let parents: Vec<&Value> = out["departments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["parent"])
        .collect();
    let rnd = json!({"id": RND_DEPT, "name": "研发中心"});
    let robotics = json!({"id": ROBOTICS_DEPT, "name": "机器人平台部"});
    assert_eq!(parents, vec![&rnd, &rnd, &robotics, &robotics]);
    // Not recursive: direct children only.
    let direct = s
        .ok("list_departments", json!({"parent_id": RND_DEPT}))
        .await;
    assert_eq!(ids(&direct, "departments"), vec![ROBOTICS_DEPT, INFRA_DEPT]);
}

#[tokio::test]
async fn list_departments_reports_a_lark_error_in_band() {
    let (sbx, s) = setup().await;
    lark_fault(
        &sbx,
        &format!("/open-apis/contact/v3/departments/{RND_DEPT}/children"),
        2200,
        "internal error",
    );
    let text = s
        .err("list_departments", json!({"parent_id": RND_DEPT}))
        .await;
    assert_lark_error(&text, "list departments", 2200, 400);
}

#[tokio::test]
async fn get_department_path_runs_from_the_top_down_to_perception() {
    let (_sbx, s) = setup().await;
    let out = s
        .ok(
            "get_department_path",
            json!({"department_id": PERCEPTION_DEPT}),
        )
        .await;
    assert_eq!(
        out,
        json!({"path": [
            {"id": RND_DEPT, "name": "研发中心"},
            {"id": ROBOTICS_DEPT, "name": "机器人平台部"},
            {"id": PERCEPTION_DEPT, "name": "感知组"},
        ]})
    );
    // A top-level department is its own path.
    let top = s
        .ok("get_department_path", json!({"department_id": RND_DEPT}))
        .await;
    assert_eq!(top, json!({"path": [{"id": RND_DEPT, "name": "研发中心"}]}));
}

#[tokio::test]
async fn get_department_path_reports_a_lark_error_in_band() {
    let (sbx, s) = setup().await;
    lark_fault(
        &sbx,
        "/open-apis/contact/v3/departments/parent",
        2200,
        "internal error",
    );
    let text = s
        .err(
            "get_department_path",
            json!({"department_id": PERCEPTION_DEPT}),
        )
        .await;
    assert_lark_error(&text, "get department parents", 2200, 400);
}

// ---- user groups --------------------------------------------------------------------------

#[tokio::test]
async fn list_user_groups_lists_normal_groups_by_default_and_dynamic_ones_on_request() {
    let (_sbx, s) = setup().await;
    let out = s.ok("list_user_groups", json!({})).await;
    assert_eq!(
        out,
        json!({"groups": [
            {"id": "g_4d76a1f435f1", "name": "全体经理 All Managers",
             "description": "所有部门负责人 / every department head",
             "member_user_count": 14, "member_department_count": 0},
            {"id": ON_CALL_GROUP, "name": "On-call rotation",
             "description": "Primary and secondary on-call engineers for production",
             "member_user_count": 6, "member_department_count": 0},
        ]})
    );
    let dynamic = s.ok("list_user_groups", json!({"type": "dynamic"})).await;
    assert_eq!(ids(&dynamic, "groups"), vec![ROBOTICS_GUILD]);
    assert_eq!(dynamic["groups"][0]["name"], "Robotics guild");
    assert_eq!(dynamic["groups"][0]["member_department_count"], 1);
}

#[tokio::test]
async fn list_user_groups_reports_a_lark_error_in_band() {
    let (sbx, s) = setup().await;
    lark_fault(
        &sbx,
        "/open-apis/contact/v3/group/simplelist",
        2200,
        "internal error",
    );
    let text = s.err("list_user_groups", json!({})).await;
    assert_lark_error(&text, "list user groups", 2200, 400);
}

#[tokio::test]
async fn list_user_group_members_names_users_and_departments() {
    let (_sbx, s) = setup().await;
    let out = s
        .ok(
            "list_user_group_members",
            json!({"group_id": ON_CALL_GROUP}),
        )
        .await;
    assert_eq!(
        out,
        json!({"members": [
            {"id": "ou_02a9aa069b1ec198b0c056c646a815d0", "name": "罗斌"},
            {"id": "ou_86a4a3a79a9a674a9000a041376cb869", "name": "高翔"},
            {"id": "ou_9f029fdce8a07508578fe2e8136fbc13", "name": "梁晨"},
            {"id": "ou_c29fd6c3a1aac12756ec979845976e40", "name": "赵敏"},
            {"id": WANG_LEI, "name": "王磊"},
            {"id": "ou_3a623315b5d7da9d7302294ace2c9860", "name": "何静"},
        ]})
    );
    let depts = s
        .ok(
            "list_user_group_members",
            json!({"group_id": ROBOTICS_GUILD, "member_type": "department"}),
        )
        .await;
    assert_eq!(
        depts,
        json!({"members": [{"id": ROBOTICS_DEPT, "name": "机器人平台部"}]})
    );
}

#[tokio::test]
async fn list_user_group_members_of_an_unknown_group_is_99992357() {
    let (_sbx, s) = setup().await;
    let text = s
        .err("list_user_group_members", json!({"group_id": "g_nope"}))
        .await;
    assert_lark_error(&text, "list user group members", 99992357, 400);
    assert!(text.contains("g_nope"), "{text}");
}

// ---- the app ------------------------------------------------------------------------------

#[tokio::test]
async fn get_contact_scope_lists_granted_departments_groups_and_the_individually_granted_user() {
    let (_sbx, s) = setup().await;
    let out = s.ok("get_contact_scope", json!({})).await;
    assert_eq!(out["users"], json!([{"id": BAI_XUE, "name": "白雪"}]));
    assert_eq!(
        out["groups"],
        json!([
            {"id": "g_4d76a1f435f1", "name": "全体经理 All Managers"},
            {"id": ON_CALL_GROUP, "name": "On-call rotation"},
            {"id": ROBOTICS_GUILD, "name": "Robotics guild"},
        ])
    );
    assert_eq!(out["departments"].as_array().map(Vec::len), Some(6));
    assert_eq!(
        out["departments"][1],
        json!({"id": RND_DEPT, "name": "研发中心"})
    );
    assert!(
        !ids(&out, "departments").contains(&LEGAL_DEPT.to_string()),
        "Legal is outside the range"
    );
}

#[tokio::test]
async fn get_contact_scope_reports_a_lark_error_in_band() {
    let (sbx, s) = setup().await;
    lark_fault(&sbx, "/open-apis/contact/v3/scopes", 2200, "internal error");
    let text = s.err("get_contact_scope", json!({})).await;
    assert_lark_error(&text, "read the app's contact range", 2200, 400);
}

#[tokio::test]
async fn get_app_status_reports_the_app_bot_scopes_and_why_tools_are_hidden() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &CONTACT_META).await;
    let out = s.ok("get_app_status", json!({})).await;
    assert_eq!(out["app_id"], APP_ID);
    assert_eq!(out["domain"], sbx.base.as_str());
    assert_eq!(
        out["bot"],
        json!({"name": "Northwind Assistant", "open_id": "ou_f82724c828ee08c2db6ed9b1ecd6336a", "active": true})
    );
    assert_eq!(out["visible_tools"], json!(CONTACT_META_TOOLS.to_vec()));
    // Everything else is hidden, each with the reason.
    let hidden = out["hidden_tools"].as_array().expect("hidden tools");
    let others: Vec<&str> = tools::catalog()
        .iter()
        .map(|t| t.meta.name)
        .filter(|n| !CONTACT_META_TOOLS.contains(n))
        .collect();
    let hidden_names: Vec<&str> = hidden.iter().filter_map(|h| h["name"].as_str()).collect();
    assert_eq!(hidden_names, others);
    let send = hidden
        .iter()
        .find(|h| h["name"] == "send_message")
        .expect("send_message is hidden");
    assert!(
        send["why"]
            .as_str()
            .is_some_and(|w| w.contains("without the `messages` toolset")),
        "{send}"
    );
    assert!(out.get("problem").is_none(), "{out}");
    let granted = out["granted_scopes"].as_array().unwrap();
    assert!(granted.contains(&json!("contact:user.id:readonly")));
    assert!(
        !granted.contains(&json!("contact:user.employee:readonly")),
        "enabled but not granted"
    );
}

// ---- paging, progress, cancellation -------------------------------------------------------

#[tokio::test]
async fn all_pages_fetches_every_page_with_increasing_progress() {
    let (sbx, s) = setup().await;
    let out = s
        .ok(
            "list_department_users",
            json!({"department_id": PERCEPTION_DEPT, "page_size": 2, "all_pages": true}),
        )
        .await;
    assert_eq!(names(&out, "users"), perception_pairs());
    assert!(out.get("next_page_token").is_none(), "{out}");
    assert_eq!(sbx.state().count("find_users_by_department"), 3);

    let seen = s
        .events
        .wait_for(Duration::from_secs(2), |e| e.progress.len() >= 3)
        .await;
    let progress: Vec<f64> = seen.progress.iter().map(|p| p.progress).collect();
    assert_eq!(progress, vec![2.0, 4.0, 6.0]);
    assert!(
        seen.progress
            .windows(2)
            .all(|w| w[0].progress_token == w[1].progress_token),
        "one token for the call"
    );
    assert_eq!(
        seen.progress[2].message.as_deref(),
        Some("fetched 6 items in 3 pages")
    );
}

#[tokio::test]
async fn all_pages_of_a_recursive_department_listing_reports_progress() {
    let (_sbx, s) = setup().await;
    let out = s
        .ok(
            "list_departments",
            json!({"parent_id": RND_DEPT, "recursive": true, "page_size": 2, "all_pages": true}),
        )
        .await;
    assert_eq!(
        ids(&out, "departments"),
        vec![ROBOTICS_DEPT, INFRA_DEPT, PERCEPTION_DEPT, MOTION_DEPT]
    );
    let seen = s
        .events
        .wait_for(Duration::from_secs(2), |e| e.progress.len() >= 2)
        .await;
    let progress: Vec<f64> = seen.progress.iter().map(|p| p.progress).collect();
    assert_eq!(progress, vec![2.0, 4.0]);
}

#[tokio::test]
async fn one_page_at_a_time_returns_a_token_that_gets_the_next_page() {
    let (_sbx, s) = setup().await;
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    for page in 0..3 {
        let mut args = json!({"department_id": PERCEPTION_DEPT, "page_size": 2});
        if let Some(t) = &token {
            args["page_token"] = json!(t);
        }
        let out = s.ok("list_department_users", args).await;
        assert_eq!(
            out["users"].as_array().map(Vec::len),
            Some(2),
            "page {page}"
        );
        all.extend(names(&out, "users"));
        token = out["next_page_token"].as_str().map(String::from);
        assert_eq!(token.is_some(), page < 2, "page {page}: {out}");
    }
    assert_eq!(all, perception_pairs());
    // A single page sends no progress.
    assert_eq!(s.events.snapshot().progress.len(), 0);
}

#[tokio::test]
async fn a_cancelled_call_stops_fetching_pages() {
    let (sbx, s) = setup().await;
    sbx.state().add_fault(
        FaultRule::new(FaultAction::Latency { ms: 1000 })
            .path("/open-apis/contact/v3/users/find_by_department"),
    );
    let args = json!({"department_id": PERCEPTION_DEPT, "page_size": 2, "all_pages": true});
    let params = CallToolRequestParams::new("list_department_users")
        .with_arguments(args.as_object().unwrap().clone());
    // Dropping the pending call makes rmcp send notifications/cancelled.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(300), s.client.call_tool(params)).await;
    assert!(gave_up.is_err(), "the call cannot finish in 300 ms");
    // Uncancelled, three 1 s pages would have been requested by now.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert!(
        sbx.state().count("find_users_by_department") <= 1,
        "{:?}",
        sbx.state().counters()
    );
    // The server is still serving.
    sbx.state().set_faults(Vec::new());
    let out = s.ok("get_user", json!({"user_id": ZHANG_WEI})).await;
    assert_eq!(out["name"], "张伟");
}

// ---- arguments ----------------------------------------------------------------------------

#[tokio::test]
async fn bad_arguments_are_in_band_errors_naming_the_field_and_call_nothing() {
    let (sbx, s) = setup().await;
    // An integer would be taken as its digits (some clients send ids as numbers); a float
    // cannot be an id.
    let text = s.err("get_user", json!({"user_id": 5.5})).await;
    assert!(text.contains("`user_id`"), "{text}");
    assert!(text.contains("floating point `5.5`"), "{text}");

    let text = s
        .err("lookup_user_by_email", json!({"emial": [ZHANG_WEI_EMAIL]}))
        .await;
    assert!(text.contains("`emial`"), "{text}");

    let text = s.err("get_user", json!({})).await;
    assert!(text.contains("missing field `user_id`"), "{text}");

    let text = s
        .err(
            "get_user",
            json!({"user_id": ZHANG_WEI, "id_type": "email"}),
        )
        .await;
    assert!(
        text.contains("`id_type`") && text.contains("open_id"),
        "{text}"
    );

    let text = s.err("lookup_user_by_email", json!({})).await;
    assert!(text.contains("`emails`"), "{text}");

    let too_many: Vec<String> = (0..51).map(|i| format!("ou_{i:032}")).collect();
    let text = s.err("get_users", json!({"user_ids": too_many})).await;
    assert!(text.contains("`user_ids`") && text.contains("51"), "{text}");

    for endpoint in [
        "get_user",
        "lookup_user_by_email_or_mobile",
        "batch_get_users",
    ] {
        assert_eq!(sbx.state().count(endpoint), 0, "{endpoint} was called");
    }
}

#[tokio::test]
async fn ids_reach_lark_as_one_path_segment_and_dot_segments_are_refused() {
    let (sbx, s) = setup().await;
    let text = s.err("get_user", json!({"user_id": ".."})).await;
    assert!(text.contains("Invalid argument `user_id`"), "{text}");
    assert_eq!(sbx.state().count("get_user"), 0);
    // Slashes are percent-encoded: Lark sees (and refuses) the whole id, not a path.
    let text = s
        .err("get_department", json!({"department_id": "od-a/../b"}))
        .await;
    assert_lark_error(&text, "get department", 99992402, 400);
    assert!(
        text.contains("Field `department_id` = `od-a/../b`"),
        "{text}"
    );
}

// ---- find_people / find_chats: the directory index ------------------------------------

const FINANCE: &str = "od-5735fda5d66b118707b179b4a0f4c14b";
const LEGAL: &str = "od-8f81d8ccf7a51e63bafeba49d2844e2a";
/// In finance (in the contact range).
const SHEN_GUOHUA: &str = "ou_708f6fccfb39a551e69a231c65cc5a8b";
/// In legal, which is outside the range; 白雪 there is granted one by one.
const XUE_MING: &str = "ou_d0746ea879393f08fe81a80ed7f4cfd3";
const BAI_XUE: &str = "ou_1fdec493aac318f451a02ea6b93b3866";
const MA_CHAO_RESIGNED: &str = "ou_957ee86af1500fa92629b72bb82ac4f0";

#[tokio::test]
async fn someone_who_resigns_is_found_only_when_asked() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &["--directory-ttl", "1"]).await;
    assert_eq!(
        found(&s, "shen guohua").await.first().map(String::as_str),
        Some(SHEN_GUOHUA)
    );
    sbx.state().set_user_status(
        SHEN_GUOHUA,
        lark_mcp_server::sandbox::seed::UserStatusSeed::Resigned,
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !found(&s, "shen guohua").await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still listed as active"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let asked = s
        .ok(
            "find_people",
            json!({"query": "shen guohua", "include_resigned": true}),
        )
        .await;
    assert_eq!(asked["people"][0]["open_id"], SHEN_GUOHUA, "{asked}");
    assert_eq!(asked["people"][0]["status"], "resigned", "{asked}");
}

async fn found(s: &McpServer, query: &str) -> Vec<String> {
    let r = s.call("find_people", json!({ "query": query })).await;
    let v = r.structured_content.clone().unwrap_or_default();
    assert_eq!(r.is_error, Some(false), "{query}: {v}");
    ids(&v, "people")
}

fn people_listings(sbx: &Sbx) -> Vec<String> {
    sbx.state()
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == "find_users_by_department")
        .map(|r| r.query)
        .collect()
}

#[tokio::test]
async fn find_people_knows_zhang_wei_however_it_is_written() {
    let (sbx, s) = setup().await;
    for q in [
        "zhang wei",
        "张伟",
        "Wei Zhang",
        "zw",
        "zhangw",
        "zhang.wei",
        "zhangwie",
        "zhanf wei",
        "ＺＨＡＮＧ　ＷＥＩ",
        "Zhāng Wěi",
    ] {
        let got = found(&s, q).await;
        assert_eq!(
            got.first().map(String::as_str),
            Some(ZHANG_WEI),
            "{q}: {got:?}"
        );
    }
    let one = s
        .ok("find_people", json!({"query": "zhang wei", "limit": 1}))
        .await;
    let p = &one["people"][0];
    assert_eq!(p["name"], "张伟");
    assert_eq!(
        p["departments"][0], "研发中心 / 机器人平台部 / 感知组",
        "{one}"
    );
    assert!(
        p["matched"].as_str().is_some_and(|m| !m.is_empty()),
        "{one}"
    );
    // Built once: the second and later calls asked Lark nothing more.
    let listings = people_listings(&sbx).len();
    found(&s, "li na").await;
    assert_eq!(people_listings(&sbx).len(), listings);
    // Out of range: legal is never listed, and its people never found; 白雪 is granted
    // alone and found.
    assert!(
        !people_listings(&sbx).iter().any(|q| q.contains(LEGAL)),
        "{:?}",
        people_listings(&sbx)
    );
    assert!(found(&s, "薛明").await.is_empty());
    assert_eq!(
        found(&s, "白雪").await.first().map(String::as_str),
        Some(BAI_XUE)
    );
    // Lark lists no one who has left: 马超 resigned before the index was built.
    let gone = s
        .call(
            "find_people",
            json!({"query": "ma chao", "include_resigned": true}),
        )
        .await;
    assert!(!format!("{:?}", gone.structured_content).contains(MA_CHAO_RESIGNED));
    let text = s.err("find_people", json!({"query": " "})).await;
    assert!(text.contains("query"), "{text}");
}

#[tokio::test]
async fn namesakes_are_all_listed_and_told_apart() {
    let mut seed = serde_json::to_value(seed()).expect("seed");
    let users = seed["users"].as_array_mut().expect("users");
    let mut twin = users
        .iter()
        .find(|u| u["open_id"] == ZHANG_WEI)
        .cloned()
        .expect("张伟");
    twin["open_id"] = json!("ou_0000000000000000000000000000ab12");
    twin["union_id"] = json!("on_0000000000000000000000000000ab12");
    twin["user_id"] = json!("u00ab12");
    twin["email"] = json!("zhang.wei2@northwind.example");
    twin["enterprise_email"] = json!(null);
    twin["mobile"] = json!("+8613900000000");
    twin["employee_no"] = json!("NW09999");
    twin["job_title"] = json!("销售经理 Sales Manager");
    twin["departments"] = json!(["od-2cc64c247f24c21284b430b63520ff55"]);
    users.push(twin);
    let sbx = Sbx::with_seed(serde_json::from_value(seed).expect("seed")).await;
    let s = McpServer::start(&sbx, &[]).await;
    let out = s.ok("find_people", json!({"query": "张伟"})).await;
    let got = ids(&out, "people");
    assert!(got.len() >= 2, "{out}");
    assert!(got[..2].contains(&ZHANG_WEI.to_string()), "{out}");
    assert!(
        got[..2].contains(&"ou_0000000000000000000000000000ab12".to_string()),
        "{out}"
    );
    assert_ne!(
        out["people"][0]["departments"],
        out["people"][1]["departments"]
    );
    let note = out["note"].as_str().unwrap_or_default();
    assert!(note.contains("2 people are named 张伟"), "{out}");
}

#[tokio::test]
async fn a_range_change_or_a_revoked_scope_drops_people_at_the_refresh() {
    let sbx = Sbx::start().await;
    let cache = common::config_home("mcp-contact", "directory-drop");
    let env = [("XDG_CACHE_HOME", cache.to_str().unwrap_or_default())];
    let s = McpServer::start_env(&sbx, &["--directory-ttl", "1", "--directory-cache"], &env).await;
    assert_eq!(
        found(&s, "shen guohua").await.first().map(String::as_str),
        Some(SHEN_GUOHUA)
    );
    // Written just after the index is published.
    let file = wait_for_cache_file(&cache).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Finance leaves the range: gone after the next refresh.
    let mut range = seed().contact_range;
    range.department_ids.retain(|d| d != FINANCE);
    sbx.state().set_contact_range(range);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !found(&s, "shen guohua").await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still found after refreshes"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!found(&s, "zhang wei").await.is_empty(), "the rest stays");
    // The app loses the contact scopes: nothing is served, not even from the cache.
    sbx.state().set_scopes(
        &[],
        &tools::find("find_people")
            .expect("find_people")
            .meta
            .scopes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.call("find_people", json!({"query": "zhang wei"})).await;
        if r.is_error == Some(true) {
            let text = common::mcp::text_of(&r);
            assert!(
                text.contains("99991672") || text.contains("scope"),
                "{text}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still served after the revoke"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The tool is hidden as soon as the scopes are re-read; the index (and its file) goes
    // at the directory's own refresh, which may come a moment later.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while file.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cache file is deleted with the index"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_cache_file(cache: &std::path::Path) -> std::path::PathBuf {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let file = std::fs::read_dir(cache.join("lark-mcp-server"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            // The directory's file; the scope cache lives beside it.
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("directory-") && n.ends_with(".json"))
            });
        if let Some(f) = file {
            return f;
        }
        assert!(tokio::time::Instant::now() < deadline, "no cache file");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_second_process_starts_warm_from_the_cache() {
    let sbx = Sbx::start().await;
    let cache = common::config_home("mcp-contact", "directory-warm");
    let env = [("XDG_CACHE_HOME", cache.to_str().unwrap_or_default())];
    let first = McpServer::start_env(&sbx, &["--directory-cache"], &env).await;
    assert_eq!(
        found(&first, "zw").await.first().map(String::as_str),
        Some(ZHANG_WEI)
    );
    drop(first);
    sbx.state().clear_requests();
    let second = McpServer::start_env(&sbx, &["--directory-cache"], &env).await;
    assert_eq!(
        found(&second, "zw").await.first().map(String::as_str),
        Some(ZHANG_WEI)
    );
    assert!(
        people_listings(&sbx).is_empty(),
        "no walk: {:?}",
        people_listings(&sbx)
    );
}

#[tokio::test]
async fn a_slow_first_build_answers_with_what_is_indexed_and_says_so() {
    let sbx = Sbx::start().await;
    sbx.state().add_fault(
        FaultRule::new(FaultAction::Latency { ms: 400 })
            .path("/open-apis/contact/v3/users/find_by_department"),
    );
    let s = McpServer::start(&sbx, &["--directory-wait-ms", "300"]).await;
    let first = s
        .call("find_people", json!({"query": "zhang wei"}))
        .await
        .structured_content
        .unwrap_or_default();
    let note = first["note"].as_str().unwrap_or_default();
    assert!(note.contains("still being indexed"), "{first}");
    // The wait was reported as it went.
    let seen = s
        .events
        .wait_for(Duration::from_secs(2), |e| !e.progress.is_empty())
        .await;
    assert!(
        seen.progress.iter().any(|p| p
            .message
            .as_deref()
            .is_some_and(|m| m.contains("indexing the directory"))),
        "{:?}",
        seen.progress
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let later = s
            .call("find_people", json!({"query": "zhang wei"}))
            .await
            .structured_content
            .unwrap_or_default();
        if later.get("note").is_none() {
            assert_eq!(ids(&later, "people")[0], ZHANG_WEI);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{later}");
    }
}

#[tokio::test]
async fn find_chats_by_a_word_of_the_name() {
    let (_sbx, s) = setup().await;
    let first = |v: &Value| {
        v["chats"][0]["chat_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let weekly = s.ok("find_chats", json!({"query": "weekly"})).await;
    assert_eq!(
        first(&weekly),
        "oc_05c408dcf199665ae65851dd6b0f4cf4",
        "{weekly}"
    );
    assert!(
        weekly["chats"][0]["members"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{weekly}"
    );
    assert_eq!(weekly["chats"][0]["bot_is_member"], true);
    let zh = s.ok("find_chats", json!({"query": "周会"})).await;
    assert_eq!(first(&zh), "oc_05c408dcf199665ae65851dd6b0f4cf4", "{zh}");
    let pinyin = s.ok("find_chats", json!({"query": "xianliao"})).await;
    assert_eq!(
        first(&pinyin),
        "oc_a471517295a593ba928002be6ed44c50",
        "{pinyin}"
    );
}
