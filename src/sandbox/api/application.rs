//! `application/v6` (the app and its scopes) and `bot/v3/info`.

use axum::http::Method;
use serde_json::{Map, Value, json};

use crate::sandbox::endpoint::{Call, Endpoint};
use crate::sandbox::envelope::{ApiError, Reply};
use crate::sandbox::world::World;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            "get_application_info",
            Method::GET,
            "/open-apis/application/v6/applications/{app_id}",
            get_application,
        ),
        Endpoint::new(
            "list_app_scope_grant_status",
            Method::GET,
            "/open-apis/application/v6/scopes",
            list_scopes,
        ),
        Endpoint::new("bot_info", Method::GET, "/open-apis/bot/v3/info", bot_info),
    ]
}

fn get_application(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let app_id = call.path_param("app_id");
    let a = world.caller_app();
    if app_id != "me" && app_id != a.app_id {
        return Err(ApiError::field(
            "app_id",
            app_id,
            "app_id must be the calling app or 'me'",
        ));
    }
    let lang = call
        .query("lang")
        .ok_or_else(|| ApiError::field("lang", "", "lang is required"))?;
    if !["zh_cn", "en_us", "ja_jp"].contains(&lang) {
        return Err(ApiError::field(
            "lang",
            lang,
            "lang must be one of: zh_cn, en_us, ja_jp",
        ));
    }
    let scopes: Vec<Value> = world
        .app_scopes(world.caller.as_deref())
        .iter()
        .filter(|s| s.granted)
        .map(|s| {
            json!({
                "scope": s.scope,
                "description": scope_description(&s.scope),
                "level": if s.scope.ends_with("readonly") || s.scope.ends_with(":read") { 1 } else { 2 },
                "token_types": s.token_types,
            })
        })
        .collect();
    Ok(Reply::Data(json!({"app": {
        "app_id": a.app_id,
        "app_name": a.app_name,
        "description": a.description,
        "avatar_url": format!("https://s1-imfile.feishucdn.com/static-resource/v1/{}~?image_size=72x72", a.app_id),
        "primary_language": lang,
        "status": 1,
        "scene_type": 0,
        "online_version_id": "oav_0001",
        "scopes": scopes,
        "owner": {"type": 2},
    }})))
}

fn scope_description(scope: &str) -> String {
    let (domain, what) = scope.split_once(':').unwrap_or((scope, ""));
    format!("{domain}: {}", what.replace([':', '.', '_'], " "))
}

fn list_scopes(_call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let scopes: Vec<Value> = world
        .app_scopes(world.caller.as_deref())
        .iter()
        .flat_map(|s| {
            s.token_types.iter().map(move |t| {
                json!({"scope_name": s.scope, "grant_status": if s.granted { 1 } else { 2 }, "scope_type": t})
            })
        })
        .collect();
    Ok(Reply::Data(json!({ "scopes": scopes })))
}

fn bot_info(_call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let a = world.caller_app();
    let mut m = Map::new();
    m.insert(
        "bot".into(),
        json!({
            "app_name": a.app_name,
            "avatar_url": format!("https://s1-imfile.feishucdn.com/static-resource/v1/{}~?image_size=240x240", a.app_id),
            "open_id": a.bot_open_id,
            "activate_status": if a.bot_activated { 2 } else { 0 },
            "ip_white_list": [],
        }),
    );
    Ok(Reply::TopLevel(m))
}
