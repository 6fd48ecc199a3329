//! The file tools end to end: the real binary over stdio, Lark played by the sandbox.
//! Uploads read only inside the allowed directories and answer every path outside them
//! alike, existing or not; downloads only create new files, never write through a name or
//! link already in the download directory, keep names within the file system's limits,
//! stream to disk, and leave no partial file behind when a download is over the cap or
//! breaks off.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use common::im::*;
use common::mcp::McpServer;
use common::*;
use futures::StreamExt;
use serde_json::json;

/// A file message of the demo org (the seeded employee handbook PDF).
const HANDBOOK_MSG: &str = "om_a3267e59f62217af7be9703b77ac624b";
const HANDBOOK_KEY: &str = "file_v3_00a87c967e20627217023993a7";
const HANDBOOK_NAME: &str = "Northwind-Employee-Handbook-2025.pdf";

fn handbook() -> serde_json::Value {
    json!({"message_id": HANDBOOK_MSG, "file_key": HANDBOOK_KEY})
}

/// The names in a directory, sorted.
fn names_in(dir: &TempDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read the download dir")
        .map(|e| {
            e.expect("a dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

// ---- downloads -----------------------------------------------------------------------------

#[tokio::test]
async fn a_link_in_the_download_dir_is_never_written_through_and_the_download_gets_a_new_name() {
    let sbx = Sbx::start().await;
    let dir = TempDir::new("dl-link");
    let outside = TempDir::new("dl-victim");
    let victim = outside.write("victim.txt", b"precious");
    let link = dir.path().join(HANDBOOK_NAME);
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    let s = McpServer::start(&sbx, &["--download-dir", dir.arg()]).await;

    let out = s.ok("download_resource", handbook()).await;
    let saved = dir.path().join("Northwind-Employee-Handbook-2025 (2).pdf");
    assert_eq!(out["path"], saved.to_str().unwrap());
    assert!(std::fs::read(&saved).unwrap().starts_with(b"%PDF"));
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious",
        "target untouched"
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link is still a link"
    );
}

#[tokio::test]
async fn the_same_name_downloaded_twice_gives_two_files() {
    let sbx = Sbx::start().await;
    let dir = TempDir::new("dl-twice");
    let s = McpServer::start(&sbx, &["--download-dir", dir.arg()]).await;
    let first = s.ok("download_resource", handbook()).await;
    let second = s.ok("download_resource", handbook()).await;
    assert_ne!(first["path"], second["path"]);
    assert_eq!(
        names_in(&dir),
        [
            "Northwind-Employee-Handbook-2025 (2).pdf",
            "Northwind-Employee-Handbook-2025.pdf"
        ]
    );
    let a = std::fs::read(str_of(&first, "path")).unwrap();
    let b = std::fs::read(str_of(&second, "path")).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len() as u64, first["bytes"].as_u64().unwrap());

    // save_as clashes the same way.
    let named = s
        .ok(
            "download_resource",
            json!({"message_id": HANDBOOK_MSG, "file_key": HANDBOOK_KEY, "save_as": "Northwind-Employee-Handbook-2025.pdf"}),
        )
        .await;
    assert_eq!(
        named["path"],
        dir.path()
            .join("Northwind-Employee-Handbook-2025 (3).pdf")
            .to_str()
            .unwrap()
    );
}

#[tokio::test]
async fn a_long_non_ascii_name_is_cut_by_bytes_keeping_the_extension() {
    let sbx = Sbx::start().await;
    let dir = TempDir::new("dl-long");
    let s = McpServer::start(&sbx, &["--download-dir", dir.arg()]).await;
    // 98 three-byte characters and ".pdf": 298 bytes, over most file systems' 255.
    let long = format!("{}.pdf", "周".repeat(98));
    assert!(long.len() >= 298);
    let args =
        json!({"message_id": HANDBOOK_MSG, "file_key": HANDBOOK_KEY, "save_as": long.clone()});
    let first = s.ok("download_resource", args.clone()).await;
    let second = s.ok("download_resource", args).await;
    for out in [&first, &second] {
        let path = std::path::PathBuf::from(str_of(out, "path"));
        assert_eq!(path.parent(), Some(dir.path()));
        let name = path.file_name().unwrap().to_str().expect("valid UTF-8");
        assert!(name.len() <= 255, "{} bytes: {name}", name.len());
        assert!(name.ends_with(".pdf"), "{name}");
        assert!(name.starts_with("周周周"), "{name}");
        assert!(std::fs::read(&path).unwrap().starts_with(b"%PDF"));
    }
    assert_ne!(first["path"], second["path"]);
}

#[tokio::test]
async fn a_download_over_the_cap_is_an_error_and_leaves_no_file() {
    let sbx = Sbx::start().await;
    let dir = TempDir::new("dl-cap");
    sbx.state()
        .world
        .lock()
        .unwrap()
        .resources
        .get_mut(HANDBOOK_KEY)
        .expect("the seeded handbook")
        .bytes = vec![b'x'; 5000];
    let s = McpServer::start_env(
        &sbx,
        &["--download-dir", dir.arg()],
        &[("LARK_MCP_DOWNLOAD_MAX_BYTES", "4096")],
    )
    .await;
    let text = s.err("download_resource", handbook()).await;
    assert_eq!(
        text,
        format!(
            "{HANDBOOK_KEY} is larger than 4096 bytes, the most this server downloads; nothing was saved."
        )
    );
    assert_eq!(names_in(&dir), Vec::<String>::new(), "no partial file");
    assert_eq!(
        sbx.state().count("download_message_resource"),
        1,
        "not retried"
    );

    // At the cap it downloads.
    sbx.state()
        .world
        .lock()
        .unwrap()
        .resources
        .get_mut(HANDBOOK_KEY)
        .expect("the seeded handbook")
        .bytes = vec![b'x'; 4096];
    let out = s.ok("download_resource", handbook()).await;
    assert_eq!(out["bytes"], 4096);
}

// ---- streamed downloads through a proxy that breaks them ------------------------------------

/// What the proxy does to one download answer.
#[derive(Debug, Clone, Copy)]
enum Mangle {
    /// The headers (with the full Content-Length) and half the body, then the connection
    /// breaks.
    Cut,
    /// Half the body, then nothing for `ms`, then the rest.
    Stall { ms: u64 },
    /// The body in `chunks` pieces `ms` apart, without a Content-Length.
    Trickle { chunks: usize, ms: u64 },
}

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    /// Applied to successive downloads; later ones pass untouched.
    plan: Mutex<VecDeque<Mangle>>,
}

/// Puts a proxy in front of the sandbox that forwards every call but mangles download
/// answers as `plan` says; the server started after this talks to the proxy.
async fn mangle_downloads(sbx: &mut Sbx, plan: &[Mangle]) {
    let proxy = Arc::new(Proxy {
        upstream: sbx.base.clone(),
        http: client(),
        plan: Mutex::new(plan.iter().copied().collect()),
    });
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let addr = listener.local_addr().expect("the proxy's address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    sbx.base = format!("http://{addr}");
}

async fn forward(State(proxy): State<Arc<Proxy>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("the request body");
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut rb = proxy
        .http
        .request(parts.method.clone(), format!("{}{target}", proxy.upstream))
        .body(body);
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(v) = parts.headers.get(&name) {
            rb = rb.header(name, v);
        }
    }
    let up = rb.send().await.expect("the sandbox answers");
    let status = up.status();
    let headers = up.headers().clone();
    let bytes = up.bytes().await.expect("the sandbox's body");
    let is_file = parts.uri.path().contains("/resources/")
        && headers
            .get(header::CONTENT_DISPOSITION)
            .is_some_and(|d| !d.is_empty());
    let mangle = if is_file {
        proxy.plan.lock().unwrap().pop_front()
    } else {
        None
    };
    let half = bytes.len() / 2;
    let now = Duration::ZERO;
    let pieces: Vec<(Duration, std::io::Result<Bytes>)> = match mangle {
        None => vec![(now, Ok(bytes.clone()))],
        Some(Mangle::Cut) => vec![
            (now, Ok(bytes.slice(..half))),
            (now, Err(std::io::Error::other("proxy: cut mid-body"))),
        ],
        Some(Mangle::Stall { ms }) => vec![
            (now, Ok(bytes.slice(..half))),
            (Duration::from_millis(ms), Ok(bytes.slice(half..))),
        ],
        Some(Mangle::Trickle { chunks, ms }) => {
            let size = bytes.len().div_ceil(chunks).max(1);
            (0..bytes.len())
                .step_by(size)
                .map(|at| {
                    let end = (at + size).min(bytes.len());
                    (Duration::from_millis(ms), Ok(bytes.slice(at..end)))
                })
                .collect()
        }
    };
    let stream = futures::stream::iter(pieces).then(|(wait, piece)| async move {
        tokio::time::sleep(wait).await;
        piece
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    for (name, value) in &headers {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            resp.headers_mut().insert(name, value.clone());
        }
    }
    if !matches!(mangle, Some(Mangle::Trickle { .. })) {
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    }
    resp
}

/// Gives the seeded handbook `len` bytes that differ from one position to the next, so a
/// repeated or missing chunk shows; returns them.
fn handbook_of(sbx: &Sbx, len: usize) -> Vec<u8> {
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    sbx.state()
        .world
        .lock()
        .unwrap()
        .resources
        .get_mut(HANDBOOK_KEY)
        .expect("the seeded handbook")
        .bytes = bytes.clone();
    bytes
}

#[tokio::test]
async fn a_download_is_saved_byte_for_byte() {
    let sbx = Sbx::start().await;
    let dir = TempDir::new("dl-exact");
    let expected = handbook_of(&sbx, 3 * 1024 * 1024 + 17);
    let s = McpServer::start(&sbx, &["--download-dir", dir.arg()]).await;
    let out = s.ok("download_resource", handbook()).await;
    assert_eq!(out["bytes"], expected.len());
    assert!(std::fs::read(str_of(&out, "path")).unwrap() == expected);
    assert_eq!(names_in(&dir), [HANDBOOK_NAME]);
}

#[tokio::test]
async fn a_streamed_download_over_the_cap_stops_and_leaves_no_file_or_part_file() {
    let mut sbx = Sbx::start().await;
    let dir = TempDir::new("dl-cap-stream");
    handbook_of(&sbx, 5000);
    // No Content-Length: the cap can only be seen by counting the bytes as they come.
    mangle_downloads(&mut sbx, &[Mangle::Trickle { chunks: 4, ms: 0 }]).await;
    let s = McpServer::start_env(
        &sbx,
        &["--download-dir", dir.arg()],
        &[("LARK_MCP_DOWNLOAD_MAX_BYTES", "4096")],
    )
    .await;
    let text = s.err("download_resource", handbook()).await;
    assert_eq!(
        text,
        format!(
            "{HANDBOOK_KEY} is larger than 4096 bytes, the most this server downloads; nothing was saved."
        )
    );
    assert_eq!(names_in(&dir), Vec::<String>::new(), "no file, no .part");
    assert_eq!(sbx.state().count("download_message_resource"), 1);
}

#[tokio::test]
async fn a_download_cut_mid_body_leaves_nothing_and_a_retry_starts_the_file_over() {
    let mut sbx = Sbx::start().await;
    let dir = TempDir::new("dl-cut");
    let expected = handbook_of(&sbx, 200_000);
    // Cut every time within a short budget: the call fails, nothing stays behind.
    mangle_downloads(&mut sbx, &[Mangle::Cut; 50]).await;
    let s = McpServer::start(&sbx, &["--download-dir", dir.arg(), "--call-timeout", "2"]).await;
    let text = s.err("download_resource", handbook()).await;
    assert!(text.contains("download message resource"), "{text}");
    assert!(
        sbx.state().count("download_message_resource") >= 2,
        "retried"
    );
    assert_eq!(names_in(&dir), Vec::<String>::new(), "no file, no .part");
    drop(s);

    // Cut once: the retry writes the file from its first byte, never appending.
    let mut sbx = Sbx::start().await;
    let dir = TempDir::new("dl-cut-once");
    handbook_of(&sbx, expected.len());
    mangle_downloads(&mut sbx, &[Mangle::Cut]).await;
    let s = McpServer::start(&sbx, &["--download-dir", dir.arg()]).await;
    let out = s.ok("download_resource", handbook()).await;
    assert_eq!(sbx.state().count("download_message_resource"), 2);
    assert_eq!(out["bytes"], expected.len());
    assert!(std::fs::read(str_of(&out, "path")).unwrap() == expected);
    assert_eq!(names_in(&dir), [HANDBOOK_NAME], "no .part left");
}

#[tokio::test]
async fn the_request_timeout_bounds_pauses_between_chunks_not_the_whole_download() {
    let mut sbx = Sbx::start().await;
    let dir = TempDir::new("dl-slow");
    let expected = handbook_of(&sbx, 100_000);
    mangle_downloads(
        &mut sbx,
        &[
            // 2.4 s in all, never 1 s without data: one attempt is enough.
            Mangle::Trickle { chunks: 6, ms: 400 },
            // 3 s without data: abandoned after 1 s and fetched again.
            Mangle::Stall { ms: 3000 },
        ],
    )
    .await;
    let s = McpServer::start(
        &sbx,
        &["--download-dir", dir.arg(), "--request-timeout", "1"],
    )
    .await;
    let slow = s.ok("download_resource", handbook()).await;
    assert_eq!(sbx.state().count("download_message_resource"), 1);
    assert!(std::fs::read(str_of(&slow, "path")).unwrap() == expected);

    let started = std::time::Instant::now();
    let stalled = s.ok("download_resource", handbook()).await;
    assert_eq!(sbx.state().count("download_message_resource"), 3);
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "did not wait out the stall"
    );
    assert!(std::fs::read(str_of(&stalled, "path")).unwrap() == expected);
    assert_eq!(
        names_in(&dir),
        [
            "Northwind-Employee-Handbook-2025 (2).pdf",
            "Northwind-Employee-Handbook-2025.pdf"
        ]
    );
}

#[tokio::test]
async fn concurrent_downloads_of_one_name_end_as_two_distinct_complete_files() {
    let sbx = Sbx::start().await;
    let dir = TempDir::new("dl-concurrent");
    let expected = handbook_of(&sbx, 1024 * 1024);
    let s = McpServer::start(&sbx, &["--download-dir", dir.arg()]).await;
    let (a, b) = tokio::join!(
        s.ok("download_resource", handbook()),
        s.ok("download_resource", handbook())
    );
    assert_ne!(a["path"], b["path"]);
    for out in [&a, &b] {
        assert!(std::fs::read(str_of(out, "path")).unwrap() == expected);
    }
    assert_eq!(
        names_in(&dir),
        [
            "Northwind-Employee-Handbook-2025 (2).pdf",
            "Northwind-Employee-Handbook-2025.pdf"
        ]
    );
}

// ---- uploads -------------------------------------------------------------------------------

/// The error text with the path given replaced, so answers for different paths compare.
fn shape(text: &str, path: &str) -> String {
    text.replace(path, "<path>")
}

#[tokio::test]
async fn every_path_outside_the_allowed_dirs_gets_the_same_answer_whether_it_exists_or_not() {
    let sbx = Sbx::start().await;
    let allowed = TempDir::new("allowed");
    let outside = TempDir::new("outside");
    let secret = outside.write("secret.png", &TINY_PNG);
    let secret_doc = outside.write("secret.pdf", b"%PDF-1.4 secret");
    let missing = outside.path().join("missing.png");
    let missing = missing.to_str().unwrap();
    let link = allowed.path().join("innocent.png");
    std::os::unix::fs::symlink(&secret, &link).expect("symlink");
    let dangling = allowed.path().join("dangling.png");
    std::os::unix::fs::symlink(missing, &dangling).expect("symlink");
    let dir_link = allowed.path().join("elsewhere");
    std::os::unix::fs::symlink(outside.path(), &dir_link).expect("symlink");
    let via_dir_link = dir_link.join("secret.png");
    let via_dir_link_missing = dir_link.join("missing.png");
    let s = McpServer::start(&sbx, &["--allow-read-dir", allowed.arg()]).await;

    let expected = format!(
        "Invalid argument `path`: <path> is outside the directories this server may read ({}); nothing was uploaded",
        allowed.arg()
    );
    for (tool, path) in [
        ("upload_image", secret.as_str()),
        ("upload_image", missing),
        ("upload_image", "/etc/passwd"),
        ("upload_image", "/no/such/dir/x.png"),
        ("upload_image", link.to_str().unwrap()),
        ("upload_image", dangling.to_str().unwrap()),
        ("upload_image", via_dir_link.to_str().unwrap()),
        ("upload_image", via_dir_link_missing.to_str().unwrap()),
        ("upload_file", secret_doc.as_str()),
        ("upload_file", missing),
    ] {
        let text = s.err(tool, json!({"path": path})).await;
        assert_eq!(shape(&text, path), expected, "{tool} {path}");
    }
    assert_eq!(
        (
            sbx.state().count("upload_image"),
            sbx.state().count("upload_file")
        ),
        (0, 0)
    );
    // The same bytes inside the directory upload fine, and so does a link that stays inside.
    let inside = allowed.write("ok.png", &TINY_PNG);
    s.ok("upload_image", json!({"path": inside})).await;
    let inner_link = allowed.path().join("alias.png");
    std::os::unix::fs::symlink(&inside, &inner_link).expect("symlink");
    s.ok(
        "upload_image",
        json!({"path": inner_link.to_str().unwrap()}),
    )
    .await;
    assert_eq!(sbx.state().count("upload_image"), 2);
}

#[tokio::test]
async fn relative_dotdot_missing_oversized_fifo_and_directory_paths_are_refused() {
    let sbx = Sbx::start().await;
    let allowed = TempDir::new("allowed-odd");
    let outside = TempDir::new("outside-odd");
    outside.write("secret.png", &TINY_PNG);
    let s = McpServer::start(&sbx, &["--allow-read-dir", allowed.arg()]).await;

    let relative = s.err("upload_image", json!({"path": "chart.png"})).await;
    assert_eq!(
        relative,
        "Invalid argument `path`: chart.png is not an absolute path; give the full path of a file in an allowed directory; nothing was uploaded"
    );
    let dotdot = format!(
        "{}/../{}/secret.png",
        allowed.arg(),
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    let text = s.err("upload_image", json!({"path": dotdot})).await;
    assert_eq!(
        text,
        format!(
            "Invalid argument `path`: {dotdot} contains `..`; give the direct path of a file in an allowed directory; nothing was uploaded"
        )
    );

    // Inside the directory, what went wrong may be told.
    let missing = allowed.path().join("nope.png");
    let text = s
        .err("upload_image", json!({"path": missing.to_str().unwrap()}))
        .await;
    assert!(
        text.starts_with(&format!(
            "Invalid argument `path`: cannot open {}: No such file",
            missing.display()
        )) && text.ends_with("; nothing was uploaded"),
        "{text}"
    );

    let big = allowed.write("big.png", &vec![0u8; 10 * 1024 * 1024 + 1]);
    let text = s.err("upload_image", json!({"path": big})).await;
    assert_eq!(
        text,
        format!(
            "Invalid argument `path`: {big} is 10485761 bytes; Lark accepts 1 byte to 10 MB here; nothing was uploaded"
        )
    );
    let empty = allowed.write("empty.pdf", b"");
    let text = s.err("upload_file", json!({"path": empty})).await;
    assert!(
        text.contains("is 0 bytes; Lark accepts 1 byte to 30 MB"),
        "{text}"
    );

    let fifo = allowed.path().join("pipe.png");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let sub = allowed.path().join("sub.png");
    std::fs::create_dir(&sub).expect("mkdir");
    for p in [&fifo, &sub, &allowed.path().to_path_buf()] {
        let p = p.to_str().unwrap();
        let started = std::time::Instant::now();
        let text = s.err("upload_image", json!({"path": p})).await;
        assert_eq!(
            text,
            format!("Invalid argument `path`: {p} is not a regular file; nothing was uploaded")
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
    assert_eq!(sbx.state().count("upload_image"), 0);
}
