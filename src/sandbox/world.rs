//! The sandbox's mutable state: tokens, the directory, chats and messages, and what
//! im v1 hangs off them (reactions, pins, uploaded resources).

use std::collections::{BTreeMap, HashMap, VecDeque};

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
    /// The app the token was issued to: the seed app or one registered through
    /// `oauth/v1/app/registration`.
    pub app_id: String,
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
    pub avatar: String,
    /// `zh_cn` / `en_us` / `ja_jp` names.
    pub i18n_names: BTreeMap<String, String>,
    pub settings: ChatSettings,
    /// open_ids of the user managers (admins).
    pub user_managers: Vec<String>,
    /// Whether this app's bot is a chat manager.
    pub bot_manager: bool,
    /// Created by this app through `POST im/v1/chats` (the "creator bot" of Lark's rules).
    pub created_by_bot: bool,
    pub dissolved: bool,
}

/// A group's settings as `GET im/v1/chats/:chat_id` reports them.
#[derive(Debug, Clone, Serialize)]
pub struct ChatSettings {
    pub add_member_permission: String,
    pub share_card_permission: String,
    pub at_all_permission: String,
    pub edit_permission: String,
    pub join_message_visibility: String,
    pub leave_message_visibility: String,
    pub membership_approval: String,
    pub moderation_permission: String,
    pub urgent_setting: String,
    pub video_conference_setting: String,
    pub hide_member_count_setting: String,
    /// `chat` or `thread`.
    pub group_message_type: String,
}

impl Default for ChatSettings {
    fn default() -> Self {
        let all = || "all_members".to_string();
        ChatSettings {
            add_member_permission: all(),
            share_card_permission: "allowed".into(),
            at_all_permission: all(),
            edit_permission: all(),
            join_message_visibility: all(),
            leave_message_visibility: all(),
            membership_approval: "no_approval_required".into(),
            moderation_permission: all(),
            urgent_setting: all(),
            video_conference_setting: all(),
            hide_member_count_setting: all(),
            group_message_type: "chat".into(),
        }
    }
}

impl Chat {
    /// A chat with default settings; the caller fills in what differs.
    pub fn new(chat_id: String, owner: String, create_time_ms: u64) -> Chat {
        Chat {
            avatar: avatar_url(&chat_id),
            chat_id,
            name: String::new(),
            description: String::new(),
            owner,
            chat_type: "private".into(),
            chat_mode: "group".into(),
            bot_member: true,
            members: Vec::new(),
            create_time_ms,
            p2p_user: None,
            i18n_names: BTreeMap::new(),
            settings: ChatSettings::default(),
            user_managers: Vec::new(),
            bot_manager: false,
            created_by_bot: false,
            dissolved: false,
        }
    }
}

/// The avatar URL Lark would serve for a chat (deterministic per chat).
pub fn avatar_url(chat_id: &str) -> String {
    format!(
        "https://s1-imfile.feishucdn.com/static-resource/v1/v3_{:08x}_chat_avatar~?image_size=100x100",
        fnv1a(chat_id)
    )
}

/// FNV-1a: stable across runs, for deterministic ids and seeded data.
pub fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// An emoji reaction on a message.
#[derive(Debug, Clone, Serialize)]
pub struct Reaction {
    pub reaction_id: String,
    pub message_id: String,
    /// open_id of a user, or the app id for the bot.
    pub operator_id: String,
    pub operator_is_bot: bool,
    pub emoji_type: String,
    pub action_time_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pin {
    pub message_id: String,
    pub chat_id: String,
    /// open_id of a user, or the app id for the bot.
    pub operator_id: String,
    pub operator_is_bot: bool,
    pub create_time_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Image,
    File,
}

/// Bytes behind an image_key / file_key: uploaded by this app or seeded for seeded messages.
#[derive(Debug, Clone)]
pub struct StoredResource {
    pub kind: ResourceKind,
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub file_name: String,
    /// Uploaded through `im/v1/images` / `im/v1/files` by this app.
    pub uploaded_by_app: bool,
    /// `message` / `avatar` for images; the `file_type` for files.
    pub sub_type: String,
}

/// A resource a message refers to: what `messages/:id/resources/:key` may serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    pub key: String,
    pub kind: ResourceKind,
    pub file_name: Option<String>,
}

