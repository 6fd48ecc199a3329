//! The sandbox's mutable state: tokens, the directory, chats and messages.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;
use serde_json::Value;

use super::envelope::{ApiError, codes};
use super::seed::{
    AppSeed, ContactRangeSeed, DepartmentSeed, GroupSeed, ScopeSeed, Seed, UserSeed,
};

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn random_hex(len: usize) -> String {
    (0..len)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Tenant,
    App,
}

#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// Issue order, 1-based: what the request log reports instead of the secret value.
    pub seq: u64,
    pub kind: TokenKind,
    pub expires_at_ms: u64,
    pub revoked: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Chat {
    pub chat_id: String,
    pub name: String,
    pub description: String,
    pub owner: String,
    pub chat_type: String,
    pub chat_mode: String,
    pub bot_member: bool,
    pub members: Vec<String>,
    pub create_time_ms: u64,
    /// For p2p chats: the user on the other side of the bot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p2p_user: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub message_id: String,
    pub chat_id: String,
    /// open_id of a user, or the app id for the bot.
    pub sender: String,
    pub sender_is_bot: bool,
    pub msg_type: String,
    /// The content as Lark stores it: a JSON-encoded string.
    pub content: String,
    pub create_time_ms: u64,
    pub update_time_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    pub mentions: Vec<String>,
    pub deleted: bool,
    pub updated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

pub struct World {
    pub app: AppSeed,
    pub scopes: Vec<ScopeSeed>,
    pub range: ContactRangeSeed,
    pub departments: Vec<DepartmentSeed>,
    pub users: Vec<UserSeed>,
    pub groups: Vec<GroupSeed>,
    pub chats: Vec<Chat>,
    pub messages: Vec<Message>,
    pub tokens: HashMap<String, TokenRecord>,
    token_seq: u64,
    /// uuid → (message_id, when first used).
    pub uuids: HashMap<String, (String, u64)>,
    /// Receiver → send times within the last second.
    pub send_windows: HashMap<String, VecDeque<u64>>,
}

impl World {
    pub fn new(seed: Seed) -> World {
        let start = now_ms();
        let ago = |secs: i64| start.saturating_sub((secs.max(0) as u64) * 1000);
        let chats = seed
            .chats
            .into_iter()
            .map(|c| Chat {
                chat_id: c.chat_id,
                name: c.name,
                description: c.description,
                owner: c.owner,
                chat_type: c.chat_type,
                chat_mode: c.chat_mode,
                bot_member: c.bot_member,
                members: c.members,
                create_time_ms: ago(c.created_ago_secs),
                p2p_user: None,
            })
            .collect();
        let app_id = seed.app.app_id.clone();
        let mut messages: Vec<Message> = seed
            .messages
            .into_iter()
            .map(|m| {
                let bot = m.sender == "bot";
                Message {
                    message_id: m.message_id,
                    chat_id: m.chat_id,
                    sender: if bot { app_id.clone() } else { m.sender },
                    sender_is_bot: bot,
                    msg_type: m.msg_type,
                    content: m.content.to_string(),
                    create_time_ms: ago(m.sent_ago_secs),
                    update_time_ms: ago(m.sent_ago_secs),
                    parent_id: m.parent_id,
                    root_id: m.root_id,
                    thread_id: m.thread_id,
                    mentions: m.mentions,
                    deleted: false,
                    updated: false,
                    uuid: None,
                }
            })
            .collect();
        messages.sort_by_key(|m| m.create_time_ms);
        World {
            app: seed.app,
            scopes: seed.scopes,
            range: seed.contact_range,
            departments: seed.departments,
            users: seed.users,
            groups: seed.groups,
            chats,
            messages,
            tokens: HashMap::new(),
            token_seq: 0,
            uuids: HashMap::new(),
            send_windows: HashMap::new(),
        }
    }

    // ---- tokens -------------------------------------------------------------------

    /// Lark's re-issue rule: the newest live token is returned while at least
    /// `renew_below` remains; otherwise a new one is minted and the old one stays valid.
    pub fn issue_token(
        &mut self,
        kind: TokenKind,
        ttl_secs: u64,
        renew_below_secs: u64,
    ) -> (String, u64) {
        let now = now_ms();
        let current = self
            .tokens
            .iter()
            .filter(|(_, t)| t.kind == kind && !t.revoked && t.expires_at_ms > now)
            .max_by_key(|(_, t)| t.seq);
        if let Some((value, t)) = current {
            let remaining = (t.expires_at_ms - now) / 1000;
            if remaining >= renew_below_secs {
                return (value.clone(), remaining);
            }
        }
        self.token_seq += 1;
        let prefix = match kind {
            TokenKind::Tenant => "t-g",
            TokenKind::App => "a-g",
        };
        let value = format!(
            "{prefix}{}{}",
            random_hex(24),
            random_hex(16).to_uppercase()
        );
        self.tokens.insert(
            value.clone(),
            TokenRecord {
                seq: self.token_seq,
                kind,
                expires_at_ms: now + ttl_secs * 1000,
                revoked: false,
            },
        );
        (value, ttl_secs)
    }

    /// Revokes every token (`seq` None) or one; returns how many were revoked.
    pub fn revoke_tokens(&mut self, seq: Option<u64>) -> usize {
        let mut n = 0;
        for t in self.tokens.values_mut() {
            if !t.revoked && seq.is_none_or(|s| s == t.seq) {
                t.revoked = true;
                n += 1;
            }
        }
        n
    }

    // ---- scopes -------------------------------------------------------------------

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes
            .iter()
            .any(|s| s.granted && s.scope == scope && s.token_types.iter().any(|t| t == "tenant"))
    }

    pub fn has_any_scope(&self, scopes: &[&str]) -> bool {
        scopes.iter().any(|s| self.has_scope(s))
    }

    /// Grants (adding the scope if unknown) or revokes scopes for the tenant and user tokens.
    pub fn set_scopes(&mut self, grant: &[String], revoke: &[String]) {
        for name in grant {
            match self.scopes.iter_mut().find(|s| &s.scope == name) {
                Some(s) => s.granted = true,
                None => self.scopes.push(ScopeSeed {
                    scope: name.clone(),
                    token_types: vec!["tenant".into(), "user".into()],
                    granted: true,
                }),
            }
        }
        for name in revoke {
            if let Some(s) = self.scopes.iter_mut().find(|s| &s.scope == name) {
                s.granted = false;
            }
        }
    }

    // ---- directory ----------------------------------------------------------------

    pub fn department(&self, open_id: &str) -> Option<&DepartmentSeed> {
        self.departments
            .iter()
            .find(|d| d.open_department_id == open_id)
    }

    /// The chain from `open_id` up to (not including) the root, starting with the department itself.
    pub fn department_chain(&self, open_id: &str) -> Vec<&DepartmentSeed> {
        let mut chain = Vec::new();
        let mut cur = self.department(open_id);
        while let Some(d) = cur {
            if chain.len() > self.departments.len() {
                break; // a cycle in a hand-written seed must not hang the sandbox
            }
            chain.push(d);
            cur = self.department(&d.parent);
        }
        chain
    }

    pub fn department_in_range(&self, open_id: &str) -> bool {
        self.range.all
            || self
                .department_chain(open_id)
                .iter()
                .any(|d| self.range.department_ids.contains(&d.open_department_id))
    }

    pub fn user_in_range(&self, u: &UserSeed) -> bool {
        self.range.all
            || self.range.user_ids.contains(&u.open_id)
            || u.departments.iter().any(|d| self.department_in_range(d))
    }

    pub fn group_in_range(&self, id: &str) -> bool {
        self.range.all || self.range.group_ids.iter().any(|g| g == id)
    }

    pub fn user_by_open_id(&self, open_id: &str) -> Option<&UserSeed> {
        self.users.iter().find(|u| u.open_id == open_id)
    }

    /// Resolves a user id of the given `user_id_type` (already validated).
    pub fn find_user(&self, id: &str, id_type: &str) -> Result<&UserSeed, ApiError> {
        let found = self.users.iter().find(|u| match id_type {
            "union_id" => u.union_id == id,
            "user_id" => u.user_id == id,
            _ => u.open_id == id,
        });
        found.ok_or_else(|| not_existed(id_type, id))
    }

    /// Resolves a department id of the given `department_id_type`; "0" is the root.
    pub fn find_department(&self, id: &str, id_type: &str) -> Result<&DepartmentSeed, ApiError> {
        let found = self.departments.iter().find(|d| match id_type {
            "department_id" => d.department_id == id,
            _ => d.open_department_id == id,
        });
        found.ok_or_else(|| not_existed(id_type, id))
    }

    pub fn user_id_of(&self, u: &UserSeed, id_type: &str) -> String {
        match id_type {
            "union_id" => u.union_id.clone(),
            "user_id" => u.user_id.clone(),
            _ => u.open_id.clone(),
        }
    }

    /// A department reference in the requested id type ("0" stays "0").
    pub fn dept_id_of(&self, open_id: &str, id_type: &str) -> String {
        if id_type == "department_id"
            && let Some(d) = self.department(open_id)
        {
            return d.department_id.clone();
        }
        open_id.to_string()
    }

    pub fn chat(&self, chat_id: &str) -> Option<&Chat> {
        self.chats.iter().find(|c| c.chat_id == chat_id)
    }
}

