//! `im/v1/chats`: the bot's chats, search, detail, create / update / dissolve, share
//! links and members. Errors use the chat domain's 232xxx codes.

use std::collections::BTreeMap;

use axum::http::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::sandbox::endpoint::{Call, Endpoint};
use crate::sandbox::envelope::{ApiError, Reply, codes};
use crate::sandbox::seed::UserStatusSeed;
use crate::sandbox::world::{Chat, ChatSettings, World, random_hex};

/// `uuid` + `owner_id` dedupe chat creation for 10 hours.
const CHAT_UUID_TTL_MS: u64 = 10 * 3600 * 1000;
const ID_LIST_MAX: usize = 50;
const BOT_LIST_MAX: usize = 5;
/// [U] Lark's name / description length limits.
const NAME_MAX: usize = 60;
const DESCRIPTION_MAX: usize = 100;
const SEARCH_QUERY_MAX: usize = 64;

pub fn endpoints() -> Vec<Endpoint> {
    use Method as M;
    const CHAT: &str = "/open-apis/im/v1/chats/{chat_id}";
    const MEMBERS: &str = "/open-apis/im/v1/chats/{chat_id}/members";
    vec![
        Endpoint::new("list_chats", M::GET, "/open-apis/im/v1/chats", list),
        Endpoint::new(
            "search_chats",
            M::GET,
            "/open-apis/im/v1/chats/search",
            search,
        ),
        Endpoint::new("get_chat", M::GET, CHAT, get),
        Endpoint::new("create_chat", M::POST, "/open-apis/im/v1/chats", create),
        Endpoint::new("update_chat", M::PUT, CHAT, update),
        Endpoint::new("dissolve_chat", M::DELETE, CHAT, dissolve),
        Endpoint::new(
            "get_chat_share_link",
            M::POST,
            "/open-apis/im/v1/chats/{chat_id}/link",
            share_link,
        ),
        Endpoint::new("list_chat_members", M::GET, MEMBERS, list_members),
        Endpoint::new(
            "is_in_chat",
            M::GET,
            "/open-apis/im/v1/chats/{chat_id}/members/is_in_chat",
            is_in_chat,
        ),
        Endpoint::new("add_chat_members", M::POST, MEMBERS, add_members),
        Endpoint::new("remove_chat_members", M::DELETE, MEMBERS, remove_members),
    ]
}

// ---- errors and common checks ------------------------------------------------------------

fn err(code: i64, msg: impl Into<String>) -> ApiError {
    ApiError::new(400, code, msg)
}

fn invalid(why: &str) -> ApiError {
    err(
        codes::CHAT_INVALID_PARAM,
        format!("Your request contains an invalid request parameter. {why}"),
    )
}

fn bot_check(world: &World) -> Result<(), ApiError> {
    if world.app.bot_activated {
        Ok(())
    } else {
        Err(err(
            codes::CHAT_BOT_NOT_ACTIVATED,
            "Bot ability is not activated.",
        ))
    }
}

/// An existing, not dissolved chat (member or not).
fn existing<'w>(world: &'w World, chat_id: &str) -> Result<&'w Chat, ApiError> {
    bot_check(world)?;
    let chat = world.chat(chat_id).ok_or_else(|| {
        err(
            codes::CHAT_ID_INVALID,
            "Your request specifies a chat_id which is invalid.",
        )
    })?;
    if chat.dissolved {
        return Err(err(
            codes::CHAT_DISSOLVED,
            "Your request specifies a chat which has already been dissolved.",
        ));
    }
    Ok(chat)
}

/// An existing chat the caller (the bot, or the user of a user token) is a member of.
fn joined<'w>(world: &'w World, chat_id: &str) -> Result<&'w Chat, ApiError> {
    let chat = existing(world, chat_id)?;
    if !world.caller_in_chat(chat) {
        return Err(err(
            codes::OPERATOR_NOT_IN_CHAT,
            "Operator can NOT be out of the chat.",
        ));
    }
    Ok(chat)
}

