//! Command-line interface.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::lark::{LarkConfig, LarkError};

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
    /// Print a generated large org (JSON) to serve with `sandbox --seed FILE`.
    SandboxSeed(SandboxSeedArgs),
    /// Serve MCP over stdio (the default transport).
    Serve(ServeArgs),
    /// List the tools this configuration exposes, with their context size.
    Tools(ToolsArgs),
    /// Check the credentials, bot, granted scopes, and which tools are visible or hidden.
    Check(CheckArgs),
    /// Run one tool from the shell and print its result.
    Call(CallArgs),
    /// Register a Lark app in one step (scan a QR code, confirm) with exactly the scopes the
    /// chosen tools need, and store its credentials under a profile.
    Init(InitArgs),
    /// Add this server to an MCP client's configuration (Claude Desktop, Cursor, VS Code, Claude Code).
    InstallClient(InstallClientArgs),
    /// Sign in as yourself (OAuth device flow) so tools can act with your identity.
    Login(LoginArgs),
    /// Show who is signed in, the granted scopes and when the tokens expire.
    Whoami(UserArgs),
    /// Forget the signed-in user's tokens.
    Logout(UserArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub lark: LarkArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// Streamable HTTP (and legacy SSE) instead of stdio.
#[derive(Debug, clap::Args)]
pub struct HttpArgs {
    /// Serve MCP over HTTP at /mcp (legacy SSE at /sse) instead of stdio.
    #[arg(long)]
    pub http: bool,
    /// Address to listen on; anything but loopback requires --auth-token.
    #[arg(long, env = "LARK_MCP_HOST", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Port (0 picks a free one; the URL is logged).
    #[arg(long, env = "LARK_MCP_PORT", default_value_t = 3000)]
    pub port: u16,
    /// Bearer token every HTTP client must send (at least 16 characters).
    #[arg(long, env = "LARK_MCP_AUTH_TOKEN", hide_env_values = true)]
    #[arg(value_parser = secret)]
    pub auth_token: Option<SecretString>,
    /// Browser origin allowed to call (repeatable; default localhost and 127.0.0.1, any port).
    #[arg(
        long = "allowed-origin",
        env = "LARK_MCP_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Host header value allowed (repeatable; default localhost, 127.0.0.1, ::1).
    #[arg(
        long = "allowed-host",
        env = "LARK_MCP_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// Largest request body accepted (bytes).
    #[arg(long, env = "LARK_MCP_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most sessions open at once.
    #[arg(long, env = "LARK_MCP_MAX_SESSIONS", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_sessions: u64,
    /// Seconds after which an idle session is closed.
    #[arg(long, env = "LARK_MCP_SESSION_IDLE_SECS", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..))]
    pub session_idle_secs: u64,
    /// Seconds SIGTERM waits for in-flight calls before closing.
    #[arg(long, env = "LARK_MCP_DRAIN_SECS", default_value_t = 10)]
    pub drain_secs: u64,
    /// Redis shared by replicas of this server behind one load balancer: the tenant token,
    /// the user login, send pacing and idempotency keys (redis://[:password@]host:port[/db]).
    /// Also for a stdio server next to such replicas.
    #[arg(long, env = "LARK_MCP_REDIS_URL", hide_env_values = true)]
    #[arg(value_parser = secret)]
    pub redis_url: Option<SecretString>,
}

impl HttpArgs {
    pub fn options(&self) -> crate::server::http::HttpOptions {
        use crate::server::http::HttpOptions;
        HttpOptions {
            host: self.host,
            port: self.port,
            auth_token: self.auth_token.clone(),
            allowed_origins: if self.allowed_origins.is_empty() {
                HttpOptions::default_origins()
            } else {
                self.allowed_origins.clone()
            },
            allowed_hosts: if self.allowed_hosts.is_empty() {
                HttpOptions::default_hosts()
            } else {
                self.allowed_hosts.clone()
            },
            max_body_bytes: self.max_body_bytes,
            max_sessions: self.max_sessions as usize,
            session_idle: std::time::Duration::from_secs(self.session_idle_secs),
            drain: std::time::Duration::from_secs(self.drain_secs),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ToolsArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The tool to run, e.g. lookup_user_by_email.
    pub tool: String,
    /// Arguments as a JSON object.
    #[arg(long, default_value = "{}", value_parser = parse_object)]
    pub args: serde_json::Map<String, serde_json::Value>,
    #[command(flatten)]
    pub lark: LarkArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub replicas: ReplicasArg,
}

/// `--redis-url` of a command run next to `serve --http --redis-url` replicas.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplicasArg {
    /// The Redis of `serve --http --redis-url` replicas: this command shares their token,
    /// limits, send budget and user login (redis://[:password@]host:port[/db]).
    #[arg(long, env = "LARK_MCP_REDIS_URL", hide_env_values = true)]
    #[arg(value_parser = secret)]
    pub redis_url: Option<SecretString>,
}

/// Which tools are exposed. Fixed at start; nothing a client sends can widen it.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Toolsets to expose (comma-separated; default all).
    #[arg(long, env = "LARK_MCP_TOOLSETS", value_delimiter = ',')]
    pub toolsets: Option<Vec<String>>,
    /// Single tools to add beyond the toolsets (comma-separated).
    #[arg(long, env = "LARK_MCP_TOOLS", value_delimiter = ',')]
    pub tools: Vec<String>,
    /// Tools to remove; always wins (comma-separated).
    #[arg(long, env = "LARK_MCP_EXCLUDE_TOOLS", value_delimiter = ',')]
    pub exclude_tools: Vec<String>,
    /// Hide every tool that writes; always wins.
    #[arg(long, env = "LARK_MCP_READ_ONLY")]
    pub read_only: bool,
    /// auto: hide tools whose scopes are not granted, expose all if scopes cannot be read;
    /// strict: refuse to start if they cannot be read; off: do not check.
    #[arg(long, env = "LARK_MCP_SCOPE_CHECK", value_enum, default_value = "auto")]
    pub scope_check: crate::server::ScopeCheck,
    /// A directory local files may be uploaded from (repeatable; none by default, which
    /// hides the upload tools).
    #[arg(
        long = "allow-read-dir",
        env = "LARK_MCP_ALLOW_READ_DIRS",
        value_delimiter = ','
    )]
    pub allow_read_dirs: Vec<std::path::PathBuf>,
    /// Where download_resource writes files (unset hides it).
    #[arg(long, env = "LARK_MCP_DOWNLOAD_DIR")]
    pub download_dir: Option<std::path::PathBuf>,
    /// Whose identity tools act with: auto (as you once you `login`, wherever a tool can,
    /// else as the bot), bot (never as you), user (tools that can act as you only ever do,
    /// and wait for your login).
    #[arg(long, env = "LARK_MCP_IDENTITY", value_enum, default_value = "auto")]
    pub identity: crate::tools::IdentityMode,
    /// Let send_message and reply_message send in your name when they act as you (off:
    /// they always send as the bot).
    #[arg(long, env = "LARK_MCP_ALLOW_SEND_AS_USER")]
    pub allow_send_as_user: bool,
    /// Seconds before the people-and-chats index behind find_people / find_chats is
    /// rebuilt in the background.
    #[arg(long, env = "LARK_MCP_DIRECTORY_TTL", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub directory_ttl: u64,
    /// Keep that index in the cache directory (0600) so the next start is warm.
    #[arg(long, env = "LARK_MCP_DIRECTORY_CACHE")]
    pub directory_cache: bool,
    /// Milliseconds a find call waits for the index's first build before answering with
    /// what is indexed so far.
    #[arg(long, env = "LARK_MCP_DIRECTORY_WAIT_MS", default_value_t = 3000)]
    pub directory_wait_ms: u64,
    /// Seconds between re-reads of the granted scopes.
    #[arg(long, env = "LARK_MCP_SCOPE_REFRESH_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub scope_refresh_secs: u64,
    /// Whom write tools may reach (comma-separated): chat ids (oc_…), open_ids (ou_…),
    /// emails, department ids (od-…: their members), `*`; `!entry` denies and wins. Unset:
    /// anyone the app can reach.
    #[arg(long, env = "LARK_MCP_ALLOW_RECIPIENTS", value_delimiter = ',')]
    pub allow_recipients: Option<Vec<String>>,
    /// At most N messages sent (send, reply, forward) per period, e.g. 30/h or 200/d: per
    /// server, and per session too over HTTP.
    #[arg(long, env = "LARK_MCP_SEND_BUDGET")]
    pub send_budget: Option<String>,
    /// Each MCP session's own send budget, e.g. 10/h (default: --send-budget): over HTTP,
    /// one client cannot spend what the others share.
    #[arg(long, env = "LARK_MCP_SESSION_SEND_BUDGET")]
    pub session_send_budget: Option<String>,
    /// Which calls a person confirms first (MCP elicitation): none, destructive (recall,
    /// dissolve, remove members, …) or writes (every call that writes).
    #[arg(
        long,
        env = "LARK_MCP_CONFIRM",
        value_enum,
        default_value = "destructive"
    )]
    pub confirm: crate::tools::guard::ConfirmMode,
    /// Append one JSON line per write attempt to this file (created 0600).
    #[arg(long, env = "LARK_MCP_AUDIT_LOG")]
    pub audit_log: Option<std::path::PathBuf>,
    /// Also keep what was sent in the audit log (off: who, to whom, result only).
    #[arg(long, env = "LARK_MCP_AUDIT_BODIES")]
    pub audit_bodies: bool,
}

