//! One status of the app behind the server, gathered once and shown twice: the `check`
//! command prints it as text, the `get_app_status` tool returns it as JSON. Keeping one
//! struct means the two cannot drift apart on what "hidden, and why" means.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Shared, catalog};
use crate::lark::LarkError;

#[derive(Serialize, JsonSchema)]
pub struct Bot {
    pub name: String,
    pub open_id: String,
    pub active: bool,
}

#[derive(Serialize, JsonSchema)]
pub struct HiddenTool {
    pub name: String,
    pub why: String,
}

/// The serialized fields are the `get_app_status` output contract
/// (`tools/get_app_status.json`); the skipped ones are what `check` needs besides.
#[derive(Serialize, JsonSchema)]
pub struct AppStatus {
    pub app_id: String,
    /// The Lark API base URL.
    pub domain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot: Option<Bot>,
    /// Scopes granted to the tenant token; absent when they could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted_scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub visible_tools: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hidden_tools: Vec<HiddenTool>,
    /// The guard rails on writes: recipients, send budget, confirmation, audit log.
    pub guard_rails: crate::tools::guard::GuardStatus,
    /// Lark's long connection (toolset `events`): absent when it is not running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub long_connection: Option<crate::lark::longconn::ConnStatus>,
    /// Why the bot info could not be read: `check` fails with it, the tool folds it into
    /// `problem`.
    #[serde(skip)]
    pub bot_error: Option<LarkError>,
    /// Why the granted scopes could not be read, unprefixed (`problem` carries it too).
    #[serde(skip)]
    pub scope_error: Option<String>,
}

/// How the two callers read, which is why their request patterns differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gather {
    /// `check`: a one-shot command, so read the scopes now; and stop at failing
    /// credentials, since that failure is the whole answer (and a scope read would only
    /// fail the same way, with a warning).
    Check,
    /// `get_app_status`: scopes re-read at most every few seconds, so a looping agent
    /// cannot storm Lark; every part is reported even when one fails.
    Tool,
}

pub async fn app_status(shared: &Shared, cancel: &CancellationToken, how: Gather) -> AppStatus {
    let cfg = shared.client.config();
    let mut status = AppStatus {
        app_id: cfg.app_id.clone(),
        domain: cfg.base_url.clone(),
        bot: None,
        granted_scopes: None,
        problem: None,
        visible_tools: Vec::new(),
        hidden_tools: Vec::new(),
        guard_rails: shared.guard.shared_status(&shared.client).await,
        long_connection: shared.longconn.get().map(|c| c.status()),
        bot_error: None,
        scope_error: None,
    };
    let mut problems = Vec::new();
    if how == Gather::Tool {
        // Fresh facts: this is where an operator looks after granting a scope.
        shared.reread_scopes_soon(cancel).await;
    }
    match shared.client.bot_info(cancel).await {
        Ok(b) => {
            let text = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            status.bot = Some(Bot {
                name: text("app_name"),
                open_id: text("open_id"),
                active: b.get("activate_status").and_then(Value::as_i64) == Some(2),
            });
        }
        Err(e) => {
            problems.push(format!("bot info: {e}"));
            status.bot_error = Some(e);
            if how == Gather::Check {
                status.problem = Some(problems.join("; "));
                return status;
            }
        }
    }
    if how == Gather::Check {
        shared.refresh_scopes(cancel).await;
    }
    let state = shared.scope_state().await;
    if let Some(e) = &state.error {
        problems.push(format!("granted scopes: {e}"));
    }
    for def in catalog() {
        match shared.visible_in(def, &state) {
            Ok(_) => status.visible_tools.push(def.meta.name.to_string()),
            Err(h) => status.hidden_tools.push(HiddenTool {
                name: def.meta.name.to_string(),
                why: h.explain(cfg),
            }),
        }
    }
    status.granted_scopes = state.granted.map(|g| g.tenant.into_iter().collect());
    status.scope_error = state.error;
    status.problem = (!problems.is_empty()).then(|| problems.join("; "));
    status
}
