//! Guard rails on writes, applied by every write tool just before its Lark request:
//! whom it may reach (`--allow-recipients`), how many messages it may send
//! (`--send-budget`), whether a person must confirm it (`--confirm`, through MCP
//! elicitation), `dry_run` (what would be sent, nothing sent) and the audit log
//! (`--audit-log`). Each refusal says which rule refused and that nothing was sent.

pub mod audit;
pub mod budget;
pub mod recipients;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{
    ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema,
    InputRequest, InputRequiredResult, InputResponses,
};
use rmcp::service::Peer;
use serde::Serialize;
use serde_json::{Value, json};

use self::audit::AuditLog;
use self::budget::{BudgetSpec, Window};
pub use self::recipients::{Recipients, Target};
use super::{ToolCtx, ToolError, ToolMeta};
use crate::lark::{FormPart, Request};

/// Which calls a person confirms first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmMode {
    /// None: the agent's calls run as made.
    None,
    /// Calls that delete or cannot be undone (recall, dissolve, remove members, …).
    #[default]
    Destructive,
    /// Every call that writes.
    Writes,
}

impl ConfirmMode {
    fn applies_to(self, meta: &ToolMeta) -> bool {
        match self {
            ConfirmMode::None => false,
            ConfirmMode::Destructive => meta.destructive,
            ConfirmMode::Writes => !meta.read_only,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmMode::None => "none",
            ConfirmMode::Destructive => "destructive",
            ConfirmMode::Writes => "writes",
        }
    }
}

/// The operator's guard rails, from the command line.
#[derive(Debug, Default)]
pub struct GuardConfig {
    pub recipients: Option<Recipients>,
    pub budget: Option<BudgetSpec>,
    /// Each session's own budget (default: the server's).
    pub session_budget: Option<BudgetSpec>,
    pub confirm: ConfirmMode,
    pub audit_log: Option<AuditLog>,
    pub audit_bodies: bool,
}

/// The owner of the server's send budget (shared by the replicas with Redis).
const SERVER: &str = "server";

/// How long a person has to answer a confirmation.
const CONFIRM_WAIT: Duration = Duration::from_secs(600);
/// Answered confirmations remembered (so a state is used once), at most.
const MAX_USED: usize = 10_000;

#[derive(Default)]
pub struct Guard {
    config: GuardConfig,
    budget: Option<Arc<Window>>,
    /// Signs the `requestState` of 2026-07-28 confirmations: derived from the app secret,
    /// so any replica of this app can check a state another one issued.
    seal_key: Vec<u8>,
    /// States already answered here (nonce → expiry, unix seconds).
    used: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The guard rails as `check` and `get_app_status` show them.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct GuardStatus {
    /// Whom writes may reach; absent: anyone the app can reach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_recipients: Option<Vec<String>>,
    /// Sends allowed per period, and how many are left now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_budget: Option<String>,
    /// Each session's sends per period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_send_budget: Option<String>,
    /// none, destructive or writes: which calls a person confirms.
    pub confirm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_log: Option<String>,
}

/// What one write is about to do, from the tool that makes it.
pub struct Write {
    /// Whom it reaches (the recipient rules apply to each).
    pub targets: Vec<Target>,
    /// It sends a message (counts against the send budget).
    pub sends: bool,
}

impl Write {
    /// A message sent to `target`.
    pub fn message(target: Target) -> Write {
        Write {
            targets: vec![target],
            sends: true,
        }
    }

    /// A change that reaches these receivers (a chat, a message's chat, people).
    pub fn reaching(targets: Vec<Target>) -> Write {
        Write {
            targets,
            sends: false,
        }
    }

    /// A change to a message: the rules apply to its chat.
    pub fn on_message(message_id: &str) -> Write {
        Write::reaching(vec![Target::Message(message_id.to_string())])
    }

