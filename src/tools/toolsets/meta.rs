//! Toolset `meta`: what the server and the Lark app can do right now.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lark::Request;

use crate::tools::status::{AppStatus, Gather, app_status};
use crate::tools::{Needs, ToolCtx, ToolDef, ToolError, ToolMeta, Toolset};

pub fn tools() -> Vec<ToolDef> {
    vec![
        ToolDef::new(
            ToolMeta {
                name: "get_app_status",
                toolset: Toolset::Meta,
                title: "Get app status",
                description: "Check the Lark app behind this server: bot, granted scopes, hidden tools and why. Use it when a tool is missing or fails on permissions.",
                scopes: &[],
                read_only: true,
                destructive: false,
                idempotent: true,
                needs: Needs::Nothing,
                identity: crate::tools::Identity::Bot,
            },
            get_app_status,
        ),
        ToolDef::new(
            ToolMeta {
                name: "get_me",
                toolset: Toolset::Meta,
                title: "Get me",
                description: "Who the signed-in user is (open_id, name, email). Use it to learn the identity behind 'me', 'my' or 'I' before acting for the user.",
                scopes: &[],
                read_only: true,
                destructive: false,
                idempotent: true,
                needs: Needs::Nothing,
                identity: crate::tools::Identity::User,
            },
            get_me,
        ),
    ]
}

/// The signed-in user, as `authen/v1/user_info` describes them.
#[derive(Serialize, JsonSchema)]
struct Me {
    open_id: String,
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    en_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    email: String,
}

async fn get_me(ctx: ToolCtx, _a: NoArgs) -> Result<Me, ToolError> {
    let req = Request::get(
        "get the signed-in user",
        "/open-apis/authen/v1/user_info".into(),
    )
    .as_user();
    let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
    let field = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Ok(Me {
        open_id: field("open_id"),
        name: field("name"),
        en_name: field("en_name"),
        email: field("email"),
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

async fn get_app_status(ctx: ToolCtx, _a: NoArgs) -> Result<AppStatus, ToolError> {
    Ok(app_status(&ctx.shared, &ctx.cancel, Gather::Tool).await)
}
