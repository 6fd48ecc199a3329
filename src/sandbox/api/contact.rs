//! `contact/v3`: users, departments, the app's data range and user groups.
//!
//! Field scopes apply as on Lark: without `contact:user.email:readonly` a user has no
//! `email`, and so on. Everything outside the app's contact range is refused (40004 /
//! 41050) or, for lookups by email/mobile, silently unmatched.

use axum::http::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::sandbox::endpoint::{Call, Endpoint};
use crate::sandbox::envelope::{ApiError, Reply, codes};
use crate::sandbox::seed::{DepartmentSeed, UserSeed, UserStatusSeed};
use crate::sandbox::world::World;

const BATCH_MAX: usize = 50;

pub fn endpoints() -> Vec<Endpoint> {
    use Method as M;
    vec![
        Endpoint::new(
            "get_user",
            M::GET,
            "/open-apis/contact/v3/users/{user_id}",
            get_user,
        ),
        Endpoint::new(
            "batch_get_users",
            M::GET,
            "/open-apis/contact/v3/users/batch",
            batch_get_users,
        ),
        Endpoint::new(
            "lookup_user_by_email_or_mobile",
            M::POST,
            "/open-apis/contact/v3/users/batch_get_id",
            batch_get_id,
        ),
        Endpoint::new(
            "find_users_by_department",
            M::GET,
            "/open-apis/contact/v3/users/find_by_department",
            find_by_department,
        ),
        Endpoint::new(
            "get_department",
            M::GET,
            "/open-apis/contact/v3/departments/{department_id}",
            get_department,
        ),
        Endpoint::new(
            "batch_get_departments",
            M::GET,
            "/open-apis/contact/v3/departments/batch",
            batch_get_departments,
        ),
        Endpoint::new(
            "list_child_departments",
            M::GET,
            "/open-apis/contact/v3/departments/{department_id}/children",
            children,
        ),
        Endpoint::new(
            "list_parent_departments",
            M::GET,
            "/open-apis/contact/v3/departments/parent",
            parents,
        ),
        Endpoint::new(
            "list_contact_scopes",
            M::GET,
            "/open-apis/contact/v3/scopes",
            contact_scopes,
        ),
        Endpoint::new(
            "list_user_groups",
            M::GET,
            "/open-apis/contact/v3/group/simplelist",
            list_groups,
        ),
        Endpoint::new(
            "get_user_group",
            M::GET,
            "/open-apis/contact/v3/group/{group_id}",
            get_group,
        ),
        Endpoint::new(
            "list_user_group_members",
            M::GET,
            "/open-apis/contact/v3/group/{group_id}/member/simplelist",
            group_members,
        ),
        Endpoint::new(
            "list_groups_of_member",
            M::GET,
            "/open-apis/contact/v3/group/member_belong",
            member_belong,
        ),
    ]
}

// ---- validation ---------------------------------------------------------------------

/// Rejects ids whose form cannot be of the declared type (an `on_` id sent as open_id).
fn check_id_form(field: &str, id: &str, id_type: &str) -> Result<(), ApiError> {
    let prefix = match id_type {
        "open_id" => Some("ou_"),
        "union_id" => Some("on_"),
        "open_department_id" if id != "0" => Some("od-"),
        _ => None,
    };
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
        && prefix.is_none_or(|p| id.starts_with(p));
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            field,
            id,
            format!("{field} is not a valid {id_type}"),
        ))
    }
}

fn user_out_of_range() -> ApiError {
    ApiError::new(400, codes::USER_OUT_OF_RANGE, "no user authority error")
}

fn dept_out_of_range() -> ApiError {
    ApiError::new(400, codes::DEPT_OUT_OF_RANGE, "no dept authority error")
}

// ---- rendering ------------------------------------------------------------------------

fn status_json(s: UserStatusSeed) -> Value {
    json!({
        "is_frozen": s == UserStatusSeed::Frozen,
        "is_resigned": s == UserStatusSeed::Resigned,
        "is_activated": matches!(s, UserStatusSeed::Active | UserStatusSeed::Frozen),
        "is_exited": false,
        "is_unjoin": s == UserStatusSeed::Unjoin,
    })
}

fn avatar(open_id: &str) -> Value {
    let base = format!("https://s3-imfile.feishucdn.com/static-resource/v1/v3_{open_id}");
    json!({
        "avatar_72": format!("{base}~?image_size=72x72"),
        "avatar_240": format!("{base}~?image_size=240x240"),
        "avatar_640": format!("{base}~?image_size=640x640"),
        "avatar_origin": format!("{base}~?image_size=noop"),
    })
}

