//! lark-mcp-server: an MCP server for Lark/Feishu contacts and messaging, and the
//! built-in Lark Open Platform emulator ("sandbox") it is tested against.

pub mod cli;
pub mod commands;
pub mod directory;
pub mod lark;
pub mod mentions;
pub mod profile;
pub mod sandbox;
pub mod server;
pub mod tools;