fn not_group(chat: &Chat) -> Result<(), ApiError> {
    if chat.chat_mode == "p2p" {
        Err(err(
            codes::CHAT_TYPE_NOT_SUPPORTED,
            "Your request specifies a chat whose type is NOT supported currently.",
        ))
    } else {
        Ok(())
    }
}

/// The bot owns, manages or created the chat: what owner/admin-only operations need.
fn bot_is_admin(world: &World, chat: &Chat) -> bool {
    chat.owner == world.app.app_id || chat.bot_manager || chat.created_by_bot
}

fn check_enum(field: &str, value: Option<&str>, allowed: &[&str]) -> Result<(), ApiError> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(ApiError::field(
            field,
            v,
            format!("{field} must be one of: {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

fn member_id_type<'c>(call: &'c Call, with_app: bool) -> Result<&'c str, ApiError> {
    let v = call.query("member_id_type").unwrap_or("open_id");
    let ok = ["open_id", "union_id", "user_id"].contains(&v) || (with_app && v == "app_id");
    if ok {
        Ok(v)
    } else {
        Err(err(
            codes::MEMBER_ID_TYPE_INVALID,
            "Your request specifies a member_id_type which is NOT supported.",
        ))
    }
}

// ---- rendering ----------------------------------------------------------------------------

fn user_ref(world: &World, open_id: &str, user_type: &str) -> String {
    world
        .user_by_open_id(open_id)
        .map(|u| world.user_id_of(u, user_type))
        .unwrap_or_else(|| open_id.to_string())
}

fn owner_fields(world: &World, chat: &Chat, user_type: &str, o: &mut Map<String, Value>) {
    // A bot-owned chat reports no owner_id, as on Lark.
    if chat.owner != world.app.app_id {
        o.insert(
            "owner_id".into(),
            json!(user_ref(world, &chat.owner, user_type)),
        );
        o.insert("owner_id_type".into(), json!(user_type));
    }
}

/// An item of `list` / `search`.
fn list_item(world: &World, chat: &Chat, user_type: &str) -> Value {
    let mut o = Map::new();
    o.insert("chat_id".into(), json!(chat.chat_id));
    o.insert("avatar".into(), json!(chat.avatar));
    o.insert("name".into(), json!(chat.name));
    o.insert("description".into(), json!(chat.description));
    owner_fields(world, chat, user_type, &mut o);
    o.insert("external".into(), json!(false));
    o.insert("tenant_key".into(), json!(world.app.tenant_key));
    o.insert("chat_status".into(), json!("normal"));
    Value::Object(o)
}

/// `GET im/v1/chats/:chat_id`: everything for members, the basics for a public chat the
/// bot is not in.
fn detail(world: &World, chat: &Chat, user_type: &str, full: bool) -> Value {
    let mut o = Map::new();
    o.insert("avatar".into(), json!(chat.avatar));
    o.insert("name".into(), json!(chat.name));
    o.insert("description".into(), json!(chat.description));
    o.insert("i18n_names".into(), json!(chat.i18n_names));
    let group = chat.chat_mode != "p2p";
    let s = &chat.settings;
    if full && group {
        o.insert(
            "add_member_permission".into(),
            json!(s.add_member_permission),
        );
        o.insert(
            "share_card_permission".into(),
            json!(s.share_card_permission),
        );
        o.insert("at_all_permission".into(), json!(s.at_all_permission));
        owner_fields(world, chat, user_type, &mut o);
    }
    if full {
        o.insert("edit_permission".into(), json!(s.edit_permission));
        let managers: Vec<String> = chat
            .user_managers
            .iter()
            .map(|m| user_ref(world, m, user_type))
            .collect();
        o.insert("user_manager_id_list".into(), json!(managers));
        let bots: Vec<&str> = if chat.bot_manager {
            vec![world.app.app_id.as_str()]
        } else {
            Vec::new()
        };
        o.insert("bot_manager_id_list".into(), json!(bots));
    }
    if group {
        o.insert("group_message_type".into(), json!(s.group_message_type));
    }
    o.insert("chat_mode".into(), json!(chat.chat_mode));
    if group {
        o.insert("chat_type".into(), json!(chat.chat_type));
        let tag = if world
            .departments
            .iter()
            .any(|d| d.chat_id.as_deref() == Some(chat.chat_id.as_str()))
        {
            "department"
        } else {
            "inner"
        };
        o.insert("chat_tag".into(), json!(tag));
    }
    if full && group {
        o.insert(
            "join_message_visibility".into(),
            json!(s.join_message_visibility),
        );
        o.insert(
            "leave_message_visibility".into(),
            json!(s.leave_message_visibility),
        );
        o.insert("membership_approval".into(), json!(s.membership_approval));
    }
    if full {
        o.insert(
            "moderation_permission".into(),
            json!(s.moderation_permission),
        );
    }
    o.insert("external".into(), json!(false));
    o.insert("tenant_key".into(), json!(world.app.tenant_key));
    o.insert("user_count".into(), json!(chat.members.len().to_string()));
    o.insert(
        "bot_count".into(),
        json!(u8::from(chat.bot_member).to_string()),
    );
    if full {
        o.insert(
            "restricted_mode_setting".into(),
            json!({
                "status": false,
                "screenshot_has_permission_setting": "all_members",
                "download_has_permission_setting": "all_members",
                "message_has_permission_setting": "all_members",
            }),
        );
        o.insert("urgent_setting".into(), json!(s.urgent_setting));
        o.insert(
            "video_conference_setting".into(),
            json!(s.video_conference_setting),
        );
        o.insert(
            "hide_member_count_setting".into(),
            json!(s.hide_member_count_setting),
        );
    }
    o.insert("chat_status".into(), json!("normal"));
    Value::Object(o)
}

/// What `POST im/v1/chats` answers: the chat's settings plus `chat_id`, but not the
/// counts, status and manager lists that only `GET im/v1/chats/:chat_id` reports.
/// [S] The lark-oapi 1.7.5 `CreateChatResponseBody` model has no `user_count`,
/// `bot_count`, `chat_status`, `user_manager_id_list` or `bot_manager_id_list`, while its
/// `GetChatResponseBody` has them; the reference only says "Chat incl. chat_id".
/// [U] The values of the remaining fields are taken to equal what get would show.
fn created(world: &World, chat: &Chat, user_type: &str) -> Value {
    let mut data = detail(world, chat, user_type, true);
    if let Some(o) = data.as_object_mut() {
        for key in [
            "user_count",
            "bot_count",
            "chat_status",
            "user_manager_id_list",
            "bot_manager_id_list",
        ] {
            o.remove(key);
        }
        o.insert("chat_id".into(), json!(chat.chat_id));
    }
    data
}

// ---- list, search, get --------------------------------------------------------------------------

fn list(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let sort = call.enum_query(
        "sort_type",
        &["ByCreateTimeAsc", "ByActiveTimeDesc"],
        "ByCreateTimeAsc",
    )?;
    let page = call.page(20, 100, &format!("{sort}|{user_type}"))?;
    bot_check(world)?;
    let mut chats: Vec<(&Chat, u64)> = world
        .chats
        .iter()
        .filter(|c| world.caller_in_chat(c) && !c.dissolved && c.chat_mode != "p2p")
        .map(|c| (c, world.last_active_ms(c)))
        .collect();
    if sort == "ByActiveTimeDesc" {
        chats.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.chat_id.cmp(&b.0.chat_id)));
    } else {
        chats.sort_by(|a, b| {
            (a.0.create_time_ms, &a.0.chat_id).cmp(&(b.0.create_time_ms, &b.0.chat_id))
        });
    }
    let items: Vec<Value> = chats
        .into_iter()
        .map(|(c, _)| list_item(world, c, user_type))
        .collect();
    Ok(Reply::Data(page.slice(&items).into_data("items")))
}

