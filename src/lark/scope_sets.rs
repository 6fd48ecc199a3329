//! Which scopes Lark's APIs require: any one of each list lets a tenant-token call through.
//! The tool catalog hides tools by it. The sandbox enforces its own copy of the facts
//! (`crate::sandbox::scopes`), and `tests/scope_agreement.rs` checks the two agree. Sources: `lark-endpoints.tsv` (docs, SDKs; partly inferred where marked there).

pub const CONTACT_READ: &[&str] = &[
    "contact:contact.base:readonly",
    "contact:contact:access_as_app",
    "contact:contact:readonly",
    "contact:contact:readonly_as_app",
];
pub const DEPARTMENTS_READ: &[&str] = &[
    "contact:contact.base:readonly",
    "contact:department.organize:readonly",
    "contact:contact:access_as_app",
    "contact:contact:readonly",
    "contact:contact:readonly_as_app",
];
pub const CONTACT_RANGE: &[&str] = &[
    "contact:contact.base:readonly",
    "contact:contact:access_as_app",
    "contact:contact:readonly_as_app",
];
pub const GROUPS_READ: &[&str] = &[
    "contact:group:readonly",
    "contact:contact:readonly_as_app",
    "contact:contact:access_as_app",
];
pub const USERS_BATCH: &[&str] = &["contact:contact.base:readonly"];
pub const USER_ID_LOOKUP: &[&str] = &["contact:user.id:readonly"];
/// People search by name: a user token only.
pub const USER_SEARCH: &[&str] = &["contact:user:search"];
pub const APP_INFO: &[&str] = &[
    "application:application:self_manage",
    "admin:app.info:readonly",
];

/// Message search: a user token only.
pub const MESSAGE_SEARCH: &[&str] = &["search:message"];
/// Sending as the person: Lark needs both of these (on top of a send scope).
pub const SEND_AS_USER_ALL: &[&str] = &["im:message", "im:message.send_as_user"];
/// The one of them that only sending as the person needs: what decides whether the send
/// tools may act as them.
pub const SEND_AS_USER: &[&str] = &["im:message.send_as_user"];
pub const MESSAGE_SEND: &[&str] = &["im:message", "im:message:send_as_bot", "im:message:send"];
pub const MESSAGE_UPDATE: &[&str] = &["im:message", "im:message:send_as_bot", "im:message:update"];
pub const MESSAGE_RECALL: &[&str] = &["im:message", "im:message:recall", "im:message:send_as_bot"];
pub const MESSAGE_FORWARD: &[&str] = &["im:message"];
pub const MESSAGE_READ: &[&str] = &["im:message", "im:message:readonly"];
pub const MESSAGE_HISTORY: &[&str] = &[
    "im:message",
    "im:message:readonly",
    "im:message.history:readonly",
];
pub const REACTIONS_WRITE: &[&str] = &["im:message", "im:message.reactions:write_only"];
pub const REACTIONS_READ: &[&str] = &["im:message.reactions:read", "im:message:readonly"];
pub const PINS_WRITE: &[&str] = &[
    "im:message",
    "im:message.pins:write_only",
    "im:message:send_as_bot",
];
pub const UNPIN: &[&str] = &["im:message", "im:message.pins:write_only"];
pub const PINS_READ: &[&str] = &["im:message", "im:message.pins:read", "im:message:readonly"];
pub const RESOURCE_UPLOAD: &[&str] = &["im:resource", "im:resource:upload"];

pub const CHAT_READ: &[&str] = &[
    "im:chat",
    "im:chat:readonly",
    "im:chat:read",
    "im:chat.group_info:readonly",
];
pub const CHAT_MEMBERS_READ: &[&str] = &[
    "im:chat",
    "im:chat.group_info:readonly",
    "im:chat.members:read",
    "im:chat:readonly",
];
pub const CHAT_MEMBERS_WRITE: &[&str] = &["im:chat", "im:chat.members:write_only"];
pub const CHAT_CREATE: &[&str] = &["im:chat", "im:chat:create"];
pub const CHAT_UPDATE: &[&str] = &["im:chat", "im:chat:update"];
pub const CHAT_DELETE: &[&str] = &["im:chat", "im:chat:delete"];
pub const CHAT_LINK: &[&str] = &["im:chat", "im:chat:read"];
