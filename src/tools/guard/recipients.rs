//! `--allow-recipients`: whom write tools may reach. Entries are chat ids (`oc_…`),
//! open_ids (`ou_…`), emails, department ids (`od-…`: their members, sub-departments
//! included) and `*`; `!entry` denies and wins over any allow.
//!
//! A rule is decided from what the call names where it can be: a chat or open_id target
//! against chat and open_id rules needs no request at all. Only what the rules need is
//! looked up (reads, never writes), and a lookup that fails refuses the call.

use std::collections::HashMap;

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::lark::{ErrorKind, Request, api_path};
use crate::tools::{ToolCtx, ToolError};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Any,
    Chat(String),
    Person(String),
    Email(String),
    Department(String),
}

#[derive(Debug, Clone)]
struct Entry {
    deny: bool,
    rule: Rule,
}

impl Entry {
    fn text(&self) -> String {
        let body = match &self.rule {
            Rule::Any => "*",
            Rule::Chat(s) | Rule::Person(s) | Rule::Email(s) | Rule::Department(s) => s,
        };
        if self.deny {
            format!("!{body}")
        } else {
            body.to_string()
        }
    }
}

/// Whom a write reaches, as the call names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Chat(String),
    /// A person by an id of this type: open_id, union_id, user_id or email.
    Person {
        id: String,
        id_type: &'static str,
    },
    /// A message: the rules apply to the chat it is in.
    Message(String),
    /// A thread (`omt_…`): only `*` reaches it, since no rule names threads.
    Thread(String),
}

impl Target {
    /// A receiver as send/forward take it: `to` and its Lark id type.
    pub fn receiver(to: &str, id_type: &str) -> Target {
        match id_type {
            "chat_id" => Target::Chat(to.to_string()),
            "thread_id" => Target::Thread(to.to_string()),
            "email" => Target::Person {
                id: to.trim().to_lowercase(),
                id_type: "email",
            },
            "union_id" => Target::Person {
                id: to.to_string(),
                id_type: "union_id",
            },
            "user_id" => Target::Person {
                id: to.to_string(),
                id_type: "user_id",
            },
            _ => Target::Person {
                id: to.to_string(),
                id_type: "open_id",
            },
        }
    }

    pub fn person(open_id_or_email: &str) -> Target {
        if open_id_or_email.contains('@') {
            Target::receiver(open_id_or_email, "email")
        } else {
            Target::receiver(open_id_or_email, "open_id")
        }
    }

    pub fn label(&self) -> String {
        match self {
            Target::Chat(c) => format!("chat {c}"),
            Target::Person { id, .. } => id.clone(),
            Target::Message(m) => format!("the chat of message {m}"),
            Target::Thread(t) => format!("thread {t}"),
        }
    }
}

/// What is known of a target when the rules are applied.
#[derive(Debug, Default)]
struct Facts {
    chat: Option<String>,
    open_id: Option<String>,
    email: Option<String>,
    /// The person's departments and all their ancestors.
    departments: Vec<String>,
    /// A thread: matches `*` only.
    thread: bool,
}

pub struct Recipients {
    entries: Vec<Entry>,
    /// The email rules' open_ids, read once when an open_id target meets an email rule.
    email_ids: OnceCell<HashMap<String, String>>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(Entry::text))
            .finish()
    }
}

const FORMS: &str = "chat ids (oc_…), open_ids (ou_…), emails, department ids (od-…) or *, each optionally prefixed with ! to deny";

