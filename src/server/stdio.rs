//! Serving over stdin/stdout. stdout carries JSON-RPC only; everything else logs to stderr.

use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use super::LarkMcp;

/// Serves until stdin closes or SIGINT/SIGTERM arrives.
pub async fn serve(server: LarkMcp, stop: CancellationToken) -> Result<(), String> {
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("MCP initialisation over stdio failed: {e}"))?;
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
    stop.cancel();
    Ok(())
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
