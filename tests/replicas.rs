//! Several `serve --http` replicas sharing Lark's limits through a real `redis-server`
//! (started here on a free loopback port, in a temp dir, killed at the end): one tenant
//! token for all, one send pace per receiver, one outcome per idempotency key, and nothing
//! acknowledged lost when a replica dies mid-batch. Lark is the in-process sandbox, with its
//! 5 sends per second per receiver (230020 beyond).
//!
//! `redis-server` must be installed (`apt-get install redis-server`; `.ci/run` does it):
//! without it these tests fail, saying so.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::http::{HttpServer, LATEST, McpClient, Reply, text};
use common::im::*;
use common::login::{command, env, login, login_file, login_with};
use common::*;
use serde_json::{Value, json};

/// A `redis-server` of this test's own; killed (and its dir removed) on drop.
struct RedisServer {
    child: Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl RedisServer {
    fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    fn start_with(args: &[&str]) -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let dir =
            std::env::temp_dir().join(format!("lark-mcp-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir for redis-server");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(args)
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): these tests need it installed \
                     (`apt-get install redis-server`; .ci/run installs it)"
                )
            });
        let server = RedisServer { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on 127.0.0.1:{port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// `redis-cli -p PORT <args>`: its output, trimmed.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("redis-cli (comes with redis-server) runs: {e}"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits (≤ 10 s) until the replicas have recorded `n` receiver names.
    async fn wait_for_names(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let key = self.cli(&["--scan", "--pattern", "*:receivers"]);
            if !key.is_empty() && self.cli(&["HLEN", &key]).parse::<usize>().unwrap_or(0) >= n {
                return;
            }
            assert!(Instant::now() < deadline, "the names never reached Redis");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn replicas(sbx: &Sbx, n: usize, args: &[&str]) -> Vec<HttpServer> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(HttpServer::start_env(&sbx.base, args, &[]).await);
    }
    out
}

async fn sessions(servers: &[HttpServer]) -> Vec<McpClient> {
    let mut out = Vec::new();
    for s in servers {
        let mut c = s.mcp();
        c.connect(LATEST).await;
        out.push(c);
    }
    out
}

/// tools/call that survives the server dying under it: `None` when no answer came back.
async fn try_call(c: &McpClient, name: &str, args: Value) -> Option<Value> {
    let id = c.next_id();
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": name, "arguments": args}});
    let resp = c.post(&body).send().await.ok()?;
    let reply = Reply::read(resp).await.ok()?;
    (reply.status == 200).then(|| reply.result(id).clone())
}

/// Send `i` of a batch, under its own idempotency key.
async fn send_keyed(c: &McpClient, i: usize) -> (usize, Option<Value>) {
    let args = json!({"to": RND_CENTER_CHAT, "text": format!("batch {i:03}"),
        "idempotency_key": format!("batch-key-{i:03}")});
    (i, try_call(c, "send_message", args).await)
}

fn succeeded(r: &Value) -> bool {
    r["isError"] == Value::Bool(false)
}

fn refusals(sbx: &Sbx) -> usize {
    recorded(sbx, "send_message")
        .iter()
        .filter(|r| r.code == 230020)
        .count()
}

/// Texts of the chat's messages since `before`, with how often each arrived.
fn arrivals(
    sbx: &Sbx,
    chat: &str,
    before: &[lark_mcp_server::sandbox::Message],
) -> std::collections::BTreeMap<String, usize> {
    let mut seen = std::collections::BTreeMap::new();
    for m in new_messages(sbx, chat, before) {
        let t = content_of(&m)["text"].as_str().unwrap_or("").to_string();
        *seen.entry(t).or_insert(0) += 1;
    }
    seen
}

/// `n` concurrent sends to one chat, spread round-robin over the clients. Returns each
/// send's result and the wall time.
async fn burst(clients: &[McpClient], n: usize, tag: &str) -> (Vec<Option<Value>>, Duration) {
    let started = Instant::now();
    let calls = (0..n).map(|i| {
        let c = &clients[i % clients.len()];
        try_call(
            c,
            "send_message",
            json!({"to": RND_CENTER_CHAT, "text": format!("{tag} {i:03}")}),
        )
    });
    let results = futures::future::join_all(calls).await;
    (results, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_one_token_and_one_pace_per_receiver() {
    let redis = RedisServer::start();
    let sbx = Sbx::start().await;
    let url = redis.url();
    let servers = replicas(&sbx, 3, &["--redis-url", &url]).await;
    let clients = sessions(&servers).await;
    let before = sbx.state().messages(Some(RND_CENTER_CHAT));

    let (results, took) = burst(&clients, 100, "shared").await;
    let ok = results.iter().flatten().filter(|r| succeeded(r)).count();
    for (i, r) in results.iter().enumerate() {
        let r = r.as_ref().unwrap_or_else(|| panic!("send {i}: no answer"));
        assert!(succeeded(r), "send {i}: {}", text(r));
    }
    let seen = arrivals(&sbx, RND_CENTER_CHAT, &before);
    let tokens = sbx.state().count("tenant_access_token_internal");
    eprintln!(
        "3 replicas + Redis, 100 concurrent sends to one chat: {ok} succeeded, {} delivered, \
         {} x 230020, {tokens} token fetch(es), {:.2} s",
        seen.values().sum::<usize>(),
        refusals(&sbx),
        took.as_secs_f64()
    );
    assert_eq!(seen.len(), 100, "every send arrived");
    assert!(seen.values().all(|n| *n == 1), "none twice: {seen:?}");
    assert_eq!(
        refusals(&sbx),
        0,
        "the shared pace kept every send inside the limit"
    );
    assert_eq!(tokens, 1, "one tenant token fetch for all replicas");
}

/// For comparison only (figures, no Redis): `cargo test --test replicas -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints figures of replicas that share nothing"]
async fn figures_of_three_replicas_without_redis() {
    let sbx = Sbx::start().await;
    let servers = replicas(&sbx, 3, &[]).await;
    let clients = sessions(&servers).await;
    let before = sbx.state().messages(Some(RND_CENTER_CHAT));
    let (results, took) = burst(&clients, 100, "alone").await;
    let ok = results.iter().flatten().filter(|r| succeeded(r)).count();
    let seen = arrivals(&sbx, RND_CENTER_CHAT, &before);
    eprintln!(
        "3 replicas without Redis, 100 concurrent sends to one chat: {ok} succeeded, {} delivered, \
         {} x 230020, {} token fetch(es), {:.2} s",
        seen.values().sum::<usize>(),
        refusals(&sbx),
        sbx.state().count("tenant_access_token_internal"),
        took.as_secs_f64()
    );
}

/// An email and an open_id of one person reach one p2p chat: once any replica learned
/// that, sends under either name on any replica share the chat's pace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_learned_on_one_replica_pace_sends_on_all() {
    let redis = RedisServer::start();
    let sbx = Sbx::start().await;
    let url = redis.url();
    let servers = replicas(&sbx, 3, &["--redis-url", &url]).await;
    let clients = sessions(&servers).await;
    let mut chat = String::new();
    for to in [ZHANG_WEI_EMAIL, ZHANG_WEI] {
        let r = clients[0]
            .call("send_message", json!({"to": to, "text": "first"}))
            .await;
        assert!(succeeded(&r), "{}", text(&r));
        chat = str_of(&r["structuredContent"], "chat_id").to_string();
    }
    redis.wait_for_names(2).await;
    let before = sbx.state().messages(Some(&chat));
    let refused_before = refusals(&sbx);
    let calls = (0..18).map(|i| {
        let to = [ZHANG_WEI_EMAIL, ZHANG_WEI, chat.as_str()][i % 3];
        // Replicas 1 and 2 never sent to these names themselves.
        try_call(
            &clients[1 + i % 2],
            "send_message",
            json!({"to": to, "text": format!("mixed {i:02}")}),
        )
    });
    for (i, r) in futures::future::join_all(calls).await.iter().enumerate() {
        let r = r.as_ref().unwrap_or_else(|| panic!("send {i}: no answer"));
        assert!(succeeded(r), "send {i}: {}", text(r));
    }
    assert_eq!(arrivals(&sbx, &chat, &before).len(), 18);
    assert_eq!(
        refusals(&sbx) - refused_before,
        0,
        "all three names were paced as one receiver on every replica"
    );
}

/// The same idempotency key on another replica is the same write: its outcome comes from
/// Redis, and Lark sees the send once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_means_one_send_across_replicas() {
    let redis = RedisServer::start();
    let sbx = Sbx::start().await;
    let url = redis.url();
    let servers = replicas(&sbx, 2, &["--redis-url", &url]).await;
    let clients = sessions(&servers).await;
    let args = json!({"to": RND_CENTER_CHAT, "text": "once", "idempotency_key": "agent-key-7"});
    let mut ids = Vec::new();
    for c in &clients {
        let r = c.call("send_message", args.clone()).await;
        assert!(succeeded(&r), "{}", text(&r));
        ids.push(r["structuredContent"]["message_id"].clone());
    }
    assert_eq!(ids[0], ids[1], "the same outcome on both replicas");
    assert!(ids[0].is_string(), "{ids:?}");
    let sends = recorded(&sbx, "send_message")
        .iter()
        .filter(|r| r.body.as_ref().is_some_and(|b| b["uuid"] == "agent-key-7"))
        .count();
    assert_eq!(
        sends, 1,
        "the second replica answered from the shared outcome"
    );
}

/// SIGKILL of one replica during a batch: every send acknowledged with a successful result
/// is in the chat exactly once, and sends retried elsewhere under their idempotency key
/// are never doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_batch_loses_nothing_acknowledged() {
    const N: usize = 45;
    let redis = RedisServer::start();
    let sbx = Sbx::start().await;
    let url = redis.url();
    // A short request timeout: the dead replica's slots in flight free after it.
    let servers = replicas(&sbx, 3, &["--redis-url", &url, "--request-timeout", "3"]).await;
    let clients = sessions(&servers).await;
    let before = sbx.state().messages(Some(RND_CENTER_CHAT));
    let victim = servers[1].pid;

    let batch = futures::future::join_all((0..N).map(|i| send_keyed(&clients[i % 3], i)));
    let killer = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while recorded(&sbx, "send_message").len() < 10 {
            assert!(Instant::now() < deadline, "the batch did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let status = Command::new("kill")
            .args(["-KILL", &victim.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    };
    let (results, ()) = futures::join!(batch, killer);

    let acked: Vec<usize> = results
        .iter()
        .filter(|(_, r)| r.as_ref().is_some_and(succeeded))
        .map(|(i, _)| *i)
        .collect();
    let lost: Vec<usize> = results
        .iter()
        .filter(|(_, r)| !r.as_ref().is_some_and(succeeded))
        .map(|(i, _)| *i)
        .collect();
    let seen = arrivals(&sbx, RND_CENTER_CHAT, &before);
    for i in &acked {
        assert_eq!(
            seen.get(&format!("batch {i:03}")),
            Some(&1),
            "acknowledged send {i} is in the chat exactly once"
        );
    }
    assert!(
        !lost.is_empty(),
        "precondition: the kill cut some sends off"
    );
    assert!(
        lost.iter().all(|i| i % 3 == 1),
        "only the killed replica's sends went unanswered: {lost:?}"
    );

    // The agent retries what went unanswered on a surviving replica, same keys.
    let retried = futures::future::join_all(lost.iter().map(|i| send_keyed(&clients[0], *i))).await;
    for (i, r) in &retried {
        let r = r.as_ref().unwrap_or_else(|| panic!("retry {i}: no answer"));
        assert!(succeeded(r), "retry {i}: {}", text(r));
    }
    let seen = arrivals(&sbx, RND_CENTER_CHAT, &before);
    eprintln!(
        "replica killed mid-batch: {} acknowledged, {} cut off and retried elsewhere; {} delivered, {} x 230020",
        acked.len(),
        lost.len(),
        seen.values().sum::<usize>(),
        refusals(&sbx)
    );
    assert_eq!(seen.len(), N, "every send arrived: {seen:?}");
    assert!(seen.values().all(|n| *n == 1), "none twice: {seen:?}");
}

#[tokio::test]
async fn serve_refuses_to_start_without_its_redis_naming_the_url_but_not_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let sbx = Sbx::start().await;
    let url = format!("redis://:hunter2-secret@127.0.0.1:{port}/0");
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        common::http::serve_command(&sbx.base, &["--redis-url", &url], &[]).output(),
    )
    .await
    .expect("serve gives up on an unreachable Redis within 30 s")
    .expect("serve runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("Redis"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2-secret"), "{stderr}");
}

