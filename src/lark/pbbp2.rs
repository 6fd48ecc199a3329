//! Lark's long-connection frames (`pbbp2.Frame`, compiled from `proto/pbbp2.proto` by
//! `build.rs`) and the conventions every official SDK follows on top of the schema: the
//! header keys, pings, data frames split into fragments, and the acknowledgement (the same
//! frame sent back with a JSON status as its payload). Shared by the client and the
//! sandbox, so both speak exactly one encoding.

use prost::Message;

include!(concat!(env!("OUT_DIR"), "/pbbp2.rs"));

/// `Frame.method`.
pub const CONTROL: i32 = 0;
pub const DATA: i32 = 1;

/// Header keys.
pub const TYPE: &str = "type";
pub const MESSAGE_ID: &str = "message_id";
pub const SUM: &str = "sum";
pub const SEQ: &str = "seq";
pub const TRACE_ID: &str = "trace_id";
pub const BIZ_RT: &str = "biz_rt";

/// `type` header values.
pub const PING: &str = "ping";
pub const PONG: &str = "pong";
pub const EVENT: &str = "event";

impl Frame {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.key == key)
            .map(|h| h.value.as_str())
    }

    pub fn with_header(mut self, key: &str, value: impl Into<String>) -> Frame {
        self.headers.push(Header {
            key: key.to_string(),
            value: value.into(),
        });
        self
    }

    /// The client's ping: no ids, no payload.
    pub fn ping(service: i32) -> Frame {
        Frame {
            seq_id: 0,
            log_id: 0,
            service,
            method: CONTROL,
            ..Frame::default()
        }
        .with_header(TYPE, PING)
    }

    /// The server's pong, optionally carrying new client settings (JSON).
    pub fn pong(service: i32, config: Option<Vec<u8>>) -> Frame {
        Frame {
            service,
            method: CONTROL,
            payload: config,
            ..Frame::default()
        }
        .with_header(TYPE, PONG)
    }

    /// One fragment of an event: `seq` of `sum` pieces of the message `message_id`.
    pub fn event_part(
        seq_id: u64,
        service: i32,
        message_id: &str,
        trace_id: &str,
        (seq, sum): (usize, usize),
        payload: Vec<u8>,
    ) -> Frame {
        Frame {
            seq_id,
            log_id: seq_id,
            service,
            method: DATA,
            payload: Some(payload),
            ..Frame::default()
        }
        .with_header(TYPE, EVENT)
        .with_header(MESSAGE_ID, message_id)
        .with_header(SUM, sum.to_string())
        .with_header(SEQ, seq.to_string())
        .with_header(TRACE_ID, trace_id)
    }

    /// The acknowledgement of this frame: the same frame, the handler's time added, and
    /// `{"code":<code>}` as the payload.
    pub fn ack(&self, code: u16, handler_ms: u64) -> Frame {
        let mut ack = self.clone().with_header(BIZ_RT, handler_ms.to_string());
        ack.payload = Some(format!("{{\"code\":{code}}}").into_bytes());
        ack
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Frame, prost::DecodeError> {
        Frame::decode(bytes)
    }

    pub fn kind(&self) -> Option<&str> {
        self.header(TYPE)
    }
}

/// Splits an event payload into frames of at most `max` bytes each (`max` 0: one frame).
pub fn event_frames(
    first_seq_id: u64,
    service: i32,
    message_id: &str,
    trace_id: &str,
    payload: &[u8],
    max: usize,
) -> Vec<Frame> {
    let chunks: Vec<&[u8]> = if max == 0 || payload.len() <= max {
        vec![payload]
    } else {
        payload.chunks(max).collect()
    };
    let sum = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            Frame::event_part(
                first_seq_id + i as u64,
                service,
                message_id,
                trace_id,
                (i, sum),
                c.to_vec(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn a_ping_encodes_as_the_reference_shows() {
        // lark-auth-registration-events.md C.3, produced with the schema by the reference.
        assert_eq!(
            hex(&Frame::ping(33554678).to_bytes()),
            "0800100018f681801020002a0c0a0474797065120470696e67"
        );
    }

    #[test]
    fn a_data_frame_encodes_as_the_reference_shows() {
        let f = Frame {
            seq_id: 1,
            log_id: 123,
            service: 33554678,
            method: DATA,
            payload: Some(br#"{"schema": "2.0"}"#.to_vec()),
            ..Frame::default()
        }
        .with_header(TYPE, EVENT)
        .with_header(MESSAGE_ID, "m1")
        .with_header(SUM, "1")
        .with_header(SEQ, "0")
        .with_header(TRACE_ID, "t1");
        assert_eq!(
            hex(&f.to_bytes()),
            "0801107b18f681801020012a0d0a047479706512056576656e742a100a0a6d6573736167655f696412026d312a080a0373756d1201312a080a037365711201302a0e0a0874726163655f69641202743142117b22736368656d61223a2022322e30227d"
        );
        let back = Frame::from_bytes(&f.to_bytes()).expect("decodes");
        assert_eq!(back, f);
        assert_eq!(back.header(MESSAGE_ID), Some("m1"));
    }

    #[test]
    fn an_ack_is_the_same_frame_with_a_status() {
        let f = Frame::event_part(7, 1, "m", "t", (0, 1), b"{}".to_vec());
        let ack = f.ack(200, 3);
        assert_eq!((ack.seq_id, ack.log_id, ack.method), (7, 7, DATA));
        assert_eq!(ack.header(BIZ_RT), Some("3"));
        assert_eq!(ack.payload.as_deref(), Some(&b"{\"code\":200}"[..]));
    }

    #[test]
    fn payloads_split_into_numbered_fragments() {
        let frames = event_frames(10, 1, "m", "t", b"abcdefg", 3);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[2].header(SEQ), Some("2"));
        assert_eq!(frames[0].header(SUM), Some("3"));
        let joined: Vec<u8> = frames
            .iter()
            .flat_map(|f| f.payload.clone().unwrap_or_default())
            .collect();
        assert_eq!(joined, b"abcdefg");
        assert!(Frame::from_bytes(b"\xff\xff").is_err());
    }
}
