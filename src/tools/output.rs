//! Compact, agent-readable shapes for Lark objects: the fields an agent needs, names next
//! to ids, no nulls or empty lists.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// An id with its display name, when known.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NamedId {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl NamedId {
    pub fn new(id: &str, names: &HashMap<String, String>) -> NamedId {
        NamedId {
            id: id.to_string(),
            name: names.get(id).cloned(),
        }
    }
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
        .map(String::from)
}

/// A user's employment state in one word: active, resigned, frozen, unjoined or inactive.
pub fn status_word(status: Option<&Value>) -> &'static str {
    let flag = |k: &str| status.and_then(|s| s.get(k)).and_then(Value::as_bool) == Some(true);
    if flag("is_resigned") {
        "resigned"
    } else if flag("is_frozen") {
        "frozen"
    } else if flag("is_unjoin") {
        "unjoined"
    } else if flag("is_exited") {
        "exited"
    } else if flag("is_activated") {
        "active"
    } else {
        "inactive"
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Person {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub en_name: Option<String>,
    pub open_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub union_id: Option<String>,
    /// The tenant-wide employee id (needs contact:user.employee_id:readonly).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    /// active, resigned, frozen, unjoined, exited or inactive.
    pub status: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub departments: Vec<NamedId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<NamedId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
}

impl Person {
    /// From a contact v3 user object fetched with open_id / open_department_id types.
    pub fn from_lark(u: &Value, names: &HashMap<String, String>) -> Person {
        let departments = u
            .get("department_ids")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|d| *d != "0")
                    .map(|d| NamedId::new(d, names))
                    .collect()
            })
            .unwrap_or_default();
        Person {
            name: s(u, "name").unwrap_or_default(),
            en_name: s(u, "en_name"),
            open_id: s(u, "open_id").unwrap_or_default(),
            union_id: s(u, "union_id"),
            user_id: s(u, "user_id"),
            email: s(u, "email"),
            mobile: s(u, "mobile"),
            job_title: s(u, "job_title"),
            status: status_word(u.get("status")).to_string(),
            departments,
            leader: s(u, "leader_user_id").map(|l| NamedId::new(&l, names)),
            city: s(u, "city"),
        }
    }

    /// Ids whose names the output would show.
    pub fn referenced_ids(users: &[Value]) -> (Vec<String>, Vec<String>) {
        let mut people = Vec::new();
        let mut depts = Vec::new();
        for u in users {
            if let Some(l) = s(u, "leader_user_id") {
                people.push(l);
            }
            for d in u
                .get("department_ids")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(d) = d.as_str() {
                    depts.push(d.to_string());
                }
            }
        }
        (people, depts)
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Department {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub en_name: Option<String>,
    pub open_department_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department_id: Option<String>,
    /// "0" is the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<NamedId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<NamedId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_count: Option<u64>,
    /// The department's group chat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
}

impl Department {
    pub fn from_lark(d: &Value, names: &HashMap<String, String>) -> Department {
        let en_name = d
            .get("i18n_name")
            .and_then(|i| s(i, "en_us"))
            .filter(|en| Some(en) != s(d, "name").as_ref());
        Department {
            name: s(d, "name").unwrap_or_default(),
            en_name,
            open_department_id: s(d, "open_department_id").unwrap_or_default(),
            department_id: s(d, "department_id"),
            parent: s(d, "parent_department_id").map(|p| NamedId::new(&p, names)),
            leader: s(d, "leader_user_id").map(|l| NamedId::new(&l, names)),
            member_count: d.get("member_count").and_then(Value::as_u64),
            chat_id: s(d, "chat_id"),
        }
    }

    pub fn referenced_ids(depts: &[Value]) -> (Vec<String>, Vec<String>) {
        let people = depts
            .iter()
            .filter_map(|d| s(d, "leader_user_id"))
            .collect();
        let parents = depts
            .iter()
            .filter_map(|d| s(d, "parent_department_id"))
            .collect();
        (people, parents)
    }
}
