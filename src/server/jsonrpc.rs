//! JSON-RPC 2.0 checks in front of rmcp, for stdio and HTTP alike.
//!
//! rmcp drops a line it cannot parse, so the client waits forever; it answers a malformed
//! request without the request's `id`, and a known method whose params do not fit is
//! taken for an unknown one. [`classify`] looks at each incoming message first, so that a
//! request always gets an answer carrying its `id` (`null` when none can be read), a
//! notification or a response never gets one, and rmcp only sees what it can handle.

use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::RoleServer;
// rmcp still parses the deprecated methods into types of their own.
#[allow(deprecated)]
use rmcp::model::{
    CallToolRequest, CallToolRequestMethod, CancelTaskMethod, CancelTaskRequest,
    CancelledNotification, CancelledNotificationMethod, ClientNotification, ClientRequest,
    CompleteRequest, CompleteRequestMethod, ConstString, DiscoverRequest, DiscoverRequestMethod,
    ErrorCode, GetPromptRequest, GetPromptRequestMethod, GetSkillRequest, GetSkillRequestMethod,
    GetTaskMethod, GetTaskRequest, InitializeRequest, InitializeResultMethod,
    InitializedNotification, InitializedNotificationMethod, JsonRpcMessage, ListPromptsRequest,
    ListPromptsRequestMethod, ListResourceTemplatesRequest, ListResourceTemplatesRequestMethod,
    ListResourcesRequest, ListResourcesRequestMethod, ListSkillsRequest, ListSkillsRequestMethod,
    ListToolsRequest, ListToolsRequestMethod, PingRequest, PingRequestMethod, ProgressNotification,
    ProgressNotificationMethod, ReadResourceDirectoryRequest, ReadResourceDirectoryRequestMethod,
    ReadResourceRequest, ReadResourceRequestMethod, RequestId, RootsListChangedNotification,
    RootsListChangedNotificationMethod, SetLevelRequest, SetLevelRequestMethod, SubscribeRequest,
    SubscribeRequestMethod, SubscriptionsListenRequest, SubscriptionsListenRequestMethod,
    UnsubscribeRequest, UnsubscribeRequestMethod, UpdateTaskMethod, UpdateTaskRequest,
};
use rmcp::service::RxJsonRpcMessage;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// What to do with one incoming message.
#[derive(Debug)]
pub enum Verdict {
    /// Valid: hand it to rmcp.
    Forward(Box<RxJsonRpcMessage<RoleServer>>),
    /// Invalid, and an error response is owed: this one.
    Reply(Value),
    /// Invalid, but it was a notification or a response, which are never answered. The
    /// error says why (for logs, and for HTTP, which must answer every POST somehow).
    Ignore(Value),
}

/// A JSON-RPC error response. `id` is the request's own, or `null` when none could be read.
pub fn error_response(id: Value, code: ErrorCode, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code.0, "message": message.into()}})
}

/// serde's messages quote the offending value, which can be as long as the message: the
/// answer only needs its start.
fn brief(text: String) -> String {
    const MAX_CHARS: usize = 200;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Checks one raw message (a stdio line or an HTTP body) and parses it for rmcp.
pub fn classify(raw: &[u8]) -> Verdict {
    // serde_json's own limits make the parse error: nesting past 128, a lone surrogate,
    // a number beyond f64, invalid UTF-8.
    let value: Value = match serde_json::from_slice(raw) {
        Ok(v) => v,
        Err(e) => {
            return Verdict::Reply(error_response(
                Value::Null,
                ErrorCode::PARSE_ERROR,
                brief(format!("Parse error: {e}")),
            ));
        }
    };
    let obj = match &value {
        Value::Object(obj) => obj,
        // MCP 2025-06-18 removed batching; one answer with a null id, as for any non-object.
        Value::Array(_) => {
            return Verdict::Reply(error_response(
                Value::Null,
                ErrorCode::INVALID_REQUEST,
                "Invalid Request: batches are not supported",
            ));
        }
        _ => {
            return Verdict::Reply(error_response(
                Value::Null,
                ErrorCode::INVALID_REQUEST,
                "Invalid Request: a message must be a JSON object",
            ));
        }
    };
    let has_method = obj.contains_key("method");
    if !has_method && (obj.contains_key("result") || obj.contains_key("error")) {
        return response(&value, obj);
    }
    if has_method && !obj.contains_key("id") {
        return notification(&value, obj);
    }
    request(&value, obj)
}

/// The id to echo: only a string or a number can be one; anything else reads as `null`.
fn echoed_id(obj: &Map<String, Value>) -> Value {
    match obj.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        _ => Value::Null,
    }
}

