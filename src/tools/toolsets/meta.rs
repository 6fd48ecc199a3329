//! Toolset `meta`: what the server and the Lark app can do right now.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::tools::status::{AppStatus, Gather, app_status};
use crate::tools::{Needs, ToolCtx, ToolDef, ToolError, ToolMeta, Toolset};

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

async fn get_app_status(ctx: ToolCtx, _a: NoArgs) -> Result<AppStatus, ToolError> {
    Ok(app_status(&ctx.shared, &ctx.cancel, Gather::Tool).await)
}
