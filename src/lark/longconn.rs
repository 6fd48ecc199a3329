//! The long connection: how Lark pushes events to an app without a public URL. Ask
//! `/callback/ws/endpoint` for a WebSocket URL, dial it, ping, reassemble fragmented
//! events, acknowledge each within Lark's 3 s (else it pushes again), drop the duplicates
//! its re-pushes make, and reconnect after any loss with the jitter Lark asks for
//! (reference part C).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use super::LarkConfig;
use super::pbbp2::{self, Frame};

/// Fragments of one event are kept this long (the SDKs: 5 s).
const FRAGMENT_TTL: Duration = Duration::from_secs(5);
/// Event ids remembered to drop re-pushes.
const SEEN_CAPACITY: usize = 10_000;
/// Bounds on what the endpoint may ask for, in seconds (as the channel SDK sanitises).
const MAX_INTERVAL_SECS: u64 = 86_400;

/// One event as Lark sent it (the schema-2.0 envelope).
#[derive(Debug, Clone)]
pub struct Received {
    pub event_id: String,
    pub event_type: String,
    pub envelope: Value,
}

/// What `get_app_status` shows about the connection.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ConnStatus {
    pub connected: bool,
    /// Successful dials, the first included.
    pub connects: u64,
    pub events: u64,
    /// Re-pushed events dropped because they had been delivered.
    pub duplicates: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event_unix_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The connection gave up for good (credentials refused, too many connections).
    pub stopped: bool,
}

/// The settings the endpoint (and later pongs) hand the client, in seconds.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ClientConfig {
    #[serde(default = "forever")]
    pub reconnect_count: i64,
    #[serde(default = "two_minutes")]
    pub reconnect_interval: u64,
    #[serde(default = "half_a_minute")]
    pub reconnect_nonce: u64,
    #[serde(default = "two_minutes")]
    pub ping_interval: u64,
}

fn forever() -> i64 {
    -1
}
fn two_minutes() -> u64 {
    120
}
fn half_a_minute() -> u64 {
    30
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            reconnect_count: forever(),
            reconnect_interval: two_minutes(),
            reconnect_nonce: half_a_minute(),
            ping_interval: two_minutes(),
        }
    }
}

impl ClientConfig {
    fn sane(mut self) -> ClientConfig {
        let clamp = |v: u64, default: u64| {
            if (1..=MAX_INTERVAL_SECS).contains(&v) {
                v
            } else {
                default
            }
        };
        self.reconnect_interval = clamp(self.reconnect_interval, two_minutes());
        self.ping_interval = clamp(self.ping_interval, two_minutes());
        self.reconnect_nonce = self.reconnect_nonce.min(MAX_INTERVAL_SECS);
        self
    }
}

/// Why a session ended.
enum Ended {
    /// Asked to stop.
    Cancelled,
    /// Worth another try after the reconnect wait.
    Retry(String),
    /// Lark refused for a reason another try will not change.
    Fatal(String),
}

pub struct LongConn {
    status: Arc<Mutex<ConnStatus>>,
}

impl LongConn {
    /// Starts connecting in the background; events go to `events` until `cancel`.
    pub fn start(
        cfg: LarkConfig,
        events: mpsc::Sender<Received>,
        cancel: CancellationToken,
    ) -> LongConn {
        let status = Arc::new(Mutex::new(ConnStatus::default()));
        let shared = status.clone();
        tokio::spawn(async move { run(cfg, events, cancel, shared).await });
        LongConn { status }
    }

    pub fn status(&self) -> ConnStatus {
        lock(&self.status).clone()
    }
}

