//! `--max-sessions`, for both transports at once.
//!
//! Every live session holds one permit of a semaphore sized to the cap. The guard takes the
//! permit *before* a request that may open a session runs (so concurrent opens cannot
//! overshoot the cap), and the session keeps it until it ends: for Streamable HTTP when rmcp
//! closes it (DELETE, idle expiry, shutdown all go through [`SessionManager::close_session`]),
//! for the legacy transport when its SSE stream is dropped.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{
    EventStore, ServerSseMessage, SessionId, SessionManager,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One unit of the session cap; the cap is free again when it drops.
pub(super) type Slot = OwnedSemaphorePermit;

#[derive(Clone)]
pub(super) struct SessionSlots(Arc<Semaphore>);

impl SessionSlots {
    pub(super) fn new(max: usize) -> SessionSlots {
        SessionSlots(Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))))
    }

    /// A slot, or `None` when every slot is taken.
    pub(super) fn try_reserve(&self) -> Option<Slot> {
        self.0.clone().try_acquire_owned().ok()
    }
}

tokio::task_local! {
    // rmcp's `create_session` gets no request to read a reservation from, but it runs inside
    // the request's task: the slot the guard reserved travels with that task.
    static RESERVED: RefCell<Option<Slot>>;
}

/// Runs `fut` (the rest of the request) with `slot` available to [`take_reserved`].
/// Whatever is not taken is released when the request's handler returns.
pub(super) async fn with_reserved<F: Future>(slot: Option<Slot>, fut: F) -> F::Output {
    RESERVED.scope(RefCell::new(slot), fut).await
}

/// The slot the guard reserved for the current request, once.
pub(super) fn take_reserved() -> Option<Slot> {
    RESERVED.try_with(|s| s.borrow_mut().take()).ok().flatten()
}

#[derive(Debug, thiserror::Error)]
pub(super) enum SessionsError {
    #[error("no session slot was reserved for this request")]
    NoSlot,
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
}

/// rmcp's in-memory session manager, with each session holding a [`Slot`].
pub(super) struct CountedSessions {
    inner: LocalSessionManager,
    held: std::sync::Mutex<HashMap<SessionId, Slot>>,
}

impl CountedSessions {
    pub(super) fn new(inner: LocalSessionManager) -> CountedSessions {
        CountedSessions {
            inner,
            held: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Slot>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SessionManager for CountedSessions {
    type Error = SessionsError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        // Fail closed: a session opened without a reserved slot would slip past the cap.
        let slot = take_reserved().ok_or(SessionsError::NoSlot)?;
        let (id, transport) = self.inner.create_session().await?;
        self.held().insert(id.clone(), slot);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        Ok(self.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let closed = self.inner.close_session(id).await;
        // Only now: the session is out of rmcp's map (even when closing it failed), so the
        // slot is never free while the session can still be used.
        self.held().remove(id);
        Ok(closed?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.create_stream(id, message).await?)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.create_standalone_stream(id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.resume(id, last_event_id).await?)
    }

    // `restore_session` keeps the default (not supported): a restored session would need a
    // slot of its own, and no session store is configured.

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reserved_slot_is_taken_once_and_released_with_the_request() {
        let slots = SessionSlots::new(1);
        let slot = slots.try_reserve();
        assert!(slot.is_some());
        assert!(slots.try_reserve().is_none(), "the cap is 1");
        let taken = with_reserved(slot, async {
            let first = take_reserved();
            assert!(take_reserved().is_none(), "a slot is handed out once");
            first
        })
        .await;
        assert!(slots.try_reserve().is_none(), "the taker holds it");
        drop(taken);
        assert!(slots.try_reserve().is_some());
        // Untaken, it goes back when the request ends.
        let slot = slots.try_reserve();
        with_reserved(slot, async {}).await;
        assert!(slots.try_reserve().is_some());
        assert!(take_reserved().is_none(), "nothing outside a request");
    }

    #[tokio::test]
    async fn sessions_cannot_be_created_without_a_slot() {
        let sessions = CountedSessions::new(LocalSessionManager::default());
        assert!(matches!(
            sessions.create_session().await,
            Err(SessionsError::NoSlot)
        ));
        let slots = SessionSlots::new(1);
        let (id, _transport) = with_reserved(slots.try_reserve(), sessions.create_session())
            .await
            .expect("a session with a slot");
        assert!(slots.try_reserve().is_none(), "the session holds the slot");
        sessions.close_session(&id).await.expect("closed");
        assert!(slots.try_reserve().is_some(), "closing frees it");
        // Closing twice (DELETE, then the worker ending) releases nothing more.
        sessions.close_session(&id).await.expect("closed again");
    }
}
