//! Subcommands other than `sandbox`: each returns its text; `main` prints it.

pub mod check;
pub mod init;
pub mod install_client;
pub mod login;
pub mod tool_table;
