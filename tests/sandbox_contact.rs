//! contact/v3 against the default org: users, lookups, departments, the data range, groups.

mod common;

use std::collections::HashSet;

use common::*;
use lark_mcp_server::sandbox::Options;
use serde_json::{Value, json};

const USERS: &str = "/open-apis/contact/v3/users";
const FIND_BY_DEPT: &str = "/open-apis/contact/v3/users/find_by_department";
const DEPTS: &str = "/open-apis/contact/v3/departments";

fn user_path(id: &str) -> String {
    format!("{USERS}/{id}")
}

fn dept_path(id: &str) -> String {
    format!("{DEPTS}/{id}")
}

fn children_path(id: &str) -> String {
    format!("{DEPTS}/{id}/children")
}

fn strs<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.as_array()
        .unwrap_or_else(|| panic!("array expected: {v}"))
        .iter()
        .map(|x| x[key].as_str().unwrap_or_else(|| panic!("{key} in {x}")))
        .collect()
}

fn str_list(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("array expected: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

// ---- get user ------------------------------------------------------------------------------

#[tokio::test]
async fn get_user_in_range_returns_the_user_with_field_scoped_fields() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s.get(&token, &user_path(ZHANG_WEI), &[]).await;
    let u = &r.ok()["user"];
    assert_eq!(u["open_id"], ZHANG_WEI);
    assert_eq!(u["union_id"], ZHANG_WEI_UNION);
    assert_eq!(u["user_id"], ZHANG_WEI_USER_ID);
    assert_eq!(u["name"], "张伟");
    assert_eq!(u["email"], ZHANG_WEI_EMAIL);
    assert_eq!(u["mobile"], ZHANG_WEI_MOBILE);
    assert_eq!(u["department_ids"], json!([PERCEPTION_DEPT]));
    assert_eq!(u["status"]["is_resigned"], false);
    assert_eq!(u["status"]["is_activated"], true);
}

#[tokio::test]
async fn individually_granted_user_in_an_out_of_range_department_is_visible() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s.get(&token, &user_path(BAI_XUE), &[]).await;
    assert_eq!(r.ok()["user"]["email"], BAI_XUE_EMAIL);
}

#[tokio::test]
async fn out_of_range_user_is_41050_with_http_200_by_default() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s.get(&token, &user_path(XUE_MING), &[]).await;
    r.err(200, 41050);
    assert_eq!(r.json["msg"], "no user authority error");
    assert!(r.json.get("data").is_none());
}

#[tokio::test]
async fn out_of_range_user_is_http_400_when_not_listed_in_http200_codes() {
    let s = Sbx::with_options(Options {
        http200_codes: vec![],
        ..Default::default()
    })
    .await;
    let token = s.token().await;
    s.get(&token, &user_path(XUE_MING), &[])
        .await
        .err(400, 41050);
    // And the option can be flipped back live.
    s.state().set_options(Options::default());
    s.get(&token, &user_path(XUE_MING), &[])
        .await
        .err(200, 41050);
}

#[tokio::test]
async fn field_scopes_decide_which_fields_a_user_has() {
    let s = Sbx::start().await;
    let token = s.token().await;
    s.state().set_scopes(
        &[],
        &[
            "contact:user.email:readonly".to_string(),
            "contact:user.phone:readonly".to_string(),
            "contact:user.employee_id:readonly".to_string(),
        ],
    );
    let r = s.get(&token, &user_path(ZHANG_WEI), &[]).await;
    let u = r.ok()["user"].as_object().unwrap().clone();
    for absent in ["email", "enterprise_email", "mobile", "user_id"] {
        assert!(!u.contains_key(absent), "{absent} must be absent: {u:?}");
    }
    assert_eq!(u["name"], "张伟");
    assert_eq!(u["open_id"], ZHANG_WEI);
}

