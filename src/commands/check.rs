//! `check`: can this app reach Lark, and what may it do?

use std::fmt::Write;

use tokio_util::sync::CancellationToken;

use crate::lark::{LarkClient, LarkError};

/// A human-readable report. Fails only when the credentials do not work.
pub async fn report(client: &LarkClient) -> Result<String, LarkError> {
    let cancel = CancellationToken::new();
    let cfg = client.config();
    let mut out = String::new();
    let _ = writeln!(out, "Lark API:    {}", cfg.base_url);
    let _ = writeln!(out, "App ID:      {}", cfg.app_id);
    let bot = client.bot_info(&cancel).await?;
    let _ = writeln!(out, "Credentials: ok (tenant_access_token issued)");
    let name = bot.get("app_name").and_then(|v| v.as_str()).unwrap_or("?");
    let active = bot.get("activate_status").and_then(|v| v.as_i64()) == Some(2);
    let _ = writeln!(
        out,
        "Bot:         {name} ({})",
        if active {
            "active"
        } else {
            "not activated: enable the bot ability in the developer console"
        }
    );
    match client.granted_scopes(&cancel).await {
        Ok(scopes) => {
            let _ = writeln!(
                out,
                "Granted scopes (tenant token): {}",
                scopes.tenant.len()
            );
            for s in &scopes.tenant {
                let _ = writeln!(out, "  {s}");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "Granted scopes: could not be read: {e}");
        }
    }
    Ok(out)
}