impl Recipients {
    pub fn parse(list: &[String]) -> Result<Recipients, String> {
        let mut entries = Vec::new();
        for raw in list {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let (deny, body) = match raw.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, raw),
            };
            let rule = if body == "*" {
                Rule::Any
            } else if body.starts_with("oc_") {
                Rule::Chat(body.to_string())
            } else if body.starts_with("ou_") {
                Rule::Person(body.to_string())
            } else if body.starts_with("od-") {
                Rule::Department(body.to_string())
            } else if body.contains('@') && !body.contains(char::is_whitespace) {
                Rule::Email(body.to_lowercase())
            } else {
                return Err(format!(
                    "--allow-recipients: `{raw}` is not a recipient rule; use {FORMS}"
                ));
            };
            entries.push(Entry { deny, rule });
        }
        Ok(Recipients {
            entries,
            email_ids: OnceCell::new(),
        })
    }

    /// The rules as given, for `check` and `get_app_status`.
    pub fn describe(&self) -> Vec<String> {
        self.entries.iter().map(Entry::text).collect()
    }

    fn has(&self, f: impl Fn(&Rule) -> bool) -> bool {
        self.entries.iter().any(|e| f(&e.rule))
    }

    /// Refuses the call unless every target is allowed.
    pub async fn check(&self, ctx: &ToolCtx, targets: &[Target]) -> Result<(), ToolError> {
        for t in targets {
            let facts = self.facts(ctx, t).await?;
            if let Some(why) = self.refusal(&facts) {
                return Err(ToolError::msg(format!(
                    "Refused: {} {why} (the server's --allow-recipients rules: {}). Nothing was sent; write only to allowed recipients, or ask the operator to allow this one.",
                    t.label(),
                    self.describe().join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Why the rules refuse a target with these facts, or None when they allow it.
    fn refusal(&self, f: &Facts) -> Option<String> {
        let email_ids = self.email_ids.get();
        let matches = |rule: &Rule| match rule {
            Rule::Any => true,
            _ if f.thread => false,
            Rule::Chat(c) => f.chat.as_deref() == Some(c),
            Rule::Person(o) => f.open_id.as_deref() == Some(o),
            Rule::Email(e) => {
                f.email.as_deref() == Some(e)
                    || (f.open_id.is_some()
                        && email_ids.and_then(|m| m.get(e)) == f.open_id.as_ref())
            }
            Rule::Department(d) => f.departments.iter().any(|x| x == d),
        };
        if let Some(e) = self.entries.iter().find(|e| e.deny && matches(&e.rule)) {
            return Some(format!("is denied by `{}`", e.text()));
        }
        if self.entries.iter().any(|e| !e.deny && matches(&e.rule)) {
            None
        } else {
            Some("is not in the allow-list".into())
        }
    }

    /// What the rules need to know of `t`, read from Lark only where a rule needs it.
    async fn facts(&self, ctx: &ToolCtx, t: &Target) -> Result<Facts, ToolError> {
        let mut f = Facts::default();
        match t {
            Target::Thread(_) => f.thread = true,
            Target::Chat(c) => f.chat = Some(c.clone()),
            Target::Message(m) => f.chat = Some(chat_of_message(ctx, m).await?),
            Target::Person { id, id_type } => {
                match *id_type {
                    "open_id" => f.open_id = Some(id.clone()),
                    "email" => f.email = Some(id.clone()),
                    _ => {}
                }
                let person_rule = self.has(|r| matches!(r, Rule::Person(_) | Rule::Department(_)));
                let email_rule = self.has(|r| matches!(r, Rule::Email(_)));
                let dept_rule = self.has(|r| matches!(r, Rule::Department(_)));
                let deny_dept = self
                    .entries
                    .iter()
                    .any(|e| e.deny && matches!(e.rule, Rule::Department(_)));
                // A deny rule may name the person another way: know every way the rules use.
                let need_open_id =
                    f.open_id.is_none() && (person_rule || (email_rule && f.email.is_none()));
                if need_open_id || dept_rule {
                    let (open_id, departments) =
                        person(ctx, id, id_type, dept_rule, deny_dept).await?;
                    f.open_id = Some(open_id);
                    f.departments = departments;
                }
                if email_rule && f.email.is_none() {
                    self.resolve_email_rules(ctx).await?;
                }
            }
        }
        Ok(f)
    }

    async fn resolve_email_rules(&self, ctx: &ToolCtx) -> Result<(), ToolError> {
        let emails: Vec<&str> = self
            .entries
            .iter()
            .filter_map(|e| match &e.rule {
                Rule::Email(x) => Some(x.as_str()),
                _ => None,
            })
            .collect();
        self.email_ids
            .get_or_try_init(|| async {
                crate::tools::names::open_ids_by_email(
                    ctx,
                    "resolve the allowed recipients' emails",
                    &emails,
                )
                .await
            })
            .await
            .map(|_| ())
    }
}

/// The chat a message is in: known from messages already read or sent, else read once.
pub async fn chat_of_message(ctx: &ToolCtx, message_id: &str) -> Result<String, ToolError> {
    if let Some(chat) = ctx.client().known_chat(message_id) {
        return Ok(chat);
    }
    let path = api_path("/open-apis/im/v1/messages/{}", &[message_id])?;
    let req = ctx.acting(Request::get("find the message's chat", path).idempotent());
    let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
    let chat = data["items"][0]["chat_id"]
        .as_str()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ToolError::msg(format!("Cannot tell which chat message {message_id} is in, so the recipient rules cannot allow it. Nothing was sent.")))?
        .to_string();
    ctx.client().learn_receiver(message_id, &chat);
    Ok(chat)
}

/// A person's open_id, and (when asked) their departments with every ancestor.
async fn person(
    ctx: &ToolCtx,
    id: &str,
    id_type: &str,
    departments: bool,
    deny_departments: bool,
) -> Result<(String, Vec<String>), ToolError> {
    let cache_key = format!("guard:{id_type}:{id}");
    if let Some(hit) = ctx.shared.names.get(&cache_key) {
        let mut parts = hit.split(',').map(String::from);
        if let Some(open_id) = parts.next() {
            return Ok((open_id, parts.collect()));
        }
    }
    let not_found = || {
        ToolError::msg(format!(
            "Cannot find the person {id}, so the recipient rules cannot allow them. Nothing was sent."
        ))
    };
    let known = match id_type {
        "email" => Some(
            crate::tools::names::open_ids_by_email(ctx, "resolve the recipient", &[id])
                .await?
                .get(id)
                .cloned()
                .ok_or_else(not_found)?,
        ),
        "open_id" => Some(id.to_string()),
        _ => None,
    };
    let (open_id, direct) = match known {
        Some(open_id) if !departments => (open_id, Vec::new()),
        known => {
            let (lookup, lookup_type) = match &known {
                Some(open_id) => (open_id.as_str(), "open_id"),
                None => (id, id_type),
            };
            let path = api_path("/open-apis/contact/v3/users/{}", &[lookup])?;
            let req = Request::get("read the recipient's departments", path)
                .query("user_id_type", lookup_type)
                .query("department_id_type", "open_department_id")
                .idempotent();
            let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
            let user = &data["user"];
            let open_id = user["open_id"].as_str().ok_or_else(not_found)?.to_string();
            (open_id, strings(&user["department_ids"]))
        }
    };
    let mut all = Vec::new();
    for d in direct {
        match ancestors(ctx, &d).await {
            Ok(up) => all.extend(
                up.into_iter()
                    .filter(|a| !all.contains(a))
                    .collect::<Vec<_>>(),
            ),
            // Departments above the app's contact range cannot be read: a rule can only
            // name what the app sees. A deny rule must not be passed that way, though.
            Err(e)
                if e.lark
                    .as_ref()
                    .is_some_and(|l| l.kind == ErrorKind::DataRange) =>
            {
                if deny_departments {
                    return Err(ToolError::msg(format!(
                        "Cannot read the departments above {d} (outside the app's contact range), so a department deny rule cannot be checked for {id}. Nothing was sent."
                    )));
                }
            }
            Err(e) => return Err(e),
        }
        if !all.contains(&d) {
            all.push(d);
        }
    }
    let mut cached = vec![open_id.clone()];
    cached.extend(all.iter().cloned());
    ctx.shared.names.put(&cache_key, &cached.join(","));
    Ok((open_id, all))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .collect()
}

/// A department's ancestors (Lark's departments/parent), cached.
async fn ancestors(ctx: &ToolCtx, department: &str) -> Result<Vec<String>, ToolError> {
    let cache_key = format!("guard:parents:{department}");
    if let Some(hit) = ctx.shared.names.get(&cache_key) {
        return Ok(hit
            .split(',')
            .filter(|s| !s.is_empty() && *s != "-")
            .map(String::from)
            .collect());
    }
    let mut out = Vec::new();
    let mut page: Option<String> = None;
    for _ in 0..20 {
        let req = Request::get(
            "read the recipient's department tree",
            "/open-apis/contact/v3/departments/parent".into(),
        )
        .query("department_id", department)
        .query("department_id_type", "open_department_id")
        .query("page_size", "50")
        .query_opt("page_token", page.clone())
        .idempotent();
        let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
        for item in data["items"].as_array().into_iter().flatten() {
            if let Some(id) = item["open_department_id"].as_str() {
                out.push(id.to_string());
            }
        }
        page = data["page_token"]
            .as_str()
            .filter(|p| !p.is_empty())
            .map(String::from);
        if data["has_more"] != Value::Bool(true) || page.is_none() {
            break;
        }
    }
    // "-" so that a department without ancestors is cached too (empty names are not).
    ctx.shared
        .names
        .put(&cache_key, &format!("-,{}", out.join(",")));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[&str]) -> Recipients {
        Recipients::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("rules parse")
    }

    fn facts(
        chat: Option<&str>,
        open_id: Option<&str>,
        email: Option<&str>,
        depts: &[&str],
    ) -> Facts {
        Facts {
            chat: chat.map(String::from),
            open_id: open_id.map(String::from),
            email: email.map(String::from),
            departments: depts.iter().map(|s| s.to_string()).collect(),
            thread: false,
        }
    }

    #[test]
    fn deny_wins_and_unlisted_is_refused() {
        let r = rules(&["oc_a", "ou_b", "ann@x.com", "od-eng", "!ou_c"]);
        assert_eq!(r.refusal(&facts(Some("oc_a"), None, None, &[])), None);
        assert!(r.refusal(&facts(Some("oc_z"), None, None, &[])).is_some());
        assert_eq!(r.refusal(&facts(None, Some("ou_b"), None, &[])), None);
        assert_eq!(r.refusal(&facts(None, None, Some("ann@x.com"), &[])), None);
        assert_eq!(
            r.refusal(&facts(None, Some("ou_d"), None, &["od-eng"])),
            None
        );
        let denied = r.refusal(&facts(None, Some("ou_c"), None, &["od-eng"]));
        assert_eq!(denied.as_deref(), Some("is denied by `!ou_c`"));
        let star = rules(&["*", "!oc_secret"]);
        assert_eq!(star.refusal(&facts(Some("oc_any"), None, None, &[])), None);
        assert!(
            star.refusal(&facts(Some("oc_secret"), None, None, &[]))
                .is_some()
        );
        let thread = Facts {
            thread: true,
            ..Facts::default()
        };
        assert!(r.refusal(&thread).is_some());
        assert_eq!(star.refusal(&thread), None);
    }

    #[test]
    fn bad_entries_are_named() {
        let e = Recipients::parse(&["oc_a".into(), "bob".into()]).unwrap_err();
        assert!(e.contains("`bob`"), "{e}");
        assert_eq!(rules(&["", " !OU_X@Y.COM "]).describe(), ["!ou_x@y.com"]);
    }
}
