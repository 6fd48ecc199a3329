//! Prompts, resources and completion end to end: the real binary against an in-process
//! sandbox with the demo org, over stdio (rmcp client) and over HTTP with stateless
//! 2026-07-28 requests. What each prompt tells the assistant, which tools it names, how
//! bad arguments, unknown prompts and unknown URIs fail (-32602, `data.uri` for resources),
//! chat-name completion from the bot's chats, resources that return exactly what their
//! tools return, gating by the tool policy, and the SEP-2549 cache hints.

mod common;

use std::future::Future;

use common::http::HttpServer;
use common::mcp::McpServer;
use common::*;
use lark_mcp_server::sandbox::{FaultAction, FaultRule};
use rmcp::ServiceError;
use rmcp::model::{
    ArgumentInfo, CompleteRequestParams, CompleteResult, ErrorData, GetPromptRequestParams,
    GetPromptResult, JsonObject, ReadResourceRequestParams, Reference, ResourceContents,
};
use serde_json::{Value, json};

const PERCEPTION_CHAT_NAME: &str = "Perception standup";
const PERCEPTION_CHAT_ID: &str = "oc_4191333043007bafa4e56877d72d329b";

fn obj(v: Value) -> JsonObject {
    match v {
        Value::Object(o) => o,
        other => panic!("not an object: {other}"),
    }
}

/// The JSON-RPC error a request must fail with.
#[track_caller]
fn rpc_error<T: std::fmt::Debug>(r: Result<T, ServiceError>) -> ErrorData {
    match r {
        Err(ServiceError::McpError(e)) => e,
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

async fn get_prompt(
    s: &McpServer,
    name: &str,
    args: Value,
) -> Result<GetPromptResult, ServiceError> {
    let params = GetPromptRequestParams::new(name).with_arguments(obj(args));
    s.client.peer().get_prompt(params).await
}

/// The text of a prompt's single user message.
fn prompt_text(r: &GetPromptResult) -> String {
    assert_eq!(r.messages.len(), 1, "one message: {r:?}");
    let m = serde_json::to_value(&r.messages[0]).expect("a message serializes");
    assert_eq!(m["role"], "user", "{m}");
    m["content"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("a text message: {m}"))
        .to_string()
}

#[track_caller]
fn assert_mentions(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle} in:\n{text}");
    }
}

async fn complete_prompt(
    s: &McpServer,
    prompt: &str,
    arg: &str,
    value: &str,
) -> Result<CompleteResult, ServiceError> {
    let params =
        CompleteRequestParams::new(Reference::for_prompt(prompt), ArgumentInfo::new(arg, value));
    s.client.peer().complete(params).await
}

async fn read(s: &McpServer, uri: &str) -> Result<Value, ServiceError> {
    let r = s
        .client
        .peer()
        .read_resource(ReadResourceRequestParams::new(uri))
        .await?;
    assert_eq!(r.contents.len(), 1, "one content: {r:?}");
    match &r.contents[0] {
        ResourceContents::TextResourceContents {
            uri: got,
            mime_type,
            text,
            ..
        } => {
            assert_eq!(got, uri);
            assert_eq!(mime_type.as_deref(), Some("application/json"));
            Ok(serde_json::from_str(text).expect("the resource is JSON"))
        }
        other => panic!("a text resource: {other:?}"),
    }
}

/// Asserts SEP-2164's "resource not found": -32602 with `data.uri`.
#[track_caller]
fn assert_not_found(e: &ErrorData, uri: &str) {
    assert_eq!(e.code.0, -32602, "{e:?}");
    assert_eq!(
        e.data.as_ref().and_then(|d| d.get("uri")),
        Some(&json!(uri)),
        "{e:?}"
    );
    assert!(e.message.contains("resource not found"), "{e:?}");
}

async fn wait<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(std::time::Duration::from_secs(20), f)
        .await
        .expect("the request is answered within 20 s")
}

// ---- prompts --------------------------------------------------------------------------------

