//! The MCP side: one transport-independent handler, served over stdio (and HTTP later).

mod handler;
pub mod http;
pub mod stdio;

pub use handler::{INSTRUCTIONS, LarkMcp};