#[tokio::test]
async fn get_user_by_union_id_and_user_id() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let by_union = s
        .get(
            &token,
            &user_path(ZHANG_WEI_UNION),
            &[("user_id_type", "union_id")],
        )
        .await;
    assert_eq!(by_union.ok()["user"]["open_id"], ZHANG_WEI);
    let by_user_id = s
        .get(
            &token,
            &user_path(ZHANG_WEI_USER_ID),
            &[("user_id_type", "user_id")],
        )
        .await;
    assert_eq!(by_user_id.ok()["user"]["union_id"], ZHANG_WEI_UNION);
    // The leader (王磊) is reported in the requested id type.
    assert_eq!(by_user_id.data()["user"]["leader_user_id"], "u6fef25");
    assert_eq!(
        by_union.data()["user"]["leader_user_id"],
        "on_537bf837fce622111066985b03f2b6da"
    );
}

#[tokio::test]
async fn user_id_forms_are_checked_against_user_id_type() {
    let s = Sbx::start().await;
    let token = s.token().await;
    // A union_id sent as open_id.
    let r = s
        .get(
            &token,
            &user_path(ZHANG_WEI_UNION),
            &[("user_id_type", "open_id")],
        )
        .await;
    assert_eq!(r.violated_field(), "user_id");
    // An unknown user_id_type.
    let r = s
        .get(&token, &user_path(ZHANG_WEI), &[("user_id_type", "email")])
        .await;
    assert_eq!(r.violated_field(), "user_id_type");
    // A well-formed open_id nobody has.
    let r = s
        .get(
            &token,
            &user_path("ou_00000000000000000000000000000000"),
            &[],
        )
        .await;
    r.err(400, 99992351);
    let r = s
        .get(
            &token,
            &user_path("on_00000000000000000000000000000000"),
            &[("user_id_type", "union_id")],
        )
        .await;
    r.err(400, 99992352);
}

// ---- batch get users ---------------------------------------------------------------------------

#[tokio::test]
async fn batch_users_take_repeated_user_ids() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let ids = [ZHANG_WEI, BAI_XUE, "ou_ebab049a40ef8bbfb87748c12e7b0728"];
    let query: Vec<(&str, &str)> = ids.iter().map(|i| ("user_ids", *i)).collect();
    let r = s.get(&token, &format!("{USERS}/batch"), &query).await;
    assert_eq!(strs(&r.ok()["items"], "open_id"), ids);
    let r = s
        .get(
            &token,
            &format!("{USERS}/batch"),
            &[("user_ids", ZHANG_WEI_USER_ID), ("user_id_type", "user_id")],
        )
        .await;
    assert_eq!(strs(&r.ok()["items"], "open_id"), [ZHANG_WEI]);
}

#[tokio::test]
async fn batch_users_refuse_more_than_50_ids_and_none() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let all: Vec<String> = seed().users.iter().map(|u| u.open_id.clone()).collect();
    assert_eq!(all.len(), 51);
    let query: Vec<(&str, &str)> = all.iter().map(|i| ("user_ids", i.as_str())).collect();
    let r = s.get(&token, &format!("{USERS}/batch"), &query).await;
    assert_eq!(r.violated_field(), "user_ids");
    let r = s.get(&token, &format!("{USERS}/batch"), &[]).await;
    assert_eq!(r.violated_field(), "user_ids");
}

// ---- batch_get_id ----------------------------------------------------------------------------

async fn batch_get_id(s: &Sbx, token: &str, query: &[(&str, &str)], body: Value) -> Vec<Value> {
    let r = s.post(token, BATCH_GET_ID_PATH, query, &body).await;
    r.ok()["user_list"].as_array().unwrap().clone()
}

#[tokio::test]
async fn batch_get_id_matches_emails_and_mobiles() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let list = batch_get_id(
        &s,
        &token,
        &[],
        json!({"emails": [ZHANG_WEI_EMAIL, BAI_XUE_EMAIL], "mobiles": [ZHANG_WEI_MOBILE]}),
    )
    .await;
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["email"], ZHANG_WEI_EMAIL);
    assert_eq!(list[0]["user_id"], ZHANG_WEI);
    assert_eq!(list[0]["status"]["is_resigned"], false);
    assert_eq!(list[1]["user_id"], BAI_XUE);
    assert_eq!(list[2]["mobile"], ZHANG_WEI_MOBILE);
    assert_eq!(list[2]["user_id"], ZHANG_WEI);
    // user_id_type applies to the answer.
    let list = batch_get_id(
        &s,
        &token,
        &[("user_id_type", "union_id")],
        json!({"emails": [ZHANG_WEI_EMAIL]}),
    )
    .await;
    assert_eq!(list[0]["user_id"], ZHANG_WEI_UNION);
}