fn user_json(world: &World, u: &UserSeed, user_type: &str, dept_type: &str) -> Value {
    let mut m = Map::new();
    m.insert("open_id".into(), json!(u.open_id));
    m.insert("union_id".into(), json!(u.union_id));
    if world.has_scope("contact:user.employee_id:readonly") {
        m.insert("user_id".into(), json!(u.user_id));
    }
    m.insert("name".into(), json!(u.name));
    m.insert(
        "en_name".into(),
        json!(u.en_name.clone().unwrap_or_default()),
    );
    if world.has_scope("contact:user.email:readonly") {
        if let Some(e) = &u.email {
            m.insert("email".into(), json!(e));
        }
        if let Some(e) = &u.enterprise_email {
            m.insert("enterprise_email".into(), json!(e));
        }
    }
    if world.has_scope("contact:user.phone:readonly")
        && let Some(p) = &u.mobile
    {
        m.insert("mobile".into(), json!(p));
        m.insert("mobile_visible".into(), json!(true));
    }
    m.insert("gender".into(), json!(u.gender));
    m.insert("avatar".into(), avatar(&u.open_id));
    m.insert("status".into(), status_json(u.status));
    if world.has_scope("contact:user.department:readonly") {
        let ids: Vec<String> = u
            .departments
            .iter()
            .map(|d| world.dept_id_of(d, dept_type))
            .collect();
        m.insert("department_ids".into(), json!(ids));
        let orders: Vec<Value> = u
            .departments
            .iter()
            .enumerate()
            .map(|(i, d)| {
                json!({"department_id": world.dept_id_of(d, dept_type), "user_order": 0,
                       "department_order": i + 1, "is_primary_dept": i == 0})
            })
            .collect();
        m.insert("orders".into(), json!(orders));
    }
    if let Some(l) = u.leader.as_deref().and_then(|l| world.user_by_open_id(l)) {
        m.insert(
            "leader_user_id".into(),
            json!(world.user_id_of(l, user_type)),
        );
    }
    for (k, v) in [
        ("city", &u.city),
        ("job_title", &u.job_title),
        ("employee_no", &u.employee_no),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    m.insert("country".into(), json!("CN"));
    m.insert("work_station".into(), json!(""));
    m.insert("join_time".into(), json!(u.join_time));
    m.insert("is_tenant_manager".into(), json!(u.is_tenant_manager));
    m.insert("employee_type".into(), json!(1));
    m.insert("tenant_key".into(), json!(world.app.tenant_key));
    Value::Object(m)
}

fn dept_json(world: &World, d: &DepartmentSeed, user_type: &str, dept_type: &str) -> Value {
    let subtree: Vec<&str> = world
        .departments
        .iter()
        .filter(|x| {
            world
                .department_chain(&x.open_department_id)
                .iter()
                .any(|c| c.open_department_id == d.open_department_id)
        })
        .map(|x| x.open_department_id.as_str())
        .collect();
    let active = |u: &&UserSeed| u.status != UserStatusSeed::Resigned;
    let member_count = world
        .users
        .iter()
        .filter(active)
        .filter(|u| {
            u.departments
                .iter()
                .any(|ud| subtree.contains(&ud.as_str()))
        })
        .count();
    let primary = world
        .users
        .iter()
        .filter(active)
        .filter(|u| u.departments.first() == Some(&d.open_department_id))
        .count();
    let mut m = Map::new();
    m.insert("name".into(), json!(d.name));
    m.insert(
        "i18n_name".into(),
        json!({"zh_cn": d.name, "en_us": d.en_name.clone().unwrap_or_default(), "ja_jp": ""}),
    );
    m.insert(
        "parent_department_id".into(),
        json!(world.dept_id_of(&d.parent, dept_type)),
    );
    m.insert("department_id".into(), json!(d.department_id));
    m.insert("open_department_id".into(), json!(d.open_department_id));
    if let Some(l) = d.leader.as_deref().and_then(|l| world.user_by_open_id(l)) {
        let id = world.user_id_of(l, user_type);
        m.insert("leader_user_id".into(), json!(id));
        m.insert("leaders".into(), json!([{"leaderType": 1, "leaderID": id}]));
    }
    if let Some(c) = &d.chat_id {
        m.insert("chat_id".into(), json!(c));
    }
    m.insert("order".into(), json!(d.order.to_string()));
    m.insert("member_count".into(), json!(member_count));
    m.insert("primary_member_count".into(), json!(primary));
    m.insert("status".into(), json!({"is_deleted": false}));
    Value::Object(m)
}

// ---- users ----------------------------------------------------------------------------

fn get_user(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let dept_type = call.department_id_type()?;
    let id = call.path_param("user_id");
    check_id_form("user_id", id, user_type)?;
    let u = world.find_user(id, user_type)?;
    if !world.user_in_range(u) {
        return Err(user_out_of_range());
    }
    Ok(Reply::Data(
        json!({"user": user_json(world, u, user_type, dept_type)}),
    ))
}

fn batch_get_users(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let dept_type = call.department_id_type()?;
    let ids = call.query_all("user_ids");
    if ids.is_empty() || ids.len() > BATCH_MAX {
        return Err(ApiError::field(
            "user_ids",
            &ids.len().to_string(),
            format!("user_ids must hold 1 to {BATCH_MAX} ids"),
        ));
    }
    let mut items = Vec::new();
    for id in ids {
        check_id_form("user_ids", id, user_type)?;
        let u = world.find_user(id, user_type)?;
        if world.user_in_range(u) {
            items.push(user_json(world, u, user_type, dept_type));
        }
    }
    Ok(Reply::Data(json!({ "items": items })))
}

#[derive(Deserialize)]
struct BatchGetIdBody {
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    mobiles: Vec<String>,
    #[serde(default)]
    include_resigned: bool,
}

/// Mobiles without a country code are Chinese numbers, as Lark reads them.
fn normalize_mobile(m: &str) -> String {
    let digits: String = m
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    if digits.starts_with('+') {
        digits
    } else {
        format!("+86{digits}")
    }
}

fn batch_get_id(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let body: BatchGetIdBody = call.json()?;
    if body.emails.is_empty() && body.mobiles.is_empty() {
        return Err(ApiError::field(
            "emails",
            "",
            "emails and mobiles cannot both be empty",
        ));
    }
    for (field, list) in [("emails", &body.emails), ("mobiles", &body.mobiles)] {
        if list.len() > BATCH_MAX {
            return Err(ApiError::field(
                field,
                &list.len().to_string(),
                format!("{field} must hold at most {BATCH_MAX} entries"),
            ));
        }
    }
    let visible = |u: &&UserSeed| {
        world.user_in_range(u) && (body.include_resigned || u.status != UserStatusSeed::Resigned)
    };
    let entry = |key: &str, value: &str, found: Option<&UserSeed>| {
        let mut m = Map::new();
        if let Some(u) = found {
            m.insert("user_id".into(), json!(world.user_id_of(u, user_type)));
            m.insert("status".into(), status_json(u.status));
        }
        m.insert(key.into(), json!(value));
        Value::Object(m)
    };
    let mut list = Vec::new();
    for e in &body.emails {
        // Only the user's own address matches: Lark does not look up enterprise mailboxes.
        let found = world.users.iter().filter(visible).find(|u| {
            u.email
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(e.trim()))
        });
        list.push(entry("email", e, found));
    }
    for m in &body.mobiles {
        let want = normalize_mobile(m);
        let found = world.users.iter().filter(visible).find(|u| {
            u.mobile
                .as_deref()
                .is_some_and(|x| normalize_mobile(x) == want)
        });
        list.push(entry("mobile", m, found));
    }
    Ok(Reply::Data(json!({ "user_list": list })))
}