impl PolicyArgs {
    pub fn policy(&self) -> Result<crate::tools::policy::Policy, String> {
        crate::tools::policy::Policy::new(&crate::tools::policy::PolicyConfig {
            toolsets: self.toolsets.clone(),
            tools: self.tools.clone(),
            exclude: self.exclude_tools.clone(),
            read_only: self.read_only,
            allow_read_dirs: self.allow_read_dirs.clone(),
            download_dir: self.download_dir.clone(),
        })
    }

    /// The guard rails on writes; an unreadable rule or an unopenable log is an error.
    pub fn guard(&self) -> Result<crate::tools::guard::GuardConfig, String> {
        use crate::tools::guard::{GuardConfig, Recipients, audit::AuditLog, budget::BudgetSpec};
        Ok(GuardConfig {
            recipients: self
                .allow_recipients
                .as_deref()
                .map(Recipients::parse)
                .transpose()?,
            budget: self
                .send_budget
                .as_deref()
                .map(BudgetSpec::parse)
                .transpose()?,
            session_budget: self
                .session_send_budget
                .as_deref()
                .map(BudgetSpec::parse)
                .transpose()?,
            confirm: self.confirm,
            audit_log: self.audit_log.as_deref().map(AuditLog::open).transpose()?,
            audit_bodies: self.audit_bodies,
        })
    }
}

