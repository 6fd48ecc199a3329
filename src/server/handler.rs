//! The MCP handler. It owns no transport: stdio and HTTP sessions share one [`Shared`]
//! (client, token cache, policy, scopes).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
// SetLevelRequestParams: MCP logging is deprecated (SEP-2577), still used by sessions.
#[allow(deprecated)]
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    DiscoverResult, ErrorData, Implementation, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ResultType, ServerCapabilities, ServerConfig, SetLevelRequestParams,
    SubscribeRequestParams, SubscriptionFilter, Tool, UnsubscribeRequestParams,
};
use rmcp::model::{
    CompleteRequestParams, CompleteResult, GetPromptRequestParams, GetPromptResponse,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ReadResourceRequestParams,
    ReadResourceResponse,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{RoleServer, ServerHandler};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::catalog;
use super::mcp_log;
use super::peers::Session;
use crate::lark::ErrorKind;
use crate::tools::guard::{Asker, audit};
use crate::tools::policy::Hidden;
use crate::tools::{Progress, Shared, ToolCtx};

pub const INSTRUCTIONS: &str = "Lark/Feishu directory and messaging, acting as the app's bot. People are identified by open_id (ou_…): resolve an email with lookup_user_by_email before messaging or fetching someone. send_message takes an email, open_id or chat_id (oc_…) and one content form (text, markdown, card, …); list_messages reads a chat's history with since/until like 24h or 7d. Departments use open_department_id (od-…), \"0\" is the root. If a tool fails on permissions or seems missing, get_app_status says which Lark scope the app lacks. Every write tool takes dry_run: true to show exactly what it would send, sending nothing.";

/// How long a client may cache server/discover: what the server is and does changes only
/// with a restart.
const DISCOVER_TTL_MS: u64 = 3_600_000;

#[derive(Clone)]
pub struct LarkMcp {
    shared: Arc<Shared>,
    /// This session's choices (its log level). A clone serves the same session; a new
    /// session starts from [`LarkMcp::for_session`].
    session: Arc<Session>,
    /// One of several HTTP sessions: it has a send budget of its own. Over stdio the one
    /// session is the server, whose budget applies.
    shares_server: bool,
}

impl LarkMcp {
    pub fn new(shared: Arc<Shared>) -> LarkMcp {
        LarkMcp {
            shared,
            session: Arc::default(),
            shares_server: false,
        }
    }

    /// The handler for another session (or stateless request): same state, own choices.
    pub fn for_session(&self) -> LarkMcp {
        LarkMcp {
            shares_server: true,
            ..LarkMcp::new(self.shared.clone())
        }
    }

    /// Forwards the server's log events to the sessions that asked for them, until `stop`.
    pub fn start_log_forwarding(&self, stop: CancellationToken) {
        let shared = self.shared.clone();
        let mut rx = mcp_log::subscribe();
        tokio::spawn(async move {
            loop {
                let record = tokio::select! {
                    _ = stop.cancelled() => break,
                    r = rx.recv() => r,
                };
                match record {
                    Ok(record) => shared.peers.log(&record).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Tells subscribers of `lark://chats/{chat_id}/messages` as messages arrive, in the
    /// order they arrive, until `stop`.
    pub fn start_message_updates(&self, stop: CancellationToken) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut seen = shared.inbox.newest();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = shared.inbox.changed_after(seen) => {}
                }
                let newest = shared.inbox.newest();
                let mut chats: Vec<String> = Vec::new();
                for a in shared.inbox.since(seen, |_| true) {
                    if !chats.contains(&a.chat_id) {
                        chats.push(a.chat_id);
                    }
                }
                seen = newest.max(seen);
                for chat in chats {
                    shared.peers.notify_messages(&chat).await;
                }
            }
        });
    }

    /// Whether chats' messages can be watched: only while the long connection runs.
    fn watches_messages(&self) -> bool {
        self.shared.longconn.get().is_some()
    }

    /// The chat a subscribable URI names, or why it cannot be subscribed to.
    fn watched_chat(&self, uri: &str) -> Result<String, ErrorData> {
        if !self.shared.policy.wants(crate::tools::Toolset::Events) {
            // Not advertised either: as unknown as any method this server does not serve.
            return Err(ErrorData::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                "Method not found: resource subscriptions are offered only with the events toolset (--toolsets …,events)",
                None,
            ));
        }
        let shown: String = uri.chars().take(200).collect();
        let Some(chat) = catalog::resources::messages_chat(uri) else {
            return Err(catalog::invalid_params(
                format!(
                    "cannot subscribe to `{shown}`: only {} resources change, and are watched",
                    catalog::resources::MESSAGES_TEMPLATE
                ),
                Some(serde_json::json!({"uri": shown})),
            ));
        };
        if !self.watches_messages() {
            return Err(catalog::invalid_params(
                format!(
                    "resource not found: `{shown}` is served only with the events toolset (--toolsets …,events), which receives messages"
                ),
                Some(serde_json::json!({"uri": shown})),
            ));
        }
        Ok(chat)
    }

    /// Reads the scopes now (tools/list waits for this, bounded), then every `every`.
    pub fn start_scope_refresh(&self, every: Duration, stop: CancellationToken) {
        self.shared.set_scope_refresh_every(every);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            loop {
                shared.refresh_scopes(&stop).await;
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
    }

    /// Runs a visible tool for the `call` command (a person at the command line).
    pub async fn call(
        &self,
        name: &str,
        args: rmcp::model::JsonObject,
        mut ctx: ToolCtx,
    ) -> CallToolResult {
        ctx.call.asker = Asker::Operator;
        match self.run_tool(name, args, ctx).await {
            CallToolResponse::Complete(r) => r,
            _ => CallToolResult::error(vec![ContentBlock::text(
                "the call asked for input, which the command line cannot give".to_string(),
            )]),
        }
    }

    /// Runs a visible tool, applies the write guard rails' outcome and audits writes.
    pub async fn run_tool(
        &self,
        name: &str,
        args: rmcp::model::JsonObject,
        mut ctx: ToolCtx,
    ) -> CallToolResponse {
        let Some(def) = crate::tools::find(name) else {
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "Unknown tool `{name}`."
            ))])
            .into();
        };
        ctx.call.tool = Some(&def.meta);
        let mut visible = self.shared.visibility(def).await;
        if matches!(
            visible,
            Err(Hidden::MissingScope { .. } | Hidden::NeedsLogin)
        ) {
            // The scope may have been granted, or someone signed in, since the last read.
            self.shared.reread_scopes_soon(&ctx.cancel).await;
            visible = self.shared.visibility(def).await;
        }
        match visible {
            Ok(acting) => ctx.acting = acting,
            Err(why) => {
                return CallToolResult::error(vec![ContentBlock::text(format!(
                    "Tool `{name}` is not available: {}.",
                    why.explain(self.shared.client.config())
                ))])
                .into();
            }
        }
        let cancel = ctx.cancel.clone();
        let record = ctx.call.record.clone();
        let acting = ctx.acting;
        let _running = self.shared.begin_call();
        // A bug in one tool must cost one answer, not the request: rmcp would never
        // reply to a request whose handler panicked.
        let run = async move {
            panic_on_request(name);
            def.run(ctx, args).await
        };
        let (outcome, log_ids) =
            crate::lark::with_log_ids(AssertUnwindSafe(run).catch_unwind()).await;
        if !def.meta.read_only {
            audit::write_attempt(&self.shared, name, acting, &record, &outcome, &log_ids);
        }
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(tool = name, panic = %what, "tool call panicked");
                return CallToolResult::error(vec![ContentBlock::text(format!(
                    "Tool `{name}` failed with an internal error (a bug in this server; it is logged with the tool name). The server keeps serving. If the tool writes, check whether it took effect before calling it again."
                ))])
                .into();
            }
        };
        match outcome {
            Ok(outcome) => {
                let mut result = CallToolResult::structured(outcome.value);
                for m in outcome.media {
                    result.content.push(ContentBlock::image(m.base64, m.mime));
                }
                result.into()
            }
            Err(e) if e.dry_run.is_some() => {
                CallToolResult::structured(e.dry_run.map(|v| *v).unwrap_or_default()).into()
            }
            Err(e) if e.input_required.is_some() => match e.input_required {
                Some(r) => CallToolResponse::InputRequired(*r),
                None => CallToolResult::error(vec![ContentBlock::text(e.text)]).into(),
            },
            Err(e) => {
                if e.lark.as_ref().is_some_and(|l| l.code.is_some()) {
                    // Lark answered and refused: nothing was sent, so the send is not spent.
                    let taken =
                        std::mem::take(&mut crate::tools::guard::lock_record(&record).taken);
                    crate::tools::guard::give_back(&self.shared.client, taken).await;
                }
                if e.lark
                    .as_ref()
                    .is_some_and(|l| l.kind == ErrorKind::MissingScope)
                {
                    // Lark says a scope is gone: re-read so tools/list stops offering the tool.
                    let shared = self.shared.clone();
                    tokio::spawn(async move { shared.reread_scopes_soon(&cancel).await });
                }
                CallToolResult::error(vec![ContentBlock::text(e.text)]).into()
            }
        }
    }
}

