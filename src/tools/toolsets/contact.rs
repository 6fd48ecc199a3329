//! Toolset `contact`: people, departments, user groups and the app's view of the directory.
//! All read-only. Outputs use open_id / open_department_id and carry names next to ids.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lark::scope_sets as scopes;
use crate::lark::{Request, api_path};
use crate::tools::ids::{DepartmentIdType, UserIdType};
use crate::tools::output::{Department, NamedId, Person, status_word};
use crate::tools::paging::{Paging, pages, with_paging};
use crate::tools::{Needs, ToolCtx, ToolDef, ToolError, ToolMeta, Toolset};

const BATCH_MAX: usize = 50;

pub(super) const fn read(
    name: &'static str,
    title: &'static str,
    description: &'static str,
    scopes: &'static [&'static str],
) -> ToolMeta {
    ToolMeta {
        name,
        toolset: Toolset::Contact,
        title,
        description,
        scopes,
        read_only: true,
        destructive: false,
        idempotent: true,
        needs: Needs::Nothing,
        identity: crate::tools::Identity::Bot,
    }
}

pub fn tools() -> Vec<ToolDef> {
    vec![
        ToolDef::new(
            read(
                "lookup_user_by_email",
                "Look up users by email or mobile",
                "Resolve emails or mobile numbers to people's ids and status; use it before messaging someone by address.",
                scopes::USER_ID_LOOKUP,
            ),
            lookup_user_by_email,
        ),
        ToolDef::new(
            ToolMeta {
                identity: crate::tools::Identity::User,
                ..read(
                    "search_users",
                    "Search people by name",
                    "Find people in your organisation by name (as you, the signed-in user); use it when you know a name but no email or id.",
                    scopes::USER_SEARCH,
                )
            },
            search_users,
        ),
        ToolDef::new(
            read(
                "get_user",
                "Get a user",
                "Get one person's profile: name, ids, email, departments, leader, job title and status.",
                scopes::CONTACT_READ,
            ),
            get_user,
        ),
        ToolDef::new(
            read(
                "get_users",
                "Get several users",
                "Get up to 50 people's profiles in one call.",
                scopes::USERS_BATCH,
            ),
            get_users,
        ),
        ToolDef::new(
            read(
                "list_department_users",
                "List a department's members",
                "List the people directly in a department (\"0\" is the root).",
                scopes::DEPARTMENTS_READ,
            ),
            list_department_users,
        ),
        ToolDef::new(
            read(
                "get_department",
                "Get a department",
                "Get one department: name, parent, leader, member count and group chat.",
                scopes::DEPARTMENTS_READ,
            ),
            get_department,
        ),
        ToolDef::new(
            read(
                "list_departments",
                "List sub-departments",
                "List the departments under a parent (default root \"0\"); recursive lists the subtree.",
                scopes::DEPARTMENTS_READ,
            ),
            list_departments,
        ),
        ToolDef::new(
            read(
                "get_department_path",
                "Get a department's path",
                "Get the chain of departments from the top down to the given one.",
                scopes::DEPARTMENTS_READ,
            ),
            get_department_path,
        ),
        ToolDef::new(
            read(
                "list_user_groups",
                "List user groups",
                "List the tenant's user groups (mailing-list style).",
                scopes::GROUPS_READ,
            ),
            list_user_groups,
        ),
        ToolDef::new(
            read(
                "list_user_group_members",
                "List a user group's members",
                "List the people (or departments) in a user group.",
                scopes::GROUPS_READ,
            ),
            list_user_group_members,
        ),
        ToolDef::new(
            read(
                "get_contact_scope",
                "Get the app's contact range",
                "Show which departments, people and groups the app may see.",
                scopes::CONTACT_RANGE,
            ),
            get_contact_scope,
        ),
    ]
}

// ---- people ---------------------------------------------------------------------------

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LookupArgs {
    /// Email addresses (at most 50).
    #[serde(default)]
    emails: Vec<String>,
    /// Mobile numbers, with country code or as Chinese numbers (at most 50).
    #[serde(default)]
    mobiles: Vec<String>,
    /// Also match people who have left the company.
    #[serde(default)]
    include_resigned: bool,
}

#[derive(Serialize, JsonSchema)]
struct Match {
    /// The email or mobile that matched.
    query: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    open_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    union_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    status: String,
}

#[derive(Serialize, JsonSchema)]
struct LookupOut {
    found: Vec<Match>,
    /// Queries with no visible match: unknown, outside the app's contact range, or resigned.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    not_found: Vec<String>,
}

