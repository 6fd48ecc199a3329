//! Lark's long connection ("长连接", event delivery over WebSocket), server side:
//! `POST /callback/ws/endpoint` hands out a one-app WebSocket URL and the client settings,
//! `GET /ws/v2` upgrades, and events travel as `pbbp2.Frame`s (see [`crate::lark::pbbp2`]).
//! Facts: lark-auth-registration-events.md part C; [U] marks what the reference could not
//! confirm.
//!
//! Delivery is cluster mode (C.5): each event goes to ONE live connection of the app,
//! chosen round-robin. The client acknowledges the completing fragment by sending the same
//! frame back with `{"code":200}`; without that ack within `ws_repush_after_ms` the event is
//! pushed again, `ws_repush_count` times. Events published while the app has no live
//! connection are queued (bounded) and pushed to the next client that connects. [U]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::api::messages::{MSG_TYPES, check_content, read_content};
use super::options::Options;
use super::world::{Message, World, now_ms, random_hex};
use super::{SandboxState, lock};
use crate::lark::pbbp2::{self, Frame};

/// Events kept for a client that is not connected; the oldest are dropped beyond this. [U]
const QUEUE_LIMIT: usize = 1000;
/// Delivery records kept for inspection.
const RECORD_LIMIT: usize = 1000;
/// Endpoint tickets remembered; the oldest are forgotten beyond this.
const TICKET_LIMIT: usize = 1000;
/// `handshake-autherrcode` for "too many connections" (C.2): a client error, no retry.
pub const EXCEED_CONN_LIMIT: &str = "1000040350";

/// What `POST /callback/ws/endpoint` issued: the URL's credentials.
#[derive(Clone)]
struct Ticket {
    app_id: String,
    device_id: String,
    access_key: String,
    service_id: i32,
}

enum Out {
    Frame(Vec<u8>),
    /// Drop the socket without a close frame, as a network failure would.
    Abort,
}

struct Conn {
    app_id: String,
    service_id: i32,
    tx: mpsc::UnboundedSender<Out>,
}

/// One published event and how its deliveries went.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    pub event_id: String,
    pub event_type: String,
    pub app_id: String,
    /// The `message_id` frame header (kept across fragments and re-pushes). [U]
    pub frame_message_id: String,
    /// Times the event went out (first push plus re-pushes).
    pub pushes: u32,
    pub repushes: u32,
    /// Status codes of the acks received for it, in order.
    pub ack_codes: Vec<i64>,
    /// Acknowledged with code 200.
    pub acked: bool,
    /// Waiting for a connection.
    pub queued: bool,
    #[serde(skip)]
    payload: Arc<Vec<u8>>,
}

/// Counters for tests (`GET /_sandbox/ws`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LongConnStats {
    /// `POST /callback/ws/endpoint` calls that issued a URL.
    pub endpoints_issued: u64,
    /// WebSocket connections accepted.
    pub connections: u64,
    /// Connections that ended (closed by either side or aborted).
    pub disconnects: u64,
    /// Live connections now.
    pub live: usize,
    /// Handshakes refused (bad ticket or connection limit).
    pub handshakes_rejected: u64,
    pub pings: u64,
    /// Events published.
    pub events: u64,
    /// First pushes of events (each may be several fragment frames).
    pub events_pushed: u64,
    pub repushes: u64,
    /// Frames pushed, fragments counted one by one.
    pub frames_pushed: u64,
    /// Ack frames received (any code).
    pub acks: u64,
    /// Events waiting for a connection now.
    pub queued: usize,
}

#[derive(Default)]
struct Inner {
    tickets: HashMap<String, Ticket>,
    ticket_order: VecDeque<String>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    /// Round-robin cursor: the id of the connection that got the last event.
    last_conn: u64,
    next_seq: u64,
    /// Frame `SeqID` of a completing fragment → event_id, to match acks.
    pending: HashMap<u64, String>,
    events: HashMap<String, EventRecord>,
    event_order: VecDeque<String>,
    queue: VecDeque<String>,
    stats: LongConnStats,
}

