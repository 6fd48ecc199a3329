//! The Lark Open Platform client.

mod client;
mod config;
mod error;
pub mod inbox;
pub mod longconn;
mod pacer;
mod path;
pub mod pbbp2;
pub mod pkce;
pub mod registration;
pub mod scope_sets;
mod scopes;
pub mod shared_limits;
pub mod tls;
pub mod user_auth;

pub use client::{
    Download, DownloadError, FileSink, FormPart, LarkClient, Request, Response, Safety,
    with_log_ids,
};
pub use config::{FEISHU_BASE, LARK_BASE, LarkConfig, parse_domain};
pub use error::{Details, ErrorKind, FieldViolation, Help, LarkError, PermissionViolation};
pub use path::api_path;
pub use reqwest::Method;
pub use scopes::{GrantedScopes, ScopeCache};

/// A fresh dedupe key for Lark's `uuid` (≤ 50 characters): a random v4 UUID in its
/// 32-hex-digit `simple` form, which fits the limit with room to spare.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
