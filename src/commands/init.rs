//! `init`: from nothing to a registered, correctly scoped Lark app and stored credentials.
//!
//! 1. the scopes: exactly what the chosen tools need ([`crate::tools::scope_plan`]), shown
//!    before anything starts;
//! 2. the platform's registration device flow ([`crate::lark::registration`]): a QR code and
//!    a link to confirm in Feishu/Lark, a progress line with the time left;
//! 3. the credentials stored under a profile ([`crate::profile`]; the secret is never shown);
//! 4. `check` with them, and how to add the server to an MCP client.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cli::InitArgs;
use crate::lark::registration::{
    Accounts, Addons, Begun, Failure, Registered, Registration, Request, Status,
};
use crate::lark::{LarkClient, LarkConfig, parse_domain};
use crate::profile::{self, Profile, SecretStore};
use crate::sandbox::{Options, Sandbox, Seed};
use crate::server::ScopeCheck;
use crate::tools::policy::{Hidden, Policy, PolicyConfig};
use crate::tools::{Shared, ToolMeta, catalog, scope_plan};

/// The event a message-receiving app subscribes to.
const MESSAGE_EVENT: &str = "im.message.receive_v1";

/// Exit codes: 0 registered, 1 failed (denied, expired, unreachable), 2 usage, 130 Ctrl-C.
pub async fn run(args: InitArgs) -> i32 {
    match init(args).await {
        Ok(()) => 0,
        Err(Stop::Usage(e)) => {
            eprintln!("error: {e}");
            2
        }
        Err(Stop::Failed(e)) => {
            eprintln!("error: {e}");
            1
        }
        Err(Stop::Cancelled) => {
            eprintln!("\ncancelled: nothing was registered or stored");
            130
        }
    }
}

enum Stop {
    Usage(String),
    Failed(String),
    Cancelled,
}

/// The tools the operator chose; tools that need a directory flag at `serve` time count
/// (the flag is for `serve`, the scopes are for the app).
fn chosen_tools(args: &InitArgs) -> Result<Vec<&'static ToolMeta>, String> {
    let policy = Policy::new(&PolicyConfig {
        toolsets: args.toolsets.clone(),
        tools: args.tools.clone(),
        exclude: args.exclude_tools.clone(),
        read_only: args.read_only,
        allow_read_dirs: Vec::new(),
        download_dir: None,
    })?;
    let tools: Vec<&'static ToolMeta> = catalog()
        .iter()
        .map(|d| &d.meta)
        .filter(|m| {
            matches!(
                policy.configured(m),
                Ok(()) | Err(Hidden::NotConfigured { .. })
            )
        })
        .collect();
    if tools.is_empty() {
        return Err("no tool is selected: check --toolsets, --tools and --exclude-tools".into());
    }
    Ok(tools)
}

/// The app's scopes come from the tools that can act as the bot; a tool that can act as
/// the user needs its user scope granted to users (`--user`), never to the app's tenant
/// token. Sending in the person's name is left out: it is off unless the operator asks.
fn addons(args: &InitArgs, tools: &[&ToolMeta]) -> Addons {
    let strings = |v: Vec<&'static str>| v.into_iter().map(String::from).collect::<Vec<_>>();
    let bot: Vec<&ToolMeta> = tools
        .iter()
        .copied()
        .filter(|m| m.identity.bot_capable())
        .collect();
    let user: Vec<&ToolMeta> = tools
        .iter()
        .copied()
        .filter(|m| !m.user_scopes().is_empty() && !m.identity.speaks())
        .collect();
    let tenant = strings(scope_plan::plan(&bot));
    let user_scopes = if args.user {
        let mut all = tenant.clone();
        for s in strings(scope_plan::plan_user(&user)) {
            if !all.contains(&s) {
                all.push(s);
            }
        }
        all
    } else {
        Vec::new()
    };
    Addons {
        user_scopes,
        tenant_scopes: tenant,
        tenant_events: if args.events {
            vec![MESSAGE_EVENT.into()]
        } else {
            Vec::new()
        },
    }
}