#[tokio::test]
async fn prompts_list_offers_the_three_prompts_with_their_arguments() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    let info = s.client.peer_info().expect("initialize result");
    assert!(info.capabilities.prompts.is_some(), "prompts capability");
    assert!(
        info.capabilities.resources.is_some(),
        "resources capability"
    );
    assert!(
        info.capabilities.completions.is_some(),
        "completions capability"
    );
    let list = wait(s.client.peer().list_prompts(None))
        .await
        .expect("prompts/list");
    // A 2025-11-25 session gets no cache hints (they are 2026-07-28 fields).
    assert_eq!((list.ttl_ms, list.cache_scope), (None, None));
    let listed: Vec<(String, Vec<(String, bool)>)> = list
        .prompts
        .iter()
        .map(|p| {
            let args = p
                .arguments
                .iter()
                .flatten()
                .map(|a| (a.name.clone(), a.required == Some(true)))
                .collect();
            (p.name.clone(), args)
        })
        .collect();
    let expect = |name: &str, args: &[(&str, bool)]| {
        (
            name.to_string(),
            args.iter()
                .map(|(a, r)| (a.to_string(), *r))
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        listed,
        vec![
            expect("message_someone", &[("person", true), ("message", true)]),
            expect("summarize_chat", &[("chat", true), ("since", false)]),
            expect("who_is", &[("person", true)]),
        ]
    );
    for p in &list.prompts {
        assert!(p.title.is_some() && p.description.is_some(), "{p:?}");
        for a in p.arguments.iter().flatten() {
            assert!(a.description.is_some(), "{}.{}", p.name, a.name);
        }
    }
}

#[tokio::test]
async fn summarize_chat_tells_the_assistant_to_find_the_chat_and_read_it_with_list_messages() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    let r = wait(get_prompt(
        &s,
        "summarize_chat",
        json!({"chat": PERCEPTION_CHAT_NAME, "since": "7d"}),
    ))
    .await
    .expect("prompts/get");
    assert!(r.description.is_some());
    let text = prompt_text(&r);
    assert_mentions(
        &text,
        &[
            "\"Perception standup\"",
            "search_chats",
            "list_chats",
            "list_messages",
            "since \"7d\"",
            "Decisions",
            "Open questions",
            "Action items",
            "owner",
        ],
    );

    // By id: no lookup step, and the default window.
    let r = wait(get_prompt(
        &s,
        "summarize_chat",
        json!({"chat": PERCEPTION_CHAT_ID}),
    ))
    .await
    .expect("prompts/get");
    let text = prompt_text(&r);
    assert!(text.contains(PERCEPTION_CHAT_ID), "{text}");
    assert!(text.contains("since \"24h\""), "{text}");
    assert!(!text.contains("search_chats"), "{text}");
    // Nothing was read from Lark to build a prompt.
    assert_eq!(sbx.state().count("list_messages"), 0);
}

#[tokio::test]
async fn message_someone_and_who_is_resolve_an_email_and_send_only_after_confirmation() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    let r = wait(get_prompt(
        &s,
        "message_someone",
        json!({"person": ZHANG_WEI_EMAIL, "message": "The demo moved to 3pm.\nBring the robot."}),
    ))
    .await
    .expect("prompts/get");
    let text = prompt_text(&r);
    assert_mentions(
        &text,
        &[
            "lookup_user_by_email",
            ZHANG_WEI_EMAIL,
            "send_message",
            "confirm",
            // The user's text is carried as a JSON string, line break escaped.
            "\"The demo moved to 3pm.\\nBring the robot.\"",
        ],
    );

    let r = wait(get_prompt(&s, "who_is", json!({"person": ZHANG_WEI_EMAIL})))
        .await
        .expect("prompts/get");
    let text = prompt_text(&r);
    assert_mentions(
        &text,
        &[
            "lookup_user_by_email",
            "get_user",
            "department",
            "job title",
            "manager",
            "email",
        ],
    );
    let r = wait(get_prompt(&s, "who_is", json!({"person": ZHANG_WEI})))
        .await
        .expect("prompts/get");
    let text = prompt_text(&r);
    assert!(
        text.contains(ZHANG_WEI) && text.contains("get_user"),
        "{text}"
    );
    assert!(
        !text.contains("lookup_user_by_email"),
        "an open_id needs no lookup: {text}"
    );
    // Nothing is sent by fetching a prompt.
    assert_eq!(sbx.state().count("send_message"), 0);
}