async fn lookup_user_by_email(ctx: ToolCtx, a: LookupArgs) -> Result<LookupOut, ToolError> {
    if a.emails.is_empty() && a.mobiles.is_empty() {
        return Err(ToolError::invalid(
            "emails",
            "give at least one email or mobile",
        ));
    }
    for (field, list) in [("emails", &a.emails), ("mobiles", &a.mobiles)] {
        if list.len() > BATCH_MAX {
            return Err(ToolError::invalid(
                field,
                format!("at most {BATCH_MAX} per call, got {}", list.len()),
            ));
        }
    }
    let req = Request::post(
        "look up users by email or mobile",
        "/open-apis/contact/v3/users/batch_get_id".into(),
        serde_json::json!({"emails": a.emails, "mobiles": a.mobiles, "include_resigned": a.include_resigned}),
    )
    .query("user_id_type", "open_id")
    .idempotent();
    let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
    let list = data
        .get("user_list")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let found_ids: Vec<String> = list
        .iter()
        .filter_map(|e| e.get("user_id").and_then(Value::as_str).map(String::from))
        .collect();
    // Profiles add names and the other ids; without the scope for them the ids alone still answer.
    let profiles: HashMap<String, Value> = fetch_users(&ctx, &found_ids, UserIdType::OpenId)
        .await
        .map(|users| {
            users
                .into_iter()
                .filter_map(|u| Some((u.get("open_id")?.as_str()?.to_string(), u)))
                .collect()
        })
        .unwrap_or_default();
    let mut out = LookupOut {
        found: Vec::new(),
        not_found: Vec::new(),
    };
    for e in &list {
        let query = e
            .get("email")
            .or_else(|| e.get("mobile"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match e.get("user_id").and_then(Value::as_str) {
            Some(open_id) => {
                let p = profiles.get(open_id);
                let field = |k: &str| {
                    p.and_then(|p| p.get(k))
                        .and_then(Value::as_str)
                        .map(String::from)
                };
                out.found.push(Match {
                    query,
                    name: field("name"),
                    open_id: open_id.to_string(),
                    union_id: field("union_id"),
                    user_id: field("user_id"),
                    status: status_word(
                        e.get("status").or_else(|| p.and_then(|p| p.get("status"))),
                    )
                    .to_string(),
                });
            }
            None => out.not_found.push(query),
        }
    }
    Ok(out)
}

/// `users/batch` in chunks of 50; ids of one type.
async fn fetch_users(
    ctx: &ToolCtx,
    ids: &[String],
    id_type: UserIdType,
) -> Result<Vec<Value>, ToolError> {
    let mut users = Vec::new();
    for chunk in ids.chunks(BATCH_MAX) {
        let mut req = Request::get("get users", "/open-apis/contact/v3/users/batch".into())
            .query("user_id_type", id_type.as_str())
            .query("department_id_type", "open_department_id");
        for id in chunk {
            req = req.query("user_ids", id.clone());
        }
        let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
        users.extend(
            data.get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
    }
    Ok(users)
}

/// Profiles fetched by union_id or user_id carry `leader_user_id` in that id type, which
/// would put a union/user id without a name where outputs promise an open_id with its name;
/// such profiles are fetched again by the open_ids they contain.
async fn by_open_id(
    ctx: &ToolCtx,
    raw: Vec<Value>,
    id_type: UserIdType,
) -> Result<Vec<Value>, ToolError> {
    if id_type == UserIdType::OpenId {
        return Ok(raw);
    }
    let ids: Vec<String> = raw
        .iter()
        .filter_map(|u| u.get("open_id").and_then(Value::as_str).map(String::from))
        .collect();
    if ids.is_empty() {
        return Ok(raw);
    }
    fetch_users(ctx, &ids, UserIdType::OpenId).await
}

/// Compact people with department and leader names filled in.
async fn people(ctx: &ToolCtx, users: &[Value]) -> Vec<Person> {
    let (leaders, depts) = Person::referenced_ids(users);
    let mut names = ctx.shared.names.users(ctx, &leaders).await;
    names.extend(ctx.shared.names.departments(ctx, &depts).await);
    let out: Vec<Person> = users.iter().map(|u| Person::from_lark(u, &names)).collect();
    for p in &out {
        ctx.shared.names.put(&p.open_id, &p.name);
    }
    out
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetUserArgs {
    /// open_id (ou_…), union_id (on_…) or user_id.
    user_id: String,
    /// Inferred from the id's prefix when omitted.
    id_type: Option<UserIdType>,
}

async fn get_user(ctx: ToolCtx, a: GetUserArgs) -> Result<Person, ToolError> {
    let id_type = UserIdType::resolve(a.id_type, &a.user_id);
    let path = api_path("/open-apis/contact/v3/users/{}", &[&a.user_id])
        .map_err(|e| ToolError::invalid("user_id", e.msg))?;
    let req = Request::get("get user", path)
        .query("user_id_type", id_type.as_str())
        .query("department_id_type", "open_department_id");
    let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
    let user = data.get("user").cloned().unwrap_or(Value::Null);
    let user = if id_type == UserIdType::OpenId {
        user
    } else {
        by_open_id(&ctx, vec![user], id_type)
            .await?
            .pop()
            .unwrap_or(Value::Null)
    };
    people(&ctx, std::slice::from_ref(&user))
        .await
        .pop()
        .ok_or_else(|| ToolError::msg("get user failed: Lark returned no user"))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetUsersArgs {
    /// Up to 50 ids; each may be an open_id, union_id or user_id.
    user_ids: Vec<String>,
    /// Applies to every id; inferred per id from its prefix when omitted.
    id_type: Option<UserIdType>,
}

#[derive(Serialize, JsonSchema)]
struct UsersOut {
    users: Vec<Person>,
    /// Ids Lark did not return: outside the app's contact range.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    not_returned: Vec<String>,
}

async fn get_users(ctx: ToolCtx, a: GetUsersArgs) -> Result<UsersOut, ToolError> {
    if a.user_ids.is_empty() || a.user_ids.len() > BATCH_MAX {
        return Err(ToolError::invalid(
            "user_ids",
            format!("give 1 to {BATCH_MAX} ids, got {}", a.user_ids.len()),
        ));
    }
    let mut by_type: Vec<(UserIdType, Vec<String>)> = Vec::new();
    for id in &a.user_ids {
        let t = UserIdType::resolve(a.id_type, id);
        match by_type.iter_mut().find(|(k, _)| *k == t) {
            Some((_, v)) => v.push(id.clone()),
            None => by_type.push((t, vec![id.clone()])),
        }
    }
    let mut raw: Vec<Value> = Vec::new();
    for (t, ids) in &by_type {
        let fetched = by_open_id(&ctx, fetch_users(&ctx, ids, *t).await?, *t).await?;
        // The same person asked for by two of their ids is listed once.
        for u in fetched {
            let open_id = u.get("open_id").and_then(Value::as_str);
            if open_id.is_none()
                || !raw
                    .iter()
                    .any(|r| r.get("open_id").and_then(Value::as_str) == open_id)
            {
                raw.push(u);
            }
        }
    }
    let users = people(&ctx, &raw).await;
    let returned = |id: &String| {
        users.iter().any(|p| {
            &p.open_id == id || p.union_id.as_ref() == Some(id) || p.user_id.as_ref() == Some(id)
        })
    };
    let not_returned = a
        .user_ids
        .iter()
        .filter(|id| !returned(id))
        .cloned()
        .collect();
    Ok(UsersOut {
        users,
        not_returned,
    })
}

with_paging! {
    "Items per page, 1–50.",
    struct DeptUsersArgs {
        /// Department id; "0" is the root.
        department_id: String,
        /// Inferred from the id (od-… is open_department_id) when omitted.
        id_type: Option<DepartmentIdType>,
    }
}

#[derive(Serialize, JsonSchema)]
struct PeoplePage {
    // Outputs carry no empty arrays; `hint` says why the list is missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    users: Vec<Person>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
    /// Where to look instead, when nobody is listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

/// Lark lists only direct members, and most orgs put nobody directly under the root, so an
/// empty list usually means "look one level down", not "nobody is here".
fn empty_department_hint(department_id: &str) -> String {
    format!(
        "Nobody sits directly in this department; people are usually in its sub-departments. Call list_departments with parent_id \"{department_id}\" and list their users (or call get_contact_scope to see what the app can see)."
    )
}

async fn list_department_users(
    ctx: ToolCtx,
    mut a: DeptUsersArgs,
) -> Result<PeoplePage, ToolError> {
    let t = DepartmentIdType::resolve(a.id_type, &a.department_id);
    let base = Request::get(
        "list department users",
        "/open-apis/contact/v3/users/find_by_department".into(),
    )
    .query("department_id", a.department_id.clone())
    .query("department_id_type", t.as_str())
    .query("user_id_type", "open_id");
    let paging = a.paging();
    let (raw, next, _) = pages(&ctx, base, "items", paging, 50).await?;
    // The listing asked for the given id type; names are looked up by open ids.
    let users = people(&ctx, &raw).await;
    let hint =
        (users.is_empty() && next.is_none()).then(|| empty_department_hint(&a.department_id));
    Ok(PeoplePage {
        users,
        next_page_token: next,
        hint,
    })
}

// ---- departments -------------------------------------------------------------------------

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DeptArgs {
    /// Department id (od-… or a custom department_id).
    department_id: String,
    /// Inferred from the id when omitted.
    id_type: Option<DepartmentIdType>,
}

async fn departments_out(ctx: &ToolCtx, raw: &[Value]) -> Vec<Department> {
    let (leaders, parents) = Department::referenced_ids(raw);
    let mut names = ctx.shared.names.users(ctx, &leaders).await;
    names.extend(ctx.shared.names.departments(ctx, &parents).await);
    let out: Vec<Department> = raw
        .iter()
        .map(|d| Department::from_lark(d, &names))
        .collect();
    for d in &out {
        ctx.shared.names.put(&d.open_department_id, &d.name);
    }
    out
}

async fn get_department(ctx: ToolCtx, a: DeptArgs) -> Result<Department, ToolError> {
    let t = DepartmentIdType::resolve(a.id_type, &a.department_id);
    let path = api_path("/open-apis/contact/v3/departments/{}", &[&a.department_id])
        .map_err(|e| ToolError::invalid("department_id", e.msg))?;
    let req = Request::get("get department", path)
        .query("department_id_type", t.as_str())
        .query("user_id_type", "open_id");
    let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
    let dept = data.get("department").cloned().unwrap_or(Value::Null);
    departments_out(&ctx, std::slice::from_ref(&dept))
        .await
        .pop()
        .ok_or_else(|| ToolError::msg("get department failed: Lark returned no department"))
}

with_paging! {
    "Items per page, 1–50.",
    struct ListDeptsArgs {
        /// Parent department id; the root "0" when omitted.
        parent_id: Option<String>,
        /// Inferred from the id when omitted.
        id_type: Option<DepartmentIdType>,
        /// Include every level below, not just direct children.
        #[serde(default)]
        recursive: bool,
    }
}

#[derive(Serialize, JsonSchema)]
struct DeptPage {
    departments: Vec<Department>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

async fn list_departments(ctx: ToolCtx, mut a: ListDeptsArgs) -> Result<DeptPage, ToolError> {
    let parent = a.parent_id.take().unwrap_or_else(|| "0".into());
    let t = DepartmentIdType::resolve(a.id_type, &parent);
    let path = api_path("/open-apis/contact/v3/departments/{}/children", &[&parent])
        .map_err(|e| ToolError::invalid("parent_id", e.msg))?;
    let base = Request::get("list departments", path)
        .query("department_id_type", t.as_str())
        .query("user_id_type", "open_id")
        .query("fetch_child", a.recursive.to_string());
    let paging = a.paging();
    match pages(&ctx, base, "items", paging, 50).await {
        Ok((raw, next, _)) => Ok(DeptPage {
            departments: departments_out(&ctx, &raw).await,
            next_page_token: next,
            note: None,
        }),
        // Listing the root needs the "all members" range; a partial range still has
        // granted departments, which are the useful answer.
        Err(e)
            if parent == "0"
                && e.lark
                    .as_ref()
                    .is_some_and(|l| l.kind == crate::lark::ErrorKind::DataRange) =>
        {
            let (_, depts, _) = contact_range(&ctx).await?;
            let mut raw = Vec::new();
            for chunk in depts.chunks(BATCH_MAX) {
                let mut req = Request::get(
                    "get departments",
                    "/open-apis/contact/v3/departments/batch".into(),
                )
                .query("department_id_type", "open_department_id")
                .query("user_id_type", "open_id");
                for d in chunk {
                    req = req.query("department_ids", d.clone());
                }
                let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
                raw.extend(
                    data.get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            Ok(DeptPage {
                departments: departments_out(&ctx, &raw).await,
                next_page_token: None,
                note: Some("The app may see only part of the directory, so these are the top departments granted to it (see get_contact_scope).".into()),
            })
        }
        Err(e) => Err(e),
    }
}

#[derive(Serialize, JsonSchema)]
struct PathOut {
    /// From the top of the organisation down to the department itself.
    path: Vec<NamedId>,
}

async fn get_department_path(ctx: ToolCtx, a: DeptArgs) -> Result<PathOut, ToolError> {
    let t = DepartmentIdType::resolve(a.id_type, &a.department_id);
    let own = get_department(
        ctx.clone(),
        DeptArgs {
            department_id: a.department_id.clone(),
            id_type: Some(t),
        },
    )
    .await?;
    let base = Request::get(
        "get department parents",
        "/open-apis/contact/v3/departments/parent".into(),
    )
    .query("department_id", own.open_department_id.clone())
    .query("department_id_type", "open_department_id")
    .query("user_id_type", "open_id");
    let paging = Paging {
        page_size: None,
        page_token: None,
        all_pages: true,
        max_items: Some(200),
    };
    let (raw, _, _) = pages(&ctx, base, "items", paging, 50).await?;
    let mut path: Vec<NamedId> = raw
        .iter()
        .rev()
        .map(|d| NamedId {
            id: d
                .get("open_department_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            name: d.get("name").and_then(Value::as_str).map(String::from),
        })
        .collect();
    path.push(NamedId {
        id: own.open_department_id,
        name: Some(own.name),
    });
    Ok(PathOut { path })
}

// ---- user groups ------------------------------------------------------------------------

#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[schemars(inline)]
#[serde(rename_all = "snake_case")]
enum GroupType {
    Normal,
    Dynamic,
}

with_paging! {
    "Items per page, 1–100.",
    struct GroupsArgs {
        /// normal (default) or dynamic (rule-based) groups.
        #[serde(rename = "type")]
        group_type: Option<GroupType>,
    }
}

#[derive(Serialize, JsonSchema)]
struct Group {
    id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    member_user_count: u64,
    member_department_count: u64,
}

#[derive(Serialize, JsonSchema)]
struct GroupsOut {
    groups: Vec<Group>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

async fn list_user_groups(ctx: ToolCtx, mut a: GroupsArgs) -> Result<GroupsOut, ToolError> {
    let kind = if a.group_type == Some(GroupType::Dynamic) {
        "2"
    } else {
        "1"
    };
    let base = Request::get(
        "list user groups",
        "/open-apis/contact/v3/group/simplelist".into(),
    )
    .query("type", kind);
    let paging = a.paging();
    let (raw, next, _) = pages(&ctx, base, "grouplist", paging, 100).await?;
    let groups = raw
        .iter()
        .map(|g| Group {
            id: g
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            name: g
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            description: g
                .get("description")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .map(String::from),
            member_user_count: g
                .get("member_user_count")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            member_department_count: g
                .get("member_department_count")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        })
        .collect();
    Ok(GroupsOut {
        groups,
        next_page_token: next,
    })
}

#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[schemars(inline)]
#[serde(rename_all = "snake_case")]
enum MemberType {
    User,
    Department,
}

with_paging! {
    "Items per page, 1–100.",
    struct GroupMembersArgs {
        /// The user group's id (from list_user_groups).
        group_id: String,
        /// user (default) or department members.
        member_type: Option<MemberType>,
    }
}

#[derive(Serialize, JsonSchema)]
struct MembersOut {
    /// open_ids (users) or open_department_ids (departments) with names.
    members: Vec<NamedId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

async fn list_user_group_members(
    ctx: ToolCtx,
    mut a: GroupMembersArgs,
) -> Result<MembersOut, ToolError> {
    let departments = a.member_type == Some(MemberType::Department);
    let path = api_path(
        "/open-apis/contact/v3/group/{}/member/simplelist",
        &[&a.group_id],
    )
    .map_err(|e| ToolError::invalid("group_id", e.msg))?;
    let base = Request::get("list user group members", path)
        .query(
            "member_type",
            if departments { "department" } else { "user" },
        )
        .query(
            "member_id_type",
            if departments {
                "open_department_id"
            } else {
                "open_id"
            },
        );
    let paging = a.paging();
    let (raw, next, _) = pages(&ctx, base, "memberlist", paging, 100).await?;
    let ids: Vec<String> = raw
        .iter()
        .filter_map(|m| m.get("member_id").and_then(Value::as_str).map(String::from))
        .collect();
    let names = if departments {
        ctx.shared.names.departments(&ctx, &ids).await
    } else {
        ctx.shared.names.users(&ctx, &ids).await
    };
    Ok(MembersOut {
        members: ids.iter().map(|id| NamedId::new(id, &names)).collect(),
        next_page_token: next,
    })
}

// ---- the app's range ----------------------------------------------------------------------

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Serialize, JsonSchema)]
struct RangeOut {
    /// Departments granted with everything below them.
    departments: Vec<NamedId>,
    /// People granted individually.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    users: Vec<NamedId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    groups: Vec<NamedId>,
}

/// (users, departments, groups) of `contact/v3/scopes`, every page.
async fn contact_range(
    ctx: &ToolCtx,
) -> Result<(Vec<String>, Vec<String>, Vec<String>), ToolError> {
    let (mut users, mut depts, mut groups) = (Vec::new(), Vec::new(), Vec::new());
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let req = Request::get(
            "read the app's contact range",
            "/open-apis/contact/v3/scopes".into(),
        )
        .query("user_id_type", "open_id")
        .query("department_id_type", "open_department_id")
        .query("page_size", "100")
        .query_opt("page_token", token.clone());
        let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
        let strings = |k: &str| -> Vec<String> {
            data.get(k)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        };
        users.extend(strings("user_ids"));
        depts.extend(strings("department_ids"));
        groups.extend(strings("group_ids"));
        token = data
            .get("page_token")
            .and_then(Value::as_str)
            .filter(|_| data.get("has_more").and_then(Value::as_bool) == Some(true))
            .map(String::from);
        if token.is_none() {
            break;
        }
    }
    Ok((users, depts, groups))
}

async fn get_contact_scope(ctx: ToolCtx, _a: NoArgs) -> Result<RangeOut, ToolError> {
    let (users, depts, groups) = contact_range(&ctx).await?;
    let user_names = ctx.shared.names.users(&ctx, &users).await;
    let dept_names = ctx.shared.names.departments(&ctx, &depts).await;
    let group_names: HashMap<String, String> = if groups.is_empty() {
        HashMap::new()
    } else {
        // simplelist answers one group type at a time (normal by default); the range may
        // hold dynamic groups too.
        let mut names = HashMap::new();
        for kind in ["1", "2"] {
            let base = Request::get(
                "list user groups",
                "/open-apis/contact/v3/group/simplelist".into(),
            )
            .query("type", kind);
            let paging = Paging {
                page_size: None,
                page_token: None,
                all_pages: true,
                max_items: Some(1000),
            };
            if let Ok((raw, _, _)) = pages(&ctx, base, "grouplist", paging, 100).await {
                names.extend(raw.iter().filter_map(|g| {
                    Some((
                        g.get("id")?.as_str()?.to_string(),
                        g.get("name")?.as_str()?.to_string(),
                    ))
                }));
            }
        }
        names
    };
    Ok(RangeOut {
        departments: depts.iter().map(|d| NamedId::new(d, &dept_names)).collect(),
        users: users.iter().map(|u| NamedId::new(u, &user_names)).collect(),
        groups: groups
            .iter()
            .map(|g| NamedId::new(g, &group_names))
            .collect(),
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchUsersArgs {
    /// A name, or part of one.
    query: String,
    /// Results per page, 1–200 (default 20).
    page_size: Option<u32>,
    /// A previous next_page_token.
    page_token: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct FoundUser {
    open_id: String,
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    department_ids: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
struct FoundUsers {
    users: Vec<FoundUser>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

async fn search_users(ctx: ToolCtx, a: SearchUsersArgs) -> Result<FoundUsers, ToolError> {
    let query = a.query.trim();
    if query.is_empty() {
        return Err(ToolError::invalid("query", "must not be empty"));
    }
    if query.chars().count() > 64 {
        return Err(ToolError::invalid("query", "at most 64 characters"));
    }
    let size = a.page_size.unwrap_or(20);
    if !(1..=200).contains(&size) {
        return Err(ToolError::invalid("page_size", "must be 1–200"));
    }
    let req = Request::get("search people by name", "/open-apis/search/v1/user".into())
        .query("query", query)
        .query("page_size", size.to_string())
        .query_opt("page_token", a.page_token)
        .as_user();
    let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let users = data
        .get("users")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|u| FoundUser {
                    open_id: text(u, "open_id"),
                    name: text(u, "name"),
                    department_ids: u
                        .get("department_ids")
                        .and_then(Value::as_array)
                        .map(|d| {
                            d.iter()
                                .filter_map(Value::as_str)
                                .map(String::from)
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let more = data
        .get("has_more")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(FoundUsers {
        users,
        next_page_token: more
            .then(|| text(&data, "page_token"))
            .filter(|t| !t.is_empty()),
    })
}
