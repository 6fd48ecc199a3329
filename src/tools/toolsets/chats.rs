//! Toolset `chats`: group chats the bot is in, their members, and managing them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::lark::scope_sets as scopes;
use crate::lark::{Method, Request, api_path};
use crate::tools::content::render::iso_time;
use crate::tools::guard::{Target, Write};
use crate::tools::output::NamedId;
use crate::tools::paging::{Paging, pages, with_paging};
use crate::tools::{Acting, Needs, ToolCtx, ToolDef, ToolError, ToolMeta, Toolset};

const MEMBERS_MAX: usize = 50;

#[allow(clippy::too_many_arguments)]
const fn meta(
    name: &'static str,
    title: &'static str,
    description: &'static str,
    scopes: &'static [&'static str],
    read_only: bool,
    destructive: bool,
    idempotent: bool,
) -> ToolMeta {
    ToolMeta {
        name,
        toolset: Toolset::Chats,
        title,
        description,
        scopes,
        read_only,
        destructive,
        idempotent,
        needs: Needs::Nothing,
        identity: crate::tools::Identity::Bot,
    }
}

pub fn tools() -> Vec<ToolDef> {
    vec![
        ToolDef::new(
            meta(
                "list_chats",
                "List the bot's chats",
                "List the group chats the bot is a member of.",
                scopes::CHAT_READ,
                true,
                false,
                true,
            ),
            list_chats,
        ),
        ToolDef::new(
            meta(
                "list_my_chats",
                "List my chats",
                "List the group chats you (the signed-in user) are a member of, including those the bot is not in.",
                scopes::CHAT_READ,
                true,
                false,
                true,
            )
            .user_only(),
            list_my_chats,
        ),
        ToolDef::new(
            meta(
                "search_chats",
                "Search chats",
                "Find group chats by name or description among the bot's chats and public chats.",
                scopes::CHAT_READ,
                true,
                false,
                true,
            )
            .or_as_user(scopes::CHAT_READ),
            search_chats,
        ),
        ToolDef::new(
            meta(
                "get_chat",
                "Get a chat",
                "Get a chat's details: name, owner, type, member counts and whether the bot is in it.",
                scopes::CHAT_READ,
                true,
                false,
                true,
            )
            .or_as_user(scopes::CHAT_READ),
            get_chat,
        ),
        ToolDef::new(
            meta(
                "create_chat",
                "Create a group chat",
                "Create a group chat with the bot and the given members (open_ids or emails).",
                scopes::CHAT_CREATE,
                false,
                false,
                false,
            ),
            create_chat,
        ),
        ToolDef::new(
            meta(
                "update_chat",
                "Update a chat",
                "Change a chat's name, description or owner.",
                scopes::CHAT_UPDATE,
                false,
                false,
                true,
            ),
            update_chat,
        ),
        ToolDef::new(
            meta(
                "dissolve_chat",
                "Dissolve a chat",
                "Dissolve (permanently delete) a group chat the bot owns or manages.",
                scopes::CHAT_DELETE,
                false,
                true,
                true,
            ),
            dissolve_chat,
        ),
        ToolDef::new(
            meta(
                "get_chat_link",
                "Get a chat's share link",
                "Get a link people can use to join the chat.",
                scopes::CHAT_LINK,
                true,
                false,
                false,
            ),
            get_chat_link,
        ),
        ToolDef::new(
            meta(
                "list_chat_members",
                "List chat members",
                "List the people in a chat (bots are not listed).",
                scopes::CHAT_MEMBERS_READ,
                true,
                false,
                true,
            )
            .or_as_user(scopes::CHAT_MEMBERS_READ),
            list_chat_members,
        ),
        ToolDef::new(
            meta(
                "add_chat_members",
                "Add chat members",
                "Add up to 50 people (open_ids or emails) to a chat.",
                scopes::CHAT_MEMBERS_WRITE,
                false,
                false,
                true,
            ),
            add_chat_members,
        ),
        ToolDef::new(
            meta(
                "remove_chat_members",
                "Remove chat members",
                "Remove up to 50 people (open_ids or emails) from a chat.",
                scopes::CHAT_MEMBERS_WRITE,
                false,
                true,
                true,
            ),
            remove_chat_members,
        ),
    ]
}