/// Why this is not a well-formed request or notification, if it is not.
fn envelope_problem(obj: &Map<String, Value>, is_request: bool) -> Option<&'static str> {
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Some("Invalid Request: \"jsonrpc\" must be \"2.0\"");
    }
    if is_request {
        match obj.get("id") {
            None => return Some("Invalid Request: \"id\" is missing"),
            // rmcp's own reading, so that every id let through can be answered.
            Some(id) if RequestId::deserialize(id).is_err() => {
                return Some("Invalid Request: \"id\" must be a string or an integer");
            }
            Some(_) => {}
        }
    }
    match obj.get("method") {
        None => return Some("Invalid Request: \"method\" is missing"),
        Some(Value::String(_)) => {}
        Some(_) => return Some("Invalid Request: \"method\" must be a string"),
    }
    if obj.contains_key("result") || obj.contains_key("error") {
        return Some("Invalid Request: a request cannot carry \"result\" or \"error\"");
    }
    // MCP params are always an object. `null` is taken as absent: clients send it and
    // rmcp has always accepted it.
    match obj.get("params") {
        None | Some(Value::Null | Value::Object(_)) => None,
        Some(_) => Some("Invalid Request: \"params\" must be an object"),
    }
}

fn request(value: &Value, obj: &Map<String, Value>) -> Verdict {
    let id = echoed_id(obj);
    if let Some(why) = envelope_problem(obj, true) {
        return Verdict::Reply(error_response(id, ErrorCode::INVALID_REQUEST, why));
    }
    let method = obj
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if method == CallToolRequestMethod::VALUE
        && let Some(args) = obj.get("params").and_then(|p| p.get("arguments"))
        && !matches!(args, Value::Null | Value::Object(_))
    {
        return Verdict::Reply(error_response(
            id,
            ErrorCode::INVALID_PARAMS,
            "Invalid params: \"arguments\" must be an object",
        ));
    }
    let known = KNOWN_REQUESTS.iter().find(|(m, _)| *m == method);
    // A method this server does not serve is unknown whatever its params: judging them
    // would tell a 2026-07-28 client "invalid params" for a removed method.
    if let Some(why) = not_served(method, obj) {
        return Verdict::Reply(error_response(
            id,
            ErrorCode::METHOD_NOT_FOUND,
            format!("Method not found: {method} ({why})"),
        ));
    }
    let invalid_params = |check: Check| {
        let why = check(&method_and_params(obj)).unwrap_or_else(|| "does not fit".into());
        Verdict::Reply(error_response(
            id.clone(),
            ErrorCode::INVALID_PARAMS,
            brief(format!("Invalid params for {method}: {why}")),
        ))
    };
    match RxJsonRpcMessage::<RoleServer>::deserialize(value) {
        // rmcp takes a known method whose params do not fit for a custom one, and then
        // answers "method not found".
        Ok(JsonRpcMessage::Request(r)) => match (&r.request, known) {
            (ClientRequest::CustomRequest(_), Some((_, check))) => invalid_params(*check),
            _ => Verdict::Forward(Box::new(JsonRpcMessage::Request(r))),
        },
        Ok(_) => Verdict::Reply(error_response(
            id,
            ErrorCode::INVALID_REQUEST,
            "Invalid Request: not a request",
        )),
        Err(e) => match known {
            Some((_, check)) => invalid_params(*check),
            None => Verdict::Reply(error_response(
                id,
                ErrorCode::METHOD_NOT_FOUND,
                brief(format!("Method not found: {method} ({e})")),
            )),
        },
    }
}

