//! Pins: pin, unpin and list.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use chrono::Utc;

use super::{Done, MessageIdArgs, message_path};
use crate::lark::Request;
use crate::tools::content::render::iso_time;
use crate::tools::guard::Write;
use crate::tools::output::NamedId;
use crate::tools::paging::{pages, with_paging};
use crate::tools::{ToolCtx, ToolError, when};

#[derive(Serialize, JsonSchema)]
pub(super) struct Pin {
    message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    chat_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<NamedId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
}

fn pin(p: &Value, names: &std::collections::HashMap<String, String>) -> Pin {
    Pin {
        message_id: p["message_id"].as_str().unwrap_or("").to_string(),
        chat_id: p["chat_id"].as_str().map(String::from),
        by: p["operator_id"].as_str().map(|id| NamedId::new(id, names)),
        time: p.get("create_time").map(iso_time),
    }
}

pub(super) async fn pin_message(ctx: ToolCtx, a: MessageIdArgs) -> Result<Pin, ToolError> {
    if a.message_id.trim().is_empty() {
        return Err(ToolError::invalid("message_id", "must not be empty"));
    }
    let req = Request::post(
        "pin message",
        "/open-apis/im/v1/pins".into(),
        json!({"message_id": a.message_id}),
    )
    .idempotent();
    let data = ctx
        .write(Write::on_message(&a.message_id), req)
        .await?
        .into_data();
    Ok(pin(&data["pin"], &Default::default()))
}

pub(super) async fn unpin_message(ctx: ToolCtx, a: MessageIdArgs) -> Result<Done, ToolError> {
    let path = message_path("/open-apis/im/v1/pins/{}", &a.message_id)?;
    ctx.delete(Write::on_message(&a.message_id), "unpin message", path)
        .await?;
    Ok(Done {
        message_id: a.message_id,
        ok: true,
    })
}

with_paging! {
    "Items per page, 1–50.",
    pub(super) struct PinsArgs {
        /// The chat (oc_…).
        chat_id: String,
        /// Pinned at or after: ISO 8601 or a span back from now (7d).
        since: Option<String>,
        /// Pinned at or before, same forms.
        until: Option<String>,
    }
}

#[derive(Serialize, JsonSchema)]
pub(super) struct PinsOut {
    pins: Vec<Pin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

pub(super) async fn list_pins(ctx: ToolCtx, mut a: PinsArgs) -> Result<PinsOut, ToolError> {
    let now = Utc::now();
    let ms = |field: &str, v: Option<&str>| -> Result<Option<String>, ToolError> {
        v.map(|s| when::parse(s, now).map(|t| t.timestamp_millis().to_string()))
            .transpose()
            .map_err(|e| ToolError::invalid(field, e))
    };
    let base = Request::get("list pins", "/open-apis/im/v1/pins".into())
        .query("chat_id", a.chat_id.clone())
        .query_opt("start_time", ms("since", a.since.as_deref())?)
        .query_opt("end_time", ms("until", a.until.as_deref())?);
    let paging = a.paging();
    let (raw, next, _) = pages(&ctx, base, "items", paging, 50).await?;
    let people: Vec<String> = raw
        .iter()
        .filter(|p| p["operator_id_type"] != "app_id")
        .filter_map(|p| p["operator_id"].as_str().map(String::from))
        .collect();
    let names = ctx.shared.names.users(&ctx, &people).await;
    Ok(PinsOut {
        pins: raw.iter().map(|p| pin(p, &names)).collect(),
        next_page_token: next,
    })
}
