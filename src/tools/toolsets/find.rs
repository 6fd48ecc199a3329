//! `find_people` (toolset contact) and `find_chats` (toolset chats): names to ids through
//! the directory index (`crate::directory`), so an agent with only "Zhang Wei" or "the
//! launch chat" never pages through departments itself.

use std::collections::HashMap;
use std::time::Duration;

use futures::{StreamExt, stream};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::contact::read;
use crate::directory::{Index, PersonRec, Snapshot, searched_person};
use crate::lark::scope_sets as scopes;
use crate::lark::{Request, api_path};
use crate::tools::{ToolCtx, ToolDef, ToolError, ToolMeta, Toolset};

const PEOPLE_MAX: u32 = 50;
const PEOPLE_DEFAULT: u32 = 10;
const CHATS_MAX: u32 = 20;
const CHATS_DEFAULT: u32 = 5;

pub fn tools() -> Vec<ToolDef> {
    vec![
        ToolDef::new(
            read(
                "find_people",
                "Find people by name",
                "Find people by name (Chinese, pinyin, initials, English), email or employee number, typo-tolerant; use it when you only have a name.",
                // The walk reads the range, departments and people: only this one lets
                // every step work (tests/scope_agreement.rs).
                scopes::USERS_BATCH,
            ),
            find_people,
        ),
        ToolDef::new(
            ToolMeta {
                toolset: Toolset::Chats,
                ..read(
                    "find_chats",
                    "Find chats by name",
                    "Find chats by a word of their name (also pinyin); use it when you only have a chat's name.",
                    scopes::CHAT_READ,
                )
            },
            find_chats,
        ),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FindPeopleArgs {
    /// Name, pinyin, initials, email or employee number.
    query: String,
    /// At most this many, 1–50 (default 10).
    limit: Option<u32>,
    /// Also people who have left.
    #[serde(default)]
    include_resigned: bool,
}

#[derive(Serialize, JsonSchema)]
struct FoundPerson {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    en_name: Option<String>,
    open_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_title: Option<String>,
    /// Department paths, top level first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    departments: Vec<String>,
    /// Absent when active.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    /// What matched the query.
    matched: String,
}

#[derive(Serialize, JsonSchema)]
struct PeopleOut {
    people: Vec<FoundPerson>,
    /// Incomplete index, namesakes, or an index that could not be refreshed.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// How long a call waits for a first build before answering with what is indexed.
fn wait_bound(ctx: &ToolCtx) -> Duration {
    ctx.shared.directory_wait
}

async fn ready(ctx: &ToolCtx) -> Snapshot {
    let dir = ctx.shared.directory.clone();
    dir.ensure_started(ctx.client());
    let progress = ctx.progress.clone();
    dir.wait_ready(wait_bound(ctx), &ctx.cancel, |p| {
        let progress = progress.clone();
        async move {
            let total = (p.departments_total > 0).then_some(p.departments_total as u64);
            progress
                .report(
                    p.departments_done as u64,
                    total,
                    format!("indexing the directory: {} people so far", p.people),
                )
                .await;
        }
    })
    .await
}

/// Nothing to search because the directory could not be read: that is the answer.
fn unreadable(snap: &Snapshot, nothing_indexed: bool) -> Result<(), ToolError> {
    match &snap.error {
        Some(e) if nothing_indexed => Err(ToolError::msg(format!(
            "The directory could not be read: {e}."
        ))),
        _ => Ok(()),
    }
}

/// What the agent should know about the index behind an answer.
fn freshness(snap: &Snapshot) -> Vec<String> {
    let mut notes = Vec::new();
    let p = snap.progress;
    if !p.complete {
        let so_far = if p.departments_total == 0 {
            "just started".to_string()
        } else {
            format!(
                "{} people, {} of {} departments so far",
                p.people, p.departments_done, p.departments_total
            )
        };
        notes.push(format!(
            "The directory is still being indexed ({so_far}): results may be incomplete; ask again in a few seconds."
        ));
    }
    if snap.truncated {
        notes.push(format!(
            "Only the first {} people of the directory are indexed.",
            snap.index.people_len()
        ));
    }
    if let Some(e) = &snap.error {
        notes.push(format!("The directory could not be refreshed: {e}."));
    }
    notes
}

/// Names are short; a longer query is a mistake, and would cost a scan for nothing.
const QUERY_MAX_CHARS: usize = 200;

fn check_query(q: &str) -> Result<(), ToolError> {
    if q.trim().is_empty() {
        return Err(ToolError::invalid("query", "must not be empty"));
    }
    if q.chars().count() > QUERY_MAX_CHARS {
        return Err(ToolError::invalid(
            "query",
            "must be at most 200 characters",
        ));
    }
    Ok(())
}

async fn find_people(ctx: ToolCtx, a: FindPeopleArgs) -> Result<PeopleOut, ToolError> {
    check_query(&a.query)?;
    let limit = a.limit.unwrap_or(PEOPLE_DEFAULT);
    if !(1..=PEOPLE_MAX).contains(&limit) {
        return Err(ToolError::invalid("limit", "must be 1–50"));
    }
    let snap = ready(&ctx).await;
    let ix = &snap.index;
    unreadable(&snap, ix.people_len() == 0)?;
    let mut found: Vec<FoundPerson> = ix
        .find_people(&a.query, limit as usize, a.include_resigned)
        .into_iter()
        .map(|h| shown(ix, &ix.person_rec(h.person), h.why.reason))
        .collect();
    if found.len() < limit as usize {
        for p in lark_search(&ctx, &a.query, limit).await {
            if found.len() >= limit as usize {
                break;
            }
            if !found.iter().any(|f| f.open_id == p.open_id) {
                let known = ix.person(&p.open_id).unwrap_or(p);
                if a.include_resigned || known.active() {
                    found.push(shown(ix, &known, "Lark's people search (as you)".into()));
                }
            }
        }
    }
    let mut notes = freshness(&snap);
    if let Some(n) = namesakes(&found) {
        notes.push(n);
    }
    Ok(PeopleOut {
        people: found,
        note: (!notes.is_empty()).then(|| notes.join(" ")),
    })
}

fn shown(ix: &Index, p: &PersonRec, matched: String) -> FoundPerson {
    FoundPerson {
        name: p.name.clone(),
        en_name: p.en_name.clone(),
        open_id: p.open_id.clone(),
        email: p.email.clone(),
        job_title: p.job_title.clone(),
        departments: p
            .departments
            .iter()
            .filter_map(|d| ix.dept_path(d))
            .collect(),
        status: (!p.active()).then(|| p.status.clone()),
        matched,
    }
}

/// Namesakes are easy to confuse: say so, and what tells them apart.
fn namesakes(found: &[FoundPerson]) -> Option<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for f in found {
        *count.entry(f.name.as_str()).or_default() += 1;
    }
    let mut shared: Vec<String> = count
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(name, n)| format!("{n} people are named {name}"))
        .collect();
    shared.sort();
    (!shared.is_empty()).then(|| {
        format!(
            "{}: tell them apart by department, job title or email before acting.",
            shared.join("; ")
        )
    })
}

/// Lark's own people search, when someone is signed in who granted it; nothing otherwise
/// (and nothing on failure: the index has answered already).
async fn lark_search(ctx: &ToolCtx, query: &str, limit: u32) -> Vec<PersonRec> {
    let granted = ctx
        .client()
        .user_session()
        .and_then(|u| u.granted_scopes())
        .is_some_and(|g| g.iter().any(|s| scopes::USER_SEARCH.contains(&s.as_str())));
    if !granted {
        return Vec::new();
    }
    let req = Request::get("search people", "/open-apis/search/v1/user".into())
        .query("query", query.trim().to_string())
        .query("page_size", limit.to_string())
        .as_user();
    match ctx.client().call(req, &ctx.cancel).await {
        Ok(r) => r.data()["users"]
            .as_array()
            .map(|u| u.iter().filter_map(searched_person).collect())
            .unwrap_or_default(),
        Err(e) => {
            tracing::debug!("Lark's people search failed: {e}");
            Vec::new()
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FindChatsArgs {
    /// A word of the chat's name or description.
    query: String,
    /// At most this many, 1–20 (default 5).
    limit: Option<u32>,
}

#[derive(Serialize, JsonSchema)]
struct FoundChat {
    chat_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    members: Option<u64>,
    bot_is_member: bool,
    /// What matched the query.
    matched: String,
}

#[derive(Serialize, JsonSchema)]
struct ChatsOut {
    chats: Vec<FoundChat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

async fn find_chats(ctx: ToolCtx, a: FindChatsArgs) -> Result<ChatsOut, ToolError> {
    check_query(&a.query)?;
    let limit = a.limit.unwrap_or(CHATS_DEFAULT);
    if !(1..=CHATS_MAX).contains(&limit) {
        return Err(ToolError::invalid("limit", "must be 1–20"));
    }
    let snap = ready(&ctx).await;
    let ix = &snap.index;
    unreadable(&snap, ix.chats.is_empty())?;
    let hits = ix.find_chats(&a.query, limit as usize);
    let ctx = &ctx;
    let chats = stream::iter(hits)
        .map(|(i, why)| {
            let c = &ix.chats[i];
            async move {
                FoundChat {
                    chat_id: c.chat_id.clone(),
                    name: c.name.clone(),
                    description: c.description.clone(),
                    members: members(ctx, &c.chat_id, !c.bot_is_member).await,
                    bot_is_member: c.bot_is_member,
                    matched: why.reason,
                }
            }
        })
        .buffered(4)
        .collect()
        .await;
    let notes = freshness(&snap);
    Ok(ChatsOut {
        chats,
        note: (!notes.is_empty()).then(|| notes.join(" ")),
    })
}

/// The chat's member count, read as whoever is in it; unknown on failure.
async fn members(ctx: &ToolCtx, chat_id: &str, as_user: bool) -> Option<u64> {
    let path = api_path("/open-apis/im/v1/chats/{}", &[chat_id]).ok()?;
    let mut req = Request::get("get chat", path);
    if as_user {
        req = req.as_user();
    }
    let data = ctx.client().call(req, &ctx.cancel).await.ok()?.into_data();
    data.get("user_count")
        .and_then(|v: &Value| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
}
