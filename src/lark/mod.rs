//! The Lark Open Platform client.

mod client;
mod config;
mod error;
mod pacer;
mod path;
pub mod scope_sets;
mod scopes;

pub use client::{
    Download, DownloadError, FileSink, FormPart, LarkClient, Request, Response, Safety,
};
pub use config::{FEISHU_BASE, LARK_BASE, LarkConfig, parse_domain};
pub use error::{Details, ErrorKind, FieldViolation, Help, LarkError, PermissionViolation};
pub use path::api_path;
pub use reqwest::Method;
pub use scopes::GrantedScopes;

/// A fresh dedupe key for Lark's `uuid` (≤ 50 characters).
pub fn new_uuid() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}