fn lock(m: &Mutex<ConnStatus>) -> std::sync::MutexGuard<'_, ConnStatus> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn run(
    cfg: LarkConfig,
    events: mpsc::Sender<Received>,
    cancel: CancellationToken,
    status: Arc<Mutex<ConnStatus>>,
) {
    let http = match reqwest::Client::builder()
        .tls_backend_preconfigured(super::tls::client_config())
        .connect_timeout(cfg.connect_timeout)
        .timeout(cfg.request_timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            let mut s = lock(&status);
            s.last_error = Some(format!("cannot build an HTTP client: {e}"));
            s.stopped = true;
            return;
        }
    };
    let mut client_cfg = ClientConfig::default();
    let mut seen = Seen::default();
    let mut attempts: i64 = 0;
    loop {
        let ended = session(
            &cfg,
            &http,
            &events,
            &cancel,
            &status,
            &mut client_cfg,
            &mut seen,
        )
        .await;
        lock(&status).connected = false;
        let why = match ended {
            Ended::Cancelled => return,
            Ended::Fatal(why) => {
                tracing::error!("the long connection stopped: {why}");
                let mut s = lock(&status);
                s.last_error = Some(why);
                s.stopped = true;
                return;
            }
            Ended::Retry(why) => why,
        };
        tracing::warn!("the long connection dropped: {why}; reconnecting");
        lock(&status).last_error = Some(why);
        attempts += 1;
        if client_cfg.reconnect_count >= 0 && attempts > client_cfg.reconnect_count {
            lock(&status).stopped = true;
            return;
        }
        // Lark spreads reconnecting clients: a random part of the nonce first, then the
        // interval between further attempts.
        let wait = if attempts == 1 {
            Duration::from_secs_f64(client_cfg.reconnect_nonce as f64 * fastrand::f64())
        } else {
            Duration::from_secs(client_cfg.reconnect_interval)
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[derive(Deserialize)]
struct EndpointReply {
    code: i64,
    #[serde(default)]
    msg: String,
    data: Option<EndpointData>,
}

#[derive(Deserialize)]
struct EndpointData {
    #[serde(rename = "URL")]
    url: String,
    #[serde(rename = "ClientConfig", default)]
    client_config: Option<ClientConfig>,
}

/// Codes after which asking again may work (reference C.1).
fn endpoint_retryable(code: i64) -> bool {
    code == 1 || code == 1_000_040_343
}

async fn endpoint(cfg: &LarkConfig, http: &reqwest::Client) -> Result<EndpointData, Ended> {
    let url = format!("{}/callback/ws/endpoint", cfg.base_url);
    let body = serde_json::json!({
        "AppID": cfg.app_id,
        "AppSecret": cfg.app_secret.expose_secret(),
    });
    let resp = http
        .post(&url)
        .header("locale", "zh")
        .json(&body)
        .send()
        .await
        .map_err(|e| Ended::Retry(format!("the endpoint request failed: {}", e.without_url())))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Ended::Retry(format!("the endpoint answered HTTP {status}")));
    }
    let reply: EndpointReply = resp.json().await.map_err(|e| {
        Ended::Retry(format!(
            "the endpoint's answer is not JSON: {}",
            e.without_url()
        ))
    })?;
    match (reply.code, reply.data) {
        (0, Some(d)) => Ok(d),
        (0, None) => Err(Ended::Retry("the endpoint answered without a URL".into())),
        (code, _) if endpoint_retryable(code) => Err(Ended::Retry(format!(
            "the endpoint is busy (code {code}: {})",
            reply.msg
        ))),
        (code, _) => Err(Ended::Fatal(format!(
            "Lark refused the long connection (code {code}: {}); check the app's credentials and that it is a self-built app with events enabled",
            reply.msg
        ))),
    }
}

/// `service_id` from the URL's query: every frame carries it.
fn service_id(url: &str) -> Option<i32> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "service_id")
        .and_then(|(_, v)| v.parse().ok())
}