/// Debug builds only: `LARK_MCP_PANIC_IN_TOOL=<tool>` makes that tool panic, so tests can
/// prove a panic is contained without a real bug to trigger it.
fn panic_on_request(_tool: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("LARK_MCP_PANIC_IN_TOOL").is_ok_and(|t| t == _tool) {
        panic!("panic requested by LARK_MCP_PANIC_IN_TOOL for {_tool}");
    }
}

impl ServerHandler for LarkMcp {
    fn get_info(&self) -> ServerConfig {
        // Logging is deprecated by 2026-07-28 but still part of it (per request); sessions
        // use logging/setLevel.
        #[allow(deprecated)]
        let mut capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_completions()
            .build();
        // Chats' messages change, and can be watched, only when they are received.
        if self.shared.policy.wants(crate::tools::Toolset::Events)
            && let Some(r) = capabilities.resources.as_mut()
        {
            r.subscribe = Some(true);
        }
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                "lark-mcp-server",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.shared.wait_for_scopes().await;
        let tools = self
            .shared
            .visible_tools()
            .await
            .iter()
            .map(|(d, acting)| d.tool_acting(*acting))
            .collect();
        let hints = context
            .protocol_version()
            .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        // Every caller sees the same list (one app identity), so shared caches may keep it.
        let ttl_ms = self.shared.lists_ttl_ms();
        Ok(ListToolsResult {
            result_type: Some(ResultType::COMPLETE),
            tools,
            meta: None,
            next_cursor: None,
            ttl_ms: hints.then_some(ttl_ms),
            cache_scope: hints.then_some(CacheScope::Public),
        })
    }