/// Lark's frequency limit (429 / 99991400 with `x-ogw-ratelimit-reset`): a replica that is
/// refused tells the others, which hold calls of the same kind back until the reset instead
/// of earning their own refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_one_replica_hits_holds_back_the_others_until_its_reset() {
    use lark_mcp_server::sandbox::{FaultAction, FaultRule};
    let redis = RedisServer::start();
    let sbx = Sbx::start().await;
    let url = redis.url();
    let servers = replicas(&sbx, 2, &["--redis-url", &url]).await;
    let clients = sessions(&servers).await;
    sbx.state().add_fault(
        FaultRule::new(FaultAction::RateLimit {
            status: 429,
            reset_secs: 3,
            limit: 50,
        })
        .method("get")
        .path(&format!("/open-apis/contact/v3/users/{ZHANG_WEI}"))
        .times(1),
    );
    let first = clients[0].call("get_user", json!({"user_id": ZHANG_WEI}));
    let second = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        let refused = loop {
            let hit = recorded(&sbx, "get_user")
                .into_iter()
                .find(|r| r.code == 99991400);
            if let Some(r) = hit {
                break r;
            }
            assert!(Instant::now() < deadline, "the fault never fired");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        // The refused replica logs its retry after it told Redis.
        servers[0]
            .wait_for_log("kind=RateLimited", Duration::from_secs(2))
            .await;
        let r = clients[1]
            .call("get_user", json!({"user_id": MA_CHAO}))
            .await;
        (refused, r)
    };
    let (r1, (refused, r2)) = futures::join!(first, second);
    assert!(succeeded(&r1), "{}", text(&r1));
    assert!(succeeded(&r2), "{}", text(&r2));
    let other = recorded(&sbx, "get_user")
        .into_iter()
        .find(|r| r.path.ends_with(MA_CHAO))
        .expect("the second replica's call reached the sandbox");
    assert_eq!(other.code, 0, "the second replica was not refused");
    assert!(
        other.at_ms >= refused.at_ms + 2500,
        "the second replica waited for the reset: it called {} ms after the refusal",
        other.at_ms.saturating_sub(refused.at_ms)
    );
}