fn find_by_department(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let dept_type = call.department_id_type()?;
    let dept = call.required_query("department_id")?.to_string();
    check_id_form("department_id", &dept, dept_type)?;
    let page = call.page(10, 50, &format!("{dept}|{user_type}|{dept_type}"))?;
    let open_dept = if dept == "0" {
        "0".to_string()
    } else {
        let d = world.find_department(&dept, dept_type)?;
        if !world.department_in_range(&d.open_department_id) {
            return Err(dept_out_of_range());
        }
        d.open_department_id.clone()
    };
    let members: Vec<Value> = world
        .users
        .iter()
        .filter(|u| u.status != UserStatusSeed::Resigned && u.departments.contains(&open_dept))
        .filter(|u| world.user_in_range(u))
        .map(|u| user_json(world, u, user_type, dept_type))
        .collect();
    Ok(Reply::Data(page.slice(&members).into_data("items")))
}

// ---- departments ------------------------------------------------------------------------

fn visible_department<'w>(
    world: &'w World,
    id: &str,
    id_type: &str,
) -> Result<&'w DepartmentSeed, ApiError> {
    check_id_form("department_id", id, id_type)?;
    if id == "0" {
        return Err(ApiError::new(
            400,
            codes::ROOT_DEPT_NOT_FETCHABLE,
            "root department cannot be fetched directly",
        ));
    }
    let d = world.find_department(id, id_type)?;
    if !world.department_in_range(&d.open_department_id) {
        return Err(dept_out_of_range());
    }
    Ok(d)
}