#[tokio::test]
async fn batch_get_id_reads_a_mobile_without_country_code_as_chinese() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let list = batch_get_id(&s, &token, &[], json!({"mobiles": ["17762117949"]})).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["mobile"], "17762117949", "echoes the input");
    assert_eq!(list[0]["user_id"], ZHANG_WEI);
}

#[tokio::test]
async fn batch_get_id_leaves_resigned_unmatched_unless_asked() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let list = batch_get_id(&s, &token, &[], json!({"emails": [MA_CHAO_EMAIL]})).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["email"], MA_CHAO_EMAIL);
    assert!(list[0].get("user_id").is_none(), "{}", list[0]);
    let list = batch_get_id(
        &s,
        &token,
        &[],
        json!({"emails": [MA_CHAO_EMAIL], "include_resigned": true}),
    )
    .await;
    assert_eq!(list[0]["user_id"], MA_CHAO);
    assert_eq!(list[0]["status"]["is_resigned"], true);
}

#[tokio::test]
async fn batch_get_id_leaves_out_of_range_and_unknown_unmatched() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let unknown = "nobody@northwind.example";
    // An enterprise mailbox is not the user's own email.
    let enterprise = "zhang.wei@mail.northwind.example";
    let list = batch_get_id(
        &s,
        &token,
        &[],
        json!({"emails": [XUE_MING_EMAIL, unknown, enterprise], "mobiles": ["+8600000000000"]}),
    )
    .await;
    assert_eq!(list.len(), 4);
    for entry in &list {
        assert!(entry.get("user_id").is_none(), "unmatched: {entry}");
    }
    assert_eq!(list[0]["email"], XUE_MING_EMAIL);
    assert_eq!(list[1]["email"], unknown);
    assert_eq!(list[3]["mobile"], "+8600000000000");
}

#[tokio::test]
async fn batch_get_id_refuses_51_emails_and_an_empty_query() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let emails: Vec<String> = (0..51).map(|i| format!("u{i}@northwind.example")).collect();
    let r = s
        .post(&token, BATCH_GET_ID_PATH, &[], &json!({ "emails": emails }))
        .await;
    assert_eq!(r.violated_field(), "emails");
    let fifty = &emails[..50];
    s.post(&token, BATCH_GET_ID_PATH, &[], &json!({ "emails": fifty }))
        .await
        .ok();
    let r = s.post(&token, BATCH_GET_ID_PATH, &[], &json!({})).await;
    r.err(400, 99992402);
}

// ---- find_by_department --------------------------------------------------------------------

#[tokio::test]
async fn find_by_department_pages_through_all_members_once() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let mut seen: Vec<String> = Vec::new();
    let mut page_token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![("department_id", INTL_DEPT), ("page_size", "2")];
        if let Some(t) = &page_token {
            q.push(("page_token", t.as_str()));
        }
        let r = s.get(&token, FIND_BY_DEPT, &q).await;
        let data = r.ok().clone();
        pages += 1;
        let items = strs(&data["items"], "open_id");
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|s| s.to_string()));
        if data["has_more"] == false {
            assert!(data.get("page_token").is_none_or(|t| t == ""));
            break;
        }
        page_token = Some(data["page_token"].as_str().expect("page_token").into());
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates: {seen:?}");
    // Direct members of International Business, the secondary-department member included.
    let expected: HashSet<String> = seed()
        .users
        .iter()
        .filter(|u| u.departments.iter().any(|d| d == INTL_DEPT))
        .map(|u| u.open_id.clone())
        .collect();
    assert_eq!(expected.len(), 5);
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), expected);
}

