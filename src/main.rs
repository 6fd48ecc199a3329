use std::sync::Arc;
use std::time::Duration;

use lark_mcp_server::cli::{self, Command, LarkArgs, PolicyArgs, SeedArgs};
use lark_mcp_server::commands;
use lark_mcp_server::lark::LarkClient;
use lark_mcp_server::lark::shared_limits::SharedLimits;
use lark_mcp_server::profile;
use lark_mcp_server::sandbox::{Options, Sandbox, Seed};
use lark_mcp_server::server::ScopeCheck;
use lark_mcp_server::server::{LarkMcp, http, stdio};
use lark_mcp_server::tools::{Progress, Shared, ToolCtx};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::filter::Targets;

/// Without RUST_LOG: this crate at info, dependencies at warn. rmcp gets error: it logs
/// every session's full handshake at info and every error answer (an unknown tool, a
/// client's mistake already told to the client) at warn.
fn default_log() -> Targets {
    use tracing::Level;
    Targets::new()
        .with_default(Level::WARN)
        .with_target("lark_mcp_server", Level::INFO)
        .with_target("rmcp", Level::ERROR)
}

/// RUST_LOG as `level` and `target=level` directives. A plain target filter rather than
/// tracing-subscriber's EnvFilter, whose span/field directives (unused here) bring a regex
/// engine into the binary; an unreadable RUST_LOG falls back to the default, as before.
fn log_filter(rust_log: Option<&str>) -> Targets {
    rust_log
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(default_log)
}

fn init_logging() {
    // stdout is reserved for the protocol; logs go to stderr, filtered by RUST_LOG.
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    use tracing_subscriber::prelude::*;
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(filter);
    tracing_subscriber::registry()
        .with(stderr)
        .with(lark_mcp_server::server::mcp_log::layer())
        .init();
}

fn fail(code: i32, msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(code);
}

/// Writes a command's output (a closed pipe ends the process quietly).
fn emit(text: &str) {
    commands::write_out(text);
}

/// What `serve` says when a person, not a client, is at the other end of stdin: otherwise
/// it waits without a word and looks hung.
fn terminal_hint(stdin_is_terminal: bool, http: bool) -> Option<&'static str> {
    (stdin_is_terminal && !http).then_some(
        "lark-mcp-server speaks MCP over stdin/stdout and is waiting for a client. To try it by hand: `lark-mcp-server tools`, `lark-mcp-server call get_user --args '{\"user_id\":\"ou_…\"}' --sandbox`, or point an MCP client at this command.",
    )
}

fn load_seed(args: &SeedArgs) -> Seed {
    match &args.seed {
        Some(path) => Seed::from_file(path),
        None => Seed::default_org(),
    }
    .unwrap_or_else(|e| fail(2, &e))
}

async fn start_sandbox(seed: Seed, options: Options, port: u16) -> Sandbox {
    Sandbox::start(seed, options, port)
        .await
        .unwrap_or_else(|e| fail(1, &format!("cannot bind 127.0.0.1:{port}: {e}")))
}

