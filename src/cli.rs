//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "lark-mcp-server",
    version,
    about,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the built-in Lark Open Platform emulator on 127.0.0.1.
    Sandbox(SandboxArgs),
}

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 18080, env = "LARK_SANDBOX_PORT")]
    pub port: u16,
    /// Seed file (JSON) with the org to serve; the built-in demo org when absent.
    #[arg(long, env = "LARK_SANDBOX_SEED")]
    pub seed: Option<PathBuf>,
    /// Sandbox options as a JSON object, e.g. '{"token_ttl_secs":60}'.
    #[arg(long, value_parser = parse_options)]
    pub options: Option<crate::sandbox::Options>,
}

fn parse_options(s: &str) -> Result<crate::sandbox::Options, String> {
    serde_json::from_str(s).map_err(|e| format!("invalid sandbox options: {e}"))
}

/// Parses arguments; a usage error is one line on stderr and exit code 2.
pub fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let code = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    2
                } else {
                    0
                };
                let _ = e.print();
                std::process::exit(code);
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{first} (see --help)");
            std::process::exit(2);
        }
    }
}