#[tokio::test]
async fn find_by_department_omits_resigned_members() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s
        .get(
            &token,
            FIND_BY_DEPT,
            &[("department_id", MOTION_DEPT), ("page_size", "50")],
        )
        .await;
    let ids = strs(&r.ok()["items"], "open_id");
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert!(!ids.contains(&MA_CHAO));
    assert_eq!(r.data()["has_more"], false);
}

#[tokio::test]
async fn find_by_department_page_token_is_bound_to_its_query() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s
        .get(
            &token,
            FIND_BY_DEPT,
            &[("department_id", INTL_DEPT), ("page_size", "2")],
        )
        .await;
    let page_token = r.ok()["page_token"].as_str().unwrap().to_string();
    let r = s
        .get(
            &token,
            FIND_BY_DEPT,
            &[
                ("department_id", PERCEPTION_DEPT),
                ("page_size", "2"),
                ("page_token", &page_token),
            ],
        )
        .await;
    assert_eq!(r.violated_field(), "page_token");
    let r = s
        .get(
            &token,
            FIND_BY_DEPT,
            &[("department_id", INTL_DEPT), ("page_token", "garbage")],
        )
        .await;
    assert_eq!(r.violated_field(), "page_token");
}

#[tokio::test]
async fn find_by_department_checks_page_size_and_range() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s
        .get(
            &token,
            FIND_BY_DEPT,
            &[("department_id", INTL_DEPT), ("page_size", "51")],
        )
        .await;
    assert_eq!(r.violated_field(), "page_size");
    let r = s
        .get(
            &token,
            FIND_BY_DEPT,
            &[("department_id", INTL_DEPT), ("page_size", "0")],
        )
        .await;
    assert_eq!(r.violated_field(), "page_size");
    s.get(
        &token,
        FIND_BY_DEPT,
        &[("department_id", INTL_DEPT), ("page_size", "50")],
    )
    .await
    .ok();
    let r = s
        .get(&token, FIND_BY_DEPT, &[("department_id", LEGAL_DEPT)])
        .await;
    r.err(400, 40004);
    assert_eq!(r.json["msg"], "no dept authority error");
    let r = s.get(&token, FIND_BY_DEPT, &[]).await;
    assert_eq!(r.violated_field(), "department_id");
}

// ---- departments ---------------------------------------------------------------------------

#[tokio::test]
async fn get_department_and_batch() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s.get(&token, &dept_path(PERCEPTION_DEPT), &[]).await;
    let d = &r.ok()["department"];
    assert_eq!(d["open_department_id"], PERCEPTION_DEPT);
    assert_eq!(d["department_id"], "D111");
    assert_eq!(d["parent_department_id"], ROBOTICS_DEPT);
    assert_eq!(d["name"], "感知组");
    assert_eq!(d["i18n_name"]["en_us"], "Perception");
    // Six members, the unjoined one included; nobody has resigned here.
    assert_eq!(d["member_count"], 6);

    let r = s
        .get(
            &token,
            &format!("{DEPTS}/batch"),
            &[
                ("department_ids", RND_DEPT),
                ("department_ids", PERCEPTION_DEPT),
            ],
        )
        .await;
    assert_eq!(
        strs(&r.ok()["items"], "open_department_id"),
        [RND_DEPT, PERCEPTION_DEPT]
    );
    let r = s
        .get(
            &token,
            &format!("{DEPTS}/batch"),
            &[("department_ids", RND_DEPT), ("department_ids", LEGAL_DEPT)],
        )
        .await;
    r.err(400, 40004);
}

#[tokio::test]
async fn out_of_range_and_unknown_departments_are_refused() {
    let s = Sbx::start().await;
    let token = s.token().await;
    s.get(&token, &dept_path(LEGAL_DEPT), &[])
        .await
        .err(400, 40004);
    s.get(&token, &children_path(LEGAL_DEPT), &[])
        .await
        .err(400, 40004);
    s.get(
        &token,
        &dept_path("od-00000000000000000000000000000000"),
        &[],
    )
    .await
    .err(400, 99992354);
    let r = s.get(&token, &dept_path("D111"), &[]).await;
    assert_eq!(
        r.violated_field(),
        "department_id",
        "D111 is no open_department_id"
    );
}