#[tokio::test]
async fn bad_prompt_requests_are_32602_naming_what_is_wrong() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    let e = rpc_error(wait(get_prompt(&s, "summarize_chat", json!({"since": "7d"}))).await);
    assert_eq!(e.code.0, -32602, "{e:?}");
    assert!(
        e.message.contains("missing required argument `chat`"),
        "{e:?}"
    );
    assert_eq!(e.data, Some(json!({"argument": "chat"})));

    let e = rpc_error(
        wait(get_prompt(
            &s,
            "message_someone",
            json!({"person": ZHANG_WEI_EMAIL}),
        ))
        .await,
    );
    assert!(e.message.contains("`message`"), "{e:?}");

    let e = rpc_error(wait(get_prompt(&s, "no_such_prompt", json!({}))).await);
    assert_eq!(e.code.0, -32602, "{e:?}");
    assert!(
        e.message.contains("unknown prompt `no_such_prompt`"),
        "{e:?}"
    );

    for (args, named) in [
        (json!({"chat": 42}), "chat"),
        (json!({"chat": "x".repeat(10_000)}), "chat"),
        (json!({"chat": "a\u{0}b"}), "chat"),
        (json!({"chat": "Random", "since": "whenever"}), "since"),
        (json!({"chat": "Random", "channel": "x"}), "channel"),
    ] {
        let e = rpc_error(wait(get_prompt(&s, "summarize_chat", args.clone())).await);
        assert_eq!(e.code.0, -32602, "{args}: {e:?}");
        assert!(e.message.contains(&format!("`{named}`")), "{args}: {e:?}");
    }
    // Still serving.
    wait(get_prompt(&s, "summarize_chat", json!({"chat": "Random"})))
        .await
        .expect("prompts/get after bad ones");
}

// ---- completion -----------------------------------------------------------------------------

#[tokio::test]
async fn chat_completion_offers_the_bots_chat_names_and_lists_them_once() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    let r = wait(complete_prompt(&s, "summarize_chat", "chat", "perc"))
        .await
        .expect("completion/complete");
    assert_eq!(r.completion.values, [PERCEPTION_CHAT_NAME]);
    assert_eq!(r.completion.total, Some(1));
    assert_eq!(r.completion.has_more, Some(false));

    // Prefix matches first, then names containing the text (in Lark's order); case is ignored.
    let r = wait(complete_prompt(&s, "summarize_chat", "chat", "IN"))
        .await
        .expect("completion/complete");
    assert_eq!(
        r.completion.values,
        [
            "Incident war room",
            "全员群 Northwind All Hands",
            "销售战报 Sales Wins"
        ]
    );
    assert_eq!(r.completion.total, Some(3));

    // Everything, for an empty value: the bot's nine chats (not HR private, which it is not in).
    let r = wait(complete_prompt(&s, "summarize_chat", "chat", ""))
        .await
        .expect("completion/complete");
    assert_eq!(r.completion.total, Some(9), "{r:?}");
    assert!(!r.completion.values.iter().any(|v| v == "HR private"));

    // An id prefix completes ids.
    let r = wait(complete_prompt(&s, "summarize_chat", "chat", "oc_41913"))
        .await
        .expect("completion/complete");
    assert_eq!(r.completion.values, [PERCEPTION_CHAT_ID]);

    // One listing served every keystroke (cached for a minute).
    assert_eq!(sbx.state().count("list_chats"), 1);
}

