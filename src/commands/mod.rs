//! Subcommands that are not the MCP server itself.

pub mod check;