/// The long-connection side of the sandbox, shared by the routes and the control path.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

impl Hub {
    pub fn stats(&self) -> LongConnStats {
        let inner = lock(&self.inner);
        let mut s = inner.stats.clone();
        s.live = inner.conns.len();
        s.queued = inner.queue.len();
        s
    }

    /// Every event still remembered, oldest first.
    pub fn events(&self) -> Vec<EventRecord> {
        let inner = lock(&self.inner);
        inner
            .event_order
            .iter()
            .filter_map(|id| inner.events.get(id).cloned())
            .collect()
    }

    pub fn event(&self, event_id: &str) -> Option<EventRecord> {
        lock(&self.inner).events.get(event_id).cloned()
    }

    /// Drops every live connection without a close frame; returns how many.
    pub fn disconnect_all(&self) -> usize {
        // Taken out of the routing table at once, so an event published right after this
        // waits for the next client instead of going to a socket that is about to drop.
        let conns = std::mem::take(&mut lock(&self.inner).conns);
        for c in conns.values() {
            let _ = c.tx.send(Out::Abort);
        }
        conns.len()
    }

    fn issue_ticket(&self, t: Ticket) -> String {
        let ticket = random_hex(32);
        let mut inner = lock(&self.inner);
        inner.tickets.insert(ticket.clone(), t);
        inner.ticket_order.push_back(ticket.clone());
        while inner.ticket_order.len() > TICKET_LIMIT {
            if let Some(old) = inner.ticket_order.pop_front() {
                inner.tickets.remove(&old);
            }
        }
        inner.stats.endpoints_issued += 1;
        ticket
    }