fn notification(value: &Value, obj: &Map<String, Value>) -> Verdict {
    let ignore =
        |code: ErrorCode, why: String| Verdict::Ignore(error_response(Value::Null, code, why));
    if let Some(why) = envelope_problem(obj, false) {
        return ignore(ErrorCode::INVALID_REQUEST, why.into());
    }
    let method = obj
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let known = KNOWN_NOTIFICATIONS.iter().find(|(m, _)| *m == method);
    let invalid_params = |check: Check| {
        let why = check(&method_and_params(obj)).unwrap_or_else(|| "does not fit".into());
        ignore(
            ErrorCode::INVALID_PARAMS,
            brief(format!("Invalid params for {method}: {why}")),
        )
    };
    match RxJsonRpcMessage::<RoleServer>::deserialize(value) {
        Ok(JsonRpcMessage::Notification(n)) => match (&n.notification, known) {
            (ClientNotification::CustomNotification(_), Some((_, check))) => invalid_params(*check),
            _ => Verdict::Forward(Box::new(JsonRpcMessage::Notification(n))),
        },
        Ok(_) => ignore(
            ErrorCode::INVALID_REQUEST,
            "Invalid Request: not a notification".into(),
        ),
        Err(e) => match known {
            Some((_, check)) => invalid_params(*check),
            None => ignore(
                ErrorCode::INVALID_REQUEST,
                brief(format!("Invalid Request: {e}")),
            ),
        },
    }
}

/// The first protocol revision without sessions (SEP-2575).
const STATELESS_REVISION: &str = "2026-07-28";

/// Whether a request's `_meta` (or, over HTTP, its `MCP-Protocol-Version` header) names
/// the stateless revision or a later one. Revisions are dates, so they order as strings.
fn is_stateless_revision(version: &str) -> bool {
    version >= STATELESS_REVISION
}

fn meta_revision(obj: &Map<String, Value>) -> Option<&str> {
    obj.get("params")?
        .get("_meta")?
        .get("io.modelcontextprotocol/protocolVersion")?
        .as_str()
}

/// Why this server never answers `method` (for this request's revision), if it does not.
fn not_served(method: &str, obj: &Map<String, Value>) -> Option<&'static str> {
    #[allow(deprecated)]
    const NEVER: &[(&str, &str)] = &[
        (GetTaskMethod::VALUE, "the tasks extension is not offered"),
        (
            UpdateTaskMethod::VALUE,
            "the tasks extension is not offered",
        ),
        (
            CancelTaskMethod::VALUE,
            "the tasks extension is not offered",
        ),
        (
            ListSkillsRequestMethod::VALUE,
            "the skills extension is not offered",
        ),
        (
            GetSkillRequestMethod::VALUE,
            "the skills extension is not offered",
        ),
        (
            ReadResourceDirectoryRequestMethod::VALUE,
            "the skills extension is not offered",
        ),
    ];
    // Sessions subscribe with resources/subscribe (the handler says whether it is
    // offered); 2026-07-28 names URIs in subscriptions/listen instead.
    #[allow(deprecated)]
    const REMOVED_IN_2026: &[&str] = &[
        SubscribeRequestMethod::VALUE,
        UnsubscribeRequestMethod::VALUE,
        InitializeResultMethod::VALUE,
        PingRequestMethod::VALUE,
        SetLevelRequestMethod::VALUE,
    ];
    if let Some((_, why)) = NEVER.iter().find(|(m, _)| *m == method) {
        return Some(why);
    }
    let stateless = meta_revision(obj).is_some_and(is_stateless_revision);
    (stateless && REMOVED_IN_2026.contains(&method)).then_some("removed in MCP 2026-07-28")
}

/// A client's answer to a server request. Answering an answer could ping-pong errors
/// between the peers, so an invalid one is only ignored.
fn response(value: &Value, obj: &Map<String, Value>) -> Verdict {
    let ignore = |why: String| {
        Verdict::Ignore(error_response(
            Value::Null,
            ErrorCode::INVALID_REQUEST,
            format!("Invalid Request: {why}"),
        ))
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return ignore("\"jsonrpc\" must be \"2.0\"".into());
    }
    match RxJsonRpcMessage::<RoleServer>::deserialize(value) {
        Ok(m @ (JsonRpcMessage::Response(_) | JsonRpcMessage::Error(_))) => {
            Verdict::Forward(Box::new(m))
        }
        Ok(_) => ignore("not a response".into()),
        Err(e) => ignore(brief(e.to_string())),
    }
}

/// Why the message does not deserialize as the method's own type, if it does not.
type Check = fn(&Value) -> Option<String>;

fn mismatch<T: DeserializeOwned>(v: &Value) -> Option<String> {
    T::deserialize(v).err().map(|e| e.to_string())
}