fn parse_object(s: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str(s) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err("--args must be a JSON object".into()),
        Err(e) => Err(format!("--args is not valid JSON: {e}")),
    }
}

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 18080, env = "LARK_SANDBOX_PORT")]
    pub port: u16,
    #[command(flatten)]
    pub seed: SeedArgs,
    /// Sandbox options as a JSON object, e.g. '{"token_ttl_secs":60}'.
    #[arg(long, value_parser = parse_options)]
    pub options: Option<crate::sandbox::Options>,
}

/// `sandbox-seed`: the size of the generated org.
#[derive(Debug, clap::Args)]
pub struct SandboxSeedArgs {
    /// People in the org.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub people: u64,
    /// Departments, divisions included.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub departments: u64,
    /// Seed of the generator: the same numbers always print the same org.
    #[arg(long, default_value_t = 1)]
    pub rng_seed: u64,
}

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// Seed file (JSON) with the org to serve; the built-in demo org when absent.
    #[arg(long, env = "LARK_SANDBOX_SEED")]
    pub seed: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub lark: LarkArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub replicas: ReplicasArg,
}

/// Where and as which app to reach Lark. `--sandbox` replaces all of it with the
/// built-in emulator and its demo app.
#[derive(Debug, clap::Args)]
pub struct LarkArgs {
    /// App ID of a self-built Lark app (cli_…).
    #[arg(long, env = "LARK_APP_ID")]
    pub app_id: Option<String>,
    /// App secret; prefer the environment variable, flags show up in process lists.
    #[arg(long, env = "LARK_APP_SECRET", hide_env_values = true)]
    #[arg(value_parser = secret)]
    pub app_secret: Option<SecretString>,
    /// feishu (open.feishu.cn, the default), lark or larksuite (open.larksuite.com), or a base
    /// URL such as https://open.feishu.cn.
    #[arg(long, env = "LARK_DOMAIN")]
    pub domain: Option<String>,
    /// The stored credentials to use when no --app-id/--app-secret (or LARK_APP_*) are given
    /// (see `init`; default: the profile named "default", if stored).
    #[arg(long, env = "LARK_MCP_PROFILE")]
    pub profile: Option<String>,
    /// Seconds allowed to open a connection.
    #[arg(long, env = "LARK_CONNECT_TIMEOUT", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=120))]
    pub connect_timeout: u64,
    /// Seconds allowed for one HTTP request.
    #[arg(long, env = "LARK_REQUEST_TIMEOUT", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_timeout: u64,
    /// Seconds allowed for one call, retries and rate-limit waits included.
    #[arg(long, env = "LARK_CALL_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub call_timeout: u64,
    /// Start the built-in sandbox in-process and use it instead of Lark.
    #[arg(long)]
    pub sandbox: bool,
    #[command(flatten)]
    pub seed: SeedArgs,
}