#[tokio::test]
async fn since_and_chat_id_complete_and_unknown_references_are_32602() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    let r = wait(complete_prompt(&s, "summarize_chat", "since", ""))
        .await
        .expect("completion/complete");
    assert_eq!(r.completion.values, ["1h", "24h", "7d", "30d"]);
    let r = wait(complete_prompt(&s, "summarize_chat", "since", "2"))
        .await
        .expect("completion/complete");
    assert_eq!(r.completion.values, ["24h"]);

    let peer = s.client.peer();
    let r = wait(peer.complete(CompleteRequestParams::new(
        Reference::for_resource("lark://chats/{chat_id}"),
        ArgumentInfo::new("chat_id", "oc_4191"),
    )))
    .await
    .expect("completion/complete");
    assert_eq!(r.completion.values, [PERCEPTION_CHAT_ID]);
    // A name's words find the id too.
    let r = wait(peer.complete(CompleteRequestParams::new(
        Reference::for_resource("lark://chats/{chat_id}"),
        ArgumentInfo::new("chat_id", "standup"),
    )))
    .await
    .expect("completion/complete");
    assert_eq!(r.completion.values, [PERCEPTION_CHAT_ID]);

    let e = rpc_error(wait(complete_prompt(&s, "no_such_prompt", "chat", "x")).await);
    assert_eq!(e.code.0, -32602, "{e:?}");
    let e = rpc_error(wait(complete_prompt(&s, "summarize_chat", "nope", "x")).await);
    assert_eq!(e.code.0, -32602, "{e:?}");
    let e = rpc_error(
        wait(peer.complete(CompleteRequestParams::new(
            Reference::for_resource("lark://nowhere/{id}"),
            ArgumentInfo::new("id", "x"),
        )))
        .await,
    );
    assert_eq!(e.code.0, -32602, "{e:?}");
    assert_eq!(e.data, Some(json!({"uri": "lark://nowhere/{id}"})));
}

#[tokio::test]
async fn a_lark_failure_completes_with_nothing_instead_of_an_error() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    sbx.state().add_fault(
        FaultRule::new(FaultAction::LarkError {
            code: 232014,
            msg: "no permission".into(),
            status: 400,
        })
        .path("/open-apis/im/v1/chats"),
    );
    let r = wait(complete_prompt(&s, "summarize_chat", "chat", "perc"))
        .await
        .expect("completion/complete answers despite Lark");
    assert!(r.completion.values.is_empty(), "{r:?}");
    assert_eq!(r.completion.total, Some(0));
    // The failure is remembered briefly: typing on does not hammer Lark.
    wait(complete_prompt(&s, "summarize_chat", "chat", "perce"))
        .await
        .expect("completion/complete");
    assert_eq!(sbx.state().count("list_chats"), 1);
}

// ---- resources ------------------------------------------------------------------------------

#[tokio::test]
async fn resources_and_templates_are_listed() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    let peer = s.client.peer();
    let r = wait(peer.list_resources(None))
        .await
        .expect("resources/list");
    let uris: Vec<&str> = r.resources.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(uris, ["lark://app/status"]);
    assert_eq!(
        r.resources[0].mime_type.as_deref(),
        Some("application/json")
    );
    let t = wait(peer.list_resource_templates(None))
        .await
        .expect("resources/templates/list");
    let templates: Vec<&str> = t
        .resource_templates
        .iter()
        .map(|t| t.uri_template.as_str())
        .collect();
    assert_eq!(
        templates,
        ["lark://chats/{chat_id}", "lark://users/{open_id}"]
    );
    for t in &t.resource_templates {
        assert_eq!(t.mime_type.as_deref(), Some("application/json"), "{t:?}");
        assert!(t.description.is_some(), "{t:?}");
    }
}

