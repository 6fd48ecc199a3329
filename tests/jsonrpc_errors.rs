//! Messages the JSON-RPC layer cannot take: every request gets an error carrying its id
//! (`null` when it cannot be read), notifications and responses get nothing, and the
//! session goes on. Over stdio (the real binary spoken to in raw lines) and over HTTP
//! (`/mcp` and the legacy `/message`).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::Sbx;
use common::http::{HttpServer, LATEST, LegacySession, McpClient, Reply, names};
use common::mcp::{Stderr, default_tools, serve_command};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

const WAIT: Duration = Duration::from_secs(10);

/// What a line must bring back.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// One error response with this code and this id.
    Error(i64, &'static str),
    /// Nothing at all.
    Nothing,
}

use Expect::{Error, Nothing};

const NULL: &str = "null";

fn deep_array(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

/// (what it is, the raw line without its `\n`, what must come back).
fn bad_lines() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let mut bad_utf8 = br#"{"jsonrpc":"2.0","id":5,"method":"ping","params":{"s":""#.to_vec();
    bad_utf8.extend_from_slice(b"\xff\xfe\xfd\"}}");
    let tool_call = |id: u32, args: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"get_user","arguments":{args}}}}}"#
        )
        .into_bytes()
    };
    vec![
        (
            "nesting 200 deep",
            deep_array(200).into_bytes(),
            Error(-32700, NULL),
        ),
        (
            "nesting 200 deep in params",
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"a":{}}}}}"#,
                deep_array(200)
            )
            .into_bytes(),
            Error(-32700, NULL),
        ),
        (
            "lone surrogate",
            br#"{"jsonrpc":"2.0","id":2,"method":"ping","params":{"s":"\ud800"}}"#.to_vec(),
            Error(-32700, NULL),
        ),
        (
            "number beyond f64",
            br#"{"jsonrpc":"2.0","id":3,"method":"ping","params":{"n":1e400}}"#.to_vec(),
            Error(-32700, NULL),
        ),
        (
            "truncated JSON",
            br#"{"jsonrpc":"2.0","id":4,"method":"pi"#.to_vec(),
            Error(-32700, NULL),
        ),
        ("invalid UTF-8", bad_utf8, Error(-32700, NULL)),
        ("a bare invalid byte", b"\xff".to_vec(), Error(-32700, NULL)),
        (
            "batch",
            br#"[{"jsonrpc":"2.0","id":6,"method":"ping"},{"jsonrpc":"2.0","id":7,"method":"ping"}]"#
                .to_vec(),
            Error(-32600, NULL),
        ),
        ("empty batch", b"[]".to_vec(), Error(-32600, NULL)),
        ("a number", b"42".to_vec(), Error(-32600, NULL)),
        (
            "params as an array",
            br#"{"jsonrpc":"2.0","id":8,"method":"ping","params":[1,2]}"#.to_vec(),
            Error(-32600, "8"),
        ),
        (
            "params as a string",
            br#"{"jsonrpc":"2.0","id":"p","method":"tools/list","params":"x"}"#.to_vec(),
            Error(-32600, r#""p""#),
        ),
        (
            "id null",
            br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#.to_vec(),
            Error(-32600, NULL),
        ),
        (
            "id an object",
            br#"{"jsonrpc":"2.0","id":{"n":9},"method":"ping"}"#.to_vec(),
            Error(-32600, NULL),
        ),
        (
            "id a fraction",
            br#"{"jsonrpc":"2.0","id":9.5,"method":"ping"}"#.to_vec(),
            Error(-32600, "9.5"),
        ),
        (
            "jsonrpc missing",
            br#"{"id":10,"method":"ping"}"#.to_vec(),
            Error(-32600, "10"),
        ),
        (
            "jsonrpc 1.0",
            br#"{"jsonrpc":"1.0","id":"eleven","method":"ping"}"#.to_vec(),
            Error(-32600, r#""eleven""#),
        ),
        (
            "method not a string",
            br#"{"jsonrpc":"2.0","id":12,"method":["ping"]}"#.to_vec(),
            Error(-32600, "12"),
        ),
        (
            "method missing",
            br#"{"jsonrpc":"2.0","id":13}"#.to_vec(),
            Error(-32600, "13"),
        ),
        (
            "tool arguments a string",
            tool_call(14, r#""user_id=ou_1""#),
            Error(-32602, "14"),
        ),
        (
            "tool arguments an array",
            tool_call(15, r#"["ou_1"]"#),
            Error(-32602, "15"),
        ),
        ("tool arguments a number", tool_call(16, "7"), Error(-32602, "16")),
        (
            "tools/call without params",
            br#"{"jsonrpc":"2.0","id":17,"method":"tools/call"}"#.to_vec(),
            Error(-32602, "17"),
        ),
        (
            "notification with params that do not fit",
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":{}}}"#
                .to_vec(),
            Nothing,
        ),
        (
            "notification with params as an array",
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":[1]}"#.to_vec(),
            Nothing,
        ),
        (
            "notification without jsonrpc",
            br#"{"method":"notifications/initialized"}"#.to_vec(),
            Nothing,
        ),
        (
            "notification whose method is not a string",
            br#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#.to_vec(),
            Nothing,
        ),
        (
            "response to nothing, malformed",
            br#"{"jsonrpc":"2.0","id":{},"result":{}}"#.to_vec(),
            Nothing,
        ),
    ]
}

// ---- stdio --------------------------------------------------------------------------------

/// The server spoken to in raw lines.
struct Wire {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Stderr,
    next_id: u64,
}

impl Wire {
    fn spawn(sbx: &Sbx) -> Wire {
        let mut cmd = serve_command(&sbx.base, &[], &[]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the server binary starts");
        let stderr = Stderr::default();
        stderr.collect(child.stderr.take().expect("stderr is piped"));
        Wire {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().expect("stdout is piped")).lines(),
            child,
            stderr,
            next_id: 1000,
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).await.expect("write to stdin");
        stdin.flush().await.expect("flush stdin");
    }

    async fn line(&mut self, raw: &[u8]) {
        let mut bytes = raw.to_vec();
        bytes.push(b'\n');
        self.write(&bytes).await;
    }

    /// The next stdout line, as JSON.
    async fn next(&mut self, what: &str) -> Value {
        let line = match tokio::time::timeout(WAIT, self.stdout.next_line()).await {
            Ok(Ok(Some(line))) => line,
            other => panic!(
                "{what}: no line on stdout ({other:?}); stderr:\n{}",
                self.stderr.text()
            ),
        };
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{what}: stdout line is not JSON ({e}): {line}"))
    }

    /// A ping answered next: nothing else was owed before it, and the session lives.
    async fn alive(&mut self, after: &str) {
        self.next_id += 1;
        let id = self.next_id;
        self.line(
            json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
                .to_string()
                .as_bytes(),
        )
        .await;
        let v = self.next(after).await;
        assert_eq!(
            (&v["id"], &v["result"]),
            (&json!(id), &json!({})),
            "after {after}, the next line should answer the ping: {v}"
        );
    }

    async fn check(&mut self, what: &str, raw: &[u8], expect: Expect) {
        self.line(raw).await;
        if let Error(code, id) = expect {
            let v = self.next(what).await;
            assert_error(what, &v, code, id);
        }
        self.alive(what).await;
    }

    async fn initialize(&mut self) {
        self.line(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": LATEST, "capabilities": {},
                "clientInfo": {"name": "jsonrpc-errors", "version": "0"}}})
            .to_string()
            .as_bytes(),
        )
        .await;
        let v = self.next("initialize").await;
        assert_eq!(v["id"], 1, "{v}");
        assert_eq!(v["result"]["protocolVersion"], LATEST, "{v}");
        self.line(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
    }

    /// Closes stdin; the exit code, within 5 s.
    async fn close(&mut self) -> Option<i32> {
        drop(self.stdin.take());
        match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(status) => status.expect("wait for the child").code(),
            Err(_) => panic!("still running after stdin closed"),
        }
    }
}