    /// Publishes an event envelope for `app_id`; returns how many connections got it (0 or 1).
    pub fn publish(self: &Arc<Self>, app_id: &str, envelope: &Value, options: &Options) -> usize {
        let event_id = envelope["header"]["event_id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| random_hex(32));
        let record = EventRecord {
            event_id: event_id.clone(),
            event_type: envelope["header"]["event_type"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            app_id: app_id.to_string(),
            frame_message_id: uuid_like(),
            pushes: 0,
            repushes: 0,
            ack_codes: Vec::new(),
            acked: false,
            queued: false,
            payload: Arc::new(envelope.to_string().into_bytes()),
        };
        {
            let mut inner = lock(&self.inner);
            inner.stats.events += 1;
            inner.events.insert(event_id.clone(), record);
            inner.event_order.push_back(event_id.clone());
            while inner.event_order.len() > RECORD_LIMIT {
                if let Some(old) = inner.event_order.pop_front() {
                    inner.events.remove(&old);
                    // A forgotten event's late ack has nothing left to settle.
                    inner.pending.retain(|_, e| *e != old);
                    inner.queue.retain(|e| *e != old);
                }
            }
        }
        usize::from(self.deliver(&event_id, None, options))
    }

    /// Pushes an event to `conn` (or the next live connection of its app, round-robin);
    /// queues it when there is none. Schedules the re-push check.
    fn deliver(self: &Arc<Self>, event_id: &str, conn: Option<u64>, options: &Options) -> bool {
        let mut inner = lock(&self.inner);
        let Some(rec) = inner.events.get(event_id) else {
            return false;
        };
        let app_id = rec.app_id.clone();
        let payload = rec.payload.clone();
        let frame_message_id = rec.frame_message_id.clone();
        let candidates: Vec<u64> = inner
            .conns
            .iter()
            .filter(|(_, c)| c.app_id == app_id)
            .map(|(id, _)| *id)
            .collect();
        let chosen = conn.filter(|c| candidates.contains(c)).or_else(|| {
            candidates
                .iter()
                .copied()
                .find(|id| *id > inner.last_conn)
                .or_else(|| candidates.first().copied())
        });
        let Some(conn_id) = chosen else {
            if !inner.queue.iter().any(|q| q == event_id) {
                inner.queue.push_back(event_id.to_string());
                while inner.queue.len() > QUEUE_LIMIT {
                    if let Some(old) = inner.queue.pop_front()
                        && let Some(r) = inner.events.get_mut(&old)
                    {
                        r.queued = false;
                    }
                }
            }
            if let Some(r) = inner.events.get_mut(event_id) {
                r.queued = true;
            }
            return false;
        };
        let Some((tx, service)) = inner
            .conns
            .get(&conn_id)
            .map(|c| (c.tx.clone(), c.service_id))
        else {
            return false;
        };
        let first = inner.next_seq + 1;
        let frames = pbbp2::event_frames(
            first,
            service,
            &frame_message_id,
            &random_hex(16),
            &payload,
            options.ws_fragment_bytes,
        );
        inner.next_seq += frames.len() as u64;
        inner.last_conn = conn_id;
        if let Some(last) = frames.last() {
            inner.pending.insert(last.seq_id, event_id.to_string());
        }
        inner.stats.frames_pushed += frames.len() as u64;
        let repush = match inner.events.get_mut(event_id) {
            Some(r) => {
                r.queued = false;
                r.pushes += 1;
                r.pushes > 1
            }
            None => false,
        };
        if repush {
            inner.stats.repushes += 1;
        } else {
            inner.stats.events_pushed += 1;
        }
        drop(inner);
        for f in &frames {
            // A closed receiver means the connection is ending; its re-push check below
            // pushes the event to another connection.
            let _ = tx.send(Out::Frame(f.to_bytes()));
        }
        self.schedule_repush(event_id.to_string(), options.clone());
        true
    }

    fn schedule_repush(self: &Arc<Self>, event_id: String, options: Options) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let hub = self.clone();
        rt.spawn(async move {
            tokio::time::sleep(Duration::from_millis(options.ws_repush_after_ms)).await;
            let again = {
                let mut inner = lock(&hub.inner);
                match inner.events.get_mut(&event_id) {
                    Some(r) if !r.acked && !r.queued && r.repushes < options.ws_repush_count => {
                        r.repushes += 1;
                        true
                    }
                    _ => false,
                }
            };
            if again {
                hub.deliver(&event_id, None, &options);
            }
        });
    }

    /// An ack frame from a client: matched to its event by `SeqID`.
    fn ack(&self, frame: &Frame) {
        let code = frame
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
            .and_then(|v| v["code"].as_i64())
            .unwrap_or(0);
        let mut inner = lock(&self.inner);
        inner.stats.acks += 1;
        let Some(event_id) = inner.pending.get(&frame.seq_id).cloned() else {
            return;
        };
        if let Some(r) = inner.events.get_mut(&event_id) {
            r.ack_codes.push(code);
            // A handler that failed (code 500) has not handled the event: Lark re-pushes
            // events whose handler threw (C.5), so only 200 settles it.
            if code == 200 {
                r.acked = true;
                inner.pending.remove(&frame.seq_id);
            }
        }
    }
}

/// Lark's frame message ids look like UUIDs in the wild [U]; any unique string works.
fn uuid_like() -> String {
    let h = random_hex(32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn client_config(o: &Options) -> Value {
    json!({
        "PingInterval": o.ws_ping_interval_secs,
        "ReconnectCount": o.ws_reconnect_count,
        "ReconnectInterval": o.ws_reconnect_interval_secs,
        "ReconnectNonce": o.ws_reconnect_nonce_secs,
    })
}

// ---- routes ----------------------------------------------------------------------------

/// `POST /callback/ws/endpoint` and the WebSocket at `/ws/v2`.
pub fn router(state: Arc<SandboxState>) -> Router {
    Router::new()
        .route("/callback/ws/endpoint", post(endpoint))
        .route("/ws/v2", get(upgrade))
        .with_state(state)
}

type S = State<Arc<SandboxState>>;

#[derive(Deserialize, Default)]
struct EndpointBody {
    #[serde(rename = "AppID", default)]
    app_id: String,
    #[serde(rename = "AppSecret", default)]
    app_secret: String,
}

/// Bad credentials answer HTTP 200 with a client-error code (anything but 0, 1 and
/// 1000040343 stops the SDKs from retrying, C.1). The real code is [U]; 10014 is what the
/// token endpoints answer for a wrong secret, 10003 for an unknown app.
async fn endpoint(State(s): S, body: axum::body::Bytes) -> Response {
    let b: EndpointBody = serde_json::from_slice(&body).unwrap_or_default();
    let secret = lock(&s.world).app_secret(&b.app_id).map(str::to_string);
    let err = |code: i64, msg: &str| Json(json!({"code": code, "msg": msg})).into_response();
    if b.app_id.is_empty() || b.app_secret.is_empty() {
        return err(10003, "invalid param: AppID and AppSecret are required");
    }
    let Some(secret) = secret else {
        return err(10003, "invalid param: app_id");
    };
    if secret != b.app_secret {
        return err(10014, "app secret invalid");
    }
    let device_id: String = (0..19)
        .map(|i| {
            let d = if i == 0 {
                fastrand::u32(1..10)
            } else {
                fastrand::u32(0..10)
            };
            char::from_digit(d, 10).unwrap_or('0')
        })
        .collect();
    let t = Ticket {
        app_id: b.app_id,
        device_id,
        access_key: random_hex(32),
        service_id: fastrand::i32(1..i32::MAX),
    };
    let ticket = s.longconn.issue_ticket(t.clone());
    let ws_base = s.base_url().replacen("http://", "ws://", 1);
    // fpid first: Node's qs.parse takes the whole URL, so the first key is mangled (C.1).
    let url = format!(
        "{ws_base}/ws/v2?fpid=1&device_id={}&access_key={}&service_id={}&ticket={ticket}",
        t.device_id, t.access_key, t.service_id
    );
    let o = s.options();
    Json(json!({
        "code": 0,
        "msg": "success",
        "data": {"URL": url, "ClientConfig": client_config(&o)},
    }))
    .into_response()
}

/// A refused handshake: the status both as the HTTP status and in the `handshake-*`
/// headers the SDKs read (C.2).
fn refuse(status: u16, msg: &str, autherrcode: Option<&str>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let mut r = (code, msg.to_string()).into_response();
    let h = r.headers_mut();
    h.insert("handshake-status", HeaderValue::from(status));
    if let Ok(v) = HeaderValue::from_str(msg) {
        h.insert("handshake-msg", v);
    }
    if let Some(v) = autherrcode.and_then(|c| HeaderValue::from_str(c).ok()) {
        h.insert("handshake-autherrcode", v);
    }
    r
}

async fn upgrade(
    State(s): S,
    Query(q): Query<HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let hub = s.longconn.clone();
    let ticket = {
        let inner = lock(&hub.inner);
        q.get("ticket")
            .and_then(|t| inner.tickets.get(t))
            .filter(|t| {
                q.get("device_id") == Some(&t.device_id)
                    && q.get("access_key") == Some(&t.access_key)
            })
            .cloned()
    };
    let Some(ticket) = ticket else {
        lock(&hub.inner).stats.handshakes_rejected += 1;
        return refuse(403, "invalid ticket", None);
    };
    let max = s.options().ws_max_connections;
    let live = lock(&hub.inner)
        .conns
        .values()
        .filter(|c| c.app_id == ticket.app_id)
        .count();
    if live >= max {
        lock(&hub.inner).stats.handshakes_rejected += 1;
        return refuse(514, "exceed connection limit", Some(EXCEED_CONN_LIMIT));
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return e.into_response(),
    };
    ws.on_upgrade(move |socket| run(s, ticket, socket))
}

/// One live connection: answers pings, records acks, writes pushed frames.
async fn run(s: Arc<SandboxState>, ticket: Ticket, mut socket: WebSocket) {
    let hub = s.longconn.clone();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn_id = {
        let mut inner = lock(&hub.inner);
        inner.next_conn += 1;
        let id = inner.next_conn;
        inner.conns.insert(
            id,
            Conn {
                app_id: ticket.app_id.clone(),
                service_id: ticket.service_id,
                tx,
            },
        );
        inner.stats.connections += 1;
        id
    };
    // Lark re-pushes to a client that reconnects [U]: events queued while nobody was
    // connected go to the first connection of the app.
    let queued: Vec<String> = {
        let mut inner = lock(&hub.inner);
        let all: Vec<String> = inner.queue.drain(..).collect();
        let (mine, rest): (Vec<String>, Vec<String>) = all
            .into_iter()
            .partition(|id| inner_app(&inner.events, id).is_some_and(|a| a == ticket.app_id));
        inner.queue = rest.into();
        mine
    };
    let options = s.options();
    for id in queued {
        hub.deliver(&id, Some(conn_id), &options);
    }
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Frame(bytes)) => {
                    if socket.send(WsMessage::Binary(bytes.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Abort) | None => break,
            },
            msg = socket.recv() => match msg {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    let Ok(frame) = Frame::from_bytes(&bytes) else {
                        tracing::debug!("sandbox ws: undecodable frame dropped");
                        continue;
                    };
                    if frame.method == pbbp2::CONTROL && frame.kind() == Some(pbbp2::PING) {
                        lock(&hub.inner).stats.pings += 1;
                        let config = client_config(&s.options()).to_string().into_bytes();
                        let pong = Frame::pong(frame.service, Some(config));
                        if socket.send(WsMessage::Binary(pong.to_bytes().into())).await.is_err() {
                            break;
                        }
                    } else if frame.method == pbbp2::DATA {
                        hub.ack(&frame);
                    }
                }
                // WS-level pings are answered by the library; text frames are not pbbp2.
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let mut inner = lock(&hub.inner);
    inner.conns.remove(&conn_id);
    inner.stats.disconnects += 1;
}

fn inner_app<'a>(events: &'a HashMap<String, EventRecord>, id: &str) -> Option<&'a str> {
    events.get(id).map(|r| r.app_id.as_str())
}

// ---- control path ------------------------------------------------------------------------

fn bad_request(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Incoming {
    chat_id: String,
    sender: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    msg_type: Option<String>,
    #[serde(default)]
    content: Option<Value>,
}

/// `POST /_sandbox/incoming`: a user posts in a chat. The message is stored like any other
/// and `im.message.receive_v1` goes to one live connection of the seed app (or waits).
pub async fn incoming(State(s): S, body: axum::body::Bytes) -> Response {
    let req: Incoming = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("invalid incoming message: {e}")),
    };
    let (msg_type, content) = match (&req.text, &req.msg_type, &req.content) {
        (Some(t), None, None) => ("text".to_string(), json!({"text": t}).to_string()),
        (None, Some(m), Some(Value::String(c))) => (m.clone(), c.clone()),
        (None, Some(m), Some(c @ Value::Object(_))) => (m.clone(), c.to_string()),
        _ => {
            return bad_request(
                "give either text, or msg_type with content (an object or a JSON string)",
            );
        }
    };
    if !MSG_TYPES.contains(&msg_type.as_str()) {
        return bad_request(format!("unknown msg_type {msg_type}"));
    }
    let mentions = match check_content(&msg_type, &content) {
        Ok(m) => m,
        Err(e) => return bad_request(format!("invalid content: {}", e.msg)),
    };
    let options = s.options();
    let (envelope, app_id, deliver) = {
        let mut world = lock(&s.world);
        let Some(chat) = world.chat(&req.chat_id) else {
            return bad_request(format!("no chat {}", req.chat_id));
        };
        if world.user_by_open_id(&req.sender).is_none() {
            return bad_request(format!("no user {}", req.sender));
        }
        if !chat.members.iter().any(|m| m == &req.sender) {
            return bad_request(format!("{} is not a member of {}", req.sender, req.chat_id));
        }
        // Lark only tells a bot about messages in chats it is in.
        let deliver = chat.bot_member;
        let chat_type = if chat.chat_mode == "p2p" {
            "p2p"
        } else {
            "group"
        };
        let now = now_ms();
        let mut message = Message::fresh(
            req.chat_id.clone(),
            req.sender.clone(),
            false,
            msg_type,
            content,
            now,
        );
        message.mentions = mentions;
        let envelope = receive_v1(&world, &message, chat_type);
        world.messages.push(message);
        (envelope, world.app.app_id.clone(), deliver)
    };
    let message_id = envelope["event"]["message"]["message_id"].clone();
    if !deliver {
        return Json(json!({"message_id": message_id, "event_id": null, "delivered_to": 0}))
            .into_response();
    }
    let delivered = s.longconn.publish(&app_id, &envelope, &options);
    Json(json!({
        "message_id": message_id,
        "event_id": envelope["header"]["event_id"],
        "delivered_to": delivered,
    }))
    .into_response()
}

