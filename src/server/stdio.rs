//! Serving over stdin/stdout. stdout carries JSON-RPC only; everything else logs to stderr.
//!
//! rmcp's stdio transport drops a line it cannot parse without a word, and the client then
//! waits forever. So the lines are read here: each goes through [`jsonrpc::classify`],
//! valid messages go on to rmcp, and the errors owed go out through the one task that
//! writes stdout, so that they land between rmcp's messages and never inside one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use rmcp::model::{ClientRequest, ErrorCode, JsonRpcMessage};
use rmcp::service::{RxJsonRpcMessage, ServerInitializeError, TxJsonRpcMessage};
use rmcp::{RoleServer, ServiceExt};
use serde_json::Value;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio_util::sync::CancellationToken;

use super::LarkMcp;
use super::jsonrpc::{self, Verdict};

/// The longest line read. A longer one is answered and skipped, never buffered whole.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// Messages read ahead of rmcp, and messages waiting for stdout. Small: a full queue
/// holds the reader back, which holds the client back.
const QUEUE: usize = 32;

/// How long what is still queued for stdout may take once the session is over.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Above this, the line buffer is given back after use: one huge message should not pin
/// megabytes for the rest of the session.
const KEEP_LINE_CAPACITY: usize = 64 * 1024;

/// One line for stdout.
enum Outgoing {
    Rpc(Box<TxJsonRpcMessage<RoleServer>>),
    /// An error response rmcp cannot express (its `id` may be `null` or unreadable to it).
    Error(Value),
}

/// Serves until stdin closes or SIGINT/SIGTERM arrives.
pub async fn serve(server: LarkMcp, stop: CancellationToken) -> Result<(), String> {
    let served = serve_on(server, tokio::io::stdin(), tokio::io::stdout()).await;
    stop.cancel();
    served
}

async fn serve_on<R, W>(server: LarkMcp, input: R, output: W) -> Result<(), String>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, out_rx) = mpsc::channel::<Outgoing>(QUEUE);
    let (in_tx, in_rx) = mpsc::channel::<RxJsonRpcMessage<RoleServer>>(QUEUE);
    let started = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_lines(out_rx, output));
    let reader = tokio::spawn(read_lines(input, in_tx, out_tx.clone(), started.clone()));
    let sink = out_tx.with(|m: TxJsonRpcMessage<RoleServer>| {
        futures::future::ready(Ok::<_, mpsc::SendError>(Outgoing::Rpc(Box::new(m))))
    });
    let served = run(server, sink, in_rx, &started).await;
    // The session is over: read no more, but let what is queued reach the client. The
    // writer ends once every sender is gone (rmcp drops its sink as it finishes).
    reader.abort();
    if tokio::time::timeout(FLUSH_WAIT, writer).await.is_err() {
        tracing::debug!("stdout did not take the last messages in time");
    }
    served
}

async fn run<Si>(
    server: LarkMcp,
    sink: Si,
    stream: mpsc::Receiver<RxJsonRpcMessage<RoleServer>>,
    started: &AtomicBool,
) -> Result<(), String>
where
    Si: futures::Sink<TxJsonRpcMessage<RoleServer>, Error = mpsc::SendError>
        + Send
        + Unpin
        + 'static,
{
    let running = match server.serve((sink, stream)).await {
        Ok(running) => running,
        // The client left before `initialize` (a probe, an editor closing): a disconnect
        // like any other, not a failure to report.
        Err(ServerInitializeError::ConnectionClosed(waiting_for)) => {
            tracing::debug!("stdin closed while waiting for the {waiting_for}");
            return Ok(());
        }
        Err(e) => return Err(format!("MCP initialisation over stdio failed: {e}")),
    };
    // A session may also start without `initialize` (2026-07-28 requests carry their
    // version); only rmcp knows, and says so by returning.
    started.store(true, Ordering::Release);
    let cancel = running.cancellation_token();
    tokio::select! {
        r = running.waiting() => {
            if let Err(e) = r {
                tracing::debug!("stdio session ended: {e}");
            }
        }
        _ = shutdown_signal() => {
            tracing::info!("signal received; shutting down");
            cancel.cancel();
        }
    }
    Ok(())
}

