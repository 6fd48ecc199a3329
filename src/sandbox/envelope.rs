//! Lark's `{code, msg, data}` envelope, its error object and the `X-Tt-Logid` header.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

pub const LOGID_HEADER: &str = "x-tt-logid";

/// What an endpoint handler produces on success.
pub enum Reply {
    /// `{"code":0,"msg":"success","data":…}`: almost every API.
    Data(Value),
    /// Fields merged into the top level next to `code`/`msg` (auth tokens, bot info).
    TopLevel(Map<String, Value>),
    /// Raw bytes (resource downloads), errors still use the JSON envelope.
    Binary {
        content_type: String,
        file_name: String,
        bytes: Vec<u8>,
    },
}

/// A Lark error as the platform sends it: HTTP status, `code`, `msg` and the `error` object.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub code: i64,
    pub msg: String,
    /// Extra members of the `error` object (`permission_violations`, `field_violations`, `helps`, …).
    pub error: Map<String, Value>,
    /// Extra response headers (rate-limit headers).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: u16, code: i64, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            msg: msg.into(),
            error: Map::new(),
            headers: Vec::new(),
        }
    }

    /// 99992402 with one `field_violations` entry: Lark's generic parameter validation failure.
    pub fn field(field: &str, value: &str, description: impl Into<String>) -> Self {
        let mut e = ApiError::new(400, codes::FIELD_VALIDATION, "field validation failed");
        e.error.insert(
            "field_violations".into(),
            json!([{"field": field, "value": value, "description": description.into()}]),
        );
        e
    }

    pub fn with_error(mut self, key: &str, value: Value) -> Self {
        self.error.insert(key.into(), value);
        self
    }
}

/// Lark codes the sandbox answers with. `[U]` marks values the reference could not pin;
/// they live here so there is one place to correct them.
pub mod codes {
    pub const FIELD_VALIDATION: i64 = 99992402;
    pub const TOKEN_MISSING: i64 = 99991661;
    pub const TOKEN_INVALID: i64 = 99991663;
    pub const APP_TOKEN_INVALID: i64 = 99991664;
    pub const USER_TOKEN_INVALID: i64 = 99991668;
    pub const TOKEN_MALFORMED: i64 = 99991671;
    pub const SCOPE_MISSING: i64 = 99991672;
    pub const USER_TOKEN_EXPIRED: i64 = 99991677;
    pub const USER_SCOPE_MISSING: i64 = 99991679;
    pub const RATE_LIMITED: i64 = 99991400;
    pub const NOT_FOUND_PATH: i64 = 99991201;
    pub const METHOD_MISMATCH: i64 = 99991301;
    pub const INVALID_PARAM: i64 = 10003;
    /// Wrong app secret on the internal token endpoint. [U] 10014 / 10015 / 99991543.
    pub const APP_SECRET_INVALID: i64 = 10014;
    pub const DEPT_OUT_OF_RANGE: i64 = 40004;
    pub const USER_OUT_OF_RANGE: i64 = 41050;
    /// Fetching the virtual root department directly. [U] 40157 / 40161.
    pub const ROOT_DEPT_NOT_FETCHABLE: i64 = 40157;
    /// "these … ids not existed". [U] the exact member of 99992351–99992381 per id kind.
    pub const OPEN_ID_NOT_EXIST: i64 = 99992351;
    pub const UNION_ID_NOT_EXIST: i64 = 99992352;
    pub const USER_ID_NOT_EXIST: i64 = 99992353;
    pub const DEPT_ID_NOT_EXIST: i64 = 99992354;
    pub const CHAT_ID_NOT_EXIST: i64 = 99992356;
    pub const GROUP_NOT_EXIST: i64 = 99992357;
    pub const MSG_INVALID_PARAM: i64 = 230001;
    pub const BOT_NOT_IN_CHAT: i64 = 230002;
    pub const BOT_NOT_ACTIVATED: i64 = 230006;
    pub const NO_AVAILABILITY: i64 = 230013;
    pub const SEND_RATE_LIMITED: i64 = 230020;
    pub const CONTENT_TOO_LONG: i64 = 230025;
    pub const APP_NOT_INSTALLED: i64 = 212100;

    // ---- im v1: messages (all HTTP 400) ----
    pub const MSG_RECALL_WINDOW_PASSED: i64 = 230009;
    pub const MSG_RECALLED: i64 = 230011;
    pub const BOT_NOT_SENDER: i64 = 230012;
    pub const TOPIC_NOT_EXIST: i64 = 230019;
    pub const NO_RECALL_PERMISSION: i64 = 230026;
    pub const LACK_PERMISSIONS: i64 = 230027;
    pub const CARD_UPDATE_WINDOW_PASSED: i64 = 230031;
    pub const READ_USERS_WINDOW_PASSED: i64 = 230033;
    pub const PIN_CHAT_NOT_EXIST: i64 = 230045;
    pub const PIN_RATE_LIMITED: i64 = 230047;
    pub const MSG_TYPE_NOT_SUPPORTED: i64 = 230054;
    pub const OPERATOR_NOT_SENDER: i64 = 230071;
    pub const EDIT_LIMIT_REACHED: i64 = 230072;
    /// A card without `config.update_multi: true`. [U] the sub-code Lark puts in `msg`.
    pub const CARD_CONTENT_FAILED: i64 = 230099;
    /// Also what an unknown (never existed) message id gets. [U] 230001 / 230110.
    pub const MSG_DELETED: i64 = 230110;