fn search(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let query = call.query("query").unwrap_or("").trim().to_string();
    if query.chars().count() > SEARCH_QUERY_MAX {
        return Err(ApiError::field(
            "query",
            &query,
            format!("query must be at most {SEARCH_QUERY_MAX} characters"),
        ));
    }
    let page = call.page(20, 100, &format!("{query}|{user_type}"))?;
    bot_check(world)?;
    // An empty query finds nothing, as on Lark.
    let needle = query.to_lowercase();
    let items: Vec<Value> = if needle.is_empty() {
        Vec::new()
    } else {
        let mut found: Vec<&Chat> = world
            .chats
            .iter()
            .filter(|c| !c.dissolved && c.chat_mode != "p2p")
            .filter(|c| world.caller_in_chat(c) || c.chat_type == "public")
            .filter(|c| {
                c.name.to_lowercase().contains(&needle)
                    || c.description.to_lowercase().contains(&needle)
                    || c.i18n_names
                        .values()
                        .any(|n| n.to_lowercase().contains(&needle))
            })
            .collect();
        found.sort_by(|a, b| (a.create_time_ms, &a.chat_id).cmp(&(b.create_time_ms, &b.chat_id)));
        found
            .into_iter()
            .map(|c| list_item(world, c, user_type))
            .collect()
    };
    Ok(Reply::Data(page.slice(&items).into_data("items")))
}

