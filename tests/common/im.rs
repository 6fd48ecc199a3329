//! Helpers for the messages and chats end-to-end tests: well-known chats and messages of the
//! demo org, what the sandbox stored, temporary directories for uploads and downloads, and
//! the checks every in-band Lark error gets.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use lark_mcp_server::sandbox::{Chat, Message, Reaction};
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::Sbx;
use super::mcp::{McpServer, log_id_in};

// ---- the demo org's chats and messages (src/sandbox/default_seed.json) --------------------

/// Zhang Wei's team chat; the bot is a member. 22 top-level messages from 12 minutes to
/// weeks ago.
pub const PERCEPTION_CHAT: &str = "oc_4191333043007bafa4e56877d72d329b";
/// Two threads live here ("one thread per incident").
pub const INCIDENT_CHAT: &str = "oc_0e3c926efb89512ffe88935b7f418ed8";
pub const RND_WEEKLY_CHAT: &str = "oc_05c408dcf199665ae65851dd6b0f4cf4";
pub const SALES_WINS_CHAT: &str = "oc_c3258bce616c578039268f5552f5cc64";
pub const RND_CENTER_CHAT: &str = "oc_56b040fdf2bf75f73d4f2092632e7193";
pub const SALES_MARKETING_CHAT: &str = "oc_c9a49650fe2c55829f7d529b53c323eb";
pub const HR_DEPT_CHAT: &str = "oc_f4916ce1aaba18bf5b4c613d818b655f";

/// The incident thread in the war room: root plus 7 replies.
pub const INCIDENT_THREAD: &str = "omt_27b907c1167d685f";
pub const INCIDENT_THREAD_ROOT: &str = "om_67e87092bcca0512ebdc0c2feec12c46";
/// The Jetson deployment thread in R&D Weekly: root plus 5 replies.
pub const JETSON_THREAD: &str = "omt_0473ab405c5aa635";

/// Random: 孙浩 asks who orders milk tea, `@_user_1 @_user_2` = 李娜, 韩雪.
pub const MILK_TEA_MSG: &str = "om_893c7cbc752fb4b4116e5cb42380d048";
/// All Hands: an image message (`img_v3_0206b6fea127e5e4ad17b225af`) from 林晓雯.
pub const ALL_HANDS_IMAGE_MSG: &str = "om_308dc4d156bbf1720181cafeb5ae8883";
pub const ALL_HANDS_IMAGE_KEY: &str = "img_v3_0206b6fea127e5e4ad17b225af";
/// Sales Wins: a post by 曹雨 with bold lines, two mentions and a link.
pub const SIGNING_POST_MSG: &str = "om_dc6b2a57620d7b4e0b5ba336bfece6a2";
/// Incident war room: a card the bot sent ("Deploy finished").
pub const DEPLOY_CARD_MSG: &str = "om_c4a4507a6c73d5eb04cbaea0d5b31af8";

pub const LI_NA: &str = "ou_08d35676f46d47cf00b86d2846e575b1";
pub const LI_NA_EMAIL: &str = "li.na@northwind.example";
pub const HAN_XUE: &str = "ou_ac1782600991785e0f0a60d0d96a3cac";
pub const SUN_HAO: &str = "ou_96994c41689114572534214a6c4f152e";
pub const SUN_HAO_EMAIL: &str = "sun.hao@northwind.example";
pub const WANG_LEI: &str = "ou_ebab049a40ef8bbfb87748c12e7b0728";
pub const WANG_LEI_EMAIL: &str = "wang.lei@northwind.example";
pub const LIN_XIAOWEN: &str = "ou_3aae29888a3b17ff80b7bb423fa914e6";

pub const BOT_NAME: &str = "Northwind Assistant";

