//! Client overhead over the sandbox's own latency, and throughput at 64 concurrent calls.
//!
//! `cargo bench --bench client` prints p50/p99 for the same request sent with a bare
//! reqwest client (the sandbox's own cost plus HTTP) and through `LarkClient` (adds token
//! cache, retry wrapper, envelope decoding, error typing), then calls/s at 64 in flight.

use std::time::{Duration, Instant};

use lark_mcp_server::lark::{LarkClient, LarkConfig, Request, api_path};
use lark_mcp_server::sandbox::{Options, Sandbox, Seed};
use tokio_util::sync::CancellationToken;

const USER: &str = "ou_7d82ab6889beb45bb7911ba8216f1a9e";
const SEQUENTIAL: usize = 3000;
const CONCURRENT: usize = 64;
const TOTAL: usize = 30_000;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn summary(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    (pct(&v, 0.50), pct(&v, 0.99))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let seed = Seed::default_org().expect("seed");
    let (app_id, secret) = (seed.app.app_id.clone(), seed.app.app_secret.clone());
    let sb = Sandbox::start(
        seed,
        Options {
            record_limit: 1000,
            ..Options::default()
        },
        0,
    )
    .await
    .expect("sandbox");
    let base = sb.base_url();
    let client = LarkClient::new(
        LarkConfig::new(Some(&app_id), Some(&secret), Some(&base)).expect("config"),
    )
    .expect("client");
    let cancel = CancellationToken::new();
    let path = api_path("/open-apis/contact/v3/users/{}", &[USER]).expect("path");
    let url = format!("{base}{path}");

    let raw = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest");
    let token: serde_json::Value = raw
        .post(format!(
            "{base}/open-apis/auth/v3/tenant_access_token/internal"
        ))
        .json(&serde_json::json!({"app_id": app_id, "app_secret": secret}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let token = token["tenant_access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let raw_call = || async {
        let r = raw
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("send");
        let v: serde_json::Value = r.json().await.expect("json");
        assert_eq!(v["code"], 0);
    };
    let client_call = || async {
        client
            .call(Request::get("get a user", path.clone()), &cancel)
            .await
            .expect("call");
    };

    // Warm both connection pools and the token cache.
    for _ in 0..200 {
        raw_call().await;
        client_call().await;
    }
    let mut raw_lat = Vec::with_capacity(SEQUENTIAL);
    let mut client_lat = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        raw_call().await;
        raw_lat.push(t.elapsed());
        let t = Instant::now();
        client_call().await;
        client_lat.push(t.elapsed());
    }
    let (r50, r99) = summary(raw_lat);
    let (c50, c99) = summary(client_lat);
    println!("sequential get_user, {SEQUENTIAL} calls each (µs):");
    println!("  bare reqwest      p50 {r50:8.1}  p99 {r99:8.1}");
    println!("  LarkClient        p50 {c50:8.1}  p99 {c99:8.1}");
    println!(
        "  client overhead   p50 {:8.1}  p99 {:8.1}",
        c50 - r50,
        c99 - r99
    );

    for (label, use_client) in [("bare reqwest", false), ("LarkClient", true)] {
        let started = Instant::now();
        let per_task = TOTAL / CONCURRENT;
        let tasks: Vec<_> = (0..CONCURRENT)
            .map(|_| {
                let (client, raw, url, token, path, cancel) = (
                    client.clone(),
                    raw.clone(),
                    url.clone(),
                    token.clone(),
                    path.clone(),
                    cancel.clone(),
                );
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        if use_client {
                            client
                                .call(Request::get("get a user", path.clone()), &cancel)
                                .await
                                .expect("call");
                        } else {
                            let r = raw
                                .get(&url)
                                .bearer_auth(&token)
                                .send()
                                .await
                                .expect("send");
                            let _: serde_json::Value = r.json().await.expect("json");
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{CONCURRENT} concurrent, {} calls: {label:<13} {:9.0} calls/s",
            per_task * CONCURRENT,
            (per_task * CONCURRENT) as f64 / secs
        );
    }
    println!(
        "token fetches at the sandbox: {}",
        sb.state().count("tenant_access_token_internal")
    );
}