fn get(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let chat = existing(world, call.path_param("chat_id"))?;
    let member = world.caller_in_chat(chat);
    if !member && chat.chat_type != "public" {
        return Err(err(
            codes::OPERATOR_NOT_IN_CHAT,
            "Operator can NOT be out of the chat.",
        ));
    }
    Ok(Reply::Data(detail(world, chat, user_type, member)))
}

// ---- create, update, dissolve ---------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct ChatBody {
    name: Option<String>,
    description: Option<String>,
    avatar: Option<String>,
    i18n_names: Option<BTreeMap<String, String>>,
    owner_id: Option<String>,
    user_id_list: Option<Vec<String>>,
    bot_id_list: Option<Vec<String>>,
    chat_mode: Option<String>,
    chat_type: Option<String>,
    group_message_type: Option<String>,
    external: Option<bool>,
    add_member_permission: Option<String>,
    share_card_permission: Option<String>,
    at_all_permission: Option<String>,
    edit_permission: Option<String>,
    join_message_visibility: Option<String>,
    leave_message_visibility: Option<String>,
    membership_approval: Option<String>,
    urgent_setting: Option<String>,
    video_conference_setting: Option<String>,
    hide_member_count_setting: Option<String>,
}

const OWNER_OR_ALL: &[&str] = &["only_owner", "all_members"];
const VISIBILITY: &[&str] = &["only_owner", "all_members", "not_anyone"];

