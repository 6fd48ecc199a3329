//! Load over HTTP: 200 concurrent MCP sessions × 10 tools/call each against one real
//! `serve --http` process and the in-process sandbox — every call succeeds, the sessions
//! share one tenant token, and nothing leaks (descriptors, sessions, memory) across two
//! identical rounds.

mod common;

use std::time::{Duration, Instant};

use common::http::{HttpServer, LATEST, McpClient, fd_count, sockets_to, structured};
use common::{Sbx, ZHANG_WEI};
use serde_json::json;
use tokio::task::JoinSet;

const CLIENTS: usize = 200;
const CALLS: usize = 10;

/// One round: `CLIENTS` sessions at once, each initialize + `CALLS` get_user + DELETE, over
/// a pooled client dropped at the end (so its connections close). Returns the successes.
async fn round(base: &str) -> usize {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("client");
    let mut set = JoinSet::new();
    for _ in 0..CLIENTS {
        let mut c = McpClient::new(http.clone(), base);
        set.spawn(async move {
            c.connect(LATEST).await;
            let mut ok = 0;
            for _ in 0..CALLS {
                let r = c.call("get_user", json!({"user_id": ZHANG_WEI})).await;
                if structured(&r)["open_id"] == ZHANG_WEI {
                    ok += 1;
                }
            }
            assert_eq!(c.close().await, 200, "DELETE of the session");
            ok
        });
    }
    let mut total = 0;
    while let Some(r) = set.join_next().await {
        total += r.expect("a client task panicked");
    }
    total
}

/// The server's descriptors other than its keep-alive pool to the sandbox (Lark), which
/// holds up to the peak of concurrent Lark calls for 90 s by design.
fn own_fds(srv: &HttpServer, sandbox_port: u16) -> (usize, usize) {
    let pool = sockets_to(srv.pid, sandbox_port);
    (fd_count(srv.pid).saturating_sub(pool), pool)
}

/// Waits (≤ 5 s) for the server to close the connections of a finished round.
async fn settle(srv: &HttpServer, sandbox_port: u16, limit: usize) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (own, pool) = own_fds(srv, sandbox_port);
        if own <= limit || Instant::now() > deadline {
            return (own, pool);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_sessions_times_ten_calls_share_one_token_and_leak_nothing() {
    let sbx = Sbx::start().await;
    let sandbox_port = sbx.sandbox.addr().port();
    // Exactly CLIENTS sessions may be open: round two only gets through if round one's
    // sessions were all closed.
    let srv = HttpServer::start(&sbx.base, &["--max-sessions", &CLIENTS.to_string()]).await;

    // Warm up (scope read, first token, allocator) with one session, then close it.
    {
        let http = common::http::client();
        let mut c = McpClient::new(http, &srv.base);
        c.connect(LATEST).await;
        let r = c.call("get_user", json!({"user_id": ZHANG_WEI})).await;
        assert_eq!(structured(&r)["open_id"], ZHANG_WEI);
        assert_eq!(c.close().await, 200);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (before, pool_before) = own_fds(&srv, sandbox_port);

    let started = Instant::now();
    let ok = tokio::time::timeout(Duration::from_secs(60), round(&srv.base))
        .await
        .expect("round one finishes within 60 s");
    let first = started.elapsed();
    assert_eq!(ok, CLIENTS * CALLS, "every call of round one succeeds");
    let (after1, pool1) = settle(&srv, sandbox_port, before + 10).await;
    let rss1 = srv.rss_kb();

    let started = Instant::now();
    let ok = tokio::time::timeout(Duration::from_secs(60), round(&srv.base))
        .await
        .expect("round two finishes within 60 s");
    let second = started.elapsed();
    assert_eq!(ok, CLIENTS * CALLS, "every call of round two succeeds");
    let (after2, pool2) = settle(&srv, sandbox_port, before + 10).await;
    let rss2 = srv.rss_kb();

    eprintln!(
        "rounds {first:?} and {second:?}; fds (without the Lark pool) {before} -> {after1} -> {after2}; \
         Lark pool {pool_before} -> {pool1} -> {pool2}; VmRSS {rss1} kB -> {rss2} kB"
    );
    let s = sbx.state();
    assert_eq!(
        s.count("tenant_access_token_internal"),
        1,
        "one token fetch"
    );
    assert_eq!(s.count("get_user"), (1 + 2 * CLIENTS * CALLS) as u64);
    assert!(
        after1 <= before + 10 && after2 <= before + 10,
        "descriptors did not come back: {before} before, {after1} after round one, {after2} after round two"
    );
    // Idle keep-alive connections to Lark, at most one per call that was in flight at once.
    assert!(
        pool1.max(pool2) <= CLIENTS,
        "the Lark keep-alive pool outgrew the concurrency: {pool_before} -> {pool1} -> {pool2}"
    );
    assert!(
        rss2 < rss1 + 20 * 1024,
        "VmRSS grew by {} kB in round two",
        rss2.saturating_sub(rss1)
    );
    // The server still serves.
    let mut c = McpClient::new(common::http::client(), &srv.base);
    c.connect(LATEST).await;
    assert_eq!(
        c.tool_names(json!({})).await.len(),
        common::mcp::default_tools().len()
    );
}
