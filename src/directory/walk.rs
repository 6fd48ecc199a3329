//! Reading the directory from Lark: the app's contact range, the departments under it,
//! their members, and the chats. Every call goes through the one client, so it shares the
//! token cache, the pacing and the 429 handling with the tools.

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::index::{ChatRec, DeptRec, PersonRec};
use std::time::Duration;

use crate::lark::{ErrorKind, LarkClient, LarkError, Request, api_path};
use crate::tools::output::status_word;

/// A walk never reads more pages of one list than this (50 000 items at 50 a page).
const MAX_PAGES: usize = 1000;
/// A background walk has no caller waiting on each call: a page Lark refuses for its rate
/// limit (after the client's own retries) is asked again after the reset, this often.
const RATE_LIMIT_ROUNDS: usize = 30;

pub struct Walk<'a> {
    pub client: &'a LarkClient,
    pub cancel: &'a CancellationToken,
}

/// What the app may see: departments (with their subtrees) and single people.
#[derive(Debug, Default)]
pub struct Range {
    pub departments: Vec<String>,
    pub users: Vec<String>,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .collect()
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
        .map(String::from)
}

impl Walk<'_> {
    /// One call, asked again after each rate-limit reset while the walk's patience lasts.
    async fn patient(&self, req: Request) -> Result<Value, LarkError> {
        let mut rounds = 0;
        loop {
            match self.client.call(req.clone(), self.cancel).await {
                Ok(r) => return Ok(r.into_data()),
                Err(e) if e.kind == ErrorKind::RateLimited && rounds < RATE_LIMIT_ROUNDS => {
                    rounds += 1;
                    let reset = e.retry_after.unwrap_or(Duration::from_secs(1));
                    let wait = reset.min(Duration::from_secs(60))
                        + Duration::from_millis(fastrand::u64(0..500));
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Err(e),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Every page of a list, in order.
    async fn all(
        &self,
        base: Request,
        items: &str,
        page_size: u32,
    ) -> Result<Vec<Value>, LarkError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let req = base
                .clone()
                .query("page_size", page_size.to_string())
                .query_opt("page_token", token.take());
            let data = self.patient(req).await?;
            if let Some(a) = data.get(items).and_then(Value::as_array) {
                out.extend(a.iter().cloned());
            }
            token = s(&data, "page_token").filter(|_| data["has_more"].as_bool() == Some(true));
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    pub async fn range(&self) -> Result<Range, LarkError> {
        let mut range = Range::default();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let req = Request::get(
                "read the contact range",
                "/open-apis/contact/v3/scopes".into(),
            )
            .query("user_id_type", "open_id")
            .query("department_id_type", "open_department_id")
            .query("page_size", "100")
            .query_opt("page_token", token.take());
            let data = self.patient(req).await?;
            range.departments.extend(strings(&data, "department_ids"));
            range.users.extend(strings(&data, "user_ids"));
            token = s(&data, "page_token").filter(|_| data["has_more"].as_bool() == Some(true));
            if token.is_none() {
                break;
            }
        }
        Ok(range)
    }

    /// Every department below `parent` (all levels).
    pub async fn below(&self, parent: &str) -> Result<Vec<DeptRec>, LarkError> {
        let path = api_path("/open-apis/contact/v3/departments/{}/children", &[parent])?;
        let base = Request::get("list departments", path)
            .query("department_id_type", "open_department_id")
            .query("user_id_type", "open_id")
            .query("fetch_child", "true");
        Ok(self
            .all(base, "items", 50)
            .await?
            .iter()
            .filter_map(dept)
            .collect())
    }

    /// The departments with these ids (the range's own), 50 a call.
    pub async fn departments(&self, ids: &[String]) -> Result<Vec<DeptRec>, LarkError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(50) {
            let mut req = Request::get(
                "get departments",
                "/open-apis/contact/v3/departments/batch".into(),
            )
            .query("department_id_type", "open_department_id")
            .query("user_id_type", "open_id");
            for id in chunk {
                req = req.query("department_ids", id.clone());
            }
            let data = self.patient(req).await?;
            if let Some(items) = data.get("items").and_then(Value::as_array) {
                out.extend(items.iter().filter_map(dept));
            }
        }
        Ok(out)
    }

    /// The people directly in a department.
    pub async fn members(&self, department: &str) -> Result<Vec<PersonRec>, LarkError> {
        let base = Request::get(
            "list department users",
            "/open-apis/contact/v3/users/find_by_department".into(),
        )
        .query("department_id", department.to_string())
        .query("department_id_type", "open_department_id")
        .query("user_id_type", "open_id");
        Ok(self
            .all(base, "items", 50)
            .await?
            .iter()
            .filter_map(person)
            .collect())
    }

    /// People granted one by one, 50 a call.
    pub async fn people(&self, ids: &[String]) -> Result<Vec<PersonRec>, LarkError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(50) {
            let mut req = Request::get("get users", "/open-apis/contact/v3/users/batch".into())
                .query("user_id_type", "open_id")
                .query("department_id_type", "open_department_id");
            for id in chunk {
                req = req.query("user_ids", id.clone());
            }
            let data = self.patient(req).await?;
            if let Some(items) = data.get("items").and_then(Value::as_array) {
                out.extend(items.iter().filter_map(person));
            }
        }
        Ok(out)
    }

    /// The chats the bot is in, or with `as_user` the signed-in person's.
    pub async fn chats(&self, as_user: bool) -> Result<Vec<ChatRec>, LarkError> {
        let mut base = Request::get("list chats", "/open-apis/im/v1/chats".into())
            .query("user_id_type", "open_id");
        if as_user {
            base = base.as_user();
        }
        Ok(self
            .all(base, "items", 100)
            .await?
            .iter()
            .filter_map(|c| {
                Some(ChatRec {
                    chat_id: s(c, "chat_id")?,
                    name: s(c, "name").unwrap_or_default(),
                    description: s(c, "description"),
                    bot_is_member: !as_user,
                    yours: as_user,
                })
            })
            .collect())
    }
}

fn dept(d: &Value) -> Option<DeptRec> {
    let en = d
        .get("i18n_name")
        .and_then(|n| s(n, "en_us"))
        .or_else(|| s(d, "en_name"));
    Some(DeptRec {
        id: s(d, "open_department_id")?,
        name: s(d, "name").unwrap_or_default(),
        en_name: en,
        parent: s(d, "parent_department_id").filter(|p| p != "0"),
    })
}

fn person(u: &Value) -> Option<PersonRec> {
    Some(PersonRec {
        open_id: s(u, "open_id")?,
        name: s(u, "name").unwrap_or_default(),
        en_name: s(u, "en_name"),
        nickname: s(u, "nickname"),
        email: s(u, "email").or_else(|| s(u, "enterprise_email")),
        job_title: s(u, "job_title"),
        employee_no: s(u, "employee_no"),
        status: status_word(u.get("status")).to_string(),
        departments: strings(u, "department_ids")
            .into_iter()
            .filter(|d| d != "0")
            .collect(),
    })
}

/// A person from Lark's people search (user identity): fewer fields than the directory.
pub fn searched_person(u: &Value) -> Option<PersonRec> {
    Some(PersonRec {
        open_id: s(u, "open_id")?,
        name: s(u, "name").unwrap_or_default(),
        en_name: None,
        nickname: None,
        email: None,
        job_title: None,
        employee_no: None,
        status: "active".into(),
        departments: strings(u, "department_ids"),
    })
}