impl LarkArgs {
    /// Whether credentials must come from a stored profile: none given by flag or env.
    pub fn wants_profile(&self) -> bool {
        !self.sandbox && self.app_id.is_none() && self.app_secret.is_none()
    }

    /// The client configuration. Credentials: the sandbox's, else the flags/env, else
    /// `profile`; the domain: --domain/LARK_DOMAIN, else the profile's, else Feishu.
    pub fn config(
        &self,
        sandbox: Option<(&str, &str, &str)>,
        profile: Option<&crate::profile::Profile>,
    ) -> Result<LarkConfig, LarkError> {
        let mut cfg = match (sandbox, profile) {
            (Some((app_id, secret, base)), _) => {
                LarkConfig::new(Some(app_id), Some(secret), Some(base))?
            }
            (None, Some(p)) if self.wants_profile() => LarkConfig::new(
                Some(&p.app_id),
                Some(p.app_secret.expose_secret()),
                Some(self.domain.as_deref().unwrap_or(&p.domain)),
            )?,
            (None, _) => LarkConfig::new(
                self.app_id.as_deref(),
                self.app_secret.as_ref().map(|s| s.expose_secret()),
                self.domain.as_deref(),
            )?,
        };
        cfg.connect_timeout = Duration::from_secs(self.connect_timeout);
        cfg.request_timeout = Duration::from_secs(self.request_timeout);
        cfg.call_budget = Duration::from_secs(self.call_timeout);
        Ok(cfg)
    }
}

/// Secrets stay wrapped from the command line on, so no `Debug` of the arguments shows them.
fn secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_string()))
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
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    std::process::exit(0);
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    std::process::exit(2);
                }
                _ => {
                    let text = e.to_string();
                    let first = text.lines().next().unwrap_or("error: invalid arguments");
                    eprintln!("{first} (see --help)");
                    std::process::exit(2);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_arguments_never_show_secrets_in_debug() {
        let cli = Cli::try_parse_from([
            "lark-mcp-server",
            "serve",
            "--app-id",
            "cli_a1",
            "--app-secret",
            "topsecret-app-value",
            "--http",
            "--auth-token",
            "topsecret-token-value-1234",
        ])
        .expect("parses");
        let shown = format!("{cli:?}");
        assert!(shown.contains("cli_a1"), "{shown}");
        assert!(!shown.contains("topsecret"), "{shown}");
    }
}