impl ChatBody {
    /// Field validation shared by create and update (99992402, as Lark's gateway does).
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(n) = &self.name
            && n.chars().count() > NAME_MAX
        {
            return Err(ApiError::field(
                "name",
                n,
                format!("name must be at most {NAME_MAX} characters"),
            ));
        }
        if let Some(d) = &self.description
            && d.chars().count() > DESCRIPTION_MAX
        {
            return Err(ApiError::field(
                "description",
                d,
                format!("description must be at most {DESCRIPTION_MAX} characters"),
            ));
        }
        if let Some(names) = &self.i18n_names
            && let Some(k) = names
                .keys()
                .find(|k| !["zh_cn", "en_us", "ja_jp"].contains(&k.as_str()))
        {
            return Err(ApiError::field(
                "i18n_names",
                k,
                "i18n_names keys are zh_cn, en_us, ja_jp",
            ));
        }
        check_enum("chat_mode", self.chat_mode.as_deref(), &["group"])?;
        check_enum(
            "chat_type",
            self.chat_type.as_deref(),
            &["private", "public"],
        )?;
        check_enum(
            "group_message_type",
            self.group_message_type.as_deref(),
            &["chat", "thread"],
        )?;
        for (field, value) in [
            ("add_member_permission", &self.add_member_permission),
            ("at_all_permission", &self.at_all_permission),
            ("edit_permission", &self.edit_permission),
            ("urgent_setting", &self.urgent_setting),
            ("video_conference_setting", &self.video_conference_setting),
            ("hide_member_count_setting", &self.hide_member_count_setting),
        ] {
            check_enum(field, value.as_deref(), OWNER_OR_ALL)?;
        }
        check_enum(
            "share_card_permission",
            self.share_card_permission.as_deref(),
            &["allowed", "not_allowed"],
        )?;
        check_enum(
            "join_message_visibility",
            self.join_message_visibility.as_deref(),
            VISIBILITY,
        )?;
        check_enum(
            "leave_message_visibility",
            self.leave_message_visibility.as_deref(),
            VISIBILITY,
        )?;
        check_enum(
            "membership_approval",
            self.membership_approval.as_deref(),
            &["no_approval_required", "approval_required"],
        )?;
        if self.external == Some(true) {
            return Err(err(
                codes::EXTERNAL_CHAT_FORBIDDEN,
                "The operator or invited bots does NOT have the authority to manage external chats without the scope.",
            ));
        }
        Ok(())
    }

    /// Applies the settings and descriptive fields present in the body.
    fn apply(&self, chat: &mut Chat) {
        let set = |target: &mut String, v: &Option<String>| {
            if let Some(v) = v {
                *target = v.clone();
            }
        };
        set(&mut chat.name, &self.name);
        set(&mut chat.description, &self.description);
        set(&mut chat.avatar, &self.avatar);
        set(&mut chat.chat_type, &self.chat_type);
        if let Some(n) = &self.i18n_names {
            chat.i18n_names = n.clone();
        }
        let s: &mut ChatSettings = &mut chat.settings;
        set(&mut s.group_message_type, &self.group_message_type);
        set(&mut s.add_member_permission, &self.add_member_permission);
        set(&mut s.share_card_permission, &self.share_card_permission);
        set(&mut s.at_all_permission, &self.at_all_permission);
        set(&mut s.edit_permission, &self.edit_permission);
        set(
            &mut s.join_message_visibility,
            &self.join_message_visibility,
        );
        set(
            &mut s.leave_message_visibility,
            &self.leave_message_visibility,
        );
        set(&mut s.membership_approval, &self.membership_approval);
        set(&mut s.urgent_setting, &self.urgent_setting);
        set(
            &mut s.video_conference_setting,
            &self.video_conference_setting,
        );
        set(
            &mut s.hide_member_count_setting,
            &self.hide_member_count_setting,
        );
    }
}

/// A user who may join a chat created or changed by the bot: exists (9999235x otherwise),
/// and is active and inside the app's availability (232024 otherwise).
fn available_user(world: &World, id: &str, id_type: &str) -> Result<String, ApiError> {
    let u = world.find_user(id, id_type)?;
    if u.status == UserStatusSeed::Resigned || !world.user_in_range(u) {
        return Err(err(
            codes::USERS_NOT_VISIBLE,
            format!(
                "Users do not have the visibility of the app, or the operator does not have collaboration permissions with the target users. [{id}]"
            ),
        ));
    }
    Ok(u.open_id.clone())
}