fn show_plan(tools: &[&ToolMeta], a: &Addons, args: &InitArgs) {
    let action = match &args.app_id {
        Some(id) => format!("add to the app {id}"),
        None => "register a new app".into(),
    };
    say!(
        "lark-mcp-server init: {action} for {} tools, asking for:",
        tools.len()
    );
    for s in &a.tenant_scopes {
        say!("  scope (app)   {s}");
    }
    for s in &a.user_scopes {
        say!("  scope (user)  {s}");
    }
    for e in &a.tenant_events {
        say!("  event         {e}");
    }
}

async fn init(args: InitArgs) -> Result<(), Stop> {
    profile::check_name(&args.profile).map_err(Stop::Usage)?;
    let tools = chosen_tools(&args).map_err(Stop::Usage)?;
    let addons = addons(&args, &tools);
    show_plan(&tools, &addons, &args);

    let (api_base, _sandbox) = if args.sandbox {
        let seed = Seed::default_org().map_err(Stop::Failed)?;
        let sbx = Sandbox::start(seed, Options::default(), 0)
            .await
            .map_err(|e| Stop::Failed(format!("cannot start the sandbox: {e}")))?;
        (sbx.base_url(), Some(sbx))
    } else {
        let base = parse_domain(&args.domain).map_err(|e| Stop::Usage(e.msg))?;
        (base, None)
    };
    let accounts = Accounts::for_api_base(&api_base);
    let reg = Registration::new(accounts).map_err(Stop::Failed)?;
    let request = Request {
        name: args.name.clone(),
        description: format!(
            "Lets AI assistants use Lark through lark-mcp-server ({} tools).",
            tools.len()
        ),
        addons,
        client_id: args.app_id.clone(),
    };
    let begun = reg.begin(&request).await.map_err(Stop::Failed)?;
    show_link(
        &begun.url,
        begun.expires_in,
        args.no_browser || args.sandbox,
    );
    if args.sandbox {
        // The sandbox's stand-in for scanning the code: opening the page it shows.
        confirm_in_sandbox(&begun.url).await;
    }

    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let registered = wait(&reg, &begun, &cancel).await?;
    let api = reg.accounts().api_base(registered.brand).to_string();
    say!(
        "Registered {} ({} tenant).",
        registered.app_id,
        registered.brand.as_str()
    );

    let profile_name = if args.sandbox {
        None
    } else {
        Some(store(&args.profile, &registered, &api).await?)
    };
    run_check(&registered, &api).await;
    match profile_name {
        Some(name) => show_clients(&name),
        None => {
            say!("Sandbox: nothing was stored. Run `lark-mcp-server init` to register a real app.")
        }
    }
    Ok(())
}

/// The QR code and link to confirm on, valid for `expires_in`; opened unless `no_browser`.
pub(super) fn show_link(url: &str, expires_in: Duration, no_browser: bool) {
    say!();
    say!("Scan this code with the Feishu/Lark app, or open the link, and confirm:");
    if let Some(qr) = qr_text(url) {
        say!("{qr}");
    }
    say!("Link: {url}");
    say!("(valid for {} minutes)", expires_in.as_secs().div_ceil(60));
    if !no_browser && let Err(e) = open::that_detached(url) {
        say!("Could not open a browser ({e}); open the link yourself.");
    }
}

/// The URL as a terminal QR code (two rows per character).
fn qr_text(url: &str) -> Option<String> {
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build(),
    )
}

pub(super) async fn confirm_in_sandbox(url: &str) {
    let opened = async { reqwest::get(url).await?.error_for_status() }.await;
    if let Err(e) = opened {
        tracing::warn!("could not open the sandbox's confirmation page: {e}");
    }
}

async fn wait(
    reg: &Registration,
    begun: &Begun,
    cancel: &CancellationToken,
) -> Result<Registered, Stop> {
    let live = std::io::stderr().is_terminal();
    let result = reg.wait(begun, cancel, |s| progress(s, live)).await;
    end_progress(live);
    result.map_err(|f| match f {
        Failure::Cancelled => Stop::Cancelled,
        other => Stop::Failed(other.to_string()),
    })
}