/// What rmcp's typed message reads, without the envelope around it.
fn method_and_params(obj: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for key in ["method", "params"] {
        if let Some(v) = obj.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// The requests rmcp parses into a type of their own: one that falls through to
/// `CustomRequest` had params that do not fit.
#[allow(deprecated)]
const KNOWN_REQUESTS: &[(&str, Check)] = &[
    (PingRequestMethod::VALUE, mismatch::<PingRequest>),
    (InitializeResultMethod::VALUE, mismatch::<InitializeRequest>),
    (DiscoverRequestMethod::VALUE, mismatch::<DiscoverRequest>),
    (CompleteRequestMethod::VALUE, mismatch::<CompleteRequest>),
    (SetLevelRequestMethod::VALUE, mismatch::<SetLevelRequest>),
    (GetPromptRequestMethod::VALUE, mismatch::<GetPromptRequest>),
    (
        ListPromptsRequestMethod::VALUE,
        mismatch::<ListPromptsRequest>,
    ),
    (
        ListResourcesRequestMethod::VALUE,
        mismatch::<ListResourcesRequest>,
    ),
    (
        ListResourceTemplatesRequestMethod::VALUE,
        mismatch::<ListResourceTemplatesRequest>,
    ),
    (
        ReadResourceRequestMethod::VALUE,
        mismatch::<ReadResourceRequest>,
    ),
    (
        SubscriptionsListenRequestMethod::VALUE,
        mismatch::<SubscriptionsListenRequest>,
    ),
    (SubscribeRequestMethod::VALUE, mismatch::<SubscribeRequest>),
    (
        UnsubscribeRequestMethod::VALUE,
        mismatch::<UnsubscribeRequest>,
    ),
    (CallToolRequestMethod::VALUE, mismatch::<CallToolRequest>),
    (ListToolsRequestMethod::VALUE, mismatch::<ListToolsRequest>),
    (GetTaskMethod::VALUE, mismatch::<GetTaskRequest>),
    (UpdateTaskMethod::VALUE, mismatch::<UpdateTaskRequest>),
    (CancelTaskMethod::VALUE, mismatch::<CancelTaskRequest>),
    (
        ListSkillsRequestMethod::VALUE,
        mismatch::<ListSkillsRequest>,
    ),
    (GetSkillRequestMethod::VALUE, mismatch::<GetSkillRequest>),
    (
        ReadResourceDirectoryRequestMethod::VALUE,
        mismatch::<ReadResourceDirectoryRequest>,
    ),
];

/// The same for notifications, which fall through to `CustomNotification`.
const KNOWN_NOTIFICATIONS: &[(&str, Check)] = &[
    (
        CancelledNotificationMethod::VALUE,
        mismatch::<CancelledNotification>,
    ),
    (
        ProgressNotificationMethod::VALUE,
        mismatch::<ProgressNotification>,
    ),
    (
        InitializedNotificationMethod::VALUE,
        mismatch::<InitializedNotification>,
    ),
    (
        RootsListChangedNotificationMethod::VALUE,
        mismatch::<RootsListChangedNotification>,
    ),
];

// ---- HTTP ----------------------------------------------------------------------------------

fn rejection(status: StatusCode, error: Value) -> Response {
    (status, axum::Json(error)).into_response()
}

fn is_json(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split_once(';').map_or(v, |(e, _)| e);
            essence.trim().eq_ignore_ascii_case("application/json")
        })
}