/// A refused upgrade: the handshake headers say whether to try again (reference C.2).
fn handshake_refused(
    resp: &tokio_tungstenite::tungstenite::http::Response<Option<Vec<u8>>>,
) -> Ended {
    let header = |k: &str| {
        resp.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (status, code, msg) = (
        header("handshake-status"),
        header("handshake-autherrcode"),
        header("handshake-msg"),
    );
    let what = format!(
        "the WebSocket upgrade was refused (HTTP {}, handshake-status {status}, autherrcode {code}: {msg})",
        resp.status()
    );
    match (status.as_str(), code.as_str()) {
        ("514", "1000040350") => Ended::Fatal(format!(
            "{what}: the app has too many long connections (Lark allows 50)"
        )),
        ("403", _) => Ended::Fatal(what),
        _ => Ended::Retry(what),
    }
}

#[allow(clippy::too_many_arguments)]
async fn session(
    cfg: &LarkConfig,
    http: &reqwest::Client,
    events: &mpsc::Sender<Received>,
    cancel: &CancellationToken,
    status: &Arc<Mutex<ConnStatus>>,
    client_cfg: &mut ClientConfig,
    seen: &mut Seen,
) -> Ended {
    let ep = tokio::select! {
        _ = cancel.cancelled() => return Ended::Cancelled,
        r = endpoint(cfg, http) => match r { Ok(ep) => ep, Err(e) => return e },
    };
    if let Some(c) = ep.client_config {
        *client_cfg = c.sane();
    }
    let Some(service) = service_id(&ep.url) else {
        return Ended::Retry("the endpoint's URL has no service_id".into());
    };
    let dial = tokio::time::timeout(
        cfg.connect_timeout.max(Duration::from_secs(5)),
        tokio_tungstenite::connect_async_tls_with_config(
            ep.url.as_str(),
            None,
            false,
            // The roots and crypto every Lark request uses (the system's), not a bundle.
            Some(tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(
                super::tls::client_config(),
            ))),
        ),
    );
    let (ws, _) = tokio::select! {
        _ = cancel.cancelled() => return Ended::Cancelled,
        r = dial => match r {
            Err(_) => return Ended::Retry("the WebSocket dial timed out".into()),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => return handshake_refused(&resp),
            Ok(Err(e)) => return Ended::Retry(format!("the WebSocket dial failed: {e}")),
            Ok(Ok(ok)) => ok,
        },
    };
    {
        let mut s = lock(status);
        s.connected = true;
        s.connects += 1;
    }
    tracing::info!("long connection open");
    let (mut tx, mut rx) = ws.split();
    let mut fragments = Fragments::default();
    // The SDKs ping at once, then every PingInterval.
    let mut next_ping = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = tx.send(WsMessage::Close(None)).await;
                return Ended::Cancelled;
            }
            _ = tokio::time::sleep_until(next_ping) => {
                next_ping = tokio::time::Instant::now() + Duration::from_secs(client_cfg.ping_interval);
                if let Err(e) = tx.send(WsMessage::Binary(Frame::ping(service).to_bytes().into())).await {
                    return Ended::Retry(format!("a ping could not be sent: {e}"));
                }
            }
            msg = rx.next() => {
                let bytes = match msg {
                    None => return Ended::Retry("Lark closed the connection".into()),
                    Some(Err(e)) => return Ended::Retry(format!("the connection failed: {e}")),
                    Some(Ok(WsMessage::Binary(b))) => b,
                    Some(Ok(WsMessage::Close(_))) => return Ended::Retry("Lark closed the connection".into()),
                    // WebSocket pings are answered by the library; text is not Lark's.
                    Some(Ok(_)) => continue,
                };
                let frame = match Frame::from_bytes(&bytes) {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::debug!("an undecodable frame was ignored: {e}");
                        continue;
                    }
                };
                match (frame.method, frame.kind()) {
                    (pbbp2::CONTROL, Some(pbbp2::PONG)) => {
                        if let Some(c) = frame.payload.as_deref().and_then(|p| serde_json::from_slice::<ClientConfig>(p).ok()) {
                            *client_cfg = c.sane();
                        }
                    }
                    (pbbp2::DATA, Some(pbbp2::EVENT)) => {
                        let started = Instant::now();
                        let Some(payload) = fragments.add(&frame) else { continue };
                        let code = deliver(&payload, events, status, seen).await;
                        let ack = frame.ack(code, started.elapsed().as_millis() as u64);
                        if let Err(e) = tx.send(WsMessage::Binary(ack.to_bytes().into())).await {
                            return Ended::Retry(format!("an acknowledgement could not be sent: {e}"));
                        }
                    }
                    // Other types (card callbacks) are neither handled nor acknowledged.
                    _ => {}
                }
            }
        }
    }
}