/// Clears the progress line.
pub(super) fn end_progress(live: bool) {
    if live {
        eprint!("\r\x1b[2K");
    }
}

/// One line, rewritten in place on a terminal; elsewhere only the events worth a line.
pub(super) fn progress(s: Status, live: bool) {
    match s {
        Status::Polling { left } if live => {
            let secs = left.as_secs();
            eprint!(
                "\r\x1b[2KWaiting for you to confirm… {}:{:02} left (Ctrl-C to stop)",
                secs / 60,
                secs % 60
            );
        }
        Status::Polling { .. } => {}
        Status::SlowDown { interval } => {
            eprintln!(
                "{}the platform asked to poll less often: every {} s",
                if live { "\r\x1b[2K" } else { "" },
                interval.as_secs()
            )
        }
        Status::DomainSwitched => eprintln!(
            "{}a Lark (international) tenant: continuing at the Lark accounts host",
            if live { "\r\x1b[2K" } else { "" }
        ),
    }
    let _ = std::io::stderr().flush();
}

async fn store(name: &str, r: &Registered, api: &str) -> Result<String, Stop> {
    let p = Profile {
        name: name.into(),
        app_id: r.app_id.clone(),
        app_secret: r.app_secret.clone(),
        domain: api.into(),
        brand: r.brand,
    };
    let (file, store) = profile::save(&p).await.map_err(Stop::Failed)?;
    match store {
        SecretStore::Keychain => say!(
            "Stored profile `{name}`: {} (the secret is in the OS keychain).",
            file.display()
        ),
        SecretStore::File => say!(
            "Stored profile `{name}`: {} (readable by you only; it holds the secret).",
            file.display()
        ),
    }
    Ok(name.into())
}

/// `check` with the new app: credentials, bot, scopes, which tools show.
async fn run_check(r: &Registered, api: &str) {
    let cfg = LarkConfig::new(
        Some(&r.app_id),
        Some(secrecy::ExposeSecret::expose_secret(&r.app_secret)),
        Some(api),
    );
    let client = match cfg.and_then(LarkClient::new) {
        Ok(c) => c,
        Err(e) => {
            say!("Check skipped: {}", e.msg);
            return;
        }
    };
    let policy = Policy::new(&PolicyConfig {
        toolsets: None,
        tools: Vec::new(),
        exclude: Vec::new(),
        read_only: false,
        allow_read_dirs: Vec::new(),
        download_dir: None,
    });
    let Ok(policy) = policy else { return };
    let shared = Arc::new(Shared::new(client, policy, ScopeCheck::Auto));
    // A new app's grants can take a moment to show; the check reads them once.
    tokio::time::sleep(Duration::from_millis(200)).await;
    say!();
    match super::check::report(&shared).await {
        Ok(text) => super::write_out(&text),
        Err(e) => say!("Check: {e}"),
    }
}

fn show_clients(profile: &str) {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "lark-mcp-server".into());
    let flag = if profile == profile::DEFAULT {
        String::new()
    } else {
        format!(" --profile {profile}")
    };
    say!();
    say!(
        "Next, add the server to your MCP client (it reads the stored profile; no secret in any config):"
    );
    for client in ["claude-desktop", "cursor", "vscode", "claude-code"] {
        say!("  {exe} install-client {client}{flag}");
    }
    let args = if flag.is_empty() {
        "\"serve\"".to_string()
    } else {
        format!("\"serve\", \"--profile\", \"{profile}\"")
    };
    say!("or by hand: {{\"command\": \"{exe}\", \"args\": [{args}]}}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qr_code_renders_for_a_long_url() {
        let url = format!(
            "https://accounts.feishu.cn/page/launcher?ticket=abc&addons={}",
            "A".repeat(300)
        );
        let qr = qr_text(&url).unwrap_or_default();
        assert!(qr.lines().count() > 20, "{qr}");
    }

    #[test]
    fn brand_parses_both_ways() {
        use crate::lark::registration::Brand;
        assert_eq!(Brand::parse(Brand::Lark.as_str()), Some(Brand::Lark));
    }
}
