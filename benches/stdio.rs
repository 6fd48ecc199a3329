//! Start-up and footprint of the stdio server: spawn → tools/list answered, and peak RSS
//! after 1,000 tool calls, against the in-process sandbox.
//!
//! `cargo bench --bench stdio` (uses the release binary cargo builds for benches).

use std::process::Stdio;
use std::time::{Duration, Instant};

use lark_mcp_server::sandbox::{Options, Sandbox, Seed};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const SPAWNS: usize = 20;
const CALLS: u64 = 1000;

struct Session {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Session {
    fn spawn(base: &str, seed: &Seed) -> Session {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lark-mcp-server"))
            .args(["serve", "--domain", base])
            .env("LARK_APP_ID", &seed.app.app_id)
            .env("LARK_APP_SECRET", &seed.app.app_secret)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Session {
            child,
            stdin,
            lines,
        }
    }

    async fn send(&mut self, v: Value) {
        self.stdin
            .write_all(format!("{v}\n").as_bytes())
            .await
            .expect("write");
    }

    async fn answer(&mut self, id: u64) -> Value {
        loop {
            let line = self.lines.next_line().await.expect("read").expect("line");
            let v: Value = serde_json::from_str(&line).expect("json");
            if v["id"] == id {
                return v;
            }
        }
    }

    async fn handshake(&mut self) -> Value {
        self.send(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}})).await;
        self.answer(0).await;
        self.send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await;
        self.send(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
            .await;
        self.answer(1).await
    }

    fn status_kb(&self, field: &str) -> u64 {
        let pid = self.child.id().expect("pid");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
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
    let sb = Sandbox::start(
        seed.clone(),
        Options {
            record_limit: 1000,
            ..Options::default()
        },
        0,
    )
    .await
    .expect("sandbox");
    let base = sb.base_url();

    let mut times = Vec::new();
    let mut list_bytes = 0;
    for _ in 0..SPAWNS {
        let started = Instant::now();
        let mut s = Session::spawn(&base, &seed);
        let list = s.handshake().await;
        times.push(started.elapsed());
        list_bytes = serde_json::to_string(&list["result"])
            .map(|t| t.len())
            .unwrap_or(0);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "spawn → tools/list answered ({SPAWNS} runs): min {:.1} ms, median {:.1} ms, max {:.1} ms",
        ms(times[0]),
        ms(times[SPAWNS / 2]),
        ms(times[SPAWNS - 1])
    );
    println!("tools/list result: {list_bytes} bytes");

    let mut s = Session::spawn(&base, &seed);
    s.handshake().await;
    println!("RSS after tools/list: {} KB", s.status_kb("VmRSS:"));
    let started = Instant::now();
    for i in 0..CALLS {
        let id = 100 + i;
        let args = if i % 2 == 0 {
            json!({"user_id": "ou_7d82ab6889beb45bb7911ba8216f1a9e"})
        } else {
            json!({"emails": ["zhang.wei@northwind.example", "ma.chao@northwind.example"]})
        };
        let name = if i % 2 == 0 {
            "get_user"
        } else {
            "lookup_user_by_email"
        };
        s.send(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":args}}))
            .await;
        let r = s.answer(id).await;
        assert_eq!(r["result"]["isError"], false, "{r}");
    }
    let elapsed = started.elapsed();
    println!(
        "{CALLS} sequential tools/call: {:.0} ms ({:.2} ms/call); RSS now {} KB, peak (VmHWM) {} KB",
        ms(elapsed),
        ms(elapsed) / CALLS as f64,
        s.status_kb("VmRSS:"),
        s.status_kb("VmHWM:")
    );
}