fn user_ids(world: &World, open_id: &str) -> Value {
    match world.user_by_open_id(open_id) {
        Some(u) => json!({"union_id": u.union_id, "user_id": u.user_id, "open_id": u.open_id}),
        None => json!({"open_id": open_id}),
    }
}

/// The schema 2.0 `im.message.receive_v1` envelope (C.7). Times are strings (ms);
/// `content` is Lark's read form (`@_user_N` placeholders).
pub fn receive_v1(world: &World, m: &Message, chat_type: &str) -> Value {
    let tenant_key = &world.app.tenant_key;
    let mentions: Vec<Value> = m
        .mentions
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let name = world
                .user_by_open_id(id)
                .map(|u| u.name.clone())
                .unwrap_or_default();
            json!({"key": format!("@_user_{}", i + 1), "id": user_ids(world, id),
                   "name": name, "tenant_key": tenant_key})
        })
        .collect();
    let mut message = json!({
        "message_id": m.message_id,
        "create_time": m.create_time_ms.to_string(),
        "update_time": m.update_time_ms.to_string(),
        "chat_id": m.chat_id,
        "chat_type": chat_type,
        "message_type": m.msg_type,
        "content": read_content(&m.msg_type, &m.content),
        "mentions": mentions,
    });
    // root_id / parent_id / thread_id only for replies and threads: [U] whether Lark sends
    // them empty or leaves them out otherwise.
    for (k, v) in [
        ("root_id", &m.root_id),
        ("parent_id", &m.parent_id),
        ("thread_id", &m.thread_id),
    ] {
        if let Some(v) = v {
            message[k] = json!(v);
        }
    }
    json!({
        "schema": "2.0",
        "header": {
            "event_id": random_hex(32),
            "event_type": "im.message.receive_v1",
            "create_time": now_ms().to_string(),
            // The verification token: [U] what the long connection puts here (no check
            // applies to it, C.5); the sandbox has none configured.
            "token": "",
            "app_id": world.app.app_id,
            "tenant_key": tenant_key,
        },
        "event": {
            "sender": {
                // user_id needs the "get user ID" field permission on Lark [I]; the
                // sandbox always includes it.
                "sender_id": user_ids(world, &m.sender),
                "sender_type": "user",
                "tenant_key": tenant_key,
            },
            "message": message,
        },
    })
}

/// `GET /_sandbox/ws`: counters and the events remembered.
pub async fn summary(State(s): S) -> Json<Value> {
    Json(json!({"stats": s.longconn.stats(), "events": s.longconn.events()}))
}

/// `POST /_sandbox/ws/disconnect`: every live connection drops without a close frame.
pub async fn disconnect(State(s): S) -> Json<Value> {
    Json(json!({"closed": s.longconn.disconnect_all()}))
}
