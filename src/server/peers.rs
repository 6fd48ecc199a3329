//! The connected MCP clients, kept so that a change in the visible tool set (scopes
//! granted or revoked while running) reaches each of them as
//! `notifications/tools/list_changed`. A transport concern: the tools only say when.

use std::sync::Mutex;
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::service::Peer;

#[derive(Default)]
pub struct Peers {
    peers: Mutex<Vec<Peer<RoleServer>>>,
}

impl Peers {
    pub fn add(&self, peer: Peer<RoleServer>) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        // Closed sessions are dropped here and on every notify, so the list stays small.
        peers.retain(|p| !p.is_transport_closed());
        peers.push(peer);
    }

    pub async fn notify_tools_changed(&self) {
        let peers: Vec<Peer<RoleServer>> = {
            let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            peers.retain(|p| !p.is_transport_closed());
            peers.clone()
        };
        tracing::info!(
            clients = peers.len(),
            "visible tools changed; notifying clients"
        );
        for p in peers {
            // Bounded, so one stuck client cannot hold up the others.
            let sent =
                tokio::time::timeout(Duration::from_secs(2), p.notify_tool_list_changed()).await;
            if !matches!(sent, Ok(Ok(()))) {
                tracing::debug!("could not notify a client of the tool list change");
            }
        }
    }
}