/// Redis gone mid-run: every call still gets its answer, each replica going on alone, and
/// the log says so (without the password).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_go_on_alone_when_redis_dies() {
    let redis = RedisServer::start_with(&["--requirepass", "not-a-real-pw"]);
    let sbx = Sbx::start().await;
    let url = format!("redis://:not-a-real-pw@127.0.0.1:{}", redis.port);
    let servers = replicas(&sbx, 2, &["--redis-url", &url]).await;
    let clients = sessions(&servers).await;
    for c in &clients {
        let r = c
            .call(
                "send_message",
                json!({"to": RND_CENTER_CHAT, "text": "warm"}),
            )
            .await;
        assert!(succeeded(&r), "{}", text(&r));
    }
    drop(redis);
    let calls = (0..6).map(|i| {
        try_call(
            &clients[i % 2],
            "send_message",
            json!({"to": RND_CENTER_CHAT, "text": format!("alone {i}"),
                "idempotency_key": format!("alone-key-{i}")}),
        )
    });
    let results = tokio::time::timeout(Duration::from_secs(40), futures::future::join_all(calls))
        .await
        .expect("calls do not hang on a dead Redis");
    for (i, r) in results.iter().enumerate() {
        let r = r.as_ref().unwrap_or_else(|| panic!("send {i}: no answer"));
        assert!(succeeded(r), "send {i}: {}", text(r));
    }
    for s in &servers {
        let log = s.log.text();
        assert!(log.contains("goes on alone"), "{log}");
        assert!(!log.contains("not-a-real-pw"), "{log}");
    }
}