/// The image and file keys inside a message's content (post `img`/`media` elements included).
pub fn message_resources(msg_type: &str, content: &str) -> Vec<ResourceRef> {
    let Ok(v) = serde_json::from_str::<Value>(content) else {
        return Vec::new();
    };
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    let mut out = Vec::new();
    let mut push = |key: Option<String>, kind: ResourceKind, file_name: Option<String>| {
        if let Some(key) = key {
            out.push(ResourceRef {
                key,
                kind,
                file_name,
            });
        }
    };
    match msg_type {
        "image" => push(s(&v, "image_key"), ResourceKind::Image, None),
        "file" | "audio" | "sticker" => {
            push(s(&v, "file_key"), ResourceKind::File, s(&v, "file_name"))
        }
        "media" => {
            push(s(&v, "file_key"), ResourceKind::File, s(&v, "file_name"));
            push(s(&v, "image_key"), ResourceKind::Image, None);
        }
        "post" => {
            // Read form `{title, content}` or send form `{zh_cn: {title, content}}`.
            let bodies: Vec<&Value> = if v.get("content").is_some() {
                vec![&v]
            } else {
                v.as_object().into_iter().flat_map(|o| o.values()).collect()
            };
            for body in bodies {
                let paras = body.get("content").and_then(Value::as_array);
                for el in paras
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_array)
                    .flatten()
                {
                    match el.get("tag").and_then(Value::as_str) {
                        Some("img") => push(s(el, "image_key"), ResourceKind::Image, None),
                        Some("media") => {
                            push(s(el, "file_key"), ResourceKind::File, None);
                            push(s(el, "image_key"), ResourceKind::Image, None);
                        }
                        _ => {}
                    }
                }
            }
        }
        _ => {}
    }
    out
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
    /// Successful `PUT im/v1/messages/:id` edits (Lark allows 20).
    pub edit_count: u32,
}

impl Message {
    /// A message just sent by `sender` (a user's open_id, or the app id when `by_bot`), with
    /// a new id and nothing edited, replied to or recalled.
    pub fn fresh(
        chat_id: String,
        sender: String,
        by_bot: bool,
        msg_type: String,
        content: String,
        now_ms: u64,
    ) -> Message {
        Message {
            message_id: format!("om_{}", random_hex(32)),
            chat_id,
            sender,
            sender_is_bot: by_bot,
            msg_type,
            content,
            create_time_ms: now_ms,
            update_time_ms: now_ms,
            parent_id: None,
            root_id: None,
            thread_id: None,
            mentions: Vec::new(),
            deleted: false,
            updated: false,
            uuid: None,
            edit_count: 0,
        }
    }
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
    pub reactions: Vec<Reaction>,
    pub pins: Vec<Pin>,
    /// image_key / file_key → bytes.
    pub resources: HashMap<String, StoredResource>,
    /// `uuid|owner_id` of `POST im/v1/chats` → (chat_id, when first used).
    pub chat_uuids: HashMap<String, (String, u64)>,
    /// Other per-object rate windows (card updates, pins per message).
    pub op_windows: HashMap<String, VecDeque<u64>>,
    /// Apps created through one-click registration (`oauth/v1/app/registration`).
    pub apps: Vec<RegisteredApp>,
    /// One-click registrations by device_code.
    pub registrations: BTreeMap<String, super::registration::Registration>,
    /// The app whose token authorised the call being handled; `None` outside a call
    /// (control path, tests) means the seed app. Set by the pipeline under the world lock.
    pub caller: Option<String>,
    /// The user a `u-` token authorising the call belongs to (open_id); `None` for tenant
    /// tokens and outside a call. Set by the pipeline with [`Self::caller`].
    pub caller_user: Option<String>,
    /// User identity: device flows, authorization codes, user and refresh tokens.
    pub user_auth: super::user_auth::UserAuth,
}

/// An app created (or last updated) by an approved one-click registration.
#[derive(Debug, Clone, Serialize)]
pub struct RegisteredApp {
    pub app_id: String,
    #[serde(skip)]
    pub app_secret: String,
    pub app_name: String,
    pub description: String,
    pub bot_open_id: String,
    /// Its scopes; all granted (the page grants what it adds).
    pub scopes: Vec<ScopeSeed>,
    /// Event subscriptions requested through `addons` (`tenant`/`user` items merged).
    pub events: Vec<String>,
    pub callbacks: Vec<String>,
    /// `feishu` or `lark`: the tenant brand reported to the registering client.
    pub tenant_brand: String,
    /// open_id of the user who approved it.
    pub owner_open_id: String,
    pub created_ms: u64,
}

