//! No secret or token reaches logs, errors, Debug output or the sandbox's request log.
//! Its own test binary: a thread-scoped log subscriber must not race other tests for
//! tracing's callsite registrations.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lark_mcp_server::lark::{ErrorKind, LarkClient, LarkConfig, Request, api_path};
use lark_mcp_server::sandbox::{FaultAction, FaultRule, Options, Phase, Sandbox, Seed};
use tokio_util::sync::CancellationToken;

const IN_RANGE_USER: &str = "ou_7d82ab6889beb45bb7911ba8216f1a9e";
const LEGAL_USER: &str = "ou_d0746ea879393f08fe81a80ed7f4cfd3";

fn get_user(id: &str) -> Request {
    Request::get(
        "get a user",
        api_path("/open-apis/contact/v3/users/{}", &[id]).expect("path"),
    )
}

/// Captures every log line the client and sandbox write, at TRACE.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_or_token_reaches_logs_errors_or_debug_output() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let seed = Seed::default_org().expect("seed");
    let sb = Sandbox::start(seed.clone(), Options::default(), 0)
        .await
        .expect("sandbox");
    let mut cfg = LarkConfig::new(
        Some(&seed.app.app_id),
        Some(&seed.app.app_secret),
        Some(&sb.base_url()),
    )
    .expect("config");
    cfg.call_budget = Duration::from_secs(20);
    let client = LarkClient::new(cfg).expect("client");
    let cancel = CancellationToken::new();
    let mut texts = vec![format!("{client:?}")];
    client
        .call(get_user(IN_RANGE_USER), &cancel)
        .await
        .expect("call");
    sb.state().revoke_tokens(None);
    sb.state().add_fault(
        FaultRule::new(FaultAction::ServerError {
            status: 500,
            phase: Phase::Before,
        })
        .path("/open-apis/contact")
        .times(1),
    );
    client
        .call(get_user(IN_RANGE_USER), &cancel)
        .await
        .expect("recovers");
    texts.push(
        client
            .call(get_user(LEGAL_USER), &cancel)
            .await
            .expect_err("range")
            .to_string(),
    );

    let mut bad = client.config().clone();
    bad.app_secret = "wrong-secret-value".to_string().into();
    let bad_client = LarkClient::new(bad).expect("client");
    let err = bad_client
        .call(get_user(IN_RANGE_USER), &cancel)
        .await
        .expect_err("bad secret");
    assert_eq!(err.kind, ErrorKind::Auth);
    texts.push(err.to_string());
    texts.push(format!("{err:?}"));

    let secret = Seed::default_org().expect("seed").app.app_secret;
    let tokens: Vec<String> = sb
        .state()
        .world
        .lock()
        .map(|w| w.tokens.keys().cloned().collect())
        .unwrap_or_default();
    assert!(tokens.len() >= 2);
    let log_text =
        String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(|e| e.into_inner())).to_string();
    assert!(
        log_text.contains("retrying Lark call"),
        "logs were captured"
    );
    let requests = serde_json::to_string(&sb.state().requests()).expect("json");
    for haystack in texts.iter().chain([&log_text, &requests]) {
        assert!(!haystack.contains(&secret), "secret leaked");
        assert!(!haystack.contains("wrong-secret-value"), "secret leaked");
        for t in &tokens {
            assert!(!haystack.contains(t.as_str()), "token leaked");
        }
    }
}
