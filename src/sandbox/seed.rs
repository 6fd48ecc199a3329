//! The sandbox's starting world: one JSON document (see README "Sandbox seed format").
//!
//! References between records use the ids Lark itself would return by default
//! (`open_id`, `open_department_id`, `chat_id`, `message_id`), so a seed reads like
//! a dump of real API output.

use serde::{Deserialize, Serialize};

/// The org shipped inside the binary: `serve --sandbox` and tests start from it.
pub const DEFAULT_SEED_JSON: &str = include_str!("default_seed.json");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    pub app: AppSeed,
    /// Scopes enabled for the app (granted and not), with the token types they apply to.
    pub scopes: Vec<ScopeSeed>,
    pub contact_range: ContactRangeSeed,
    pub departments: Vec<DepartmentSeed>,
    pub users: Vec<UserSeed>,
    #[serde(default)]
    pub groups: Vec<GroupSeed>,
    #[serde(default)]
    pub chats: Vec<ChatSeed>,
    #[serde(default)]
    pub messages: Vec<MessageSeed>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSeed {
    pub app_id: String,
    pub app_secret: String,
    pub app_name: String,
    #[serde(default)]
    pub description: String,
    pub tenant_key: String,
    pub bot_open_id: String,
    #[serde(default = "default_true")]
    pub bot_activated: bool,
}

impl std::fmt::Debug for AppSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSeed")
            .field("app_id", &self.app_id)
            .field("app_secret", &"<redacted>")
            .field("app_name", &self.app_name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeSeed {
    pub scope: String,
    /// `tenant` and/or `user`.
    pub token_types: Vec<String>,
    /// Enabled in the console but not yet granted shows up as `grant_status: 2`.
    #[serde(default = "default_true")]
    pub granted: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactRangeSeed {
    /// "All members": every department and user is visible.
    #[serde(default)]
    pub all: bool,
    /// open_department_ids granted with their whole subtree.
    #[serde(default)]
    pub department_ids: Vec<String>,
    /// open_ids granted individually.
    #[serde(default)]
    pub user_ids: Vec<String>,
    /// user group ids granted.
    #[serde(default)]
    pub group_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentSeed {
    pub open_department_id: String,
    pub department_id: String,
    pub name: String,
    #[serde(default)]
    pub en_name: Option<String>,
    /// Parent's open_department_id, or "0" for the root.
    pub parent: String,
    #[serde(default)]
    pub leader: Option<String>,
    #[serde(default)]
    pub chat_id: Option<String>,
    #[serde(default)]
    pub order: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSeed {
    pub open_id: String,
    pub union_id: String,
    pub user_id: String,
    pub name: String,
    #[serde(default)]
    pub en_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub enterprise_email: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    /// open_department_ids; the first is the primary one.
    pub departments: Vec<String>,
    #[serde(default)]
    pub leader: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub employee_no: Option<String>,
    #[serde(default)]
    pub status: UserStatusSeed,
    #[serde(default)]
    pub gender: i64,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub is_tenant_manager: bool,
    /// Seconds since the epoch.
    #[serde(default)]
    pub join_time: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatusSeed {
    #[default]
    Active,
    Resigned,
    Frozen,
    Unjoin,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSeed {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// 1 normal, 2 dynamic.
    #[serde(default = "default_group_type")]
    pub r#type: i64,
    #[serde(default)]
    pub member_users: Vec<String>,
    #[serde(default)]
    pub member_departments: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSeed {
    pub chat_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// open_id of the owner.
    pub owner: String,
    /// `private` or `public`.
    #[serde(default = "default_chat_type")]
    pub chat_type: String,
    /// `group` or `p2p`.
    #[serde(default = "default_chat_mode")]
    pub chat_mode: String,
    /// Whether the sandbox app's bot is a member.
    #[serde(default = "default_true")]
    pub bot_member: bool,
    /// open_ids of the human members (owner included).
    pub members: Vec<String>,
    #[serde(default)]
    pub created_ago_secs: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSeed {
    pub message_id: String,
    pub chat_id: String,
    /// open_id of a user, or "bot" for the sandbox app.
    pub sender: String,
    pub msg_type: String,
    /// The content object (serialized to a JSON string when served, as Lark does).
    pub content: serde_json::Value,
    /// How long before sandbox start the message was sent; keeps history recent.
    pub sent_ago_secs: i64,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub root_id: Option<String>,
    #[serde(default)]
    pub thread_id: Option<String>,
    /// open_ids mentioned, in `@_user_N` order.
    #[serde(default)]
    pub mentions: Vec<String>,
}

fn default_true() -> bool {
    true
}
fn default_group_type() -> i64 {
    1
}
fn default_chat_type() -> String {
    "private".into()
}
fn default_chat_mode() -> String {
    "group".into()
}

impl Seed {
    pub fn default_org() -> Result<Seed, String> {
        Seed::from_json(DEFAULT_SEED_JSON)
    }

    pub fn from_json(text: &str) -> Result<Seed, String> {
        let seed: Seed = serde_json::from_str(text).map_err(|e| format!("invalid seed: {e}"))?;
        seed.check()?;
        Ok(seed)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Seed, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read seed {}: {e}", path.display()))?;
        Seed::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Cross-reference checks, so a typo in a seed fails at load instead of as a
    /// puzzling 404 in the middle of a test.
    fn check(&self) -> Result<(), String> {
        use std::collections::HashSet;
        let depts: HashSet<&str> = self
            .departments
            .iter()
            .map(|d| d.open_department_id.as_str())
            .collect();
        let users: HashSet<&str> = self.users.iter().map(|u| u.open_id.as_str()).collect();
        let chats: HashSet<&str> = self.chats.iter().map(|c| c.chat_id.as_str()).collect();
        if depts.len() != self.departments.len() {
            return Err("duplicate open_department_id".into());
        }
        if users.len() != self.users.len() {
            return Err("duplicate user open_id".into());
        }
        for d in &self.departments {
            if d.parent != "0" && !depts.contains(d.parent.as_str()) {
                return Err(format!(
                    "department {} has unknown parent {}",
                    d.open_department_id, d.parent
                ));
            }
        }
        for u in &self.users {
            if let Some(d) = u.departments.iter().find(|d| !depts.contains(d.as_str())) {
                return Err(format!("user {} in unknown department {d}", u.open_id));
            }
        }
        for c in &self.chats {
            if let Some(m) = c.members.iter().find(|m| !users.contains(m.as_str())) {
                return Err(format!("chat {} has unknown member {m}", c.chat_id));
            }
        }
        for m in &self.messages {
            if !chats.contains(m.chat_id.as_str()) {
                return Err(format!("message {} in unknown chat", m.message_id));
            }
            if m.sender != "bot" && !users.contains(m.sender.as_str()) {
                return Err(format!("message {} has unknown sender", m.message_id));
            }
        }
        Ok(())
    }
}