/// For the record only: what Redis adds to one call (`-- --ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints the per-call cost of Redis"]
async fn figures_of_the_per_call_cost_of_redis() {
    let redis = RedisServer::start();
    let sbx = Sbx::start().await;
    let url = redis.url();
    for args in [vec![], vec!["--redis-url", url.as_str()]] {
        let servers = replicas(&sbx, 1, &args).await;
        let clients = sessions(&servers).await;
        let c = &clients[0];
        c.call("get_user", json!({"user_id": ZHANG_WEI})).await;
        let before = recorded(&sbx, "get_user").len();
        let started = Instant::now();
        for _ in 0..500 {
            c.call("get_user", json!({"user_id": ZHANG_WEI})).await;
        }
        eprintln!(
            "{}: 500 sequential get_user ({} reached Lark), {:.2} ms each",
            if args.is_empty() {
                "in process"
            } else {
                "with Redis"
            },
            recorded(&sbx, "get_user").len() - before,
            started.elapsed().as_secs_f64() * 1000.0 / 500.0
        );
    }
}

// ---- the user login (`login`) shared by replicas ------------------------------------------

/// A user token this short-lived is refreshed a second before it expires.
const USER_TTL_SECS: u64 = 4;

fn user_home(test: &str, replica: &str) -> std::path::PathBuf {
    common::config_home("replicas-user", &format!("{test}-{replica}"))
}

/// The token in the login file of `home` (`access_token` or `refresh_token`).
fn stored_token(home: &std::path::Path, which: &str) -> String {
    let v: Value =
        serde_json::from_slice(&std::fs::read(login_file(home)).expect("the login file"))
            .expect("json");
    v[which].as_str().expect("a token in the file").to_string()
}

/// Two replicas sharing `redis`: the first on a machine where the person ran `login`, the
/// second on one where nobody did. Their profile directories, the servers and a session each.
async fn login_on_one_of_two(
    sbx: &Sbx,
    redis: &RedisServer,
    test: &str,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    Vec<HttpServer>,
    Vec<McpClient>,
) {
    let url = redis.url();
    let (with, without) = (user_home(test, "with"), user_home(test, "without"));
    login(sbx, &with).await;
    let a = user_replica(sbx, &with, &["--redis-url", &url]).await;
    let b = user_replica(sbx, &without, &["--redis-url", &url]).await;
    let servers = vec![a, b];
    let clients = sessions(&servers).await;
    (with, without, servers, clients)
}

/// One replica on the profile directory `home`.
async fn user_replica(sbx: &Sbx, home: &std::path::Path, args: &[&str]) -> HttpServer {
    let env = env(home);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    HttpServer::start_env(&sbx.base, args, &env).await
}

/// Refresh requests at Lark's token endpoint (whatever their answer), and how many of them
/// Lark refused.
fn refresh_requests(sbx: &Sbx) -> (usize, usize) {
    let all: Vec<_> = recorded(sbx, "oauth_token_v2")
        .into_iter()
        .filter(|r| {
            r.body
                .as_ref()
                .is_some_and(|b| b["grant_type"] == "refresh_token")
        })
        .collect();
    let refused = all.iter().filter(|r| r.code != 0).count();
    (all.len(), refused)
}