/// Hands a complete event on, once: 200 when it was taken (or was a re-push of one that
/// was), 500 when it could not be read.
async fn deliver(
    payload: &[u8],
    events: &mpsc::Sender<Received>,
    status: &Arc<Mutex<ConnStatus>>,
    seen: &mut Seen,
) -> u16 {
    let Ok(envelope) = serde_json::from_slice::<Value>(payload) else {
        tracing::warn!("an event that is not JSON was refused");
        return 500;
    };
    let header = &envelope["header"];
    let event_id = header["event_id"].as_str().unwrap_or_default().to_string();
    let event_type = header["event_type"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if event_id.is_empty() {
        return 500;
    }
    if !seen.first_time(&event_id) {
        lock(status).duplicates += 1;
        return 200;
    }
    {
        let mut s = lock(status);
        s.events += 1;
        s.last_event_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as u64);
    }
    if events
        .send(Received {
            event_id,
            event_type,
            envelope,
        })
        .await
        .is_err()
    {
        tracing::debug!("nobody takes events any more");
    }
    200
}

/// Event ids already delivered, the oldest forgotten first.
#[derive(Default)]
struct Seen {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Seen {
    fn first_time(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= SEEN_CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(id.to_string());
        self.set.insert(id.to_string());
        true
    }
}

/// When the first piece of a split event came, and the pieces so far.
type Pieces = (Instant, Vec<Option<Vec<u8>>>);

/// Pieces of split events, by message_id, until all have come (or they are too old).
#[derive(Default)]
struct Fragments {
    parts: HashMap<String, Pieces>,
}

/// A split event this many pieces or more is not one Lark sends.
const MAX_PARTS: usize = 1024;

impl Fragments {
    /// The whole payload once `frame` completes it; None while pieces are missing (or the
    /// frame's numbering is broken, which is dropped).
    fn add(&mut self, frame: &Frame) -> Option<Vec<u8>> {
        let payload = frame.payload.clone().unwrap_or_default();
        let sum: usize = frame
            .header(pbbp2::SUM)
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        if sum <= 1 {
            return Some(payload);
        }
        let seq: usize = frame.header(pbbp2::SEQ)?.parse().ok()?;
        let id = frame.header(pbbp2::MESSAGE_ID)?.to_string();
        if sum > MAX_PARTS || seq >= sum {
            return None;
        }
        self.parts.retain(|_, (at, _)| at.elapsed() < FRAGMENT_TTL);
        let entry = self
            .parts
            .entry(id.clone())
            .or_insert_with(|| (Instant::now(), vec![None; sum]));
        if entry.1.len() != sum {
            return None;
        }
        entry.1[seq] = Some(payload);
        if entry.1.iter().all(Option::is_some) {
            let (_, pieces) = self.parts.remove(&id)?;
            return Some(pieces.into_iter().flatten().flatten().collect());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_join_in_order_whatever_order_they_come_in() {
        let frames = pbbp2::event_frames(1, 7, "m", "t", b"0123456789", 4);
        let mut f = Fragments::default();
        assert_eq!(f.add(&frames[2]), None);
        assert_eq!(f.add(&frames[0]), None);
        assert_eq!(f.add(&frames[1]).as_deref(), Some(&b"0123456789"[..]));
        // A lone frame is whole.
        let one = pbbp2::event_frames(9, 7, "n", "t", b"{}", 0);
        assert_eq!(f.add(&one[0]).as_deref(), Some(&b"{}"[..]));
    }

    #[test]
    fn re_pushes_are_seen_once() {
        let mut s = Seen::default();
        assert!(s.first_time("e1"));
        assert!(!s.first_time("e1"));
        assert!(s.first_time("e2"));
    }

    #[test]
    fn the_url_gives_the_service_id_wherever_it_sits() {
        assert_eq!(
            service_id("ws://h/ws/v2?fpid=1&device_id=9&service_id=33554678&t=x"),
            Some(33554678)
        );
        assert_eq!(service_id("ws://h/ws/v2?fpid=1"), None);
    }

    #[test]
    fn client_config_from_lark_is_bounded() {
        let c: ClientConfig = serde_json::from_str(
            r#"{"PingInterval":0,"ReconnectInterval":5,"ReconnectNonce":1,"ReconnectCount":-1}"#,
        )
        .expect("json");
        let c = c.sane();
        assert_eq!(
            (c.ping_interval, c.reconnect_interval, c.reconnect_nonce),
            (120, 5, 1)
        );
    }
}