fn get_department(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let dept_type = call.department_id_type()?;
    let d = visible_department(world, call.path_param("department_id"), dept_type)?;
    Ok(Reply::Data(
        json!({"department": dept_json(world, d, user_type, dept_type)}),
    ))
}

fn batch_get_departments(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let dept_type = call.department_id_type()?;
    let ids = call.query_all("department_ids");
    if ids.is_empty() || ids.len() > BATCH_MAX {
        return Err(ApiError::field(
            "department_ids",
            &ids.len().to_string(),
            format!("department_ids must hold 1 to {BATCH_MAX} ids"),
        ));
    }
    let mut items = Vec::new();
    for id in ids {
        let d = visible_department(world, id, dept_type)?;
        items.push(dept_json(world, d, user_type, dept_type));
    }
    Ok(Reply::Data(json!({ "items": items })))
}

fn children(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let dept_type = call.department_id_type()?;
    let recursive = call.bool_query("fetch_child")?;
    let id = call.path_param("department_id").to_string();
    check_id_form("department_id", &id, dept_type)?;
    let page = call.page(10, 50, &format!("{id}|{recursive}|{user_type}|{dept_type}"))?;
    let parent = if id == "0" {
        // Listing the root needs the "all members" range.
        if !world.range.all {
            return Err(dept_out_of_range());
        }
        "0".to_string()
    } else {
        visible_department(world, &id, dept_type)?
            .open_department_id
            .clone()
    };
    let mut found: Vec<&DepartmentSeed> = Vec::new();
    let mut frontier = vec![parent];
    while let Some(p) = frontier.pop() {
        let mut kids: Vec<&DepartmentSeed> =
            world.departments.iter().filter(|d| d.parent == p).collect();
        kids.sort_by_key(|d| d.order);
        if recursive {
            frontier.extend(kids.iter().rev().map(|d| d.open_department_id.clone()));
        }
        found.extend(kids);
    }
    let items: Vec<Value> = found
        .iter()
        .map(|d| dept_json(world, d, user_type, dept_type))
        .collect();
    Ok(Reply::Data(page.slice(&items).into_data("items")))
}

fn parents(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let dept_type = call.department_id_type()?;
    let id = call.required_query("department_id")?.to_string();
    let page = call.page(10, 50, &format!("{id}|{user_type}|{dept_type}"))?;
    let d = visible_department(world, &id, dept_type)?;
    let items: Vec<Value> = world
        .department_chain(&d.open_department_id)
        .into_iter()
        .skip(1)
        .map(|p| dept_json(world, p, user_type, dept_type))
        .collect();
    Ok(Reply::Data(page.slice(&items).into_data("items")))
}

fn contact_scopes(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let dept_type = call.department_id_type()?;
    let page = call.page(50, 100, &format!("{user_type}|{dept_type}"))?;
    // Users first, then departments, then groups; page_size caps the sum of the three.
    let (users, depts, groups): (Vec<String>, Vec<String>, Vec<String>) = if world.range.all {
        (
            Vec::new(),
            world
                .departments
                .iter()
                .filter(|d| d.parent == "0")
                .map(|d| d.open_department_id.clone())
                .collect(),
            world.groups.iter().map(|g| g.id.clone()).collect(),
        )
    } else {
        (
            world.range.user_ids.clone(),
            world.range.department_ids.clone(),
            world.range.group_ids.clone(),
        )
    };
    let mut all: Vec<(u8, String)> = Vec::new();
    for u in users.iter().filter_map(|id| world.user_by_open_id(id)) {
        all.push((0, world.user_id_of(u, user_type)));
    }
    all.extend(depts.iter().map(|d| (1, world.dept_id_of(d, dept_type))));
    all.extend(groups.into_iter().map(|g| (2, g)));
    let out = page.slice(&all);
    let pick = |k: u8| -> Vec<&String> {
        out.items
            .iter()
            .filter(|(t, _)| *t == k)
            .map(|(_, v)| v)
            .collect()
    };
    let mut data = json!({
        "user_ids": pick(0),
        "department_ids": pick(1),
        "group_ids": pick(2),
        "has_more": out.has_more,
    });
    if let Some(t) = &out.page_token {
        data["page_token"] = json!(t);
    }
    Ok(Reply::Data(data))
}