/// Reads stdin line by line until EOF, rmcp stops taking messages, or stdout is gone.
///
/// Until the session has started, rmcp ends it on any notification or response (it
/// expects `initialize`), which would end the process: those are dropped instead, as a
/// server may ignore what a client should not have sent yet. `started` is set here once
/// `initialize` is passed on, so the `notifications/initialized` that follows it always
/// gets through.
async fn read_lines<R: AsyncRead + Unpin>(
    input: R,
    mut to_server: mpsc::Sender<RxJsonRpcMessage<RoleServer>>,
    mut to_client: mpsc::Sender<Outgoing>,
    started: Arc<AtomicBool>,
) {
    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = match next_line(&mut input, &mut line, MAX_LINE_BYTES).await {
            Ok(read) => read,
            Err(e) => {
                tracing::error!("cannot read stdin: {e}");
                return;
            }
        };
        let verdict = match read {
            Line::Eof => return,
            Line::TooLong => Verdict::Reply(jsonrpc::error_response(
                Value::Null,
                ErrorCode::INVALID_REQUEST,
                format!("Invalid Request: the message exceeds {MAX_LINE_BYTES} bytes"),
            )),
            Line::Read => {
                let message = message_in(&line);
                if message.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                jsonrpc::classify(message)
            }
        };
        if line.capacity() > KEEP_LINE_CAPACITY {
            line = Vec::new();
        }
        match verdict {
            Verdict::Forward(m) => {
                let initialize = match &*m {
                    JsonRpcMessage::Request(r) => {
                        matches!(r.request, ClientRequest::InitializeRequest(_))
                    }
                    _ if !started.load(Ordering::Acquire) => {
                        tracing::debug!("ignoring a notification or response before initialize");
                        continue;
                    }
                    _ => false,
                };
                if to_server.send(*m).await.is_err() {
                    return;
                }
                if initialize {
                    started.store(true, Ordering::Release);
                }
            }
            Verdict::Reply(error) => {
                tracing::debug!(%error, "answering an invalid message");
                if to_client.send(Outgoing::Error(error)).await.is_err() {
                    return;
                }
            }
            Verdict::Ignore(error) => {
                tracing::debug!(%error, "ignoring an invalid notification or response");
            }
        }
    }
}

/// The message in a line: without its end of line, nor a UTF-8 byte order mark, which
/// RFC 8259 lets a reader skip (and rmcp's transport skipped).
fn message_in(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}

enum Line {
    /// A line is in the buffer; the last one may lack its `\n` (stdin ended after it).
    Read,
    /// Longer than the limit: answered, and skipped up to its end.
    TooLong,
    Eof,
}

/// Reads one line into `line`, holding at most `max` bytes of it.
async fn next_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    // One byte over the limit tells a line that just fits from one that does not.
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = (&mut *input).take(limit).read_until(b'\n', line).await?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if line.last() == Some(&b'\n') || line.len() <= max {
        return Ok(Line::Read);
    }
    loop {
        let buf = input.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::TooLong);
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(end) => {
                input.consume(end + 1);
                return Ok(Line::TooLong);
            }
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    }
}

/// Owns stdout: one message per line, flushed as it goes, until every sender is gone.
async fn write_lines<W: AsyncWrite + Unpin>(mut queue: mpsc::Receiver<Outgoing>, mut output: W) {
    let mut buf = Vec::new();
    while let Some(item) = queue.next().await {
        buf.clear();
        let encoded = match &item {
            Outgoing::Rpc(m) => serde_json::to_writer(&mut buf, m),
            Outgoing::Error(e) => serde_json::to_writer(&mut buf, e),
        };
        if let Err(e) = encoded {
            tracing::error!("cannot encode an outgoing message: {e}");
            continue;
        }
        buf.push(b'\n');
        if let Err(e) = async {
            output.write_all(&buf).await?;
            output.flush().await
        }
        .await
        {
            tracing::debug!("cannot write stdout: {e}");
            return;
        }
        if buf.capacity() > KEEP_LINE_CAPACITY {
            buf = Vec::new();
        }
    }
}

/// SIGINT or SIGTERM (Ctrl-C elsewhere).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