impl World {
    pub fn new(seed: Seed) -> World {
        let start = now_ms();
        let ago = |secs: i64| start.saturating_sub((secs.max(0) as u64) * 1000);
        let chats: Vec<Chat> = seed
            .chats
            .into_iter()
            .map(|c| {
                let mut chat = Chat::new(c.chat_id, c.owner, ago(c.created_ago_secs));
                chat.name = c.name;
                chat.description = c.description;
                chat.chat_type = c.chat_type;
                chat.chat_mode = c.chat_mode;
                chat.bot_member = c.bot_member;
                chat.members = c.members;
                chat
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
                    edit_count: 0,
                }
            })
            .collect();
        messages.sort_by_key(|m| m.create_time_ms);
        let resources = seeded_resources(&messages);
        let reactions = seeded_reactions(&messages, &chats);
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
            reactions,
            pins: Vec::new(),
            resources,
            chat_uuids: HashMap::new(),
            op_windows: HashMap::new(),
            apps: Vec::new(),
            registrations: BTreeMap::new(),
            caller: None,
            caller_user: None,
            user_auth: Default::default(),
        }
    }

    // ---- tokens -------------------------------------------------------------------

    /// Lark's re-issue rule: the newest live token is returned while at least
    /// `renew_below` remains; otherwise a new one is minted and the old one stays valid.
    pub fn issue_token(
        &mut self,
        app_id: &str,
        kind: TokenKind,
        ttl_secs: u64,
        renew_below_secs: u64,
    ) -> (String, u64) {
        let now = now_ms();
        let current = self
            .tokens
            .iter()
            .filter(|(_, t)| {
                t.kind == kind && t.app_id == app_id && !t.revoked && t.expires_at_ms > now
            })
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
                app_id: app_id.to_string(),
                kind,
                expires_at_ms: now.saturating_add(ttl_secs.saturating_mul(1000)),
                revoked: false,
            },
        );
        (value, ttl_secs)
    }

    /// The next token issue number (shared by tenant, app and user tokens).
    pub fn next_token_seq(&mut self) -> u64 {
        self.token_seq += 1;
        self.token_seq
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
        // User access tokens share the issue numbers.
        for t in self.user_auth.access.values_mut() {
            if !t.revoked && seq.is_none_or(|s| s == t.seq) {
                t.revoked = true;
                n += 1;
            }
        }
        n
    }

    // ---- scopes -------------------------------------------------------------------

    /// The scopes of `app_id` (the seed app's for `None`, its own id or an unknown id).
    pub fn app_scopes(&self, app_id: Option<&str>) -> &[ScopeSeed] {
        match app_id {
            Some(id) if id != self.app.app_id => self
                .apps
                .iter()
                .find(|a| a.app_id == id)
                .map(|a| a.scopes.as_slice())
                .unwrap_or(&[]),
            _ => &self.scopes,
        }
    }

    /// The calling app as the application and bot endpoints describe it.
    pub fn caller_app(&self) -> AppSeed {
        match self.caller.as_deref() {
            Some(id) if id != self.app.app_id => match self.apps.iter().find(|a| a.app_id == id) {
                Some(a) => AppSeed {
                    app_id: a.app_id.clone(),
                    app_secret: a.app_secret.clone(),
                    app_name: a.app_name.clone(),
                    description: a.description.clone(),
                    tenant_key: self.app.tenant_key.clone(),
                    bot_open_id: a.bot_open_id.clone(),
                    bot_activated: true,
                },
                None => self.app.clone(),
            },
            _ => self.app.clone(),
        }
    }

    /// The secret of a known app (the seed app or a registered one).
    pub fn app_secret(&self, app_id: &str) -> Option<&str> {
        if app_id == self.app.app_id {
            return Some(&self.app.app_secret);
        }
        self.apps
            .iter()
            .find(|a| a.app_id == app_id)
            .map(|a| a.app_secret.as_str())
    }

    /// Whether the calling app (see [`Self::caller`]) has `scope` granted for tenant tokens.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.app_scopes(self.caller.as_deref())
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

    /// Whether the caller is in `chat`: the user of a `u-` token ([`Self::caller_user`]) by
    /// membership, otherwise the app's bot.
    pub fn caller_in_chat(&self, chat: &Chat) -> bool {
        match self.caller_user.as_deref() {
            Some(open_id) => chat.members.iter().any(|m| m == open_id),
            None => chat.bot_member,
        }
    }

    /// Whether the caller sent `m`: the user of a `u-` token, otherwise the bot.
    pub fn caller_sent(&self, m: &Message) -> bool {
        match self.caller_user.as_deref() {
            Some(open_id) => !m.sender_is_bot && m.sender == open_id,
            None => m.sender_is_bot,
        }
    }

    pub fn chat(&self, chat_id: &str) -> Option<&Chat> {
        self.chats.iter().find(|c| c.chat_id == chat_id)
    }

    pub fn chat_mut(&mut self, chat_id: &str) -> Option<&mut Chat> {
        self.chats.iter_mut().find(|c| c.chat_id == chat_id)
    }

    // ---- messages -----------------------------------------------------------------

    pub fn message(&self, message_id: &str) -> Option<&Message> {
        self.messages.iter().find(|m| m.message_id == message_id)
    }

    pub fn message_mut(&mut self, message_id: &str) -> Option<&mut Message> {
        self.messages
            .iter_mut()
            .find(|m| m.message_id == message_id)
    }

    /// The chat a thread (`omt_…`) lives in.
    pub fn thread_chat(&self, thread_id: &str) -> Option<&str> {
        self.messages
            .iter()
            .find(|m| m.thread_id.as_deref() == Some(thread_id))
            .map(|m| m.chat_id.as_str())
    }

    /// The newest message time in a chat, or its creation: what `ByActiveTimeDesc` sorts on.
    pub fn last_active_ms(&self, chat: &Chat) -> u64 {
        self.messages
            .iter()
            .filter(|m| m.chat_id == chat.chat_id)
            .map(|m| m.create_time_ms)
            .max()
            .unwrap_or(0)
            .max(chat.create_time_ms)
    }

    /// A sliding one-second window per `key`; false when `qps` calls already happened in it.
    pub fn admit(&mut self, key: &str, now_ms: u64, qps: usize) -> bool {
        let w = self.op_windows.entry(key.to_string()).or_default();
        while w.front().is_some_and(|t| now_ms.saturating_sub(*t) >= 1000) {
            w.pop_front();
        }
        if w.len() >= qps {
            return false;
        }
        w.push_back(now_ms);
        true
    }
}