    async fn discover(
        &self,
        _context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        let mut result = DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            self.get_info(),
        );
        // What the server is and does is fixed for the life of the process, the same for
        // every caller.
        result.ttl_ms = DISCOVER_TTL_MS;
        result.cache_scope = CacheScope::Public;
        Ok(result)
    }

    /// For rmcp's `Mcp-Param-*` header checks (SEP-2243) on 2026-07-28 HTTP requests.
    fn get_tool(&self, name: &str) -> Option<Tool> {
        crate::tools::find(name).map(|d| d.tool())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // rmcp intersects this with what was requested and what get_info advertises.
        // Prompts and resource templates follow the visible tools, so all three lists
        // change together. Of resource contents, chats' messages are watched.
        let mut accepted = SubscriptionFilter::new();
        accepted.tools_list_changed = requested.tools_list_changed;
        accepted.prompts_list_changed = requested.prompts_list_changed;
        accepted.resources_list_changed = requested.resources_list_changed;
        if self.watches_messages() {
            accepted.resource_subscriptions =
                requested.resource_subscriptions.as_ref().map(|uris| {
                    uris.iter()
                        .filter(|u| catalog::resources::messages_chat(u).is_some())
                        .take(super::peers::MAX_SUBSCRIBED)
                        .cloned()
                        .collect()
                });
        }
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let key = self.shared.peers.listen(context.sink().clone());
        tokio::select! {
            _ = context.cancelled() => {}
            _ = self.shared.peers.closing() => {}
        }
        self.shared.peers.unlisten(key);
        Ok(())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let chat = self.watched_chat(&request.uri)?;
        if !self.session.subscribe(chat, request.uri) {
            return Err(catalog::invalid_params(
                format!(
                    "this session already holds {} subscriptions; unsubscribe from some first",
                    super::peers::MAX_SUBSCRIBED
                ),
                None,
            ));
        }
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let chat = self.watched_chat(&request.uri)?;
        self.session.unsubscribe(&chat);
        Ok(())
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        tracing::debug!(level = ?request.level, "client set its log level");
        self.session.set_log_level(request.level);
        mcp_log::session_asked();
        Ok(())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if crate::tools::find(&request.name).is_none() {
            // The client hears it; the operator needs it only when debugging that client.
            tracing::debug!(tool = %request.name, "tools/call for an unknown tool");
            return Err(ErrorData::invalid_params(
                format!("unknown tool `{}`", request.name),
                None,
            ));
        }
        let mut ctx = ToolCtx::new(
            self.shared.clone(),
            context.ct.clone(),
            Progress::new(context.peer.clone(), context.meta.get_progress_token()),
        );
        let args = request.arguments.unwrap_or_default();
        let stateless = context
            .protocol_version()
            .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        if stateless {
            // No session: the send budget is the server's alone.
            let asks = context
                .meta
                .client_capabilities()
                .is_some_and(|c| c.elicitation.is_some());
            if asks {
                // Only a stateless confirmation is bound to the arguments.
                ctx.call.args_digest = crate::tools::guard::digest(&request.name, &args);
                ctx.call.asker = Asker::Stateless {
                    responses: request.input_responses,
                    state: request.request_state,
                };
            }
        } else {
            if self.shares_server {
                ctx.call.session = Some(self.session.clone());
            }
            if context
                .peer
                .supported_elicitation_modes()
                .contains(&rmcp::service::ElicitationMode::Form)
            {
                ctx.call.asker = Asker::Session(context.peer.clone());
            }
        }
        let log_level = context.meta.log_level();
        let result = mcp_log::during_request(
            &context.peer,
            log_level,
            self.run_tool(&request.name, args, ctx),
        )
        .await;
        Ok(result)
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // One line per session at info; rmcp's own handshake dump is filtered out by default.
        match context.peer.peer_info() {
            Some(info) => tracing::info!(
                "session started: client {} {}, protocol {}",
                info.client_info.name,
                info.client_info.version,
                info.protocol_version
            ),
            None => tracing::info!("session started"),
        }
        self.shared.peers.add(context.peer, self.session.clone());
    }

    // Prompts, resources and completion live in `super::catalog`; these only delegate.

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let hints = catalog::wants_cache_hints(&context);
        Ok(catalog::prompts::list(&self.shared, hints).await)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        Ok(catalog::prompts::get(&self.shared, &request).await?.into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        catalog::completion::complete(&self.shared, &request).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let hints = catalog::wants_cache_hints(&context);
        Ok(catalog::resources::list(&self.shared, hints).await)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let hints = catalog::wants_cache_hints(&context);
        Ok(catalog::resources::list_templates(&self.shared, hints).await)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let hints = catalog::wants_cache_hints(&context);
        let result =
            catalog::resources::read(&self.shared, &request.uri, context.ct.clone(), hints).await?;
        Ok(result.into())
    }
}