/// The shared server state, with an in-process sandbox when `--sandbox` is given.
async fn shared_state(lark: &LarkArgs, policy: &PolicyArgs) -> (Arc<Shared>, Option<Sandbox>) {
    let rules = policy.policy().unwrap_or_else(|e| fail(2, &e));
    let guard = policy.guard().unwrap_or_else(|e| fail(2, &e));
    let (cfg, sandbox) = if lark.sandbox {
        let seed = load_seed(&lark.seed);
        let (app_id, secret) = (seed.app.app_id.clone(), seed.app.app_secret.clone());
        let sandbox = start_sandbox(seed, Options::default(), 0).await;
        tracing::info!("built-in sandbox at {}", sandbox.base_url());
        let cfg = lark
            .config(Some((&app_id, &secret, &sandbox.base_url())), None)
            .unwrap_or_else(|e| fail(2, &e.msg));
        (cfg, Some(sandbox))
    } else {
        let profile = stored_profile(lark).await;
        let cfg = lark
            .config(None, profile.as_ref())
            .unwrap_or_else(|e| fail(2, &missing_credentials_hint(e.msg)));
        (cfg, None)
    };
    let client = LarkClient::new(cfg).unwrap_or_else(|e| fail(2, &e.msg));
    // Tools that act as the person use the login stored beside the profile (`login`).
    let profile_name = lark.profile.as_deref().unwrap_or(profile::DEFAULT);
    match commands::login::session(client.config(), profile_name) {
        Ok(session) => client.set_user_session(Arc::new(session)),
        Err(e) => tracing::debug!("no user login possible: {e}"),
    }
    let directory = lark_mcp_server::directory::DirectoryConfig {
        ttl: Duration::from_secs(policy.directory_ttl),
        persist: policy.directory_cache,
        ..Default::default()
    };
    let scope_cache = (!lark.sandbox)
        .then(|| lark_mcp_server::lark::ScopeCache::for_app(client.config()))
        .flatten();
    let mut shared = Shared::new(client, rules, policy.scope_check)
        .with_directory(directory, Duration::from_millis(policy.directory_wait_ms))
        .with_guard(guard);
    // The embedded sandbox gets a new port (so a new cache key) every run: nothing to reuse.
    if let Some(cache) = scope_cache {
        shared = shared.with_scope_cache(cache);
    }
    let shared = Arc::new(shared);
    shared.set_identity_mode(policy.identity, policy.allow_send_as_user);
    (shared, sandbox)
}

/// `--redis-url` of `serve`, `call` and `check`: Lark's limits, the tenant token and the user login
/// are shared with the replicas (and any other process) using that Redis. A stdio server or a
/// one-off `call` next to replicas then neither breaks their pace nor spends the refresh
/// token they hold.
async fn share_through_redis(url: &secrecy::SecretString, shared: &Shared) {
    let limits = SharedLimits::redis(url, shared.client.config())
        .await
        .unwrap_or_else(|e| fail(1, &e));
    tracing::info!("sharing Lark's limits with other replicas through {limits:?}");
    // The user login (`login`) too: before the first scope read, so that a replica without
    // a login of its own offers the user's tools from Redis's.
    if let Some(user) = shared.client.user_session() {
        user.share(limits.clone());
        user.sync_shared().await;
    }
    shared.client.share_limits(limits);
}

/// `--redis-url` of `login`/`whoami`/`logout`: the login replicas share in Redis is
/// replaced, refreshed or deleted too. An unreachable Redis stops the command (exit 1),
/// naming the URL without its password.
async fn share_logins(
    url: Option<&secrecy::SecretString>,
    cfg: &lark_mcp_server::lark::LarkConfig,
) {
    if let Some(url) = url {
        let limits = SharedLimits::redis(url, cfg)
            .await
            .unwrap_or_else(|e| fail(1, &e));
        commands::login::share_through(limits);
    }
}

/// The app a user signs in to, and the profile their tokens are kept under.
async fn user_app(lark: &LarkArgs) -> (lark_mcp_server::lark::LarkConfig, String, Option<Sandbox>) {
    let profile = lark
        .profile
        .clone()
        .unwrap_or_else(|| profile::DEFAULT.to_string());
    if lark.sandbox {
        let seed = load_seed(&lark.seed);
        let (app_id, secret) = (seed.app.app_id.clone(), seed.app.app_secret.clone());
        let sandbox = start_sandbox(seed, Options::default(), 0).await;
        let cfg = lark
            .config(Some((&app_id, &secret, &sandbox.base_url())), None)
            .unwrap_or_else(|e| fail(2, &e.msg));
        return (cfg, profile, Some(sandbox));
    }
    let stored = stored_profile(lark).await;
    let cfg = lark
        .config(None, stored.as_ref())
        .unwrap_or_else(|e| fail(2, &missing_credentials_hint(e.msg)));
    (cfg, profile, None)
}

/// The profile to read credentials from when none are given: `--profile` (which must
/// exist), else "default" if `init` stored one.
async fn stored_profile(lark: &LarkArgs) -> Option<profile::Profile> {
    if !lark.wants_profile() {
        return None;
    }
    let name = lark.profile.as_deref().unwrap_or(profile::DEFAULT);
    match profile::load(name).await {
        Ok(Some(p)) => {
            tracing::info!("using the credentials of profile `{name}` ({})", p.app_id);
            Some(p)
        }
        Ok(None) if lark.profile.is_some() => fail(
            2,
            &format!(
                "no profile `{name}`: run `lark-mcp-server init --profile {name}` to create it"
            ),
        ),
        Ok(None) => None,
        Err(e) => fail(2, &e),
    }
}