    // ---- im v1: reactions ----
    pub const REACTION_TYPE_INVALID: i64 = 231001;
    pub const REACTION_NO_PERMISSION: i64 = 231002;
    pub const REACTION_MSG_NOT_FOUND: i64 = 231003;
    pub const REACTION_NOT_OWN: i64 = 231007;
    pub const REACTION_NO_ACCESS: i64 = 231008;
    pub const REACTION_NOT_OF_MESSAGE: i64 = 231010;
    pub const REACTION_ID_INVALID: i64 = 231011;
    pub const REACTION_PAGE_TOKEN_INVALID: i64 = 231012;
    pub const REACTION_USER_ID_TYPE_INVALID: i64 = 231014;
    pub const REACTION_MSG_TYPE_NOT_SUPPORTED: i64 = 231017;

    // ---- im v1: chats ----
    pub const CHAT_INVALID_PARAM: i64 = 232001;
    pub const CHAT_ID_INVALID: i64 = 232006;
    pub const CHAT_TYPE_NOT_SUPPORTED: i64 = 232008;
    pub const CHAT_DISSOLVED: i64 = 232009;
    pub const OPERATOR_NOT_IN_CHAT: i64 = 232011;
    pub const CHAT_NO_PERMISSION: i64 = 232014;
    pub const MEMBER_ID_TYPE_INVALID: i64 = 232015;
    pub const NOT_CHAT_OWNER: i64 = 232017;
    pub const USERS_NOT_VISIBLE: i64 = 232024;
    pub const CHAT_BOT_NOT_ACTIVATED: i64 = 232025;
    pub const EXTERNAL_CHAT_FORBIDDEN: i64 = 232033;

    // ---- im v1: images and files ----
    pub const RES_INVALID_PARAM: i64 = 234001;
    pub const RES_FILE_NOT_IN_MSG: i64 = 234003;
    pub const RES_APP_NOT_IN_CHAT: i64 = 234004;
    /// Unknown image or file key. [U] for files (documented for images).
    pub const RES_NOT_FOUND: i64 = 234005;
    pub const RES_TOO_LARGE: i64 = 234006;
    pub const RES_BOT_NOT_ACTIVATED: i64 = 234007;
    pub const RES_NOT_SENDER: i64 = 234008;
    pub const RES_EMPTY: i64 = 234010;
    pub const RES_IMAGE_FORMAT: i64 = 234011;
    /// Cards, merge-forwards and (here) stickers. [U] stickers.
    pub const RES_MSG_TYPE_NOT_SUPPORTED: i64 = 234043;
}

/// `YYYYMMDDhhmmss` + 16 hex digits, the shape of Lark's log ids.
pub fn new_log_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}{:016X}",
        t / 3600,
        t % 3600 / 60,
        t % 60,
        fastrand::u64(..)
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn json_response(status: u16, log_id: &str, body: Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(log_id) {
        headers.insert(LOGID_HEADER, v);
    }
    resp
}

pub fn render_reply(reply: Reply, log_id: &str) -> Response {
    match reply {
        Reply::Data(data) => json_response(
            200,
            log_id,
            json!({"code": 0, "msg": "success", "data": data}),
        ),
        Reply::TopLevel(fields) => {
            let mut body = Map::new();
            body.insert("code".into(), json!(0));
            body.insert("msg".into(), json!("ok"));
            body.extend(fields);
            json_response(200, log_id, Value::Object(body))
        }
        Reply::Binary {
            content_type,
            file_name,
            bytes,
        } => {
            let mut resp = Response::new(Body::from(bytes));
            let headers = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                headers.insert(header::CONTENT_TYPE, v);
            }
            if let Ok(v) = HeaderValue::from_str(&content_disposition(&file_name)) {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
            if let Ok(v) = HeaderValue::from_str(log_id) {
                headers.insert(LOGID_HEADER, v);
            }
            resp
        }
    }
}

/// `attachment; filename="…"`, with an RFC 5987 `filename*` for names that are not ASCII
/// (header values must be visible ASCII, and Lark's file names are often Chinese).
fn content_disposition(file_name: &str) -> String {
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .filter(|c| *c != '"' && *c != '\\')
        .collect();
    if ascii == file_name {
        return format!("attachment; filename=\"{ascii}\"");
    }
    let encoded =
        percent_encoding::utf8_percent_encode(file_name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// `http200_codes` lists business errors this sandbox answers with HTTP 200 (as some Lark
/// APIs do), so clients are proven to decide on `code`, not on the status.
pub fn render_error(err: ApiError, log_id: &str, http200_codes: &[i64]) -> Response {
    let mut error = err.error;
    error.insert("log_id".into(), json!(log_id));
    error.insert(
        "troubleshooter".into(),
        json!(format!(
            "https://open.feishu.cn/search?from=openapi&log_id={log_id}&code={}",
            err.code
        )),
    );
    let status = if http200_codes.contains(&err.code) {
        200
    } else {
        err.status
    };
    let mut resp = json_response(
        status,
        log_id,
        json!({"code": err.code, "msg": err.msg, "error": error}),
    );
    for (name, value) in err.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_carry_the_utc_date() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
        assert_eq!(new_log_id().len(), 30);
    }

    #[test]
    fn content_disposition_keeps_non_ascii_names() {
        assert_eq!(
            content_disposition("a b.pdf"),
            "attachment; filename=\"a b.pdf\""
        );
        assert_eq!(
            content_disposition("方案.xlsx"),
            "attachment; filename=\"__.xlsx\"; filename*=UTF-8''%E6%96%B9%E6%A1%88%2Exlsx"
        );
        assert_eq!(
            content_disposition("x\"y.txt"),
            "attachment; filename=\"xy.txt\"; filename*=UTF-8''x%22y%2Etxt"
        );
    }
}