fn create(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let set_bot_manager = call.bool_query("set_bot_manager")?;
    let uuid = call.query("uuid").map(str::to_string);
    if let Some(u) = &uuid
        && u.chars().count() > 50
    {
        return Err(ApiError::field(
            "uuid",
            u,
            "uuid must be at most 50 characters",
        ));
    }
    let body: ChatBody = call.json()?;
    body.validate()?;
    let users = body.user_id_list.clone().unwrap_or_default();
    if users.len() > ID_LIST_MAX {
        return Err(ApiError::field(
            "user_id_list",
            "",
            format!("user_id_list must have at most {ID_LIST_MAX} items"),
        ));
    }
    let bots = body.bot_id_list.clone().unwrap_or_default();
    if bots.len() > BOT_LIST_MAX {
        return Err(ApiError::field(
            "bot_id_list",
            "",
            format!("bot_id_list must have at most {BOT_LIST_MAX} items"),
        ));
    }
    bot_check(world)?;
    let now = call.now_ms;
    let owner_key = body.owner_id.clone().unwrap_or_default();
    let uuid_key = uuid.as_ref().map(|u| format!("{u}|{owner_key}"));
    if let Some(key) = &uuid_key {
        world
            .chat_uuids
            .retain(|_, (_, at)| now.saturating_sub(*at) < CHAT_UUID_TTL_MS);
        if let Some((chat_id, _)) = world.chat_uuids.get(key)
            && let Some(chat) = world.chat(chat_id)
        {
            return Ok(Reply::Data(created(world, chat, user_type)));
        }
    }
    if let Some(b) = bots.iter().find(|b| **b != world.app.app_id) {
        return Err(invalid(&format!("bot_id_list has an unknown app id: {b}")));
    }
    // Without owner_id the creating bot owns the chat.
    let owner = match &body.owner_id {
        Some(id) if !id.is_empty() => available_user(world, id, user_type)?,
        _ => world.app.app_id.clone(),
    };
    let mut members = Vec::new();
    if owner != world.app.app_id {
        members.push(owner.clone());
    }
    for id in &users {
        let open_id = available_user(world, id, user_type)?;
        if !members.contains(&open_id) {
            members.push(open_id);
        }
    }
    let chat_id = format!("oc_{}", random_hex(32));
    let mut chat = Chat::new(chat_id.clone(), owner, now);
    chat.members = members;
    chat.created_by_bot = true;
    chat.bot_manager = set_bot_manager;
    body.apply(&mut chat);
    let data = created(world, &chat, user_type);
    if let Some(key) = uuid_key {
        world.chat_uuids.insert(key, (chat_id, now));
    }
    world.chats.push(chat);
    Ok(Reply::Data(data))
}

fn update(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let user_type = call.user_id_type()?;
    let chat_id = call.path_param("chat_id").to_string();
    let body: ChatBody = call.json()?;
    body.validate()?;
    if body.user_id_list.is_some() || body.bot_id_list.is_some() || body.chat_mode.is_some() {
        return Err(invalid(
            "user_id_list, bot_id_list and chat_mode cannot be updated here.",
        ));
    }
    let chat = joined(world, &chat_id)?;
    not_group(chat)?;
    let admin = bot_is_admin(world, chat);
    let mut new_owner = None;
    if let Some(id) = body.owner_id.as_deref().filter(|id| !id.is_empty()) {
        let open_id = world.find_user(id, user_type)?.open_id.clone();
        if open_id != chat.owner {
            if !(chat.owner == world.app.app_id || chat.created_by_bot) {
                return Err(err(
                    codes::NOT_CHAT_OWNER,
                    "No Permission: If the operator is NOT owner or creator with the scope, the operator can NOT complete the request.",
                ));
            }
            if !chat.members.contains(&open_id) {
                return Err(invalid("the new owner must be a member of the chat."));
            }
            new_owner = Some(open_id);
        }
    }
    if chat.settings.edit_permission == "only_owner" && !admin {
        return Err(err(
            codes::CHAT_NO_PERMISSION,
            "The token used in the request does NOT have the permissions necessary to complete the request.",
        ));
    }
    let Some(chat) = world.chat_mut(&chat_id) else {
        return Err(invalid("chat vanished"));
    };
    body.apply(chat);
    if let Some(o) = new_owner {
        chat.owner = o;
    }
    Ok(Reply::Data(json!({})))
}

fn dissolve(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let chat_id = call.path_param("chat_id").to_string();
    let chat = joined(world, &chat_id)?;
    not_group(chat)?;
    if !(chat.owner == world.app.app_id || chat.created_by_bot) {
        return Err(err(
            codes::NOT_CHAT_OWNER,
            "No Permission: If the operator is NOT owner or creator with the scope, the operator can NOT complete the request.",
        ));
    }
    if let Some(chat) = world.chat_mut(&chat_id) {
        chat.dissolved = true;
    }
    world.pins.retain(|p| p.chat_id != chat_id);
    Ok(Reply::Data(json!({})))
}