#[tokio::test]
async fn get_root_department_is_40157() {
    let s = Sbx::start().await;
    let token = s.token().await;
    s.get(&token, &dept_path("0"), &[]).await.err(400, 40157);
}

#[tokio::test]
async fn children_direct_or_recursive() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s.get(&token, &children_path(RND_DEPT), &[]).await;
    assert_eq!(
        strs(&r.ok()["items"], "open_department_id"),
        [ROBOTICS_DEPT, INFRA_DEPT]
    );
    assert_eq!(r.data()["has_more"], false);
    let r = s
        .get(&token, &children_path(RND_DEPT), &[("fetch_child", "true")])
        .await;
    let all: HashSet<&str> = strs(&r.ok()["items"], "open_department_id")
        .into_iter()
        .collect();
    assert_eq!(
        all,
        HashSet::from([ROBOTICS_DEPT, INFRA_DEPT, PERCEPTION_DEPT, MOTION_DEPT])
    );
    let r = s.get(&token, &children_path(PERCEPTION_DEPT), &[]).await;
    assert_eq!(r.ok()["items"], json!([]));
}

#[tokio::test]
async fn root_children_need_the_all_members_range() {
    let s = Sbx::start().await;
    let token = s.token().await;
    s.get(&token, &children_path("0"), &[])
        .await
        .err(400, 40004);

    let mut everyone = seed();
    everyone.contact_range.all = true;
    let s = Sbx::with_seed(everyone).await;
    let token = s.token().await;
    let r = s
        .get(&token, &children_path("0"), &[("page_size", "50")])
        .await;
    let top = strs(&r.ok()["items"], "open_department_id");
    assert_eq!(top.len(), 7, "{top:?}");
    assert!(top.contains(&LEGAL_DEPT));
    // With everyone in range, Legal's people are visible too.
    s.get(&token, &user_path(XUE_MING), &[]).await.ok();
}

#[tokio::test]
async fn parent_chain_runs_child_to_parent_without_root() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s
        .get(
            &token,
            &format!("{DEPTS}/parent"),
            &[("department_id", PERCEPTION_DEPT)],
        )
        .await;
    assert_eq!(
        strs(&r.ok()["items"], "open_department_id"),
        [ROBOTICS_DEPT, RND_DEPT]
    );
    let r = s
        .get(
            &token,
            &format!("{DEPTS}/parent"),
            &[("department_id", RND_DEPT)],
        )
        .await;
    assert_eq!(r.ok()["items"], json!([]));
    let r = s
        .get(
            &token,
            &format!("{DEPTS}/parent"),
            &[("department_id", LEGAL_DEPT)],
        )
        .await;
    r.err(400, 40004);
}

#[tokio::test]
async fn department_id_type_department_id_round_trips() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let q = [("department_id_type", "department_id")];
    let r = s.get(&token, &dept_path("D111"), &q).await;
    let d = r.ok()["department"].clone();
    assert_eq!(d["department_id"], "D111");
    assert_eq!(d["open_department_id"], PERCEPTION_DEPT);
    assert_eq!(d["parent_department_id"], "D110");
    // The parent id it gave is usable as-is.
    let r = s.get(&token, &children_path("D110"), &q).await;
    assert_eq!(strs(&r.ok()["items"], "department_id"), ["D111", "D112"]);
    assert_eq!(
        strs(&r.data()["items"], "parent_department_id"),
        ["D110", "D110"]
    );
    let r = s
        .get(
            &token,
            FIND_BY_DEPT,
            &[
                ("department_id", "D111"),
                ("department_id_type", "department_id"),
                ("page_size", "50"),
            ],
        )
        .await;
    let items = r.ok()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 6);
    assert!(items.iter().all(|u| u["department_ids"] == json!(["D111"])));
    let r = s.get(&token, &user_path(ZHANG_WEI), &q).await;
    assert_eq!(r.ok()["user"]["department_ids"], json!(["D111"]));
}