fn chat_path(template: &str, chat_id: &str) -> Result<String, ToolError> {
    api_path(template, &[chat_id]).map_err(|e| ToolError::invalid("chat_id", e.msg))
}

#[derive(Serialize, JsonSchema)]
struct ChatBrief {
    chat_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<NamedId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
        .map(String::from)
}

async fn briefs(ctx: &ToolCtx, raw: &[Value]) -> Vec<ChatBrief> {
    let owners: Vec<String> = raw
        .iter()
        .filter(|c| c["owner_id_type"] != "app_id")
        .filter_map(|c| s(c, "owner_id"))
        .collect();
    let names = ctx.shared.names.users(ctx, &owners).await;
    raw.iter()
        .map(|c| ChatBrief {
            chat_id: s(c, "chat_id").unwrap_or_default(),
            name: s(c, "name").unwrap_or_default(),
            description: s(c, "description"),
            owner: s(c, "owner_id").map(|o| NamedId::new(&o, &names)),
            status: s(c, "chat_status").filter(|st| st != "normal"),
        })
        .collect()
}

with_paging! {
    "Items per page, 1–100.",
    struct ListChatsArgs {
    }
}

#[derive(Serialize, JsonSchema)]
struct ChatsOut {
    chats: Vec<ChatBrief>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

async fn list_chats(ctx: ToolCtx, a: ListChatsArgs) -> Result<ChatsOut, ToolError> {
    chats_of(ctx, a, false).await
}

async fn list_my_chats(ctx: ToolCtx, a: ListChatsArgs) -> Result<ChatsOut, ToolError> {
    chats_of(ctx, a, true).await
}

/// The bot's chats, or with the user's token the user's own.
async fn chats_of(
    ctx: ToolCtx,
    mut a: ListChatsArgs,
    as_user: bool,
) -> Result<ChatsOut, ToolError> {
    let mut base = Request::get("list chats", "/open-apis/im/v1/chats".into())
        .query("user_id_type", "open_id");
    if as_user {
        base = base.as_user();
    }
    let paging = a.paging();
    let (raw, next, _) = pages(&ctx, base, "items", paging, 100).await?;
    Ok(ChatsOut {
        chats: briefs(&ctx, &raw).await,
        next_page_token: next,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchChatsArgs {
    /// Words from the chat's name or description.
    query: String,
    /// Items per page, 1–100.
    page_size: Option<u32>,
    /// A previous next_page_token.
    page_token: Option<String>,
}

async fn search_chats(ctx: ToolCtx, a: SearchChatsArgs) -> Result<ChatsOut, ToolError> {
    if a.query.trim().is_empty() {
        return Err(ToolError::invalid("query", "must not be empty"));
    }
    let base = ctx.acting(
        Request::get("search chats", "/open-apis/im/v1/chats/search".into())
            .query("user_id_type", "open_id")
            .query("query", a.query),
    );
    let paging = Paging {
        page_size: a.page_size,
        page_token: a.page_token,
        all_pages: false,
        max_items: None,
    };
    let (raw, next, _) = pages(&ctx, base, "items", paging, 100).await?;
    Ok(ChatsOut {
        chats: briefs(&ctx, &raw).await,
        next_page_token: next,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ChatArgs {
    /// The chat (oc_…).
    chat_id: String,
}

#[derive(Serialize, JsonSchema)]
struct ChatDetail {
    chat_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<NamedId>,
    /// private or public.
    #[serde(skip_serializing_if = "Option::is_none")]
    chat_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bot_count: Option<u64>,
    /// Absent when unknown (the chat was read as you; the bot may not see it).
    #[serde(skip_serializing_if = "Option::is_none")]
    bot_is_member: Option<bool>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    external: bool,
}

async fn get_chat(ctx: ToolCtx, a: ChatArgs) -> Result<ChatDetail, ToolError> {
    let path = chat_path("/open-apis/im/v1/chats/{}", &a.chat_id)?;
    let data = ctx
        .client()
        .call(
            ctx.acting(Request::get("get chat", path).query("user_id_type", "open_id")),
            &ctx.cancel,
        )
        .await?
        .into_data();
    // Asked with the bot's token whoever read the chat: it answers for the caller.
    let in_chat = chat_path("/open-apis/im/v1/chats/{}/members/is_in_chat", &a.chat_id)?;
    let membership = ctx
        .client()
        .call(Request::get("check chat membership", in_chat), &ctx.cancel)
        .await;
    let bot_is_member = match (membership, ctx.acting) {
        (Ok(r), _) => Some(r.data().get("is_in_chat").and_then(Value::as_bool) == Some(true)),
        (Err(e), Acting::Bot) => return Err(e.into()),
        (Err(e), Acting::User) => {
            tracing::debug!("the bot cannot tell whether it is in the chat: {e}");
            None
        }
    };
    let owner = s(&data, "owner_id");
    let names = match (&owner, data["owner_id_type"].as_str()) {
        (Some(o), Some("open_id") | None) => {
            ctx.shared.names.users(&ctx, std::slice::from_ref(o)).await
        }
        _ => Default::default(),
    };
    let count = |k: &str| {
        data.get(k)
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
    };
    Ok(ChatDetail {
        chat_id: a.chat_id,
        name: s(&data, "name").unwrap_or_default(),
        description: s(&data, "description"),
        owner: owner.map(|o| NamedId::new(&o, &names)),
        chat_type: s(&data, "chat_type"),
        user_count: count("user_count"),
        bot_count: count("bot_count"),
        bot_is_member,
        external: data.get("external").and_then(Value::as_bool) == Some(true),
    })
}

/// People given as open_ids or emails → open_ids; unknown emails are an error naming them.
async fn open_ids(ctx: &ToolCtx, field: &str, people: &[String]) -> Result<Vec<String>, ToolError> {
    if people.len() > MEMBERS_MAX {
        return Err(ToolError::invalid(
            field,
            format!("at most {MEMBERS_MAX} per call, got {}", people.len()),
        ));
    }
    let emails: Vec<&str> = people
        .iter()
        .map(String::as_str)
        .filter(|p| p.contains('@'))
        .collect();
    let resolved = if emails.is_empty() {
        Default::default()
    } else {
        crate::tools::names::open_ids_by_email(ctx, "resolve member emails", &emails).await?
    };
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    for p in people {
        if p.contains('@') {
            match resolved.get(&p.to_ascii_lowercase()) {
                Some(id) => out.push(id.clone()),
                None => unknown.push(p.clone()),
            }
        } else if p.starts_with("ou_") {
            out.push(p.clone())
        } else {
            return Err(ToolError::invalid(
                field,
                format!("`{p}` is neither an open_id (ou_…) nor an email"),
            ));
        }
    }
    if !unknown.is_empty() {
        return Err(ToolError::invalid(
            field,
            format!(
                "no visible person for {}; nothing was changed",
                unknown.join(", ")
            ),
        ));
    }
    Ok(out)
}

#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
enum ChatType {
    Private,
    Public,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateChatArgs {
    name: String,
    description: Option<String>,
    /// Up to 50 people, as open_ids or emails.
    #[serde(default)]
    members: Vec<String>,
    /// Owner (open_id or email); the bot when omitted.
    owner: Option<String>,
    /// private (default) or public.
    chat_type: Option<ChatType>,
    /// Retrying with it never creates a second chat.
    idempotency_key: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct Created {
    chat_id: String,
    name: String,
}

async fn create_chat(ctx: ToolCtx, a: CreateChatArgs) -> Result<Created, ToolError> {
    if a.name.trim().is_empty() {
        return Err(ToolError::invalid("name", "must not be empty"));
    }
    if a.idempotency_key
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > 50)
    {
        return Err(ToolError::invalid(
            "idempotency_key",
            "must be 1–50 characters",
        ));
    }
    let members = open_ids(&ctx, "members", &a.members).await?;
    let owner = match &a.owner {
        Some(o) => open_ids(&ctx, "owner", std::slice::from_ref(o))
            .await?
            .pop(),
        None => None,
    };
    let mut body = json!({
        "name": a.name,
        "user_id_list": members,
        "chat_mode": "group",
        "chat_type": if matches!(a.chat_type, Some(ChatType::Public)) { "public" } else { "private" },
    });
    if let Some(d) = a.description {
        body["description"] = json!(d);
    }
    let reached = members
        .iter()
        .chain(&owner)
        .map(|id| Target::person(id))
        .collect();
    if let Some(o) = owner {
        body["owner_id"] = json!(o);
    }
    let req = Request::post("create chat", "/open-apis/im/v1/chats".into(), body)
        .query("user_id_type", "open_id")
        .dedupe_in_query(a.idempotency_key);
    let data = ctx.write(Write::reaching(reached), req).await?.into_data();
    Ok(Created {
        chat_id: s(&data, "chat_id").unwrap_or_default(),
        name: s(&data, "name").unwrap_or_default(),
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateChatArgs {
    /// The chat (oc_…).
    chat_id: String,
    name: Option<String>,
    description: Option<String>,
    /// New owner (open_id or email).
    owner: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct ChatDone {
    chat_id: String,
    ok: bool,
}

async fn update_chat(ctx: ToolCtx, a: UpdateChatArgs) -> Result<ChatDone, ToolError> {
    let mut body = serde_json::Map::new();
    if let Some(n) = a.name {
        if n.trim().is_empty() {
            return Err(ToolError::invalid("name", "must not be empty"));
        }
        body.insert("name".into(), json!(n));
    }
    if let Some(d) = a.description {
        body.insert("description".into(), json!(d));
    }
    let mut reached = vec![Target::Chat(a.chat_id.clone())];
    if let Some(o) = a.owner {
        let id = open_ids(&ctx, "owner", &[o]).await?.pop();
        // The new owner is reached too: the chat becomes theirs.
        reached.extend(id.iter().map(|id| Target::person(id)));
        body.insert("owner_id".into(), json!(id));
    }
    if body.is_empty() {
        return Err(ToolError::msg(
            "Nothing to change: give name, description or owner.",
        ));
    }
    let path = chat_path("/open-apis/im/v1/chats/{}", &a.chat_id)?;
    let req = Request::new("update chat", Method::PUT, path)
        .query("user_id_type", "open_id")
        .json(Value::Object(body))
        .idempotent();
    ctx.write(Write::reaching(reached), req).await?;
    Ok(ChatDone {
        chat_id: a.chat_id,
        ok: true,
    })
}

async fn dissolve_chat(ctx: ToolCtx, a: ChatArgs) -> Result<ChatDone, ToolError> {
    let path = chat_path("/open-apis/im/v1/chats/{}", &a.chat_id)?;
    ctx.delete(Write::on_chat(&a.chat_id), "dissolve chat", path)
        .await?;
    Ok(ChatDone {
        chat_id: a.chat_id,
        ok: true,
    })
}

#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
enum Validity {
    Week,
    Year,
    Permanently,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LinkArgs {
    /// The chat (oc_…).
    chat_id: String,
    /// week (default), year or permanently.
    validity: Option<Validity>,
}

#[derive(Serialize, JsonSchema)]
struct Link {
    share_link: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
}

async fn get_chat_link(ctx: ToolCtx, a: LinkArgs) -> Result<Link, ToolError> {
    let validity = match a.validity.unwrap_or(Validity::Week) {
        Validity::Week => "week",
        Validity::Year => "year",
        Validity::Permanently => "permanently",
    };
    let path = chat_path("/open-apis/im/v1/chats/{}/link", &a.chat_id)?;
    let req = Request::post(
        "get chat share link",
        path,
        json!({"validity_period": validity}),
    );
    let data = ctx.client().call(req, &ctx.cancel).await?.into_data();
    let permanent = data.get("is_permanent").and_then(Value::as_bool) == Some(true);
    Ok(Link {
        share_link: s(&data, "share_link").unwrap_or_default(),
        expires: (!permanent)
            .then(|| {
                data.get("expire_time").and_then(|t| {
                    // Lark gives seconds here; a value too large for milliseconds is no time.
                    let secs = t
                        .as_str()
                        .and_then(|x| x.parse::<i64>().ok())
                        .or_else(|| t.as_i64())?;
                    Some(iso_time(&json!(secs.checked_mul(1000)?))).filter(|t| !t.is_empty())
                })
            })
            .flatten(),
    })
}

with_paging! {
    "Items per page, 1–100.",
    struct MembersArgs {
        /// The chat (oc_…).
        chat_id: String,
    }
}

#[derive(Serialize, JsonSchema)]
struct MembersOut {
    members: Vec<NamedId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

async fn list_chat_members(ctx: ToolCtx, mut a: MembersArgs) -> Result<MembersOut, ToolError> {
    let path = chat_path("/open-apis/im/v1/chats/{}/members", &a.chat_id)?;
    let base =
        ctx.acting(Request::get("list chat members", path).query("member_id_type", "open_id"));
    let paging = a.paging();
    let (raw, next, last) = pages(&ctx, base, "items", paging, 100).await?;
    let members = raw
        .iter()
        .map(|m| NamedId {
            id: s(m, "member_id").unwrap_or_default(),
            name: s(m, "name"),
        })
        .collect();
    let total = last.get("member_total").and_then(Value::as_u64);
    Ok(MembersOut {
        members,
        total,
        next_page_token: next,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ChangeMembersArgs {
    /// The chat (oc_…).
    chat_id: String,
    /// Up to 50 people, as open_ids or emails.
    members: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
struct MembersChanged {
    chat_id: String,
    /// open_ids Lark could not act on (invalid, not found, or pending approval).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    not_changed: Vec<String>,
}

async fn change_members(
    ctx: ToolCtx,
    a: ChangeMembersArgs,
    add: bool,
) -> Result<MembersChanged, ToolError> {
    if a.members.is_empty() {
        return Err(ToolError::invalid("members", "give at least one person"));
    }
    let ids = open_ids(&ctx, "members", &a.members).await?;
    let path = chat_path("/open-apis/im/v1/chats/{}/members", &a.chat_id)?;
    let (op, method) = if add {
        ("add chat members", Method::POST)
    } else {
        ("remove chat members", Method::DELETE)
    };
    let mut req = Request::new(op, method, path)
        .query("member_id_type", "open_id")
        .json(json!({"id_list": ids}))
        .idempotent();
    let mut reached = vec![Target::Chat(a.chat_id.clone())];
    if add {
        req = req.query("succeed_type", "1");
        // People added to a chat are reached by it: they are receivers too.
        reached.extend(ids.iter().map(|id| Target::person(id)));
    }
    let data = ctx.write(Write::reaching(reached), req).await?.into_data();
    let mut not_changed: Vec<String> = Vec::new();
    for k in [
        "invalid_id_list",
        "not_existed_id_list",
        "pending_approval_id_list",
    ] {
        not_changed.extend(
            data[k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from)),
        );
    }
    Ok(MembersChanged {
        chat_id: a.chat_id,
        not_changed,
    })
}

async fn add_chat_members(ctx: ToolCtx, a: ChangeMembersArgs) -> Result<MembersChanged, ToolError> {
    change_members(ctx, a, true).await
}

async fn remove_chat_members(
    ctx: ToolCtx,
    a: ChangeMembersArgs,
) -> Result<MembersChanged, ToolError> {
    change_members(ctx, a, false).await
}
