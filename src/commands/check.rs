//! `check`: can this app reach Lark, and what may it do? The facts are the ones
//! `get_app_status` returns (`tools::status`); this renders them for a terminal.

use std::fmt::Write;

use tokio_util::sync::CancellationToken;

use crate::lark::LarkError;
use crate::tools::Shared;
use crate::tools::status::{AppStatus, Gather, app_status};

/// A human-readable report. Fails only when the credentials do not work.
pub async fn report(shared: &Shared) -> Result<String, LarkError> {
    let mut status = app_status(shared, &CancellationToken::new(), Gather::Check).await;
    match status.bot_error.take() {
        Some(e) => Err(e),
        None => Ok(render(&status)),
    }
}

fn render(status: &AppStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Lark API:    {}", status.domain);
    let _ = writeln!(out, "App ID:      {}", status.app_id);
    let _ = writeln!(out, "Credentials: ok (tenant_access_token issued)");
    if let Some(bot) = &status.bot {
        let name = if bot.name.is_empty() { "?" } else { &bot.name };
        let _ = writeln!(
            out,
            "Bot:         {name} ({})",
            if bot.active {
                "active"
            } else {
                "not activated: enable the bot ability in the developer console"
            }
        );
    }
    match (&status.granted_scopes, &status.scope_error) {
        (Some(scopes), _) => {
            let _ = writeln!(out, "Granted scopes (tenant token): {}", scopes.len());
            for s in scopes {
                let _ = writeln!(out, "  {s}");
            }
        }
        (None, Some(e)) => {
            let _ = writeln!(
                out,
                "Granted scopes: could not be read ({e}); every configured tool stays visible"
            );
        }
        (None, None) => {
            let _ = writeln!(out, "Granted scopes: not checked (--scope-check off)");
        }
    }
    let _ = writeln!(
        out,
        "Visible tools ({}): {}",
        status.visible_tools.len(),
        status.visible_tools.join(", ")
    );
    let _ = writeln!(out, "Hidden tools ({}):", status.hidden_tools.len());
    for h in &status.hidden_tools {
        let _ = writeln!(out, "  {}: {}", h.name, h.why);
    }
    let g = &status.guard_rails;
    let _ = writeln!(out, "Guard rails on writes:");
    let _ = writeln!(
        out,
        "  recipients:   {}",
        g.allow_recipients
            .as_ref()
            .map(|r| if r.is_empty() {
                "nobody".to_string()
            } else {
                r.join(", ")
            })
            .unwrap_or_else(|| "anyone the app can reach (--allow-recipients)".into())
    );
    let _ = writeln!(
        out,
        "  send budget:  {}",
        g.send_budget.as_deref().unwrap_or("none (--send-budget)")
    );
    let _ = writeln!(out, "  confirm:      {} (--confirm)", g.confirm);
    let _ = writeln!(
        out,
        "  audit log:    {}",
        g.audit_log.as_deref().unwrap_or("none (--audit-log)")
    );
    out
}