/// The user login key in Redis, if there is one.
fn user_key(redis: &RedisServer) -> String {
    redis.cli(&["--scan", "--pattern", "*:user:default.user"])
}

fn short_lived_user() -> lark_mcp_server::sandbox::Options {
    serde_json::from_value(json!({"user_token_ttl_secs": USER_TTL_SECS})).expect("options")
}

/// `n` concurrent `get_me` spread round-robin over the clients: every one acts as the user.
async fn all_act_as_the_user(clients: &[McpClient], n: usize) {
    let calls = (0..n).map(|i| try_call(&clients[i % clients.len()], "get_me", json!({})));
    for (i, r) in futures::future::join_all(calls).await.iter().enumerate() {
        let r = r
            .as_ref()
            .unwrap_or_else(|| panic!("get_me {i}: no answer"));
        assert!(succeeded(r), "get_me {i}: {}", text(r));
        assert!(
            str_of(&r["structuredContent"], "open_id").starts_with("ou_"),
            "{r}"
        );
    }
}

/// Lark's refresh tokens are single-use: the login is on one replica's machine only, and
/// across an expiry 30 concurrent calls as the user on 3 replicas make exactly one refresh;
/// the rotated refresh token is the one that works afterwards, the spent one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_refresh_the_user_login_once() {
    let redis = RedisServer::start();
    let sbx = Sbx::with_options(short_lived_user()).await;
    let url = redis.url();
    let homes: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|r| user_home("once", r))
        .collect();
    login(&sbx, &homes[0]).await;
    let first_refresh = stored_token(&homes[0], "refresh_token");
    let mut servers = Vec::new();
    for home in &homes {
        servers.push(user_replica(&sbx, home, &["--redis-url", &url]).await);
    }
    assert!(!user_key(&redis).is_empty(), "the login was shared");
    let clients = sessions(&servers).await;
    for (i, c) in clients.iter().enumerate() {
        let names = c.tool_names(json!({})).await;
        assert!(
            names.iter().any(|n| n == "get_me"),
            "replica {i} offers the user's tools: {names:?}"
        );
    }
    // Whatever token there is now is due after this.
    tokio::time::sleep(Duration::from_secs(USER_TTL_SECS + 1)).await;
    let (before, _) = refresh_requests(&sbx);
    let started = Instant::now();
    all_act_as_the_user(&clients, 30).await;
    let took = started.elapsed();
    let (after, refused) = refresh_requests(&sbx);
    eprintln!(
        "3 replicas + Redis, the user login on one: 30 concurrent calls as the user across \
         an expiry: {} refresh request(s), {refused} refused, {:.2} s",
        after - before,
        took.as_secs_f64()
    );
    assert_eq!(after - before, 1, "one refresh for all replicas");
    assert_eq!(refused, 0, "no refresh token was used twice");

    // The rotated token went to Redis and to the one machine with a login; the next expiry
    // is refreshed with it, once again.
    let rotated = stored_token(&homes[0], "refresh_token");
    assert_ne!(
        rotated, first_refresh,
        "the file has the rotated refresh token"
    );
    for home in &homes[1..] {
        assert!(
            !login_file(home).exists(),
            "no tokens written where no login was"
        );
    }
    tokio::time::sleep(Duration::from_secs(USER_TTL_SECS + 1)).await;
    let (before, _) = refresh_requests(&sbx);
    all_act_as_the_user(&clients, 9).await;
    let (after, refused) = refresh_requests(&sbx);
    assert_eq!(after - before, 1, "one refresh again");
    assert_eq!(refused, 0, "the rotated refresh token worked");

    // The sandbox, like Lark, refuses a refresh token used before (20073).
    let spent = reqwest::Client::new()
        .post(format!("{}/open-apis/authen/v2/oauth/token", sbx.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&client_id={APP_ID}&client_secret={APP_SECRET}&refresh_token={first_refresh}"
        ))
        .send()
        .await
        .expect("the token endpoint answers");
    let body: Value = spent.json().await.expect("json");
    assert_eq!(body["code"], 20073, "{body}");
    for s in &servers {
        let log = s.log.text();
        assert!(
            !log.contains(&first_refresh) && !log.contains(&rotated),
            "no token in the log: {log}"
        );
    }
}