    /// A change to a chat.
    pub fn on_chat(chat_id: &str) -> Write {
        Write::reaching(vec![Target::Chat(chat_id.to_string())])
    }
}

/// What the audit log needs of one call, filled as the guard runs.
#[derive(Debug, Default)]
pub struct Record {
    pub receivers: Vec<String>,
    pub body: Option<Value>,
    /// Why nothing was sent, when the guard stopped it.
    pub stopped: Option<&'static str>,
    /// The sends this call counted against the send budgets (given back if Lark refuses).
    pub taken: Vec<Taken>,
    /// Set once the guard let the call through: its Lark requests are the write.
    pub passed: bool,
}

/// One send counted against a budget window: given back if Lark refuses the send.
#[derive(Debug)]
pub struct Taken {
    window: Arc<Window>,
    /// Its id in the budget the replicas share through Redis, when that counted it.
    shared: Option<String>,
}

/// Lark refused the call: its sends never happened, so they stop counting, here and, for
/// the server's budget shared through Redis, on every replica.
pub async fn give_back(client: &crate::lark::LarkClient, taken: Vec<Taken>) {
    for t in taken {
        t.window.give_back();
        if let Some(id) = &t.shared {
            let spec = t.window.spec();
            client
                .shared_budget_give_back(spec.sends, spec.period, id)
                .await;
        }
    }
}

/// How this call's client can be asked to confirm.
#[derive(Clone, Default)]
pub enum Asker {
    /// It cannot (no elicitation), or the call is not from a client (resources, tests).
    #[default]
    Unable,
    /// A session that declared elicitation: ask it now, within the call.
    Session(Peer<RoleServer>),
    /// 2026-07-28 with elicitation: answer `input_required`; the retry carries the answer.
    Stateless {
        responses: Option<InputResponses>,
        state: Option<String>,
    },
    /// The `call` command: the person at the command line made the call themselves.
    Operator,
}

pub fn lock_record(r: &Mutex<Record>) -> std::sync::MutexGuard<'_, Record> {
    lock(r)
}