/// `init`: what to register.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Toolsets whose tools the app is for (comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    pub toolsets: Option<Vec<String>>,
    /// Single tools to add beyond the toolsets (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub tools: Vec<String>,
    /// Tools to leave out (comma-separated).
    #[arg(long = "exclude-tools", value_delimiter = ',')]
    pub exclude_tools: Vec<String>,
    /// Only the read-only tools: no scope that writes is requested.
    #[arg(long)]
    pub read_only: bool,
    /// Also request the same scopes for user tokens (acting as yourself).
    #[arg(long)]
    pub user: bool,
    /// Also subscribe the app to incoming messages (im.message.receive_v1).
    #[arg(long)]
    pub events: bool,
    /// Add the scopes to this existing app (cli_…) instead of creating one; the platform
    /// only ever adds.
    #[arg(long)]
    pub app_id: Option<String>,
    /// The app's name; {user} becomes your name.
    #[arg(long, default_value = "Lark MCP for {user}")]
    pub name: String,
    /// Store the credentials under this profile name.
    #[arg(long, env = "LARK_MCP_PROFILE", default_value = crate::profile::DEFAULT)]
    pub profile: String,
    /// Print the link and QR code but do not open a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// feishu (the default; a Lark tenant is detected when you confirm), lark, or the base URL
    /// of a Lark emulator such as the sandbox.
    #[arg(long, env = "LARK_DOMAIN", default_value = "feishu")]
    pub domain: String,
    /// Try it against the built-in sandbox: it confirms by itself and nothing is stored.
    #[arg(long)]
    pub sandbox: bool,
}

/// `install-client`: the entry written runs this binary with `serve` and these flags; no
/// credentials. No `env` fallbacks here, so the installer's own environment never leaks in.
#[derive(Debug, clap::Args)]
pub struct InstallClientArgs {
    /// The MCP client whose user configuration to edit.
    #[arg(value_enum)]
    pub client: crate::commands::install_client::Client,
    /// Credential profile the server uses (written as `serve --profile NAME`; without it the
    /// server uses the default profile).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Written as `serve --read-only`.
    #[arg(long)]
    pub read_only: bool,
    /// Written as `serve --toolsets …` (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub toolsets: Option<Vec<String>>,
    /// Written as `serve --tools …` (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub tools: Vec<String>,
    /// Written as `serve --exclude-tools …` (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub exclude_tools: Vec<String>,
    /// The configuration file to edit instead of the client's usual one.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The server's name in the client's configuration.
    #[arg(long, default_value = "lark")]
    pub name: String,
    /// Print the entry and the file it would go in, without writing anything.
    #[arg(long)]
    pub dry_run: bool,
}

impl InstallClientArgs {
    pub fn request(&self) -> crate::commands::install_client::Request {
        crate::commands::install_client::Request {
            client: self.client,
            name: self.name.clone(),
            profile: self.profile.clone(),
            read_only: self.read_only,
            toolsets: self.toolsets.clone(),
            tools: self.tools.clone(),
            exclude_tools: self.exclude_tools.clone(),
            config: self.config.clone(),
            dry_run: self.dry_run,
        }
    }
}

/// `login`: the app (profile or flags) and what to ask for.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub lark: LarkArgs,
    /// `auto` (what the tools need) or a comma-separated list; offline_access is always
    /// added so the login can be refreshed.
    #[arg(long, default_value = "auto")]
    pub scopes: String,
    /// Print the link and QR code but do not open a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Sign in through the browser (authorization code + PKCE, redirected to this machine)
    /// instead of the device flow; also used when the device flow is refused.
    #[arg(long)]
    pub pkce: bool,
    /// Port of the browser sign-in's redirect, http://127.0.0.1:<port>/callback, which must
    /// be registered as a redirect URL of the app (default 3000; any free port for a local
    /// sandbox).
    #[arg(long)]
    pub redirect_port: Option<u16>,
    /// With `--scopes auto`, also ask for sending messages in your name (for a server
    /// started with --allow-send-as-user).
    #[arg(long)]
    pub allow_send_as_user: bool,
    /// The Redis of `serve --http --redis-url` replicas: the login is stored there too, and
    /// replaces the one they share (redis://[:password@]host:port[/db]).
    #[arg(long, env = "LARK_MCP_REDIS_URL", hide_env_values = true)]
    #[arg(value_parser = secret)]
    pub redis_url: Option<SecretString>,
}

impl LoginArgs {
    pub fn scope_list(&self) -> Option<Vec<String>> {
        (self.scopes != "auto").then(|| {
            self.scopes
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
    }
}

/// `whoami` / `logout`: which login.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(flatten)]
    pub lark: LarkArgs,
    /// The Redis of `serve --http --redis-url` replicas sharing the login: a due token is
    /// refreshed for all of them (whoami), the shared login deleted too (logout).
    #[arg(long, env = "LARK_MCP_REDIS_URL", hide_env_values = true)]
    #[arg(value_parser = secret)]
    pub redis_url: Option<SecretString>,
}