/// A replica that never ran `login` acts as the user with the login another replica shared,
/// keeps no token on its disk, and a login Lark revoked is cleared from Redis and from the
/// machine that had it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_a_login_acts_as_the_user_through_redis() {
    let redis = RedisServer::start();
    let sbx = Sbx::with_options(short_lived_user()).await;
    let (with, without, _servers, clients) = login_on_one_of_two(&sbx, &redis, "shared").await;
    let names = clients[1].tool_names(json!({})).await;
    assert!(names.iter().any(|n| n == "get_me"), "{names:?}");
    let me = clients[1].call("get_me", json!({})).await;
    assert!(succeeded(&me), "{}", text(&me));
    assert!(!login_file(&without).exists(), "no tokens on its disk");

    // Revoked at Lark: the next refresh says to log in again, on either replica, and the
    // login is gone from Redis and from the machine that had it.
    sbx.state().revoke_user_refresh_tokens(None);
    tokio::time::sleep(Duration::from_secs(USER_TTL_SECS + 1)).await;
    let r = clients[1].call("get_me", json!({})).await;
    assert!(
        !succeeded(&r) && text(&r).contains("lark-mcp-server login"),
        "{}",
        text(&r)
    );
    assert!(user_key(&redis).is_empty(), "the dead login left Redis");
    let r = clients[0].call("get_me", json!({})).await;
    assert!(
        !succeeded(&r) && text(&r).contains("lark-mcp-server login"),
        "{}",
        text(&r)
    );
    assert!(!login_file(&with).exists(), "and the machine that had it");
    let (requests, refused) = refresh_requests(&sbx);
    assert_eq!(
        (requests, refused),
        (2, 2),
        "each replica tried its refresh once"
    );
}

/// Redis gone: the replica with a login of its own refreshes it alone, as without Redis;
/// one that had the login only from Redis says it cannot reach it (no hang, no token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_the_replica_with_a_login_still_acts_as_the_user() {
    let redis = RedisServer::start();
    let sbx = Sbx::with_options(short_lived_user()).await;
    let (with, _, servers, clients) = login_on_one_of_two(&sbx, &redis, "down").await;
    for c in &clients {
        let me = c.call("get_me", json!({})).await;
        assert!(succeeded(&me), "{}", text(&me));
    }
    drop(redis);
    tokio::time::sleep(Duration::from_secs(USER_TTL_SECS + 1)).await;
    let started = Instant::now();
    let me = clients[0].call("get_me", json!({})).await;
    assert!(succeeded(&me), "{}", text(&me));
    let r = clients[1].call("get_me", json!({})).await;
    assert!(!succeeded(&r), "{}", text(&r));
    assert!(text(&r).contains("Redis"), "{}", text(&r));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded: {:?}",
        started.elapsed()
    );
    let (requests, refused) = refresh_requests(&sbx);
    assert_eq!((requests, refused), (1, 0), "the local refresh alone");
    let rotated = stored_token(&with, "refresh_token");
    let log = servers[0].log.text();
    assert!(log.contains("goes on alone"), "{log}");
    assert!(!log.contains(&rotated), "no token in the log: {log}");
}