#[track_caller]
fn assert_error(what: &str, v: &Value, code: i64, id: &str) {
    let id: Value = serde_json::from_str(id).expect("the expected id is JSON");
    assert_eq!(v["jsonrpc"], "2.0", "{what}: {v}");
    assert_eq!(v["error"]["code"], code, "{what}: {v}");
    assert!(v["error"]["message"].is_string(), "{what}: {v}");
    assert!(v.get("result").is_none(), "{what}: {v}");
    // Present even when null: JSON-RPC requires the member.
    assert_eq!(v.get("id"), Some(&id), "{what}: {v}");
}

#[tokio::test]
async fn stdio_answers_bad_lines_before_and_after_initialize() {
    let sbx = Sbx::start().await;
    let mut w = Wire::spawn(&sbx);
    // Before initialize rmcp only takes ping and initialize; everything above must keep
    // it waiting for them, not end the process.
    w.alive("start").await;
    for (what, raw, expect) in bad_lines() {
        w.check(&format!("{what} (before initialize)"), &raw, expect)
            .await;
    }
    // A notification that is fine but early would end rmcp's handshake: dropped.
    w.check(
        "early notification",
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        Nothing,
    )
    .await;
    w.initialize().await;
    for (what, raw, expect) in bad_lines() {
        w.check(&format!("{what} (after initialize)"), &raw, expect)
            .await;
    }
    // rmcp's own answer to an unknown method, with its id.
    w.check(
        "unknown method",
        br#"{"jsonrpc":"2.0","id":"u","method":"no/such","params":{}}"#,
        Error(-32601, r#""u""#),
    )
    .await;
    w.line(br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)
        .await;
    let list = w.next("tools/list").await;
    assert_eq!(names(&list["result"]), default_tools(), "{list}");
    assert_eq!(w.close().await, Some(0), "stderr:\n{}", w.stderr.text());
}

#[tokio::test]
async fn stdio_skips_blank_and_over_long_lines_and_answers_an_unterminated_last_one() {
    let sbx = Sbx::start().await;
    let mut w = Wire::spawn(&sbx);
    w.initialize().await;
    w.write(b"\n\r\n   \n\t\n").await;
    w.alive("blank lines").await;
    // Over the 4 MiB line limit: answered without being held, then the next line is read.
    let mut long = br#"{"jsonrpc":"2.0","id":3,"method":"ping","params":{"pad":""#.to_vec();
    long.resize(5 * 1024 * 1024, b'x');
    long.extend_from_slice(b"\"}}");
    w.check("a 5 MiB line", &long, Error(-32600, NULL)).await;
    // A byte order mark and CRLF endings are taken as rmcp took them.
    w.write(b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\"}\r\n")
        .await;
    let v = w.next("BOM and CRLF").await;
    assert_eq!((&v["id"], &v["result"]), (&json!(4), &json!({})), "{v}");
    // The last line may lack its newline: stdin ending is its end.
    w.write(br#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#)
        .await;
    drop(w.stdin.take());
    let v = w.next("unterminated last line").await;
    assert_eq!((&v["id"], &v["result"]), (&json!(5), &json!({})), "{v}");
    assert_eq!(w.close().await, Some(0), "stderr:\n{}", w.stderr.text());
}

#[tokio::test]
async fn stdio_answers_every_line_of_a_burst() {
    let sbx = Sbx::start().await;
    let mut w = Wire::spawn(&sbx);
    w.initialize().await;
    // Good and bad lines in one write: one answer each, none lost or merged.
    let mut burst = Vec::new();
    for i in 0..50 {
        let good = json!({"jsonrpc": "2.0", "id": 100 + i, "method": "ping"}).to_string();
        burst.extend_from_slice(good.as_bytes());
        burst.push(b'\n');
        burst.extend_from_slice(
            format!(
                r#"{{"jsonrpc":"2.0","id":{},"method":"ping","params":[]}}"#,
                200 + i
            )
            .as_bytes(),
        );
        burst.push(b'\n');
        burst.extend_from_slice(b"{\"jsonrpc\":\n");
    }
    w.write(&burst).await;
    let (mut results, mut invalid, mut parse) = (Vec::new(), Vec::new(), 0);
    for _ in 0..150 {
        let v = w.next("burst").await;
        match v["error"]["code"].as_i64() {
            None => results.push(v["id"].as_i64().unwrap_or(-1)),
            Some(-32600) => invalid.push(v["id"].as_i64().unwrap_or(-1)),
            Some(-32700) => {
                assert_eq!(v["id"], Value::Null, "{v}");
                parse += 1;
            }
            Some(_) => panic!("unexpected: {v}"),
        }
    }
    results.sort();
    invalid.sort();
    assert_eq!(results, (100..150).collect::<Vec<i64>>());
    assert_eq!(invalid, (200..250).collect::<Vec<i64>>());
    assert_eq!(parse, 50);
    w.alive("the burst").await;
}

// ---- HTTP ---------------------------------------------------------------------------------

async fn post_raw(c: &McpClient, body: &[u8]) -> Reply {
    c.send(
        c.request(reqwest::Method::POST)
            .header("content-type", "application/json")
            .body(body.to_vec()),
    )
    .await
}

/// Over HTTP every POST is answered: 400 with the error, also for a notification (whose
/// error then has a null id), since HTTP cannot say nothing.
#[track_caller]
fn assert_http_error(what: &str, reply: &Reply, expect: Expect) {
    assert_eq!(reply.status, 400, "{what}: {}", reply.text);
    assert!(
        reply.content_type().starts_with("application/json"),
        "{what}: {}",
        reply.content_type()
    );
    assert_eq!(reply.messages.len(), 1, "{what}: {}", reply.text);
    let v = &reply.messages[0];
    match expect {
        Error(code, id) => assert_error(what, v, code, id),
        Nothing => {
            assert_eq!(v.get("id"), Some(&Value::Null), "{what}: {v}");
            assert!(v["error"]["code"].is_i64(), "{what}: {v}");
        }
    }
}

#[tokio::test]
async fn http_answers_bad_bodies_400_with_the_json_rpc_error() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(&sbx.base, &[]).await;
    let mut c = srv.mcp();
    for (what, raw, expect) in bad_lines() {
        let reply = post_raw(&c, &raw).await;
        assert_http_error(&format!("{what} (no session)"), &reply, expect);
        assert!(reply.header("mcp-session-id").is_none(), "{what}");
    }
    c.connect(LATEST).await;
    for (what, raw, expect) in bad_lines() {
        let reply = post_raw(&c, &raw).await;
        assert_http_error(&format!("{what} (in a session)"), &reply, expect);
    }
    assert_eq!(c.tool_names(json!({})).await, default_tools());

    // Not JSON by its content type: left to rmcp, which refuses it as before.
    let reply = c
        .send(
            c.request(reqwest::Method::POST)
                .header("content-type", "text/plain")
                .body("{"),
        )
        .await;
    assert_eq!(reply.status, 415, "{}", reply.text);
}

#[tokio::test]
async fn legacy_message_answers_bad_bodies_400_and_the_session_goes_on() {
    let sbx = Sbx::start().await;
    let srv = HttpServer::start(&sbx.base, &[]).await;
    let mut s = LegacySession::open(&srv.http, &srv.base, None).await;
    s.connect().await;
    for (what, raw, expect) in bad_lines() {
        let body = String::from_utf8_lossy(&raw).into_owned();
        // Lossy decoding would repair the invalid bytes; those are sent over /mcp above.
        if body.as_bytes() != raw.as_slice() {
            continue;
        }
        let (status, text) = s.post_raw(body).await;
        assert_eq!(status, 400, "{what}: {text}");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
        match expect {
            Error(code, id) => assert_error(what, &v, code, id),
            Nothing => assert_eq!(v.get("id"), Some(&Value::Null), "{what}: {v}"),
        }
    }
    let (list, _) = s.request("tools/list", json!({})).await;
    assert_eq!(names(&list["result"]), default_tools());
}
