//! How close a burst to one chat comes to Lark's floor of 5 sends per second.
//!
//! `cargo bench --bench pacing [-- N]` sends N (default 400) messages to one chat at once
//! through `LarkClient`, against the sandbox enforcing Lark's limit (230020 beyond it), and
//! prints the wall time against the floor (N / 5 s), the refusals the sandbox answered and
//! that every message landed exactly once.

use std::time::{Duration, Instant};

use lark_mcp_server::lark::{LarkClient, LarkConfig, Request};
use lark_mcp_server::sandbox::{Options, Sandbox, Seed};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(400);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(n));
}

async fn run(n: usize) {
    let seed = Seed::default_org().expect("seed");
    let (app_id, secret) = (seed.app.app_id.clone(), seed.app.app_secret.clone());
    let sb = Sandbox::start(seed, Options::default(), 0)
        .await
        .expect("sandbox");
    let chat = sb
        .state()
        .chats()
        .into_iter()
        .find(|c| c.bot_member && c.chat_mode == "group")
        .map(|c| c.chat_id)
        .expect("a chat with the bot");
    let mut cfg =
        LarkConfig::new(Some(&app_id), Some(&secret), Some(&sb.base_url())).expect("config");
    // The whole burst is one queue: no send may give up before its turn.
    cfg.call_budget = Duration::from_secs(n as u64);
    let client = LarkClient::new(cfg).expect("client");
    let cancel = CancellationToken::new();
    let before = sb.state().messages(Some(&chat)).len();
    // Token fetched before the clock starts.
    client
        .call(
            Request::get("get the bot's info", "/open-apis/bot/v3/info".into()),
            &cancel,
        )
        .await
        .expect("warm-up");

    let started = Instant::now();
    let sends = (0..n).map(|i| {
        let client = client.clone();
        let cancel = cancel.clone();
        let chat = chat.clone();
        tokio::spawn(async move {
            let req = Request::post(
                "send message",
                "/open-apis/im/v1/messages".into(),
                json!({"receive_id": chat, "msg_type": "text",
                       "content": json!({"text": format!("pace {i:04}")}).to_string()}),
            )
            .query("receive_id_type", "chat_id")
            .dedupe_in_body(None)
            .pace(chat.clone());
            client.call(req, &cancel).await
        })
    });
    let results = futures::future::join_all(sends).await;
    let wall = started.elapsed().as_secs_f64();
    let failed = results.iter().filter(|r| !matches!(r, Ok(Ok(_)))).count();
    let refused = sb
        .state()
        .requests()
        .iter()
        .filter(|r| r.endpoint == "send_message" && r.code == 230020)
        .count();
    let landed = sb.state().messages(Some(&chat)).len() - before;
    let floor = n as f64 / 5.0;
    println!(
        "pacing: {n} concurrent sends to one chat in {wall:.2} s; floor {floor:.0} s (5/s) → {:.3}×; \
         minimum possible {:.0} s → {:.3}×; {refused} refused with 230020, {failed} failed, {landed} landed",
        wall / floor,
        floor - 1.0,
        wall / (floor - 1.0),
    );
}