/// `login --redis-url` on a machine that runs no replica shares the login at once; `logout
/// --redis-url` deletes it there too, so a replica started after it offers no user tools.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_logout_with_the_redis_url_reach_the_replicas() {
    let redis = RedisServer::start();
    let sbx = Sbx::start().await;
    let url = redis.url();
    let (laptop, replica) = (user_home("cli", "laptop"), user_home("cli", "replica"));
    // Started before anyone logged in; it reads the scopes (and the shared login) each second.
    let early = vec![
        user_replica(
            &sbx,
            &user_home("cli", "early"),
            &["--redis-url", &url, "--scope-refresh-secs", "1"],
        )
        .await,
    ];
    let early = sessions(&early).await;
    assert!(!offers_get_me(&early[0]).await);
    login_with(&sbx, &laptop, &["--redis-url", &url]).await;
    assert!(!user_key(&redis).is_empty(), "login stored it in Redis");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !offers_get_me(&early[0]).await {
        assert!(Instant::now() < deadline, "the early replica saw the login");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let servers = vec![user_replica(&sbx, &replica, &["--redis-url", &url]).await];
    let clients = sessions(&servers).await;
    assert!(
        clients[0]
            .tool_names(json!({}))
            .await
            .iter()
            .any(|n| n == "get_me")
    );
    let me = clients[0].call("get_me", json!({})).await;
    assert!(succeeded(&me), "{}", text(&me));

    // whoami on a machine with no login of its own shows the shared one.
    let out = command(&sbx, &replica, &["whoami", "--redis-url", &url])
        .output()
        .await
        .expect("whoami runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("User:") && said.contains("Redis at"),
        "{said}"
    );
    assert!(!said.contains("u-"), "no token printed: {said}");
    assert!(
        !login_file(&replica).exists(),
        "nothing written where no login was"
    );

    let out = command(&sbx, &laptop, &["logout", "--redis-url", &url])
        .output()
        .await
        .expect("logout runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(user_key(&redis).is_empty(), "logout deleted it from Redis");
    assert!(!login_file(&laptop).exists());
    let deadline = Instant::now() + Duration::from_secs(5);
    while offers_get_me(&early[0]).await {
        assert!(
            Instant::now() < deadline,
            "the early replica saw the logout"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let later = vec![user_replica(&sbx, &user_home("cli", "later"), &["--redis-url", &url]).await];
    let clients = sessions(&later).await;
    assert!(
        !clients[0]
            .tool_names(json!({}))
            .await
            .iter()
            .any(|n| n == "get_me"),
        "no login anywhere: no user tools"
    );
}

async fn offers_get_me(c: &McpClient) -> bool {
    c.tool_names(json!({})).await.iter().any(|n| n == "get_me")
}

/// With the stateless protocol (2026-07-28) any replica answers any request: a send that
/// needs the person's yes is asked on one replica and confirmed on another; the same answer
/// replayed on a third is asked again instead of sending twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_asked_on_one_replica_is_answered_on_another_and_only_once() {
    let redis = RedisServer::start();
    let sbx = Sbx::start().await;
    let url = redis.url();
    let servers = replicas(&sbx, 3, &["--redis-url", &url, "--confirm", "writes"]).await;
    let clients: Vec<McpClient> = servers
        .iter()
        .map(|s| {
            let mut c = s.mcp();
            c.protocol = Some("2026-07-28".into());
            c
        })
        .collect();
    let before = sbx.state().messages(Some(RND_CENTER_CHAT));
    let params = |extra: Value| {
        let mut p = json!({
            "name": "send_message",
            "arguments": {"to": RND_CENTER_CHAT, "text": "confirmed once"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
                "io.modelcontextprotocol/clientInfo": {"name": "replica-tests", "version": "0"}
            }
        });
        if let (Some(p), Value::Object(e)) = (p.as_object_mut(), extra) {
            p.extend(e);
        }
        p
    };
    let asked = stateless_send(&clients[0], params(json!({}))).await;
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let state = asked["result"]["requestState"].clone();
    assert!(new_messages(&sbx, RND_CENTER_CHAT, &before).is_empty());

    let yes = json!({"inputResponses": {"confirm": {"action": "accept"}}, "requestState": state});
    let sent = stateless_send(&clients[1], params(yes.clone())).await;
    assert_eq!(sent["result"]["isError"], false, "{sent}");
    assert_eq!(new_messages(&sbx, RND_CENTER_CHAT, &before).len(), 1);

    let replayed = stateless_send(&clients[2], params(yes)).await;
    assert_eq!(
        replayed["result"]["resultType"], "input_required",
        "{replayed}"
    );
    assert_eq!(
        arrivals(&sbx, RND_CENTER_CHAT, &before).get("confirmed once"),
        Some(&1),
        "one message for one confirmation"
    );
}

/// One stateless (2026-07-28) `send_message` call: its JSON-RPC answer.
async fn stateless_send(c: &McpClient, params: Value) -> Value {
    let id = c.next_id();
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
    let rb = c
        .post(&body)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "send_message");
    c.send(rb).await.response(id).clone()
}

/// A stdio server (a desktop client's), a one-off `call` and `check` next to the replicas
/// share their token and pace too, given the same `--redis-url`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_server_call_and_check_next_to_the_replicas_share_their_token() {
    let redis = RedisServer::start();
    let sbx = Sbx::start().await;
    let url = redis.url();
    let servers = replicas(&sbx, 1, &["--redis-url", &url]).await;
    let clients = sessions(&servers).await;
    let r = try_call(&clients[0], "get_app_status", json!({})).await;
    assert!(r.as_ref().is_some_and(succeeded), "{r:?}");
    let fetched = sbx.state().count("tenant_access_token_internal");

    let stdio = common::mcp::McpServer::start(&sbx, &["--redis-url", &url]).await;
    let r = stdio
        .call(
            "send_message",
            json!({"to": RND_CENTER_CHAT, "text": "from stdio"}),
        )
        .await;
    assert_eq!(r.is_error, Some(false), "{r:?}");
    for args in [&["call", "get_app_status"][..], &["check"][..]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lark-mcp-server"))
            .args(args)
            .args(["--domain", &sbx.base, "--redis-url", &url])
            .env("LARK_APP_ID", APP_ID)
            .env("LARK_APP_SECRET", APP_SECRET)
            .env("XDG_CACHE_HOME", common::http::fresh_cache_home())
            .env_remove("LARK_MCP_REDIS_URL")
            .output()
            .expect("run the command");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        sbx.state().count("tenant_access_token_internal"),
        fetched,
        "the stdio server, call and check used the replicas' token"
    );
}