#[tokio::test]
async fn reading_a_resource_returns_what_its_tool_returns() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    let status = wait(read(&s, "lark://app/status"))
        .await
        .expect("the status");
    assert_eq!(status, s.ok("get_app_status", json!({})).await);
    assert_eq!(status["app_id"], APP_ID);

    let uri = format!("lark://users/{ZHANG_WEI}");
    let user = wait(read(&s, &uri)).await.expect("the user");
    assert_eq!(user, s.ok("get_user", json!({"user_id": ZHANG_WEI})).await);
    assert_eq!(user["email"], ZHANG_WEI_EMAIL);

    let uri = format!("lark://chats/{ALL_HANDS_CHAT}");
    let chat = wait(read(&s, &uri)).await.expect("the chat");
    assert_eq!(
        chat,
        s.ok("get_chat", json!({"chat_id": ALL_HANDS_CHAT})).await
    );
    assert_eq!(chat["bot_is_member"], true);
}

#[tokio::test]
async fn unknown_uris_and_ids_are_32602_with_data_uri() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &[]).await;
    for uri in [
        "lark://nothing/here".to_string(),
        "file:///etc/passwd".to_string(),
        "lark://app/status?x=1".to_string(),
        // Ids Lark does not know.
        "lark://users/ou_0000000000000000000000000000dead".to_string(),
        "lark://chats/oc_0000000000000000000000000000dead".to_string(),
        // Not the id the template takes, or more than one segment.
        format!("lark://users/{ZHANG_WEI_EMAIL}"),
        format!("lark://users/{ZHANG_WEI}/extra"),
        // An encoded traversal stays one (unknown) id.
        "lark://users/ou_x%2F..%2F..%2Fdepartments%2F0".to_string(),
        format!("lark://users/ou_{}", "a".repeat(300)),
    ] {
        let e = rpc_error(wait(read(&s, &uri)).await);
        assert_not_found(&e, &uri);
    }
    // An outsider of the contact range is as unknown as a stranger.
    let uri = format!("lark://users/{XUE_MING}");
    let e = rpc_error(wait(read(&s, &uri)).await);
    assert_not_found(&e, &uri);
    // Still serving.
    wait(read(&s, &format!("lark://users/{ZHANG_WEI}")))
        .await
        .expect("a read after bad ones");
}

// ---- policy -----------------------------------------------------------------------------------

#[tokio::test]
async fn hidden_tools_hide_their_prompts_and_resources() {
    let sbx = Sbx::start().await;
    let s = McpServer::start(&sbx, &["--toolsets", "contact"]).await;
    let peer = s.client.peer();
    let prompts: Vec<String> = wait(peer.list_prompts(None))
        .await
        .expect("prompts/list")
        .prompts
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(prompts, ["who_is"]);
    let e = rpc_error(wait(get_prompt(&s, "summarize_chat", json!({"chat": "Random"}))).await);
    assert_eq!(e.code.0, -32602, "{e:?}");
    assert!(e.message.contains("not available"), "{e:?}");
    let e = rpc_error(wait(complete_prompt(&s, "summarize_chat", "chat", "R")).await);
    assert_eq!(e.code.0, -32602, "{e:?}");

    let t = wait(peer.list_resource_templates(None))
        .await
        .expect("resources/templates/list");
    let templates: Vec<&str> = t
        .resource_templates
        .iter()
        .map(|t| t.uri_template.as_str())
        .collect();
    assert_eq!(templates, ["lark://users/{open_id}"]);
    // The meta toolset is not selected either: no status resource.
    let r = wait(peer.list_resources(None))
        .await
        .expect("resources/list");
    assert!(r.resources.is_empty(), "{r:?}");
    for uri in [
        format!("lark://chats/{ALL_HANDS_CHAT}"),
        "lark://app/status".to_string(),
    ] {
        let e = rpc_error(wait(read(&s, &uri)).await);
        assert_not_found(&e, &uri);
    }
    assert_eq!(sbx.state().count("get_chat"), 0);
    assert!(
        wait(read(&s, &format!("lark://users/{ZHANG_WEI}")))
            .await
            .is_ok()
    );

    // Read-only hides the prompt that sends.
    let ro = McpServer::start(&sbx, &["--read-only"]).await;
    let prompts: Vec<String> = wait(ro.client.peer().list_prompts(None))
        .await
        .expect("prompts/list")
        .prompts
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(prompts, ["summarize_chat", "who_is"]);
}