// ---- share link ---------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct LinkBody {
    validity_period: Option<String>,
}

fn share_link(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let chat_id = call.path_param("chat_id").to_string();
    let body: LinkBody = call.json()?;
    check_enum(
        "validity_period",
        body.validity_period.as_deref(),
        &["week", "year", "permanently"],
    )?;
    let chat = joined(world, &chat_id)?;
    not_group(chat)?;
    if chat.settings.share_card_permission == "not_allowed" && !bot_is_admin(world, chat) {
        return Err(err(
            codes::CHAT_NO_PERMISSION,
            "The token used in the request does NOT have the permissions necessary to complete the request.",
        ));
    }
    let token = format!(
        "{}-{}-{}-{}-{}",
        random_hex(8),
        random_hex(4),
        random_hex(4),
        random_hex(4),
        random_hex(12)
    );
    let mut data = Map::new();
    data.insert(
        "share_link".into(),
        json!(format!(
            "https://applink.feishu.cn/client/chat/chatter/add_by_link?link_token={token}"
        )),
    );
    let secs = call.now_ms / 1000;
    let period = body.validity_period.as_deref().unwrap_or("week");
    let days = match period {
        "week" => Some(7),
        "year" => Some(365),
        _ => None,
    };
    if let Some(d) = days {
        data.insert("expire_time".into(), json!((secs + d * 86_400).to_string()));
    }
    data.insert("is_permanent".into(), json!(days.is_none()));
    Ok(Reply::Data(Value::Object(data)))
}

// ---- members --------------------------------------------------------------------------------------

fn list_members(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let chat_id = call.path_param("chat_id").to_string();
    let id_type = member_id_type(call, false)?;
    let page = call.page(20, 100, &format!("{chat_id}|{id_type}"))?;
    let chat = joined(world, &chat_id)?;
    // Bots are never listed; member_total counts the users.
    let items: Vec<Value> = chat
        .members
        .iter()
        .filter_map(|m| world.user_by_open_id(m))
        .map(|u| {
            json!({
                "member_id_type": id_type,
                "member_id": world.user_id_of(u, id_type),
                "name": u.name,
                "tenant_key": world.app.tenant_key,
            })
        })
        .collect();
    let total = items.len();
    let mut data = page.slice(&items).into_data("items");
    data["member_total"] = json!(total);
    Ok(Reply::Data(data))
}

fn is_in_chat(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let chat = existing(world, call.path_param("chat_id"))?;
    Ok(Reply::Data(
        json!({"is_in_chat": world.caller_in_chat(chat)}),
    ))
}

#[derive(Deserialize, Default)]
struct IdListBody {
    id_list: Option<Vec<String>>,
}

fn id_list(call: &Call, id_type: &str) -> Result<Vec<String>, ApiError> {
    let body: IdListBody = call.json()?;
    let ids = body.id_list.unwrap_or_default();
    if ids.is_empty() {
        return Err(ApiError::field("id_list", "", "id_list is required"));
    }
    let max = if id_type == "app_id" {
        BOT_LIST_MAX
    } else {
        ID_LIST_MAX
    };
    if ids.len() > max {
        return Err(ApiError::field(
            "id_list",
            "",
            format!("id_list must have at most {max} items"),
        ));
    }
    Ok(ids)
}

enum Candidate {
    Bot,
    User(String),
}

