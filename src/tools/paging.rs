//! Lark's `page_size` / `page_token` paging: one page, or every page up to a cap with MCP
//! progress notifications.

use serde_json::Value;

use super::{ToolCtx, ToolError};
use crate::lark::Request;

/// Declares an argument struct with Lark's paging fields after its own, and `paging()`.
/// The first argument documents `page_size` with the endpoint's maximum.
macro_rules! with_paging {
    ($page_size_doc:literal, $(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            $($(#[$fmeta])* $field: $ty,)*
            #[doc = $page_size_doc]
            page_size: Option<u32>,
            /// A previous next_page_token.
            page_token: Option<String>,
            /// Fetch all pages.
            #[serde(default)]
            all_pages: bool,
            /// all_pages cap (500).
            max_items: Option<u32>,
        }

        impl $name {
            fn paging(&mut self) -> $crate::tools::paging::Paging {
                $crate::tools::paging::Paging {
                    page_size: self.page_size,
                    page_token: self.page_token.take(),
                    all_pages: self.all_pages,
                    max_items: self.max_items,
                }
            }
        }
    };
}
pub(crate) use with_paging;

/// Items fetched when `all_pages` is set and no `max_items` is given.
const DEFAULT_CAP: usize = 500;
const HARD_CAP: usize = 5000;

pub struct Paging {
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
    pub all_pages: bool,
    pub max_items: Option<u32>,
}

/// Fetches one page, or every page up to the cap with progress notifications.
/// Returns the items, the token for the next page if any remain, and the last page's other
/// fields (totals and the like).
pub async fn pages(
    ctx: &ToolCtx,
    base: Request,
    items_key: &str,
    paging: Paging,
    max_page: u32,
) -> Result<(Vec<Value>, Option<String>, Value), ToolError> {
    if paging.page_size == Some(0) {
        return Err(ToolError::invalid("page_size", "must be at least 1"));
    }
    let size = paging.page_size.unwrap_or(max_page).min(max_page);
    let cap = if paging.all_pages {
        (paging.max_items.map(|m| m as usize).unwrap_or(DEFAULT_CAP)).clamp(1, HARD_CAP)
    } else {
        size as usize
    };
    let mut items: Vec<Value> = Vec::new();
    let mut token = paging.page_token;
    let mut page = 0u64;
    let mut last: Value;
    loop {
        let req = base
            .clone()
            .query("page_size", size.to_string())
            .query_opt("page_token", token.clone());
        let resp = ctx.client().call(req, &ctx.cancel).await?;
        let mut data = resp.into_data();
        if let Some(Value::Array(page_items)) = data.get_mut(items_key).map(Value::take) {
            items.extend(page_items);
        }
        let has_more = data.get("has_more").and_then(Value::as_bool) == Some(true);
        token = data
            .get("page_token")
            .and_then(Value::as_str)
            .filter(|t| has_more && !t.is_empty())
            .map(String::from);
        page += 1;
        last = data;
        if paging.all_pages {
            ctx.progress
                .report(
                    items.len() as u64,
                    None,
                    format!("fetched {} items in {page} pages", items.len()),
                )
                .await;
        }
        if !paging.all_pages || token.is_none() || items.len() >= cap {
            break;
        }
    }
    if items.len() > cap {
        items.truncate(cap);
    }
    Ok((items, token, last))
}