/// Lark's "these … ids not existed" family.
pub fn not_existed(id_type: &str, id: &str) -> ApiError {
    let (code, what) = match id_type {
        "union_id" => (codes::UNION_ID_NOT_EXIST, "union_ids"),
        "user_id" => (codes::USER_ID_NOT_EXIST, "user_ids"),
        "open_department_id" | "department_id" => (codes::DEPT_ID_NOT_EXIST, "department_ids"),
        "chat_id" => (codes::CHAT_ID_NOT_EXIST, "chat_ids"),
        "group_id" => (codes::GROUP_NOT_EXIST, "group_ids"),
        _ => (codes::OPEN_ID_NOT_EXIST, "open_ids"),
    };
    ApiError::new(400, code, format!("these {what} not existed: [{id}]"))
}

/// What the request log keeps per call.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    pub seq: u64,
    pub at_ms: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    /// Endpoint name (as in `lark-endpoints.tsv`), or `unknown`.
    pub endpoint: String,
    /// Which issued token authorised it (issue order), never the token itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_seq: Option<u64>,
    pub status: u16,
    pub code: i64,
    /// The JSON request body, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Names of the faults that fired.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
}

#[derive(Default)]
pub struct Recorder {
    next_seq: u64,
    pub requests: VecDeque<RecordedRequest>,
    pub counters: HashMap<String, u64>,
}

impl Recorder {
    pub fn record(&mut self, mut r: RecordedRequest, limit: usize) {
        self.next_seq += 1;
        r.seq = self.next_seq;
        *self.counters.entry(r.endpoint.clone()).or_default() += 1;
        self.requests.push_back(r);
        while self.requests.len() > limit.max(1) {
            self.requests.pop_front();
        }
    }

    pub fn clear(&mut self) {
        self.requests.clear();
        self.counters.clear();
    }
}