fn add_members(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let chat_id = call.path_param("chat_id").to_string();
    let id_type = member_id_type(call, true)?.to_string();
    let succeed_type = call.enum_query("succeed_type", &["0", "1", "2"], "0")?;
    let ids = id_list(call, &id_type)?;
    let chat = joined(world, &chat_id)?;
    not_group(chat)?;
    if chat.settings.add_member_permission == "only_owner" && !bot_is_admin(world, chat) {
        return Err(err(
            codes::NOT_CHAT_OWNER,
            "No Permission: If the operator is NOT owner or creator with the scope, the operator can NOT complete the request.",
        ));
    }
    // Unknown ids are "not existed"; resigned users and users outside the app's
    // availability are "invalid".
    let (mut add, mut not_existed, mut resigned, mut invisible) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for id in &ids {
        if id_type == "app_id" {
            if *id == world.app.app_id {
                add.push(Candidate::Bot);
            } else {
                not_existed.push(id.clone());
            }
            continue;
        }
        match world.find_user(id, &id_type) {
            Err(_) => not_existed.push(id.clone()),
            Ok(u) if u.status == UserStatusSeed::Resigned => resigned.push(id.clone()),
            Ok(u) if !world.user_in_range(u) => invisible.push(id.clone()),
            Ok(u) => add.push(Candidate::User(u.open_id.clone())),
        }
    }
    let fail =
        |ids: &[String], code: i64, what: &str| err(code, format!("{what} [{}]", ids.join(", ")));
    match succeed_type {
        "0" => {
            if !not_existed.is_empty() {
                return Err(fail(
                    &not_existed,
                    codes::CHAT_INVALID_PARAM,
                    "Your request contains an invalid request parameter. These ids do not exist:",
                ));
            }
            if !invisible.is_empty() {
                return Err(fail(
                    &invisible,
                    codes::USERS_NOT_VISIBLE,
                    "Users do not have the visibility of the app, or the operator does not have collaboration permissions with the target users.",
                ));
            }
        }
        "2" => {
            if !not_existed.is_empty() {
                return Err(fail(
                    &not_existed,
                    codes::CHAT_INVALID_PARAM,
                    "Your request contains an invalid request parameter. These ids do not exist:",
                ));
            }
            let mut bad = resigned.clone();
            bad.extend(invisible.iter().cloned());
            if !bad.is_empty() {
                return Err(fail(
                    &bad,
                    codes::USERS_NOT_VISIBLE,
                    "Users do not have the visibility of the app, or the operator does not have collaboration permissions with the target users.",
                ));
            }
        }
        _ => {}
    }
    let Some(chat) = world.chat_mut(&chat_id) else {
        return Err(invalid("chat vanished"));
    };
    for c in add {
        match c {
            Candidate::Bot => chat.bot_member = true,
            Candidate::User(open_id) => {
                if !chat.members.contains(&open_id) {
                    chat.members.push(open_id);
                }
            }
        }
    }
    let mut invalid_ids = resigned;
    invalid_ids.extend(invisible);
    Ok(Reply::Data(json!({
        "invalid_id_list": invalid_ids,
        "not_existed_id_list": not_existed,
        "pending_approval_id_list": [],
    })))
}

fn remove_members(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let chat_id = call.path_param("chat_id").to_string();
    let id_type = member_id_type(call, true)?.to_string();
    let ids = id_list(call, &id_type)?;
    let chat = joined(world, &chat_id)?;
    not_group(chat)?;
    if !bot_is_admin(world, chat) {
        return Err(err(
            codes::NOT_CHAT_OWNER,
            "No Permission: If the operator is NOT owner or creator with the scope, the operator can NOT complete the request.",
        ));
    }
    let app_id = world.app.app_id.clone();
    let mut invalid_ids = Vec::new();
    let mut remove_users = Vec::new();
    let mut remove_bot = false;
    for id in &ids {
        if id_type == "app_id" {
            if *id == app_id {
                remove_bot = true;
            } else {
                invalid_ids.push(id.clone());
            }
            continue;
        }
        match world.find_user(id, &id_type) {
            // The owner cannot be removed; nor can someone who is not a member.
            Ok(u) if chat.members.contains(&u.open_id) && u.open_id != chat.owner => {
                remove_users.push(u.open_id.clone())
            }
            _ => invalid_ids.push(id.clone()),
        }
    }
    let Some(chat) = world.chat_mut(&chat_id) else {
        return Err(invalid("chat vanished"));
    };
    chat.members.retain(|m| !remove_users.contains(m));
    chat.user_managers.retain(|m| !remove_users.contains(m));
    if remove_bot {
        chat.bot_member = false;
        chat.bot_manager = false;
    }
    Ok(Reply::Data(json!({"invalid_id_list": invalid_ids})))
}