/// Identifies a call (tool and arguments) so that a confirmation answers only it; the
/// same on every replica.
pub fn digest(tool: &str, args: &serde_json::Map<String, Value>) -> u64 {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(tool.as_bytes());
    h.update(b"\0");
    h.update(serde_json::to_string(args).unwrap_or_default().as_bytes());
    let out = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&out[..8]);
    u64::from_be_bytes(first)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Guard {
    /// `secret` keys the confirmation states (the app secret: the same on every replica).
    pub fn new(config: GuardConfig, secret: &[u8]) -> Guard {
        use sha2::Digest;
        let budget = config
            .budget
            .clone()
            .map(|b| Arc::new(Window::new(b, SERVER)));
        let mut h = sha2::Sha256::new();
        h.update(b"lark-mcp-server confirmation state v1\0");
        h.update(secret);
        Guard {
            config,
            budget,
            seal_key: h.finalize().to_vec(),
            used: Mutex::new(HashMap::new()),
        }
    }

    pub fn status(&self) -> GuardStatus {
        GuardStatus {
            allow_recipients: self.config.recipients.as_ref().map(Recipients::describe),
            send_budget: self
                .budget
                .as_ref()
                .map(|w| format!("{} ({} left now)", w.spec().text(), w.left())),
            session_send_budget: self
                .config
                .session_budget
                .as_ref()
                .map(|s| s.text().to_string()),
            confirm: self.config.confirm.as_str().into(),
            audit_log: self
                .config
                .audit_log
                .as_ref()
                .map(|a| a.path().display().to_string()),
        }
    }

    /// [`Guard::status`], with the server's send budget as the replicas share it through
    /// Redis; when Redis cannot be read, this replica's own figure, saying so.
    pub async fn shared_status(&self, client: &crate::lark::LarkClient) -> GuardStatus {
        let mut status = self.status();
        if let Some(w) = &self.budget
            && client.shares_limits()
        {
            let spec = w.spec();
            status.send_budget = Some(
                match client.shared_budget_left(spec.sends, spec.period).await {
                    Some((left, _)) => {
                        format!("{} ({left} left now, shared by the replicas)", spec.text())
                    }
                    None => format!(
                        "{} ({} left now on this replica: Redis could not be read)",
                        spec.text(),
                        w.left()
                    ),
                },
            );
        }
        status
    }

    fn session_spec(&self) -> Option<&BudgetSpec> {
        self.config
            .session_budget
            .as_ref()
            .or(self.config.budget.as_ref())
    }

    pub fn audit(&self) -> Option<&AuditLog> {
        self.config.audit_log.as_ref()
    }

    pub fn audit_bodies(&self) -> bool {
        self.config.audit_bodies
    }

    fn mac(&self, payload: &str) -> String {
        use hmac::{KeyInit, Mac};
        let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.seal_key) else {
            return String::new();
        };
        mac.update(payload.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A `requestState` for confirming this call: signed, expiring, used once.
    fn seal(&self, tool: &str, digest: u64) -> String {
        let expires = unix_now() + CONFIRM_WAIT.as_secs();
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let payload = format!("v1.{expires}.{nonce}.{digest:016x}.{tool}");
        let mac = self.mac(&payload);
        format!("{payload}.{mac}")
    }

    /// Whether `state` was issued (by any replica of this app) for this very call, has not
    /// expired and was not answered before in this process: its nonce and how long it has
    /// left, for the other replicas to be asked too (`ToolCtx::redeem`).
    fn redeem(&self, state: &str, tool: &str, digest: u64) -> Option<(String, Duration)> {
        use subtle::ConstantTimeEq;
        let (payload, mac) = state.rsplit_once('.')?;
        if !bool::from(self.mac(payload).as_bytes().ct_eq(mac.as_bytes())) {
            return None;
        }
        let parts: Vec<&str> = payload.splitn(5, '.').collect();
        let [_, expires, nonce, d, t] = parts[..] else {
            return None;
        };
        let now = unix_now();
        let expires = expires.parse::<u64>().ok().filter(|e| *e > now)?;
        if t != tool || d != format!("{digest:016x}") {
            return None;
        }
        let mut used = lock(&self.used);
        used.retain(|_, exp| *exp > now);
        if used.len() >= MAX_USED {
            return None;
        }
        used.insert(nonce.to_string(), expires)
            .is_none()
            .then(|| (nonce.to_string(), Duration::from_secs(expires - now)))
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl ToolError {
    /// Not an error: the dry run's answer, returned instead of running the call.
    pub fn dry_run(preview: Value) -> ToolError {
        ToolError {
            text: String::new(),
            lark: None,
            dry_run: Some(Box::new(preview)),
            input_required: None,
        }
    }

    fn input_required(result: InputRequiredResult) -> ToolError {
        ToolError {
            text: "input required".into(),
            lark: None,
            dry_run: None,
            input_required: Some(Box::new(result)),
        }
    }
}

/// The request as a person or the audit log reads it: the content as JSON, files by name.
fn request_view(req: &Request) -> Value {
    let mut body = req.body.clone().unwrap_or(Value::Null);
    // Lark's `content` is JSON inside a string: shown as the JSON it is.
    if let Some(content) = body.get("content").and_then(Value::as_str)
        && let Ok(parsed) = serde_json::from_str::<Value>(content)
    {
        body["content"] = parsed;
    }
    let mut view = json!({"method": req.method.as_str(), "path": req.path});
    if !req.query.is_empty() {
        let q: serde_json::Map<String, Value> = req
            .query
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        view["query"] = Value::Object(q);
    }
    if !body.is_null() {
        view["body"] = body;
    }
    if let Some(form) = &req.form {
        let parts: Vec<Value> = form
            .iter()
            .map(|p| match p {
                FormPart::Text { name, value } => json!({"name": name, "value": value}),
                FormPart::File {
                    name,
                    file_name,
                    mime,
                    bytes,
                } => json!({"name": name, "file": file_name, "type": mime, "bytes": bytes.len()}),
            })
            .collect();
        view["form"] = json!(parts);
    }
    view
}

/// The size Lark counts against its limits: the content string, else the whole body.
fn payload_bytes(req: &Request) -> usize {
    let body = req.body.as_ref();
    match body.and_then(|b| b.get("content")).and_then(Value::as_str) {
        Some(c) => c.len(),
        None => body.map(|b| b.to_string().len()).unwrap_or(0),
    }
}

impl ToolCtx {
    /// Every write tool calls this right before its Lark request. `Ok` lets it run;
    /// otherwise the error is the answer (a refusal, a decline, or the dry run's preview).
    pub async fn guard(&self, w: Write, req: &Request) -> Result<(), ToolError> {
        let guard = &self.shared.guard;
        let tool = self.call.tool.map(|m| m.name).unwrap_or("");
        {
            let mut r = self.record();
            r.receivers = w.targets.iter().map(Target::label).collect();
            if guard.audit_bodies() {
                r.body = Some(request_view(req));
            }
        }
        if let Some(rules) = &guard.config.recipients
            && let Err(e) = rules.check(self, &w.targets).await
        {
            self.record().stopped = Some("refused");
            return Err(e);
        }
        if self.call.dry_run {
            self.record().stopped = Some("dry_run");
            return Err(ToolError::dry_run(json!({
                "dry_run": true,
                "would": req.op,
                "to": w.targets.iter().map(Target::label).collect::<Vec<_>>(),
                "as": if req.as_user { "user" } else { "bot" },
                "request": request_view(req),
                "bytes": payload_bytes(req),
            })));
        }
        let windows = if w.sends {
            self.budget_windows()
        } else {
            Vec::new()
        };
        if let Some(meta) = self.call.tool
            && guard.config.confirm.applies_to(meta)
        {
            // Nobody is asked to confirm a send the budget would refuse anyway; without a
            // confirmation the take below says it, with one Redis call fewer.
            for window in &windows {
                if let Some(wait) = self.budget_full_for(window).await {
                    self.record().stopped = Some("refused");
                    return Err(over_budget(window, wait));
                }
            }
            self.confirm(tool, &w, req).await?;
        }
        let mut taken = Vec::new();
        for window in &windows {
            match self.budget_take(window).await {
                Ok(t) => taken.push(t),
                Err(wait) => {
                    give_back(&self.shared.client, taken).await;
                    self.record().stopped = Some("refused");
                    return Err(over_budget(window, wait));
                }
            }
        }
        let mut r = self.record();
        r.taken = taken;
        r.passed = true;
        Ok(())
    }

    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        lock(&self.call.record)
    }

    /// Whether the server's budget is counted by the replicas together (through Redis):
    /// a session's is always this process's own.
    fn shared_window(&self, w: &Window) -> bool {
        w.owner == SERVER && self.shared.client.shares_limits()
    }

    /// How long until `w` allows a send, when it allows none now (without counting one).
    async fn budget_full_for(&self, w: &Window) -> Option<Duration> {
        if self.shared_window(w) {
            let spec = w.spec();
            match self
                .shared
                .client
                .shared_budget_left(spec.sends, spec.period)
                .await
            {
                Some((0, wait)) => return Some(wait),
                Some(_) => return None,
                // Redis failed (warned): this replica's own count decides.
                None => {}
            }
        }
        w.full_for()
    }

    /// Counts one send against `w`: in Redis for the server's budget shared by replicas
    /// (and noted here too, for when Redis fails), else here.
    async fn budget_take(&self, w: &Arc<Window>) -> Result<Taken, Duration> {
        if self.shared_window(w) {
            let spec = w.spec();
            match self
                .shared
                .client
                .shared_budget_take(spec.sends, spec.period)
                .await
            {
                Some(Ok(id)) => {
                    w.note();
                    return Ok(Taken {
                        window: w.clone(),
                        shared: Some(id),
                    });
                }
                Some(Err(wait)) => return Err(wait),
                // Redis failed (warned): the replica goes on alone, with its own window.
                None => {}
            }
        }
        w.take().map(|()| Taken {
            window: w.clone(),
            shared: None,
        })
    }

    /// The session's window (HTTP sessions) and the server's.
    fn budget_windows(&self) -> Vec<Arc<Window>> {
        let guard = &self.shared.guard;
        let mut out = Vec::new();
        if let (Some(session), Some(spec)) = (&self.call.session, guard.session_spec()) {
            out.push(session.send_window(spec));
        }
        out.extend(guard.budget.clone());
        out
    }

    async fn confirm(&self, tool: &str, w: &Write, req: &Request) -> Result<(), ToolError> {
        let message = self.confirmation_text(w, req).await;
        let params = ElicitRequestParams::FormElicitationParams {
            meta: None,
            message,
            requested_schema: ElicitationSchema::new(BTreeMap::new()),
        };
        let answer = match &self.call.asker {
            Asker::Operator => return Ok(()),
            Asker::Unable => {
                self.record().stopped = Some("needs_confirmation");
                return Err(ToolError::msg(format!(
                    "Not run: `{tool}` needs a person's confirmation (the server runs with --confirm {}), and this client cannot ask one (it has no MCP elicitation). Nothing was sent. Use a client that supports elicitation, or ask the operator to start the server with --confirm none.",
                    self.shared.guard.config.confirm.as_str()
                )));
            }
            Asker::Session(peer) => {
                let asked = peer.create_elicitation_with_timeout(params, Some(CONFIRM_WAIT));
                tokio::select! {
                    _ = self.cancel.cancelled() => {
                        self.record().stopped = Some("cancelled");
                        return Err(ToolError::msg("Cancelled while waiting for confirmation. Nothing was sent."));
                    }
                    r = asked => r.map_err(|e| {
                        self.record().stopped = Some("needs_confirmation");
                        ToolError::msg(format!("Not run: the confirmation was not answered ({e}). Nothing was sent."))
                    })?,
                }
            }
            Asker::Stateless { responses, state } => {
                let mut answered = None;
                if let (Some(answer), Some(state)) =
                    (responses.as_ref().and_then(|r| r.get("confirm")), state)
                    && self.redeem(state, tool).await
                {
                    answered = serde_json::from_value::<ElicitResult>(answer.clone()).ok();
                }
                match answered {
                    Some(a) => a,
                    None => {
                        self.record().stopped = Some("needs_confirmation");
                        let handle = self.shared.guard.seal(tool, self.call.args_digest);
                        let mut requests = BTreeMap::new();
                        requests.insert(
                            "confirm".to_string(),
                            InputRequest::Elicitation(ElicitRequest::new(params)),
                        );
                        return Err(ToolError::input_required(InputRequiredResult::new(
                            Some(requests),
                            Some(handle),
                        )));
                    }
                }
            }
        };
        match answer.action {
            ElicitationAction::Accept => Ok(()),
            ElicitationAction::Decline => {
                self.record().stopped = Some("declined");
                Err(ToolError::msg(format!(
                    "Not run: the person declined `{tool}`. Nothing was sent; do not retry unless they ask."
                )))
            }
            // Cancel, and any answer a later revision adds: not a yes.
            _ => {
                self.record().stopped = Some("cancelled");
                Err(ToolError::msg(format!(
                    "Not run: the person dismissed the confirmation of `{tool}`. Nothing was sent."
                )))
            }
        }
    }
}

impl ToolCtx {
    /// What the person reads: the action, whom it reaches (with names where known) and
    /// what will be sent or changed.
    /// Whether `state` answers this call and was answered nowhere before: not in this
    /// process, and not on another replica sharing limits through Redis (a replayed
    /// confirmation would run the write twice).
    async fn redeem(&self, state: &str, tool: &str) -> bool {
        let Some((nonce, left)) = self.shared.guard.redeem(state, tool, self.call.args_digest)
        else {
            return false;
        };
        self.shared
            .client
            .claim_once(&format!("confirmation:{nonce}"), left)
            .await
    }

    async fn confirmation_text(&self, w: &Write, req: &Request) -> String {
        let title = self.call.tool.map(|m| m.title).unwrap_or("Write");
        let people: Vec<String> = w
            .targets
            .iter()
            .filter_map(|t| match t {
                Target::Person {
                    id,
                    id_type: "open_id",
                } => Some(id.clone()),
                _ => None,
            })
            .collect();
        let names = self.shared.names.users(self, &people).await;
        let whom: Vec<String> = w
            .targets
            .iter()
            .map(|t| match t {
                Target::Person { id, .. } => match names.get(id) {
                    Some(n) => format!("{n} ({id})"),
                    None => id.clone(),
                },
                Target::Message(m) => match self.client().known_chat(m) {
                    Some(c) => format!("message {m} in chat {c}"),
                    None => format!("message {m}"),
                },
                other => other.label(),
            })
            .collect();
        let mut text = format!("{title} — {}", req.op);
        if !whom.is_empty() {
            text.push_str(&format!("\nReaches: {}", whom.join(", ")));
        }
        let view = request_view(req);
        let shown = view.get("body").or(view.get("form")).map(Value::to_string);
        if let Some(body) = shown {
            let cut: String = body.chars().take(1500).collect();
            let more = if cut.len() < body.len() { " …" } else { "" };
            text.push_str(&format!("\nSends: {cut}{more}"));
        }
        if self.call.tool.is_some_and(|m| m.destructive) {
            text.push_str("\nThis cannot be undone.");
        }
        text
    }
}

fn over_budget(full: &Window, wait: Duration) -> ToolError {
    let flag = if full.owner == "session" {
        "--session-send-budget, or --send-budget"
    } else {
        "--send-budget"
    };
    ToolError::msg(format!(
        "Refused: the {}'s send budget ({}, {flag}) is used up. Nothing was sent; the next send is possible in {}.",
        full.owner,
        full.spec().text(),
        budget::human(wait)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmation_state_answers_one_call_once_on_any_replica() {
        let a = Guard::new(GuardConfig::default(), b"app secret");
        let b = Guard::new(GuardConfig::default(), b"app secret");
        let other_app = Guard::new(GuardConfig::default(), b"another secret");
        let state = a.seal("dissolve_chat", 42);
        assert!(
            a.redeem(&state, "recall_message", 42).is_none(),
            "another tool"
        );
        assert!(
            a.redeem(&state, "dissolve_chat", 43).is_none(),
            "other arguments"
        );
        assert!(
            other_app.redeem(&state, "dissolve_chat", 42).is_none(),
            "another app"
        );
        let forged = state.replace(".dissolve_chat.", ".recall_message.");
        assert!(a.redeem(&forged, "recall_message", 42).is_none(), "edited");
        assert!(
            b.redeem(&state, "dissolve_chat", 42).is_some(),
            "a replica of the same app"
        );
        assert!(b.redeem(&state, "dissolve_chat", 42).is_none(), "used once");
        assert!(a.redeem("v1.1.x.y.z", "z", 0).is_none());
        assert!(a.redeem("", "dissolve_chat", 42).is_none());
    }
}