/// A valid 1×1 transparent PNG (67 bytes).
pub const TINY_PNG: [u8; 67] = [
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

/// Every `im:` scope of the demo app.
pub fn im_scopes(seed: &lark_mcp_server::sandbox::Seed) -> Vec<String> {
    seed.scopes
        .iter()
        .map(|s| s.scope.clone())
        .filter(|s| s.starts_with("im:"))
        .collect()
}

// ---- what the sandbox holds ------------------------------------------------------------------

/// The stored message; panics when the sandbox has none with this id.
#[track_caller]
/// The bot's reactions on one message, as the sandbox stores them.
pub fn bot_reactions(sbx: &Sbx, message_id: &str) -> Vec<Reaction> {
    sbx.state()
        .world
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .reactions
        .iter()
        .filter(|r| r.message_id == message_id && r.operator_is_bot)
        .cloned()
        .collect()
}

pub fn stored(sbx: &Sbx, message_id: &str) -> Message {
    sbx.state()
        .messages(None)
        .into_iter()
        .find(|m| m.message_id == message_id)
        .unwrap_or_else(|| panic!("the sandbox holds no message {message_id}"))
}

/// A stored message's content string, parsed.
#[track_caller]
pub fn content_of(m: &Message) -> Value {
    serde_json::from_str(&m.content).unwrap_or_else(|e| {
        panic!(
            "content of {} is not JSON ({e}): {}",
            m.message_id, m.content
        )
    })
}

/// Messages of `chat_id` whose ids are not in `before`.
pub fn new_messages(sbx: &Sbx, chat_id: &str, before: &[Message]) -> Vec<Message> {
    sbx.state()
        .messages(Some(chat_id))
        .into_iter()
        .filter(|m| !before.iter().any(|b| b.message_id == m.message_id))
        .collect()
}

#[track_caller]
pub fn chat(sbx: &Sbx, chat_id: &str) -> Chat {
    sbx.state()
        .chats()
        .into_iter()
        .find(|c| c.chat_id == chat_id)
        .unwrap_or_else(|| panic!("the sandbox holds no chat {chat_id}"))
}

/// Requests the sandbox recorded for one endpoint name.
pub fn recorded(sbx: &Sbx, endpoint: &str) -> Vec<lark_mcp_server::sandbox::RecordedRequest> {
    sbx.state()
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == endpoint)
        .collect()
}

// ---- results -----------------------------------------------------------------------------------

/// A string field of a tool output; panics when absent.
#[track_caller]
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{key}` in {v}"))
}

/// The whole result as the client received it on the wire (camelCase JSON).
pub fn wire(r: &CallToolResult) -> Value {
    serde_json::to_value(r).expect("a result serializes")
}

/// A successful result whose only check is "not an error"; returns the structured content.
/// For outputs that may legitimately hold an empty list (which [`McpServer::ok`] refuses).
pub async fn ok_lenient(s: &McpServer, name: &str, args: Value) -> Value {
    let r = s.call(name, args).await;
    assert_eq!(
        r.is_error,
        Some(false),
        "{name} should succeed: {}",
        super::mcp::text_of(&r)
    );
    r.structured_content
        .unwrap_or_else(|| panic!("{name}: no structuredContent"))
}

/// The error text names what failed, Lark's code, the HTTP status and a log id.
#[track_caller]
pub fn assert_lark_error(text: &str, operation: &str, code: i64, status: u16) {
    assert!(
        text.starts_with(&format!("{operation} failed: ")),
        "operation `{operation}` in: {text}"
    );
    assert!(
        text.contains(&format!("Lark code {code}, HTTP {status}, log_id ")),
        "code {code} / HTTP {status} in: {text}"
    );
    log_id_in(text);
}

// ---- temporary directories ----------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lark-mcp-{tag}-{}-{}-{:08x}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        // Canonical, so paths compare equal to what the server resolves (/tmp may be a link).
        TempDir(std::fs::canonicalize(&dir).expect("canonical temp dir"))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }

    /// Writes `name` inside the directory; returns its absolute path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).expect("write a temp file");
        p.to_str().expect("a UTF-8 temp path").to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
