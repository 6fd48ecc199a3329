//! The MCP side: one transport-independent handler, served over stdio and HTTP.

pub mod catalog;
mod handler;
pub mod http;
pub mod jsonrpc;
pub mod mcp_log;
pub mod peers;
mod scope_check;
pub mod stdio;

pub use handler::{INSTRUCTIONS, LarkMcp};
pub use scope_check::ScopeCheck;
