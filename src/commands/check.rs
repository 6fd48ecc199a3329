//! `check`: can this app reach Lark, and what may it do?

use std::fmt::Write;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::lark::LarkError;
use crate::tools::{Shared, catalog};

/// A human-readable report. Fails only when the credentials do not work.
pub async fn report(shared: &Shared) -> Result<String, LarkError> {
    let cancel = CancellationToken::new();
    let client = &shared.client;
    let cfg = client.config();
    let mut out = String::new();
    let _ = writeln!(out, "Lark API:    {}", cfg.base_url);
    let _ = writeln!(out, "App ID:      {}", cfg.app_id);
    let bot = client.bot_info(&cancel).await?;
    let _ = writeln!(out, "Credentials: ok (tenant_access_token issued)");
    let name = bot.get("app_name").and_then(Value::as_str).unwrap_or("?");
    let active = bot.get("activate_status").and_then(Value::as_i64) == Some(2);
    let _ = writeln!(
        out,
        "Bot:         {name} ({})",
        if active {
            "active"
        } else {
            "not activated: enable the bot ability in the developer console"
        }
    );
    shared.refresh_scopes(&cancel).await;
    let state = shared.scope_state().await;
    match (&state.granted, &state.error) {
        (Some(scopes), _) => {
            let _ = writeln!(
                out,
                "Granted scopes (tenant token): {}",
                scopes.tenant.len()
            );
            for s in &scopes.tenant {
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
    let mut visible = Vec::new();
    let mut hidden = Vec::new();
    for def in catalog() {
        match shared.policy.visibility(def, state.granted.as_ref()) {
            Ok(()) => visible.push(def.meta.name),
            Err(h) => hidden.push(format!("  {}: {}", def.meta.name, h.explain(cfg))),
        }
    }
    let _ = writeln!(
        out,
        "Visible tools ({}): {}",
        visible.len(),
        visible.join(", ")
    );
    let _ = writeln!(out, "Hidden tools ({}):", hidden.len());
    for h in hidden {
        let _ = writeln!(out, "{h}");
    }
    Ok(out)
}
