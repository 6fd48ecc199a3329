//! Toolset `meta`: what the server and the Lark app can do right now.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::tools::{Needs, ToolCtx, ToolDef, ToolError, ToolMeta, Toolset, catalog};

pub fn tools() -> Vec<ToolDef> {
    vec![ToolDef::new(
        ToolMeta {
            name: "get_app_status",
            toolset: Toolset::Meta,
            title: "Get app status",
            description: "Check the Lark app behind this server: bot, granted scopes, and which tools are hidden and why. Use it when a tool is missing or fails on permissions.",
            scopes: &[],
            read_only: true,
            destructive: false,
            idempotent: true,
            needs: Needs::Nothing,
        },
        get_app_status,
    )]
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Serialize, JsonSchema)]
struct Bot {
    name: String,
    open_id: String,
    active: bool,
}

#[derive(Serialize, JsonSchema)]
struct HiddenTool {
    name: String,
    why: String,
}

#[derive(Serialize, JsonSchema)]
struct Status {
    app_id: String,
    /// The Lark API base URL.
    domain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    bot: Option<Bot>,
    /// Scopes granted to the tenant token; absent when they could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    granted_scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
    visible_tools: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hidden_tools: Vec<HiddenTool>,
}

async fn get_app_status(ctx: ToolCtx, _a: NoArgs) -> Result<Status, ToolError> {
    let shared = &ctx.shared;
    // Fresh facts: this is where an operator looks after granting a scope.
    shared.reread_scopes_soon(&ctx.cancel).await;
    let cfg = ctx.client().config();
    let mut problems = Vec::new();
    let bot = match ctx.client().bot_info(&ctx.cancel).await {
        Ok(b) => Some(Bot {
            name: b
                .get("app_name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            open_id: b
                .get("open_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            active: b.get("activate_status").and_then(Value::as_i64) == Some(2),
        }),
        Err(e) => {
            problems.push(format!("bot info: {e}"));
            None
        }
    };
    let state = shared.scope_state().await;
    if let Some(e) = &state.error {
        problems.push(format!("granted scopes: {e}"));
    }
    let mut visible_tools = Vec::new();
    let mut hidden_tools = Vec::new();
    for def in catalog() {
        match shared.policy.visibility(def, state.granted.as_ref()) {
            Ok(()) => visible_tools.push(def.meta.name.to_string()),
            Err(h) => hidden_tools.push(HiddenTool {
                name: def.meta.name.to_string(),
                why: h.explain(cfg),
            }),
        }
    }
    Ok(Status {
        app_id: cfg.app_id.clone(),
        domain: cfg.base_url.clone(),
        bot,
        granted_scopes: state.granted.map(|g| g.tenant.into_iter().collect()),
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
        visible_tools,
        hidden_tools,
    })
}