/// `--send-budget` counts the sends of all replicas sharing Redis: 5/h over three replicas
/// is 5 messages an hour, not 15; the refused sends never reach Lark; a send Lark refuses
/// spends nothing on any replica; every replica's status shows the shared figure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_budget_is_shared_by_the_replicas() {
    let redis = RedisServer::start();
    let sbx = Sbx::start().await;
    let url = redis.url();
    let args = [
        "--redis-url",
        &url,
        "--send-budget",
        "5/h",
        "--confirm",
        "none",
    ];
    let servers = replicas(&sbx, 3, &args).await;
    let clients = sessions(&servers).await;
    // Lark refuses this one (the bot is not in that chat): it is given back, in Redis too.
    let refused = clients[0]
        .call("send_message", json!({"to": HR_PRIVATE_CHAT, "text": "x"}))
        .await;
    assert!(text(&refused).contains("230002"), "{}", text(&refused));

    let before = sbx.state().messages(Some(RND_CENTER_CHAT));
    let lark_sends_before = recorded(&sbx, "send_message").len();
    let started = Instant::now();
    let (results, _) = burst(&clients, 9, "budget").await;
    let took = started.elapsed();
    let answers: Vec<&Value> = results
        .iter()
        .enumerate()
        .map(|(i, r)| r.as_ref().unwrap_or_else(|| panic!("send {i}: no answer")))
        .collect();
    let ok = answers.iter().filter(|r| succeeded(r)).count();
    let delivered = arrivals(&sbx, RND_CENTER_CHAT, &before)
        .values()
        .sum::<usize>();
    let lark_sends = recorded(&sbx, "send_message").len() - lark_sends_before;
    eprintln!(
        "3 replicas + Redis, --send-budget 5/h, 9 concurrent sends: {ok} succeeded, \
         {delivered} delivered, {lark_sends} send request(s) to Lark, {:.2} s",
        took.as_secs_f64()
    );
    assert_eq!(ok, 5, "5/h for all replicas together, not per replica");
    assert_eq!(delivered, 5);
    assert_eq!(lark_sends, 5, "the refused sends never reached Lark");
    for r in answers.iter().filter(|r| !succeeded(r)) {
        let t = text(r);
        assert!(t.contains("server's send budget (5/h"), "{t}");
        assert!(
            t.contains("possible in 59 min") || t.contains("possible in 1 h 0 min"),
            "{t}"
        );
    }
    assert_eq!(
        redis
            .cli(&["--scan", "--pattern", "*:send_budget:5/3600"])
            .lines()
            .count(),
        1,
        "one budget key for the app"
    );
    let key = redis.cli(&["--scan", "--pattern", "*:send_budget:5/3600"]);
    assert_eq!(redis.cli(&["ZCARD", &key]), "5");
    let ttl: i64 = redis.cli(&["PTTL", &key]).parse().unwrap_or(-1);
    assert!(
        ttl > 3_500_000 && ttl <= 3_600_000,
        "expires after a period: {ttl}"
    );
    // Each replica, including those that sent little, sees the budget spent.
    for c in &clients {
        let status = c.call("get_app_status", json!({})).await;
        assert_eq!(
            status["structuredContent"]["guard_rails"]["send_budget"],
            "5/h (0 left now, shared by the replicas)",
            "{status}"
        );
    }
    // A later send on any replica is refused before Lark, whichever replica it reaches.
    let late = clients[2]
        .call(
            "send_message",
            json!({"to": RND_CENTER_CHAT, "text": "late"}),
        )
        .await;
    assert!(text(&late).contains("send budget (5/h"), "{}", text(&late));
    assert_eq!(recorded(&sbx, "send_message").len() - lark_sends_before, 5);
}

/// With Redis gone, each replica goes on with its own window, which remembers the sends
/// it made while Redis counted them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_each_replica_keeps_the_send_budget_alone() {
    let redis = RedisServer::start();
    let sbx = Sbx::start().await;
    let url = redis.url();
    let args = [
        "--redis-url",
        &url,
        "--send-budget",
        "3/h",
        "--confirm",
        "none",
    ];
    let servers = replicas(&sbx, 2, &args).await;
    let clients = sessions(&servers).await;
    let send = |i: usize| json!({"to": RND_CENTER_CHAT, "text": format!("alone {i}")});
    for i in 0..2 {
        let r = clients[0].call("send_message", send(i)).await;
        assert!(succeeded(&r), "{}", text(&r));
    }
    drop(redis);
    let outcomes = tokio::time::timeout(Duration::from_secs(40), async {
        let mut out = Vec::new();
        for (c, i) in [(0, 2), (0, 3), (1, 4), (1, 5), (1, 6), (1, 7)] {
            out.push(succeeded(&clients[c].call("send_message", send(i)).await));
        }
        out
    })
    .await
    .expect("sends do not hang on a dead Redis");
    // Replica 0 had sent 2 of its 3; replica 1 none.
    assert_eq!(outcomes, [true, false, true, true, true, false]);
    let status = clients[0].call("get_app_status", json!({})).await;
    let shown = status["structuredContent"]["guard_rails"]["send_budget"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(shown.contains("0 left now on this replica"), "{shown}");
    assert!(servers[0].log.text().contains("goes on alone"));
}
