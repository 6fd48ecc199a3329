//! Subcommands other than `sandbox`: each returns its text; `main` prints it.

pub mod check;
pub mod init;
pub mod tool_table;