/// For the HTTP guard, which has already read the body once (and capped it): a JSON POST
/// whose body is not a valid message gets 400 with the JSON-RPC error. Other requests pass,
/// so rmcp still answers for content types and the like.
pub fn reject_invalid_body(parts: &Parts, body: &[u8]) -> Option<Response> {
    if parts.method != Method::POST || !is_json(parts) {
        return None;
    }
    match classify(body) {
        Verdict::Forward(_) => None,
        Verdict::Reply(error) | Verdict::Ignore(error) => {
            tracing::debug!(error = %error, "invalid JSON-RPC body");
            // 2026-07-28 gives an unknown method its own status; sessions keep 400, which
            // older clients do not mistake for an expired session.
            let stateless = parts
                .headers
                .get("mcp-protocol-version")
                .and_then(|v| v.to_str().ok())
                .is_some_and(is_stateless_revision);
            let status = if stateless && error["error"]["code"] == ErrorCode::METHOD_NOT_FOUND.0 {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            Some(rejection(status, error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(raw: impl AsRef<[u8]>) -> Verdict {
        classify(raw.as_ref())
    }

    /// (code, id) of the error response owed; panics on anything else.
    #[track_caller]
    fn reply(raw: impl AsRef<[u8]>) -> (i64, Value) {
        match verdict(raw) {
            Verdict::Reply(e) => {
                assert_eq!(e["jsonrpc"], "2.0", "{e}");
                assert!(e["error"]["message"].is_string(), "{e}");
                let code = e["error"]["code"].as_i64().unwrap_or_default();
                (code, e.get("id").cloned().unwrap_or(json!("<absent>")))
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[track_caller]
    fn ignored(raw: impl AsRef<[u8]>) -> i64 {
        match verdict(raw) {
            Verdict::Ignore(e) => e["error"]["code"].as_i64().unwrap_or_default(),
            other => panic!("expected no reply, got {other:?}"),
        }
    }

    #[track_caller]
    fn forwarded(raw: impl AsRef<[u8]>) -> RxJsonRpcMessage<RoleServer> {
        match verdict(raw) {
            Verdict::Forward(m) => *m,
            other => panic!("expected a valid message, got {other:?}"),
        }
    }

    #[test]
    fn unparsable_input_is_a_parse_error_with_a_null_id() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let deep_in_params = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"a":{}1{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let mut bad_utf8 = br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":""#.to_vec();
        bad_utf8.extend_from_slice(b"\xff\xfe\"}}");
        for raw in [
            deep.into_bytes(),
            deep_in_params.into_bytes(),
            br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":"\ud800"}}"#.to_vec(),
            br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":1e400}}"#.to_vec(),
            br#"{"jsonrpc":"2.0","id":1,"#.to_vec(),
            bad_utf8,
            b"".to_vec(),
            b"not json".to_vec(),
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"} {}"#.to_vec(),
        ] {
            assert_eq!(
                reply(&raw),
                (-32700, Value::Null),
                "{}",
                String::from_utf8_lossy(&raw)
            );
        }
    }

    #[test]
    fn nesting_up_to_the_limit_parses() {
        let nested = format!("{}1{}", "[".repeat(120), "]".repeat(120));
        let raw = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"x/y","params":{{"a":{nested}}}}}"#);
        assert!(matches!(forwarded(raw), JsonRpcMessage::Request(_)));
    }

    #[test]
    fn batches_and_non_objects_are_invalid_requests_with_a_null_id() {
        for raw in [
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            "[]",
            "[1,2]",
            "1",
            r#""ping""#,
            "null",
            "{}",
        ] {
            assert_eq!(reply(raw), (-32600, Value::Null), "{raw}");
        }
    }

    #[test]
    fn malformed_requests_are_invalid_requests_with_their_id() {
        for (raw, id) in [
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}"#,
                json!(1),
            ),
            (
                r#"{"jsonrpc":"2.0","id":"a","method":"ping","params":"x"}"#,
                json!("a"),
            ),
            (r#"{"id":2,"method":"ping"}"#, json!(2)),
            (r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#, json!(3)),
            (r#"{"jsonrpc":2.0,"id":3,"method":"ping"}"#, json!(3)),
            (r#"{"jsonrpc":"2.0","id":4,"method":7}"#, json!(4)),
            (r#"{"jsonrpc":"2.0","id":4,"method":null}"#, json!(4)),
            (r#"{"jsonrpc":"2.0","id":5}"#, json!(5)),
            (
                r#"{"jsonrpc":"2.0","id":6,"method":"ping","result":{}}"#,
                json!(6),
            ),
            // Readable, so echoed, but not an id rmcp can answer.
            (r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, json!(1.5)),
            (
                r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}"#,
                json!(u64::MAX),
            ),
            // Not an id at all.
            (
                r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
                Value::Null,
            ),
            (
                r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
                Value::Null,
            ),
            (r#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#, Value::Null),
            (
                r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#,
                Value::Null,
            ),
        ] {
            assert_eq!(reply(raw), (-32600, id), "{raw}");
        }
    }

    #[test]
    fn tool_arguments_must_be_an_object() {
        for args in [r#""x""#, "[1]", "3", "true"] {
            let raw = format!(
                r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"get_user","arguments":{args}}}}}"#
            );
            assert_eq!(reply(&raw), (-32602, json!(9)), "{raw}");
        }
        for args in ["{}", "null"] {
            let raw = format!(
                r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"get_user","arguments":{args}}}}}"#
            );
            assert!(
                matches!(
                    forwarded(&raw),
                    JsonRpcMessage::Request(r) if matches!(r.request, ClientRequest::CallToolRequest(_))
                ),
                "{raw}"
            );
        }
    }

    #[test]
    fn known_methods_with_unfit_params_are_invalid_params() {
        for raw in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1}}"#,
        ] {
            match verdict(raw) {
                Verdict::Reply(e) => {
                    assert_eq!(
                        (e["error"]["code"].clone(), e["id"].clone()),
                        (json!(-32602), json!(1)),
                        "{raw}"
                    );
                    let msg = e["error"]["message"].as_str().unwrap_or_default();
                    assert!(msg.starts_with("Invalid params for "), "{msg}");
                }
                other => panic!("{raw}: {other:?}"),
            }
        }
    }

    #[test]
    fn methods_not_served_are_unknown_whatever_their_params() {
        let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
        for raw in [
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{{meta}}}}}"#),
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{{{meta}}}}}"#
            ),
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{{{meta}}}}}"#
            ),
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"resources/unsubscribe","params":{{{meta}}}}}"#
            ),
        ] {
            assert_eq!(reply(&raw), (-32601, json!(1)), "{raw}");
        }
        // Before 2026-07-28 they are served, so unfit params stay invalid params.
        for raw in [
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/unsubscribe","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25"}}}"#,
        ] {
            assert_eq!(reply(raw), (-32602, json!(1)), "{raw}");
        }
    }

    #[test]
    fn error_messages_stay_short() {
        let huge = "x".repeat(100_000);
        let raw = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": huge,
                       "clientInfo": {"name": "t", "version": "0"}}})
        .to_string();
        match verdict(&raw) {
            Verdict::Reply(e) => {
                let msg = e["error"]["message"].as_str().unwrap_or_default();
                assert_eq!(e["error"]["code"], -32602, "{msg}");
                assert!(msg.chars().count() <= 201, "{} chars", msg.len());
                assert!(msg.ends_with('…'), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_methods_go_to_rmcp() {
        let m = forwarded(r#"{"jsonrpc":"2.0","id":"q","method":"foo/bar","params":{"a":1}}"#);
        assert!(
            matches!(&m, JsonRpcMessage::Request(r) if matches!(&r.request, ClientRequest::CustomRequest(c) if c.method == "foo/bar")),
            "{m:?}"
        );
    }

    #[test]
    fn valid_messages_parse_as_rmcp_would() {
        let m = forwarded(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
        );
        assert!(
            matches!(&m, JsonRpcMessage::Request(r) if matches!(r.request, ClientRequest::InitializeRequest(_)) && r.id == RequestId::Number(1))
        );
        let m = forwarded(r#"{"jsonrpc":"2.0","id":"s","method":"ping","params":null}"#);
        assert!(
            matches!(&m, JsonRpcMessage::Request(r) if matches!(r.request, ClientRequest::PingRequest(_)))
        );
        let m = forwarded(
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_user","arguments":{"user_id":"x"},"_meta":{"progressToken":"t"}}}"#,
        );
        assert!(
            matches!(&m, JsonRpcMessage::Request(r) if matches!(r.request, ClientRequest::CallToolRequest(_)))
        );
        let m = forwarded(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert!(
            matches!(&m, JsonRpcMessage::Notification(n) if matches!(n.notification, ClientNotification::InitializedNotification(_)))
        );
        let m = forwarded(
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}"#,
        );
        assert!(
            matches!(&m, JsonRpcMessage::Notification(n) if matches!(n.notification, ClientNotification::CancelledNotification(_)))
        );
        let m = forwarded(r#"{"jsonrpc":"2.0","id":4,"result":{}}"#);
        assert!(matches!(m, JsonRpcMessage::Response(_)));
        let m = forwarded(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#);
        assert!(matches!(m, JsonRpcMessage::Error(_)));
        // Integral floats are integers to rmcp.
        let m = forwarded(r#"{"jsonrpc":"2.0","id":1.0,"method":"ping"}"#);
        assert!(matches!(&m, JsonRpcMessage::Request(r) if r.id == RequestId::Number(1)));
    }

    #[test]
    fn invalid_notifications_and_responses_get_no_reply() {
        for raw in [
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":[1]}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":"x"}"#,
            r#"{"method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"1.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","method":5}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized","error":{}}"#,
        ] {
            assert_eq!(ignored(raw), -32600, "{raw}");
        }
        for raw in [
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":{}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":"x"}}"#,
        ] {
            assert_eq!(ignored(raw), -32602, "{raw}");
        }
        for raw in [
            r#"{"id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":{},"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":"x"}"#,
        ] {
            assert_eq!(ignored(raw), -32600, "{raw}");
        }
    }
}
