//! The sandbox's long connection (lark-auth-registration-events.md part C), driven by a raw
//! WebSocket client: endpoint discovery, handshake refusals, ping/pong, event frames,
//! fragmentation, acks and re-pushes, forced disconnects and the queue behind them.

mod common;

use std::time::Duration;

use common::{ALL_HANDS_CHAT, APP_ID, APP_SECRET, RANDOM_CHAT, Sbx, ZHANG_WEI, ZHANG_WEI_UNION};
use futures::{SinkExt, StreamExt};
use lark_mcp_server::lark::pbbp2::{self, Frame};
use lark_mcp_server::sandbox::Options;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn options(f: impl FnOnce(&mut Options)) -> Options {
    let mut o = Options {
        ws_repush_after_ms: 300,
        ..Options::default()
    };
    f(&mut o);
    o
}

async fn post_json(sbx: &Sbx, path: &str, body: &Value) -> (u16, Value) {
    let r = sbx
        .http
        .post(sbx.url(path))
        .json(body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `POST /callback/ws/endpoint` with the seed app's credentials; returns `data`.
async fn endpoint(sbx: &Sbx) -> Value {
    let (status, v) = post_json(
        sbx,
        "/callback/ws/endpoint",
        &json!({"AppID": APP_ID, "AppSecret": APP_SECRET}),
    )
    .await;
    assert_eq!((status, v["code"].as_i64()), (200, Some(0)), "{v}");
    v["data"].clone()
}

fn query(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn param(url: &str, key: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

async fn connect(sbx: &Sbx) -> (Ws, i32) {
    let data = endpoint(sbx).await;
    let url = data["URL"].as_str().expect("URL").to_string();
    let service: i32 = param(&url, "service_id")
        .and_then(|s| s.parse().ok())
        .expect("service_id is an int");
    let (ws, resp) = connect_async(url.as_str()).await.expect("handshake");
    assert_eq!(resp.status().as_u16(), 101);
    (ws, service)
}

/// The next pbbp2 frame within `ms`, or None on timeout; panics on a closed socket.
async fn next_frame(ws: &mut Ws, ms: u64) -> Option<Frame> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()?;
        match msg {
            Some(Ok(WsMessage::Binary(b))) => return Some(Frame::from_bytes(&b).expect("pbbp2")),
            Some(Ok(WsMessage::Close(_))) | None => panic!("socket closed"),
            Some(Err(e)) => panic!("socket error: {e}"),
            Some(Ok(_)) => continue,
        }
    }
}

/// Reads frames until one event is complete; returns its fragments in order.
async fn next_event(ws: &mut Ws) -> Vec<Frame> {
    let mut parts = Vec::new();
    loop {
        let f = next_frame(ws, 3000).await.expect("an event frame");
        assert_eq!(f.method, pbbp2::DATA, "{f:?}");
        let sum: usize = f.header(pbbp2::SUM).expect("sum").parse().expect("int");
        parts.push(f);
        if parts.len() == sum {
            return parts;
        }
    }
}

fn envelope(parts: &[Frame]) -> Value {
    let bytes: Vec<u8> = parts
        .iter()
        .flat_map(|f| f.payload.clone().unwrap_or_default())
        .collect();
    serde_json::from_slice(&bytes).expect("the envelope is JSON")
}

async fn send(ws: &mut Ws, f: &Frame) {
    ws.send(WsMessage::binary(f.to_bytes()))
        .await
        .expect("send");
}

async fn incoming(sbx: &Sbx, body: Value) -> Value {
    let (status, v) = post_json(sbx, "/_sandbox/incoming", &body).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Another member of All Hands, to mention.
fn other_member(sbx: &Sbx) -> String {
    let chats = sbx.state().chats();
    let chat = chats.iter().find(|c| c.chat_id == ALL_HANDS_CHAT).unwrap();
    chat.members
        .iter()
        .find(|m| *m != ZHANG_WEI)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn endpoint_url_and_client_config() {
    let sbx = Sbx::with_options(options(|o| o.ws_ping_interval_secs = 7)).await;
    let data = endpoint(&sbx).await;
    let url = data["URL"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/ws/v2?", sbx.base.replace("http://", "ws://"))),
        "{url}"
    );
    let q = query(url);
    // Node's qs.parse mangles the first key: neither may be first.
    assert!(q[0].0 != "device_id" && q[0].0 != "service_id", "{url}");
    assert!(param(url, "device_id").is_some_and(|d| !d.is_empty()));
    assert!(param(url, "service_id").is_some_and(|s| s.parse::<i32>().is_ok()));
    assert_eq!(
        data["ClientConfig"],
        json!({"ReconnectCount": -1, "ReconnectInterval": 120, "ReconnectNonce": 30, "PingInterval": 7})
    );

    for body in [
        json!({"AppID": APP_ID, "AppSecret": "wrong"}),
        json!({"AppID": "cli_nobody", "AppSecret": "x"}),
        json!({}),
    ] {
        let (status, v) = post_json(&sbx, "/callback/ws/endpoint", &body).await;
        let code = v["code"].as_i64().unwrap();
        // A client error: not 0, not the retryable 1 / 1000040343.
        assert!(status == 200 && ![0, 1, 1000040343].contains(&code), "{v}");
        assert!(v["msg"].is_string() && v.get("data").is_none(), "{v}");
    }
}

#[tokio::test]
async fn ping_pong_event_ack_and_one_repush() {
    let sbx = Sbx::with_options(options(|_| {})).await;
    let (mut ws, service) = connect(&sbx).await;

    send(&mut ws, &Frame::ping(service)).await;
    let pong = next_frame(&mut ws, 2000).await.expect("pong");
    assert_eq!(
        (pong.method, pong.kind()),
        (pbbp2::CONTROL, Some(pbbp2::PONG))
    );
    let config: Value = serde_json::from_slice(pong.payload.as_deref().unwrap()).unwrap();
    assert_eq!(
        config,
        json!({"PingInterval": 120, "ReconnectCount": -1, "ReconnectInterval": 120, "ReconnectNonce": 30})
    );

    // An acknowledged event: delivered once, never again.
    let mate = other_member(&sbx);
    let r = incoming(
        &sbx,
        json!({"chat_id": ALL_HANDS_CHAT, "sender": ZHANG_WEI,
               "text": format!("<at user_id=\"{mate}\">x</at> hello")}),
    )
    .await;
    assert_eq!(r["delivered_to"], 1, "{r}");
    let parts = next_event(&mut ws).await;
    // Acknowledged at once, before the checks, so a slow machine cannot miss the window.
    send(&mut ws, &parts[0].ack(200, 2)).await;
    assert_eq!(parts.len(), 1);
    let f = &parts[0];
    for h in [
        pbbp2::TYPE,
        pbbp2::MESSAGE_ID,
        pbbp2::SUM,
        pbbp2::SEQ,
        pbbp2::TRACE_ID,
    ] {
        assert!(f.header(h).is_some_and(|v| !v.is_empty()), "{h} in {f:?}");
    }
    assert_eq!(f.kind(), Some(pbbp2::EVENT));
    assert_eq!(
        (f.header(pbbp2::SUM), f.header(pbbp2::SEQ)),
        (Some("1"), Some("0"))
    );
    assert_eq!(f.service, service);
    let env = envelope(&parts);
    assert_eq!(env["schema"], "2.0");
    assert_eq!(env["header"]["event_type"], "im.message.receive_v1");
    assert_eq!(env["header"]["event_id"], r["event_id"]);
    assert_eq!(env["header"]["app_id"], APP_ID);
    let msg = &env["event"]["message"];
    assert_eq!(msg["chat_id"], ALL_HANDS_CHAT);
    assert_eq!(msg["chat_type"], "group");
    assert_eq!(msg["message_type"], "text");
    assert_eq!(msg["message_id"], r["message_id"]);
    assert!(msg["create_time"].is_string());
    let content: Value = serde_json::from_str(msg["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["text"], "@_user_1 hello");
    assert_eq!(msg["mentions"][0]["key"], "@_user_1");
    assert_eq!(msg["mentions"][0]["id"]["open_id"], mate.as_str());
    let sender = &env["event"]["sender"];
    assert_eq!(sender["sender_id"]["open_id"], ZHANG_WEI);
    assert_eq!(sender["sender_id"]["union_id"], ZHANG_WEI_UNION);
    assert_eq!(sender["sender_type"], "user");

    // Stored like any other message.
    let stored = sbx.state().messages(Some(ALL_HANDS_CHAT));
    assert!(stored.iter().any(|m| m.message_id == r["message_id"]));

    assert!(next_frame(&mut ws, 700).await.is_none(), "no re-push");
    let s = sbx.state().ws_stats();
    assert_eq!((s.acks, s.repushes, s.events_pushed), (1, 0, 1), "{s:?}");

    // Not acknowledged: pushed again once, same event_id, new SeqID.
    let r2 = incoming(
        &sbx,
        json!({"chat_id": ALL_HANDS_CHAT, "sender": ZHANG_WEI,
               "msg_type": "text", "content": "{\"text\":\"second\"}"}),
    )
    .await;
    let first = next_event(&mut ws).await;
    let again = next_event(&mut ws).await;
    assert_eq!(envelope(&first)["header"]["event_id"], r2["event_id"]);
    assert_eq!(envelope(&again)["header"]["event_id"], r2["event_id"]);
    assert_ne!(first[0].seq_id, again[0].seq_id);
    assert!(
        next_frame(&mut ws, 800).await.is_none(),
        "re-pushed once only"
    );
    let s = sbx.state().ws_stats();
    assert_eq!((s.events_pushed, s.repushes, s.acks), (2, 1, 1), "{s:?}");
    let rec = sbx
        .state()
        .ws_events()
        .into_iter()
        .find(|e| e.event_id == r2["event_id"])
        .unwrap();
    assert_eq!((rec.pushes, rec.acked), (2, false));
}

#[tokio::test]
async fn websocket_pings_are_answered() {
    // Python's `websockets` pings at the protocol level and drops a silent peer.
    let sbx = Sbx::with_options(options(|_| {})).await;
    let (mut ws, _) = connect(&sbx).await;
    ws.send(WsMessage::Ping(b"are you there".to_vec().into()))
        .await
        .expect("send");
    let pong = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Pong(p))) => return p.to_vec(),
                Some(Ok(_)) => continue,
                other => panic!("socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a pong");
    assert_eq!(pong, b"are you there");
}

#[tokio::test]
async fn a_failed_handler_ack_is_repushed() {
    let sbx = Sbx::with_options(options(|_| {})).await;
    let (mut ws, _) = connect(&sbx).await;
    incoming(
        &sbx,
        json!({"chat_id": ALL_HANDS_CHAT, "sender": ZHANG_WEI, "text": "boom"}),
    )
    .await;
    let parts = next_event(&mut ws).await;
    send(&mut ws, &parts[0].ack(500, 1)).await;
    let again = next_event(&mut ws).await;
    send(&mut ws, &again[0].ack(200, 1)).await;
    assert!(next_frame(&mut ws, 700).await.is_none());
    let ev = &sbx.state().ws_events()[0];
    assert_eq!((ev.ack_codes.clone(), ev.acked), (vec![500, 200], true));
}

#[tokio::test]
async fn long_events_are_split_into_fragments() {
    let sbx = Sbx::with_options(options(|o| o.ws_fragment_bytes = 50)).await;
    let (mut ws, _) = connect(&sbx).await;
    incoming(
        &sbx,
        json!({"chat_id": ALL_HANDS_CHAT, "sender": ZHANG_WEI, "text": "fragmented hello"}),
    )
    .await;
    let parts = next_event(&mut ws).await;
    // Only the completing fragment is acknowledged.
    send(&mut ws, &parts.last().unwrap().ack(200, 1)).await;
    assert!(parts.len() > 3, "{}", parts.len());
    let mid = parts[0].header(pbbp2::MESSAGE_ID).unwrap();
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p.header(pbbp2::MESSAGE_ID), Some(mid));
        assert_eq!(p.header(pbbp2::SEQ), Some(i.to_string().as_str()));
        assert!(p.payload.as_ref().unwrap().len() <= 50);
    }
    let env = envelope(&parts);
    assert_eq!(env["header"]["event_type"], "im.message.receive_v1");
    assert!(next_frame(&mut ws, 700).await.is_none(), "no re-push");
    assert_eq!(sbx.state().ws_stats().repushes, 0);
}

#[tokio::test]
async fn a_bad_ticket_is_refused_with_403() {
    let sbx = Sbx::with_options(options(|_| {})).await;
    let url = endpoint(&sbx).await["URL"].as_str().unwrap().to_string();
    let ticket = param(&url, "ticket").unwrap();
    let bad = url.replace(&ticket, "nope");
    match connect_async(bad.as_str()).await {
        Err(WsError::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 403);
            assert_eq!(resp.headers()["handshake-status"], "403");
            assert!(resp.headers().contains_key("handshake-msg"));
        }
        other => panic!("expected a refused handshake, got {:?}", other.map(|_| ())),
    }
    assert_eq!(sbx.state().ws_stats().handshakes_rejected, 1);
}

#[tokio::test]
async fn over_the_connection_limit_is_514() {
    let sbx = Sbx::with_options(options(|o| o.ws_max_connections = 1)).await;
    let (_ws, _) = connect(&sbx).await;
    let url = endpoint(&sbx).await["URL"].as_str().unwrap().to_string();
    match connect_async(url.as_str()).await {
        Err(WsError::Http(resp)) => {
            assert_eq!(resp.headers()["handshake-status"], "514");
            assert_eq!(resp.headers()["handshake-autherrcode"], "1000040350");
        }
        other => panic!("expected a refused handshake, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn disconnect_closes_and_queued_events_reach_the_next_client() {
    let sbx = Sbx::with_options(options(|_| {})).await;
    let (mut ws, _) = connect(&sbx).await;
    let (status, v) = post_json(&sbx, "/_sandbox/ws/disconnect", &json!({})).await;
    assert_eq!((status, v["closed"].as_u64()), (200, Some(1)), "{v}");
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        // Anything but a data frame or a ping means the socket ended.
        while let Some(Ok(WsMessage::Binary(_) | WsMessage::Ping(_))) = ws.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the socket closes");
    // The server notices the end a moment later.
    for _ in 0..50 {
        if sbx.state().ws_stats().disconnects == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = sbx.state().ws_stats();
    assert_eq!((s.connections, s.disconnects, s.live), (1, 1, 0), "{s:?}");

    // Nobody connected: the event waits for the next client.
    let r = incoming(
        &sbx,
        json!({"chat_id": ALL_HANDS_CHAT, "sender": ZHANG_WEI, "text": "while away"}),
    )
    .await;
    assert_eq!(r["delivered_to"], 0);
    assert_eq!(sbx.state().ws_stats().queued, 1);
    let (mut ws2, _) = connect(&sbx).await;
    let parts = next_event(&mut ws2).await;
    assert_eq!(envelope(&parts)["header"]["event_id"], r["event_id"]);
    send(&mut ws2, &parts[0].ack(200, 1)).await;
    assert!(next_frame(&mut ws2, 700).await.is_none());

    let (_, summary) = post_json(&sbx, "/_sandbox/ws/disconnect", &json!({})).await;
    assert_eq!(summary["closed"], 1);
    let v: Value = sbx
        .http
        .get(sbx.url("/_sandbox/ws"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["stats"]["connections"], 2, "{v}");
    assert_eq!(v["events"][0]["acked"], true, "{v}");
    // Queued and delivered on connect: no re-push was needed.
    assert_eq!(v["stats"]["repushes"], 0, "{v}");
}

#[tokio::test]
async fn events_go_round_robin_to_one_client_each() {
    let sbx = Sbx::with_options(options(|_| {})).await;
    let (mut a, _) = connect(&sbx).await;
    let (mut b, _) = connect(&sbx).await;
    for text in ["one", "two"] {
        let r = incoming(
            &sbx,
            json!({"chat_id": ALL_HANDS_CHAT, "sender": ZHANG_WEI, "text": text}),
        )
        .await;
        assert_eq!(r["delivered_to"], 1);
    }
    let ea = next_event(&mut a).await;
    send(&mut a, &ea[0].ack(200, 1)).await;
    let eb = next_event(&mut b).await;
    send(&mut b, &eb[0].ack(200, 1)).await;
    assert_ne!(
        envelope(&ea)["header"]["event_id"],
        envelope(&eb)["header"]["event_id"]
    );
    assert!(next_frame(&mut a, 500).await.is_none());
    assert!(next_frame(&mut b, 100).await.is_none());
}

#[tokio::test]
async fn incoming_checks_chat_sender_and_membership() {
    let sbx = Sbx::with_options(options(|_| {})).await;
    for (body, needle) in [
        (
            json!({"chat_id": "oc_nope", "sender": ZHANG_WEI, "text": "x"}),
            "no chat",
        ),
        (
            json!({"chat_id": ALL_HANDS_CHAT, "sender": "ou_nope", "text": "x"}),
            "no user",
        ),
        (
            json!({"chat_id": RANDOM_CHAT, "sender": ZHANG_WEI, "text": "x"}),
            "not a member",
        ),
        (
            json!({"chat_id": ALL_HANDS_CHAT, "sender": ZHANG_WEI}),
            "either text",
        ),
    ] {
        let (status, v) = post_json(&sbx, "/_sandbox/incoming", &body).await;
        assert_eq!(status, 400, "{v}");
        assert!(v["error"].as_str().unwrap().contains(needle), "{v}");
    }
    // content as an object works too.
    let r = incoming(
        &sbx,
        json!({"chat_id": ALL_HANDS_CHAT, "sender": ZHANG_WEI,
               "msg_type": "text", "content": {"text": "obj"}}),
    )
    .await;
    assert!(r["message_id"].as_str().unwrap().starts_with("om_"));
    assert_eq!(r["delivered_to"], 0);
}

// ---- the server's own long-connection client (src/lark/longconn.rs) against the sandbox ----

mod client {
    use std::time::Duration;

    use lark_mcp_server::lark::LarkConfig;
    use lark_mcp_server::lark::longconn::{LongConn, Received};
    use serde_json::{Value, json};
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    use super::common::{ALL_HANDS_CHAT, APP_ID, APP_SECRET, Sbx, ZHANG_WEI};

    const WAIT: Duration = Duration::from_secs(10);

    pub(super) fn options(extra: Value) -> lark_mcp_server::sandbox::Options {
        let mut o = json!({
            "ws_ping_interval_secs": 1,
            "ws_reconnect_interval_secs": 1,
            "ws_reconnect_nonce_secs": 0,
        });
        if let (Some(o), Some(e)) = (o.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        serde_json::from_value(o).expect("options")
    }

    fn connect(sbx: &Sbx) -> (LongConn, mpsc::Receiver<Received>, CancellationToken) {
        let cfg = LarkConfig::new(Some(APP_ID), Some(APP_SECRET), Some(&sbx.base)).expect("cfg");
        let (tx, rx) = mpsc::channel(100);
        let cancel = CancellationToken::new();
        (LongConn::start(cfg, tx, cancel.clone()), rx, cancel)
    }

    async fn connected(conn: &LongConn, connects: u64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !(conn.status().connected && conn.status().connects >= connects) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                conn.status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn incoming(sbx: &Sbx, text: &str) -> Value {
        let r = sbx
            .http
            .post(sbx.url("/_sandbox/incoming"))
            .json(&json!({"chat_id": ALL_HANDS_CHAT, "sender": ZHANG_WEI, "text": text}))
            .send()
            .await
            .expect("incoming");
        assert!(r.status().is_success(), "{}", r.status());
        r.json().await.expect("json")
    }

    async fn next(rx: &mut mpsc::Receiver<Received>) -> Received {
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("an event in time")
            .expect("the channel is open")
    }

    #[tokio::test]
    async fn a_message_arrives_fast_and_once_across_a_forced_disconnect() {
        let sbx = Sbx::with_options(options(json!({}))).await;
        let (conn, mut rx, cancel) = connect(&sbx);
        connected(&conn, 1).await;
        let started = std::time::Instant::now();
        let sent = incoming(&sbx, "hello over the long connection").await;
        let got = next(&mut rx).await;
        let took = started.elapsed();
        eprintln!("the long connection delivered {took:?} after the post");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(got.event_type, "im.message.receive_v1");
        assert_eq!(
            got.envelope["event"]["message"]["message_id"],
            sent["message_id"]
        );
        // Lark drops the connection: the client comes back and nothing is lost or doubled.
        sbx.http
            .post(sbx.url("/_sandbox/ws/disconnect"))
            .send()
            .await
            .expect("disconnect");
        let second = incoming(&sbx, "while reconnecting").await;
        connected(&conn, 2).await;
        let got = next(&mut rx).await;
        assert_eq!(
            got.envelope["event"]["message"]["message_id"],
            second["message_id"]
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(rx.try_recv().is_err(), "delivered once");
        cancel.cancel();
    }

    #[tokio::test]
    async fn fragments_are_joined_and_acked_events_are_not_pushed_again() {
        let sbx = Sbx::with_options(options(
            json!({"ws_fragment_bytes": 64, "ws_repush_after_ms": 300}),
        ))
        .await;
        let (conn, mut rx, cancel) = connect(&sbx);
        connected(&conn, 1).await;
        let sent = incoming(
            &sbx,
            "a message long enough to be cut into several pieces on the way",
        )
        .await;
        let got = next(&mut rx).await;
        assert_eq!(
            got.envelope["event"]["message"]["message_id"],
            sent["message_id"]
        );
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(
            rx.try_recv().is_err(),
            "acked in time: no re-push reached the agent"
        );
        assert_eq!(conn.status().duplicates, 0, "{:?}", conn.status());
        cancel.cancel();
    }

    #[tokio::test]
    async fn a_re_pushed_event_reaches_the_agent_once() {
        let sbx = Sbx::with_options(options(json!({}))).await;
        let (conn, mut rx, cancel) = connect(&sbx);
        connected(&conn, 1).await;
        let sent = incoming(&sbx, "pushed twice").await;
        let first = next(&mut rx).await;
        // Lark pushes the same event again (its ack got lost, say): same event_id.
        assert_eq!(sbx.state().publish_event(APP_ID, &first.envelope), 1);
        let deadline = tokio::time::Instant::now() + WAIT;
        while conn.status().duplicates < 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                conn.status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(rx.try_recv().is_err(), "the agent saw it once");
        assert_eq!(
            first.envelope["event"]["message"]["message_id"],
            sent["message_id"]
        );
        assert_eq!(conn.status().events, 1);
        cancel.cancel();
    }
}

// ---- the events toolset over MCP: the real binary, the sandbox as Lark -------------------

mod agent {
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};

    use super::common::mcp::McpServer;
    use super::common::{ALL_HANDS_CHAT, Sbx, ZHANG_WEI};

    const BOT: &str = "ou_f82724c828ee08c2db6ed9b1ecd6336a";

    async fn server() -> (Sbx, McpServer) {
        let sbx = Sbx::with_options(super::client::options(json!({}))).await;
        let s = McpServer::start(&sbx, &["--toolsets", "messages,events,meta"]).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while sbx.state().ws_stats().live == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}",
                s.stderr.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (sbx, s)
    }

    async fn incoming(sbx: &Sbx, text: &str) -> Instant {
        let at = Instant::now();
        let r = sbx
            .http
            .post(sbx.url("/_sandbox/incoming"))
            .json(&json!({"chat_id": ALL_HANDS_CHAT, "sender": ZHANG_WEI, "text": text}))
            .send()
            .await
            .expect("incoming");
        assert!(r.status().is_success(), "{}", r.status());
        at
    }

    fn texts(v: &Value) -> Vec<String> {
        v["messages"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|m| m["text"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn wait_for_messages_answers_as_a_message_arrives() {
        let (sbx, s) = server().await;
        let wait = s.call(
            "wait_for_messages",
            json!({"chat_id": ALL_HANDS_CHAT, "timeout_secs": 20}),
        );
        let post = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            incoming(&sbx, "ship it today?").await
        };
        let (r, posted) = tokio::join!(wait, post);
        let took = posted.elapsed();
        let v = r.structured_content.clone().unwrap_or_default();
        assert_eq!(r.is_error, Some(false), "{v}");
        // It answers on arrival, not at its 20 s timeout. The latency itself is a figure,
        // not a test bound (a loaded CI machine must not fail it): printed for the notes.
        eprintln!("wait_for_messages answered {took:?} after the message was posted");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(texts(&v), ["ship it today?"]);
        assert_eq!(v["messages"][0]["sender"]["name"], "张伟", "{v}");
        // What came is also there for a later look, after the cursor it started from.
        let all = s.ok("get_new_messages", json!({})).await;
        assert_eq!(texts(&all), ["ship it today?"]);
        let none = s
            .call("get_new_messages", json!({"cursor": all["cursor"]}))
            .await;
        assert_eq!(
            none.structured_content.unwrap_or_default()["messages"],
            json!([])
        );
        let status = s.ok("get_app_status", json!({})).await;
        assert_eq!(status["long_connection"]["connected"], true, "{status}");
        assert_eq!(status["long_connection"]["events"], 1, "{status}");
    }

    #[tokio::test]
    async fn mentions_me_waits_for_a_message_that_mentions_the_bot() {
        let (sbx, s) = server().await;
        let wait = s.call(
            "wait_for_messages",
            json!({"mentions_me": true, "timeout_secs": 20}),
        );
        let post = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            incoming(&sbx, "not for the bot").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            incoming(
                &sbx,
                &format!("<at user_id=\"{BOT}\">Northwind Assistant</at> status?"),
            )
            .await
        };
        let (r, _) = tokio::join!(wait, post);
        let v = r.structured_content.clone().unwrap_or_default();
        assert_eq!(r.is_error, Some(false), "{v}");
        let got = texts(&v);
        assert_eq!(got.len(), 1, "{v}");
        assert!(got[0].ends_with("status?"), "{v}");
        // Nothing matching: it gives up at the timeout and says so.
        let r = s
            .call(
                "wait_for_messages",
                json!({"from": "ou_nobody", "timeout_secs": 1}),
            )
            .await;
        assert_eq!(r.structured_content.unwrap_or_default()["timed_out"], true);
    }
}