/// Missing credentials: say that `init` makes them.
fn missing_credentials_hint(msg: String) -> String {
    if msg.starts_with("missing app") {
        format!("{msg}, or run `lark-mcp-server init` once to register an app and store it")
    } else {
        msg
    }
}

/// `--scope-check strict`: the scopes must be readable before anything is served.
async fn require_scopes(shared: &Shared) {
    if shared.scope_check != ScopeCheck::Strict {
        return;
    }
    shared.refresh_scopes(&CancellationToken::new()).await;
    if let Some(e) = shared.scope_state().await.error {
        fail(
            1,
            &format!("cannot read the app's granted scopes (--scope-check strict): {e}"),
        );
    }
}

fn main() {
    lark_mcp_server::lark::tls::init();
    let cli = cli::parse();
    if matches!(cli.command, Command::Serve(_)) {
        // The tool schemas take milliseconds to generate; the first tools/list needs them.
        // Generating them beside the start-up (runtime, client, handshake) instead of after
        // it shortens spawn -> tools/list; a caller arriving earlier waits for this one.
        // Without a thread, the first tools/list generates them as before.
        let _ = std::thread::Builder::new()
            .name("catalog".into())
            .spawn(|| lark_mcp_server::tools::catalog().len());
    }
    match runtime_for(&cli.command) {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => fail(1, &format!("cannot start the async runtime: {e}")),
    }
}