// ---- user groups ----------------------------------------------------------------------

fn group_out_of_range() -> ApiError {
    ApiError::new(400, codes::DEPT_OUT_OF_RANGE, "no group authority error")
}

fn list_groups(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let kind = match call.enum_query("type", &["1", "2"], "1")? {
        "2" => 2,
        _ => 1,
    };
    let page = call.page(50, 100, &kind.to_string())?;
    let items: Vec<Value> = world
        .groups
        .iter()
        .filter(|g| g.r#type == kind && world.group_in_range(&g.id))
        .map(|g| {
            json!({"id": g.id, "name": g.name, "description": g.description,
                   "member_user_count": g.member_users.len(),
                   "member_department_count": g.member_departments.len(), "type": g.r#type})
        })
        .collect();
    Ok(Reply::Data(page.slice(&items).into_data("grouplist")))
}

fn find_group<'w>(
    world: &'w World,
    id: &str,
) -> Result<&'w crate::sandbox::seed::GroupSeed, ApiError> {
    let g = world
        .groups
        .iter()
        .find(|g| g.id == id)
        .ok_or_else(|| crate::sandbox::world::not_existed("group_id", id))?;
    if !world.group_in_range(&g.id) {
        return Err(group_out_of_range());
    }
    Ok(g)
}

fn get_group(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    call.user_id_type()?;
    call.department_id_type()?;
    let g = find_group(world, call.path_param("group_id"))?;
    Ok(Reply::Data(json!({"group": {
        "id": g.id, "name": g.name, "description": g.description,
        "member_user_count": g.member_users.len(),
        "member_department_count": g.member_departments.len(), "type": g.r#type,
    }})))
}

fn group_members(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let member_type = call.enum_query("member_type", &["user", "department"], "user")?;
    let id_type = if member_type == "user" {
        call.enum_query(
            "member_id_type",
            &["open_id", "union_id", "user_id"],
            "open_id",
        )?
    } else {
        call.enum_query(
            "member_id_type",
            &["open_department_id", "department_id"],
            "open_department_id",
        )?
    };
    let gid = call.path_param("group_id").to_string();
    let page = call.page(50, 100, &format!("{gid}|{member_type}|{id_type}"))?;
    let g = find_group(world, &gid)?;
    let items: Vec<Value> = if member_type == "user" {
        g.member_users
            .iter()
            .filter_map(|id| world.user_by_open_id(id))
            .map(|u| json!({"member_id": world.user_id_of(u, id_type), "member_type": "user", "member_id_type": id_type}))
            .collect()
    } else {
        g.member_departments
            .iter()
            .map(|d| json!({"member_id": world.dept_id_of(d, id_type), "member_type": "department", "member_id_type": id_type}))
            .collect()
    };
    Ok(Reply::Data(page.slice(&items).into_data("memberlist")))
}

fn member_belong(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let id_type = call.enum_query(
        "member_id_type",
        &["open_id", "union_id", "user_id"],
        "open_id",
    )?;
    let group_type = call.enum_query("group_type", &["1", "2"], "1")?;
    let member = call.required_query("member_id")?.to_string();
    check_id_form("member_id", &member, id_type)?;
    let page = call.page(500, 1000, &format!("{member}|{id_type}|{group_type}"))?;
    let u = world.find_user(&member, id_type)?;
    if !world.user_in_range(u) {
        return Err(user_out_of_range());
    }
    let kind: i64 = if group_type == "2" { 2 } else { 1 };
    let ids: Vec<String> = world
        .groups
        .iter()
        .filter(|g| {
            g.r#type == kind && g.member_users.contains(&u.open_id) && world.group_in_range(&g.id)
        })
        .map(|g| g.id.clone())
        .collect();
    Ok(Reply::Data(page.slice(&ids).into_data("group_list")))
}