// ---- HTTP, 2026-07-28 -------------------------------------------------------------------------

/// One stateless 2026-07-28 request with its routing headers; the JSON-RPC response.
async fn stateless(
    srv: &HttpServer,
    id: u64,
    method: &str,
    name: Option<&str>,
    params: Value,
) -> Value {
    let mut params = obj(params);
    params.insert(
        "_meta".into(),
        json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }),
    );
    let mut c = srv
        .mcp()
        .with_header("mcp-protocol-version", "2026-07-28")
        .with_header("mcp-method", method);
    if let Some(n) = name {
        c = c.with_header("mcp-name", n);
    }
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let reply = c.send(c.post(&body)).await;
    assert!(
        reply.header("mcp-session-id").is_none(),
        "no session in this era"
    );
    reply.response(id).clone()
}

#[tokio::test]
async fn http_2026_07_28_results_carry_cache_hints() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(&sbx.base, &["--scope-refresh-secs", "42"]).await;

    // The lists change only when the scopes are re-read: they may be kept that long.
    for (id, method) in [
        (1, "prompts/list"),
        (2, "resources/list"),
        (3, "resources/templates/list"),
        (4, "tools/list"),
    ] {
        let r = stateless(&srv, id, method, None, json!({})).await;
        let result = &r["result"];
        assert_eq!(result["resultType"], "complete", "{method}: {r}");
        assert_eq!(result["cacheScope"], "public", "{method}: {r}");
        assert_eq!(result["ttlMs"], 42_000, "{method}: {r}");
    }
    let r = stateless(&srv, 1, "prompts/list", None, json!({})).await;
    assert_eq!(
        r["result"]["prompts"].as_array().map(Vec::len),
        Some(3),
        "{r}"
    );

    // Reads of tenant data: private and short-lived.
    let r = stateless(
        &srv,
        4,
        "resources/read",
        Some("lark://app/status"),
        json!({"uri": "lark://app/status"}),
    )
    .await;
    let result = &r["result"];
    assert_eq!(result["resultType"], "complete", "{r}");
    assert_eq!(result["cacheScope"], "private", "{r}");
    assert_eq!(result["ttlMs"], 10_000, "{r}");
    let status: Value =
        serde_json::from_str(result["contents"][0]["text"].as_str().expect("text")).expect("JSON");
    assert_eq!(status["app_id"], common::http::DEMO_APP_ID);

    let uri = format!("lark://users/{ZHANG_WEI}");
    let r = stateless(&srv, 5, "resources/read", Some(&uri), json!({"uri": uri})).await;
    assert_eq!(r["result"]["cacheScope"], "private", "{r}");
    assert_eq!(r["result"]["ttlMs"], 30_000, "{r}");

    let uri = "lark://users/ou_0000000000000000000000000000dead";
    let r = stateless(&srv, 6, "resources/read", Some(uri), json!({"uri": uri})).await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert_eq!(r["error"]["data"]["uri"], uri, "{r}");

    let r = stateless(
        &srv,
        7,
        "prompts/get",
        Some("summarize_chat"),
        json!({"name": "summarize_chat", "arguments": {"chat": PERCEPTION_CHAT_NAME}}),
    )
    .await;
    assert_eq!(r["result"]["resultType"], "complete", "{r}");
    let text = r["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("list_messages"), "{r}");

    let r = stateless(
        &srv,
        8,
        "completion/complete",
        None,
        json!({"ref": {"type": "ref/prompt", "name": "summarize_chat"},
               "argument": {"name": "chat", "value": "Perc"}}),
    )
    .await;
    assert_eq!(r["result"]["resultType"], "complete", "{r}");
    assert_eq!(
        r["result"]["completion"]["values"],
        json!([PERCEPTION_CHAT_NAME]),
        "{r}"
    );
}