/// `serve` over stdio has one client at a time: one thread runs it (tokio still adds its
/// blocking threads for stdin). Every worker costs a stack and a malloc arena (about 0.2 MB
/// of RSS measured). Everything else, HTTP serving included, gets a worker per core.
fn runtime_for(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let stdio = matches!(command, Command::Serve(args) if !args.http.http);
    let mut builder = if stdio {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()
}

async fn run(cli: cli::Cli) {
    init_logging();
    match cli.command {
        Command::Sandbox(args) => {
            let seed = load_seed(&args.seed);
            let app_id = seed.app.app_id.clone();
            let sandbox = start_sandbox(seed, args.options.unwrap_or_default(), args.port).await;
            emit(&format!(
                "sandbox listening on {} (app_id {app_id})\n",
                sandbox.base_url()
            ));
            tokio::select! {
                _ = sandbox.wait() => {}
                _ = stdio::shutdown_signal() => {}
            }
        }
        Command::SandboxSeed(args) => match commands::sandbox_seed::render(&args) {
            Ok(text) => emit(&text),
            Err(e) => fail(2, &e),
        },
        Command::Serve(args) => {
            let http = args.http.http.then(|| args.http.options());
            if let Some(Err(e)) = http.as_ref().map(|h| h.check()) {
                fail(2, &e);
            }
            let (shared, _sandbox) = shared_state(&args.lark, &args.policy).await;
            if let Some(url) = &args.http.redis_url {
                share_through_redis(url, &shared).await;
            }
            require_scopes(&shared).await;
            use std::io::IsTerminal;
            if let Some(hint) = terminal_hint(std::io::stdin().is_terminal(), http.is_some()) {
                eprintln!("{hint}");
            }
            let stop = CancellationToken::new();
            let events = shared.policy.wants(lark_mcp_server::tools::Toolset::Events);
            if events {
                shared.start_long_connection(stop.clone());
            }
            let server = LarkMcp::new(shared);
            if events {
                server.start_message_updates(stop.clone());
            }
            server.start_scope_refresh(
                Duration::from_secs(args.policy.scope_refresh_secs),
                stop.clone(),
            );
            server.start_log_forwarding(stop.clone());
            let served = match http {
                Some(opts) => http::serve(server, opts, None).await,
                None => stdio::serve(server, stop.clone()).await,
            };
            stop.cancel();
            if let Err(e) = served {
                fail(1, &e);
            }
            // tokio's stdin reader is a blocking thread that returns only when a line or EOF
            // arrives, and the runtime waits for it on shutdown: after SIGTERM/SIGINT the
            // process would hang until the client wrote again. Leave without waiting.
            std::process::exit(0);
        }
        Command::Login(args) => {
            let (cfg, profile, _sandbox) = user_app(&args.lark).await;
            share_logins(args.redis_url.as_ref(), &cfg).await;
            let code = commands::login::login(
                &cfg,
                &profile,
                args.scope_list(),
                args.no_browser,
                args.lark.sandbox,
                commands::login::Browser {
                    pkce: args.pkce,
                    redirect_port: args.redirect_port,
                },
                args.allow_send_as_user,
            )
            .await;
            std::process::exit(code);
        }
        Command::Whoami(args) => {
            let (cfg, profile, _sandbox) = user_app(&args.lark).await;
            share_logins(args.redis_url.as_ref(), &cfg).await;
            std::process::exit(commands::login::whoami(&cfg, &profile).await);
        }
        Command::Logout(args) => {
            let (cfg, profile, _sandbox) = user_app(&args.lark).await;
            share_logins(args.redis_url.as_ref(), &cfg).await;
            std::process::exit(commands::login::logout(&cfg, &profile).await);
        }
        Command::Init(args) => {
            let code = commands::init::run(args).await;
            std::process::exit(code);
        }
        Command::Tools(args) => {
            let policy = args.policy.policy().unwrap_or_else(|e| fail(2, &e));
            emit(&commands::tool_table::render(&policy, args.json));
        }
        Command::Check(args) => {
            let (shared, _sandbox) = shared_state(&args.lark, &args.policy).await;
            if let Some(url) = &args.replicas.redis_url {
                share_through_redis(url, &shared).await;
            }
            match commands::check::report(&shared).await {
                Ok(text) => emit(&text),
                Err(e) => fail(1, &e.to_string()),
            }
        }
        Command::Call(args) => {
            let (shared, _sandbox) = shared_state(&args.lark, &args.policy).await;
            if let Some(url) = &args.replicas.redis_url {
                share_through_redis(url, &shared).await;
            }
            let cancel = CancellationToken::new();
            // One scope read before the call: strict mode also insists that it worked.
            if shared.scope_check == ScopeCheck::Strict {
                require_scopes(&shared).await;
            } else {
                shared.refresh_scopes(&cancel).await;
            }
            let server = LarkMcp::new(shared.clone());
            let ctx = ToolCtx::new(shared, cancel, Progress::default());
            let result = server.call(&args.tool, args.args, ctx).await;
            match (result.is_error, result.structured_content) {
                (Some(false) | None, Some(v)) => {
                    emit(&(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"))
                }
                _ => {
                    let text: Vec<String> = result
                        .content
                        .iter()
                        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                        .collect();
                    fail(1, &text.join("\n"));
                }
            }
        }
        Command::InstallClient(args) => match commands::install_client::run(&args.request()) {
            Ok(text) => emit(&text),
            Err(e) => fail(e.code, &e.msg),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::terminal_hint;

    #[test]
    fn rust_log_directives_and_the_default() {
        use tracing::Level;
        use tracing_subscriber::filter::Targets;
        let would = |f: &Targets, target: &str, level: Level| f.would_enable(target, &level);
        for unset in [None, Some(""), Some("  "), Some("not a=level=at all")] {
            let f = super::log_filter(unset);
            assert!(
                would(&f, "lark_mcp_server::server", Level::INFO),
                "{unset:?}"
            );
            assert!(!would(&f, "lark_mcp_server::server", Level::DEBUG));
            assert!(would(&f, "hyper", Level::WARN) && !would(&f, "hyper", Level::INFO));
            assert!(!would(&f, "rmcp::service", Level::WARN));
        }
        let f = super::log_filter(Some("debug,hyper=off"));
        assert!(would(&f, "lark_mcp_server", Level::DEBUG) && !would(&f, "hyper", Level::ERROR));
    }

    #[test]
    fn only_stdio_serving_from_a_terminal_gets_the_hint() {
        let hint = terminal_hint(true, false).unwrap_or_default();
        assert!(
            hint.contains("stdin/stdout") && hint.contains("tools"),
            "{hint}"
        );
        assert!(terminal_hint(false, false).is_none());
        assert!(terminal_hint(true, true).is_none());
    }
}