/// Bytes for every image/file key the seeded messages mention, so their downloads work.
fn seeded_resources(messages: &[Message]) -> HashMap<String, StoredResource> {
    let mut out = HashMap::new();
    for m in messages {
        for r in message_resources(&m.msg_type, &m.content) {
            out.entry(r.key.clone())
                .or_insert_with(|| super::api::resources::placeholder(&r));
        }
    }
    out
}

/// A few deterministic reactions by users, so lists have content and "not your
/// reaction" can be shown: every fifth seeded text message gets one from a chat member.
fn seeded_reactions(messages: &[Message], chats: &[Chat]) -> Vec<Reaction> {
    const EMOJIS: &[&str] = &["THUMBSUP", "OK", "SMILE", "JIAYI", "DONE", "CLAP", "HEART"];
    let mut out = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if m.msg_type != "text" || i % 5 != 0 {
            continue;
        }
        let Some(chat) = chats.iter().find(|c| c.chat_id == m.chat_id) else {
            continue;
        };
        let Some(reactor) = chat.members.iter().find(|u| **u != m.sender) else {
            continue;
        };
        out.push(Reaction {
            reaction_id: reaction_id_for(&m.message_id, reactor, i as u64),
            message_id: m.message_id.clone(),
            operator_id: reactor.clone(),
            operator_is_bot: false,
            emoji_type: EMOJIS[i / 5 % EMOJIS.len()].to_string(),
            action_time_ms: m.create_time_ms + 30_000,
        });
    }
    out
}

/// Reaction ids look like Lark's: 44 url-safe characters.
pub fn reaction_id_for(message_id: &str, operator: &str, salt: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut h = (fnv1a(message_id) as u64) << 32 | fnv1a(operator) as u64;
    h ^= salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..44)
        .map(|_| {
            // xorshift64*: deterministic and well spread.
            h ^= h >> 12;
            h ^= h << 25;
            h ^= h >> 27;
            let v = h.wrapping_mul(0x2545_F491_4F6C_DD1D);
            ALPHABET[(v >> 58) as usize] as char
        })
        .collect()
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
