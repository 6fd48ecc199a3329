//! Throughput and latency of MCP over Streamable HTTP: `tools/call get_user` at 1, 16 and
//! 64 concurrent clients (each its own session) against the release binary
//! (`serve --http --port 0`) and the in-process sandbox.
//!
//! `cargo bench --bench http` (`HTTP_BENCH_SECS` sets the measured seconds per level, default 3).
//! Client, sandbox and server share this machine's cores.

#[allow(dead_code)]
#[path = "../tests/common/http.rs"]
mod http;

use std::time::{Duration, Instant};

use http::{HttpServer, LATEST, McpClient, structured};
use lark_mcp_server::sandbox::{Options, Sandbox, Seed};
use serde_json::json;

const USER: &str = "ou_7d82ab6889beb45bb7911ba8216f1a9e";
const LEVELS: [usize; 3] = [1, 16, 64];
const WARMUP_CALLS: usize = 5;

struct Level {
    clients: usize,
    calls: usize,
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn call(c: &McpClient) {
    let r = c.call("get_user", json!({"user_id": USER})).await;
    assert_eq!(structured(&r)["open_id"], USER);
}

async fn level(srv: &HttpServer, http: &reqwest::Client, clients: usize, secs: f64) -> Level {
    let mut sessions = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut c = McpClient::new(http.clone(), &srv.base);
        c.connect(LATEST).await;
        sessions.push(c);
    }
    // Warm up every session and connection.
    let warm: Vec<_> = sessions
        .into_iter()
        .map(|c| {
            tokio::spawn(async move {
                for _ in 0..WARMUP_CALLS {
                    call(&c).await;
                }
                c
            })
        })
        .collect();
    let mut sessions = Vec::with_capacity(clients);
    for t in warm {
        sessions.push(t.await.expect("warm-up"));
    }

    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|c| {
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    call(&c).await;
                    lat.push(t.elapsed());
                }
                (c, lat)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut done = Vec::new();
    for t in tasks {
        let (c, lat) = t.await.expect("client task");
        all.extend(lat);
        done.push(c);
    }
    let elapsed = start.elapsed();
    for mut c in done {
        assert_eq!(c.close().await, 202);
    }
    all.sort();
    Level {
        clients,
        calls: all.len(),
        per_sec: all.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&all, 0.50),
        p99: percentile(&all, 0.99),
        max: all.last().copied().unwrap_or_default(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let secs: f64 = std::env::var("HTTP_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sandbox = Sandbox::start(
            Seed::default_org().expect("seed"),
            Options::default(),
            0,
        )
        .await
        .expect("sandbox");
        let srv = HttpServer::start_env(&sandbox.base_url(), &[], &[]).await;
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(128)
            .build()
            .expect("client");

        let mut rows = Vec::new();
        for clients in LEVELS {
            rows.push(level(&srv, &http, clients, secs).await);
        }

        println!(
            "tools/call get_user over Streamable HTTP (release server, in-process sandbox, {} CPUs, {secs} s per level)",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!(
            "{:>8} {:>8} {:>10} {:>9} {:>9} {:>9}",
            "clients", "calls", "calls/s", "p50 ms", "p99 ms", "max ms"
        );
        for r in &rows {
            println!(
                "{:>8} {:>8} {:>10.0} {:>9} {:>9} {:>9}",
                r.clients,
                r.calls,
                r.per_sec,
                ms(r.p50),
                ms(r.p99),
                ms(r.max)
            );
        }
        let state = sandbox.state();
        println!(
            "token fetches: {}; server VmRSS {} kB, VmHWM {} kB",
            state.count("tenant_access_token_internal"),
            srv.rss_kb(),
            http::status_kb(srv.pid, "VmHWM:")
        );
    });
}