// ---- the data range and user groups ---------------------------------------------------------

#[tokio::test]
async fn contact_scopes_page_size_caps_the_sum_of_the_lists() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let range = seed().contact_range;
    let (mut users, mut depts, mut groups) = (Vec::new(), Vec::new(), Vec::new());
    let mut page_token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![("page_size", "4")];
        if let Some(t) = &page_token {
            q.push(("page_token", t.as_str()));
        }
        let r = s.get(&token, "/open-apis/contact/v3/scopes", &q).await;
        let data = r.ok().clone();
        pages += 1;
        let (u, d, g) = (
            str_list(&data["user_ids"]),
            str_list(&data["department_ids"]),
            str_list(&data["group_ids"]),
        );
        assert!(u.len() + d.len() + g.len() <= 4, "{data}");
        users.extend(u.into_iter().map(String::from));
        depts.extend(d.into_iter().map(String::from));
        groups.extend(g.into_iter().map(String::from));
        if data["has_more"] == false {
            break;
        }
        page_token = Some(data["page_token"].as_str().unwrap().into());
        assert!(pages < 10);
    }
    // 1 user + 6 departments + 3 groups = 10 entries in pages of 4.
    assert_eq!(pages, 3);
    assert_eq!(users, range.user_ids);
    assert_eq!(depts, range.department_ids);
    assert_eq!(groups, range.group_ids);
    let r = s
        .get(
            &token,
            "/open-apis/contact/v3/scopes",
            &[("user_id_type", "user_id")],
        )
        .await;
    assert_eq!(r.ok()["user_ids"], json!(["u427c0e"]));
}

#[tokio::test]
async fn user_groups_in_range_by_type() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s
        .get(&token, "/open-apis/contact/v3/group/simplelist", &[])
        .await;
    let ids = strs(&r.ok()["grouplist"], "id");
    assert_eq!(ids, ["g_4d76a1f435f1", "g_d88fe07f817d"]);
    let r = s
        .get(
            &token,
            "/open-apis/contact/v3/group/simplelist",
            &[("type", "2")],
        )
        .await;
    assert_eq!(strs(&r.ok()["grouplist"], "id"), ["g_0144307cd8be"]);
}

#[tokio::test]
async fn group_members_list_users_and_departments() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let r = s
        .get(
            &token,
            "/open-apis/contact/v3/group/g_d88fe07f817d/member/simplelist",
            &[],
        )
        .await;
    let members = r.ok()["memberlist"].as_array().unwrap().clone();
    assert_eq!(members.len(), 6);
    assert!(members.iter().all(|m| m["member_type"] == "user"
        && m["member_id_type"] == "open_id"
        && m["member_id"].as_str().unwrap().starts_with("ou_")));
    let r = s
        .get(
            &token,
            "/open-apis/contact/v3/group/g_0144307cd8be/member/simplelist",
            &[
                ("member_type", "department"),
                ("member_id_type", "department_id"),
            ],
        )
        .await;
    assert_eq!(strs(&r.ok()["memberlist"], "member_id"), ["D110"]);
}

#[tokio::test]
async fn out_of_range_group_is_refused() {
    let s = Sbx::start().await;
    let token = s.token().await;
    let board = "g_2c7b34b2c4a1";
    s.get(&token, &format!("/open-apis/contact/v3/group/{board}"), &[])
        .await
        .err(400, 40004);
    s.get(
        &token,
        &format!("/open-apis/contact/v3/group/{board}/member/simplelist"),
        &[],
    )
    .await
    .err(400, 40004);
    s.get(&token, "/open-apis/contact/v3/group/g_000000000000", &[])
        .await
        .err(400, 99992357);
    s.get(&token, "/open-apis/contact/v3/group/g_d88fe07f817d", &[])
        .await
        .ok();
}
