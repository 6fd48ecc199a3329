//! `--scope-check`: a start-up flag of the server, so it lives with the server; the tools
//! only read which one was chosen.

/// How the server treats the app's granted scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScopeCheck {
    /// Read them; if that fails, warn once and expose every configured tool.
    Auto,
    /// Refuse to start when they cannot be read.
    Strict,
    /// Do not read them; expose every configured tool.
    Off,
}
