//! Every tool the server can expose, and the one catalog that drives all policy.
//!
//! A tool is a [`ToolDef`]: its contract (name, description, schemas, annotations), its
//! toolset and required scopes, and a handler `fn(ToolCtx, Args) -> Result<Out, ToolError>`.
//! Domain modules (`contact`, `meta`, …) each return their definitions; [`catalog`] joins them.

pub mod content;
pub mod context;
pub mod guard;
pub mod ids;
pub mod names;
pub mod output;
pub mod paging;
pub mod policy;
pub mod schema;
#[cfg(feature = "schema-gen")]
pub mod schema_gen;
pub mod scope_plan;
pub mod status;
pub mod toolsets;
pub mod when;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use context::{Progress, Shared, ToolCtx};
use toolsets::messages::files;
use toolsets::{chats, contact, messages, meta};

use crate::lark::LarkError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Toolset {
    Contact,
    Messages,
    Chats,
    Meta,
    /// Incoming messages over Lark's long connection: only when asked for, since each
    /// server holds one of the app's 50 connections and Lark gives each event to one.
    Events,
}

impl Toolset {
    pub const ALL: &'static [Toolset] = &[
        Toolset::Contact,
        Toolset::Messages,
        Toolset::Chats,
        Toolset::Meta,
        Toolset::Events,
    ];

    /// What runs when `--toolsets` is not given.
    pub const DEFAULT: &'static [Toolset] = &[
        Toolset::Contact,
        Toolset::Messages,
        Toolset::Chats,
        Toolset::Meta,
    ];

    /// Whether it runs when `--toolsets` is not given.
    pub fn is_default(self) -> bool {
        Toolset::DEFAULT.contains(&self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Toolset::Contact => "contact",
            Toolset::Messages => "messages",
            Toolset::Chats => "chats",
            Toolset::Meta => "meta",
            Toolset::Events => "events",
        }
    }

    pub fn parse(s: &str) -> Option<Toolset> {
        Toolset::ALL.iter().copied().find(|t| t.as_str() == s)
    }
}

/// The static facts of a tool: what policy and the contract are decided on.
#[derive(Debug, Clone, Copy)]
pub struct ToolMeta {
    pub name: &'static str,
    pub toolset: Toolset,
    pub title: &'static str,
    /// When to use the tool, in one or two sentences.
    pub description: &'static str,
    /// Any one of these, granted to the tenant token, lets the tool work. Empty: none needed.
    pub scopes: &'static [&'static str],
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    /// Operator configuration the tool cannot work without.
    pub needs: Needs,
    /// Whose token the tool calls Lark with.
    pub identity: Identity,
}

/// Whose identity a tool acts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The app's bot (tenant token).
    Bot,
    /// The signed-in person (`login`): offered only while someone is signed in.
    User,
    /// The signed-in person when there is one who granted any of `user_scopes` (and the
    /// operator allows it), else the bot: e.g. reading a chat the bot is not in.
    Either {
        user_scopes: &'static [&'static str],
        /// It speaks in the person's name (sends or replies): only with
        /// `--allow-send-as-user`.
        speaks: bool,
    },
}

/// Whom one call of a tool acts as, decided from the catalog, the operator's choice and
/// the login at the time of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acting {
    #[default]
    Bot,
    User,
}

/// The operator's choice of identities (`--identity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum IdentityMode {
    #[default]
    Auto,
    Bot,
    User,
}

impl Identity {
    pub fn as_str(self) -> &'static str {
        match self {
            Identity::Bot => "bot",
            Identity::User => "user",
            Identity::Either { .. } => "bot or user",
        }
    }

    /// Whether the tool can work with the bot's token.
    pub fn bot_capable(self) -> bool {
        !matches!(self, Identity::User)
    }

    /// Whether acting as the user means speaking in their name.
    pub fn speaks(self) -> bool {
        matches!(self, Identity::Either { speaks: true, .. })
    }
}

impl ToolMeta {
    /// The same tool, acting only as the signed-in person.
    pub const fn user_only(mut self) -> ToolMeta {
        self.identity = Identity::User;
        self
    }

    /// The same tool, acting as the signed-in person when they granted one of
    /// `user_scopes`, else as the bot.
    pub const fn or_as_user(mut self, user_scopes: &'static [&'static str]) -> ToolMeta {
        self.identity = Identity::Either {
            user_scopes,
            speaks: false,
        };
        self
    }

    /// As [`Self::or_as_user`], for a tool that then speaks in the person's name.
    pub const fn or_speaks_as_user(mut self, user_scopes: &'static [&'static str]) -> ToolMeta {
        self.identity = Identity::Either {
            user_scopes,
            speaks: true,
        };
        self
    }

    /// The scopes of which the person's login needs one for the tool to act as them.
    pub fn user_scopes(&self) -> &'static [&'static str] {
        match self.identity {
            Identity::Bot => &[],
            Identity::User => self.scopes,
            Identity::Either { user_scopes, .. } => user_scopes,
        }
    }

    /// The README's words for what a tool may do.
    pub fn access(&self) -> &'static str {
        if self.destructive {
            "destructive"
        } else if self.read_only {
            "read-only"
        } else if self.idempotent {
            "write (idempotent)"
        } else {
            "write"
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// `--allow-read-dir`: directories local files may be read from.
    ReadDir,
    /// `--download-dir`: where downloads are written.
    DownloadDir,
}

/// A failure an agent can act on; becomes an `isError` result with this text.
#[derive(Debug, Clone)]
pub struct ToolError {
    pub text: String,
    /// The Lark error behind it, when there was one.
    pub lark: Option<Box<LarkError>>,
    /// A dry run's answer: the call stopped before Lark, and this is what it would send.
    pub dry_run: Option<Box<Value>>,
    /// 2026-07-28: the client must ask the person and call again (a confirmation).
    pub input_required: Option<Box<rmcp::model::InputRequiredResult>>,
}

impl ToolError {
    /// A bad argument, named.
    pub fn invalid(field: &str, why: impl std::fmt::Display) -> ToolError {
        ToolError::msg(format!("Invalid argument `{field}`: {why}"))
    }

    pub fn msg(text: impl Into<String>) -> ToolError {
        ToolError {
            text: text.into(),
            lark: None,
            dry_run: None,
            input_required: None,
        }
    }
}

impl From<LarkError> for ToolError {
    fn from(e: LarkError) -> Self {
        ToolError {
            text: e.to_string(),
            lark: Some(Box::new(e)),
            dry_run: None,
            input_required: None,
        }
    }
}

/// An image returned next to the structured result, so the model can see it.
#[derive(Debug, Clone)]
pub struct Media {
    pub base64: String,
    pub mime: String,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub value: Value,
    pub media: Vec<Media>,
}

pub type ToolResult = Result<Outcome, ToolError>;
type BoxFuture = Pin<Box<dyn Future<Output = ToolResult> + Send + 'static>>;
type Runner = dyn Fn(ToolCtx, JsonObject) -> BoxFuture + Send + Sync;

pub struct ToolDef {
    pub meta: ToolMeta,
    pub input_schema: Arc<JsonObject>,
    pub output_schema: Arc<JsonObject>,
    run: Arc<Runner>,
    /// The schemas from the argument and output types (schemars), which `tools/NAME.json`
    /// must equal: the binary serves the snapshot, the contract test compares.
    #[cfg(feature = "schema-gen")]
    generate: fn(bool) -> (Arc<JsonObject>, Arc<JsonObject>),
}

impl ToolDef {
    /// Binds a handler; its argument and output types give the schemas.
    pub fn new<A, O, Fut>(meta: ToolMeta, handler: fn(ToolCtx, A) -> Fut) -> ToolDef
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        O: Serialize + JsonSchema + 'static,
        Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
    {
        let run = move |ctx: ToolCtx, args: JsonObject| -> BoxFuture {
            Box::pin(async move {
                let args: A = parse_args(args)?;
                let out = handler(ctx, args).await?;
                Ok(Outcome {
                    value: encode(out)?,
                    media: Vec::new(),
                })
            })
        };
        ToolDef::build::<A, O>(meta, Arc::new(run))
    }

    /// Like [`ToolDef::new`] for handlers that may also return images.
    pub fn with_media<A, O, Fut>(meta: ToolMeta, handler: fn(ToolCtx, A) -> Fut) -> ToolDef
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        O: Serialize + JsonSchema + 'static,
        Fut: Future<Output = Result<(O, Vec<Media>), ToolError>> + Send + 'static,
    {
        let run = move |ctx: ToolCtx, args: JsonObject| -> BoxFuture {
            Box::pin(async move {
                let args: A = parse_args(args)?;
                let (out, media) = handler(ctx, args).await?;
                Ok(Outcome {
                    value: encode(out)?,
                    media,
                })
            })
        };
        ToolDef::build::<A, O>(meta, Arc::new(run))
    }

    fn build<A: JsonSchema + 'static, O: JsonSchema + 'static>(
        meta: ToolMeta,
        run: Arc<Runner>,
    ) -> ToolDef {
        #[cfg(feature = "schema-gen")]
        let generate = generated_schemas::<A, O>;
        #[cfg(feature = "schema-gen")]
        let unfrozen = || generate(meta.read_only);
        #[cfg(not(feature = "schema-gen"))]
        let unfrozen = || schema::unfrozen(meta.name);
        let (input_schema, output_schema) = schema::frozen(meta.name).unwrap_or_else(unfrozen);
        ToolDef {
            meta,
            input_schema,
            output_schema,
            run,
            #[cfg(feature = "schema-gen")]
            generate,
        }
    }

    /// The schemas as the code generates them now (what `tools/NAME.json` must hold).
    #[cfg(feature = "schema-gen")]
    pub fn generated_schemas(&self) -> (Arc<JsonObject>, Arc<JsonObject>) {
        (self.generate)(self.meta.read_only)
    }

    pub fn run(&self, mut ctx: ToolCtx, mut args: JsonObject) -> BoxFuture {
        if !self.meta.read_only {
            match args.remove(schema::DRY_RUN) {
                None | Some(Value::Null) => {}
                Some(Value::Bool(b)) => ctx.call.dry_run = b,
                Some(_) => {
                    let e = ToolError::invalid(schema::DRY_RUN, "must be true or false");
                    return Box::pin(async move { Err(e) });
                }
            }
        }
        integers_as_strings(&self.input_schema, &mut args);
        (self.run)(ctx, args)
    }

    /// The MCP tool definition clients see.
    pub fn tool(&self) -> Tool {
        self.tool_acting(Acting::Bot)
    }

    /// The definition as listed while the tool acts as `acting`: a tool that can act
    /// either way says when it acts as the person, since that changes whose name it uses.
    pub fn tool_acting(&self, acting: Acting) -> Tool {
        let m = &self.meta;
        let annotations = ToolAnnotations::with_title(m.title)
            .read_only(m.read_only)
            .destructive(m.destructive)
            .idempotent(m.idempotent)
            .open_world(true);
        let description = match (m.identity, acting) {
            (Identity::Either { .. }, Acting::User) => {
                format!("{} {}", m.description, AS_USER_NOTE)
            }
            _ => m.description.to_string(),
        };
        Tool::new(m.name, description, self.input_schema.clone())
            .with_title(m.title)
            .with_raw_output_schema(self.output_schema.clone())
            .with_annotations(annotations)
    }

    /// What a client hands the model: name + description + input schema, in bytes.
    pub fn context_bytes(&self) -> usize {
        self.context_bytes_with(&self.input_schema)
    }

    fn context_bytes_with(&self, input_schema: &JsonObject) -> usize {
        let schema = serde_json::to_string(input_schema)
            .map(|s| s.len())
            .unwrap_or(0);
        self.meta.name.len() + self.meta.description.len() + schema
    }
}

#[cfg(feature = "schema-gen")]
fn generated_schemas<A: JsonSchema + 'static, O: JsonSchema + 'static>(
    read_only: bool,
) -> (Arc<JsonObject>, Arc<JsonObject>) {
    let (input, output) = (schema_gen::input::<A>(), schema_gen::output::<O>());
    if read_only {
        (input, output)
    } else {
        // Every write can be tried without effect; its answer is then the preview.
        (
            schema_gen::with_dry_run(&input),
            schema_gen::or_dry_run(&output),
        )
    }
}

fn encode<O: Serialize>(out: O) -> Result<Value, ToolError> {
    serde_json::to_value(out)
        .map_err(|e| ToolError::msg(format!("internal error: cannot encode the result: {e}")))
}

/// Appended to the description of a tool that acts as the signed-in person this time.
pub const AS_USER_NOTE: &str = "Acts as you, the signed-in user.";

/// Lark's ids, keys and emails are short; anything longer is refused before it can make
/// an unbuildable URL that would look like network trouble.
const MAX_ID_BYTES: usize = 256;
/// Paging tokens are opaque but Lark keeps them well under this.
const MAX_PAGE_TOKEN_BYTES: usize = 2048;

fn id_limit(field: &str) -> Option<usize> {
    if field == "page_token" {
        Some(MAX_PAGE_TOKEN_BYTES)
    } else if field == "to"
        || field == "owner"
        || field == "members"
        || field == "emails"
        || field.ends_with("_id")
        || field.ends_with("_ids")
        || field.ends_with("_key")
    {
        Some(MAX_ID_BYTES)
    } else {
        None
    }
}

/// Checks every id-like argument (a string, or a list of strings) against its bound.
fn check_id_lengths(args: &JsonObject) -> Result<(), ToolError> {
    for (field, value) in args {
        let Some(limit) = id_limit(field) else {
            continue;
        };
        let strings: Vec<&str> = match value {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        if let Some(long) = strings.iter().find(|s| s.len() > limit) {
            return Err(ToolError::invalid(
                field,
                format!(
                    "is {} bytes long; Lark's ids and keys are at most {limit} bytes, so this cannot be one",
                    long.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Some clients (MCP Inspector's CLI among them) send an id like `0` as a JSON number.
/// Where the schema asks for a string, an integer can only have meant its decimal text, so
/// it is accepted as such; floats, booleans and objects stay type errors. Only top-level
/// properties and the items of top-level string arrays are touched: ids live there.
fn integers_as_strings(schema: &JsonObject, args: &mut JsonObject) {
    let Some(Value::Object(properties)) = schema.get("properties") else {
        return;
    };
    fn is_string(schema: Option<&Value>) -> bool {
        match schema.and_then(|s| s.get("type")) {
            Some(Value::String(t)) => t == "string",
            Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
            _ => false,
        }
    }
    fn coerce(value: &mut Value) {
        if let Value::Number(n) = value
            && (n.is_i64() || n.is_u64())
        {
            *value = Value::String(n.to_string());
        }
    }
    for (field, value) in args.iter_mut() {
        let Some(property) = properties.get(field) else {
            continue;
        };
        if is_string(Some(property)) {
            coerce(value);
        } else if let Value::Array(items) = value
            && is_string(property.get("items"))
        {
            items.iter_mut().for_each(coerce);
        }
    }
}

/// Arguments are checked strictly: unknown fields and wrong types are errors naming the field.
fn parse_args<A: DeserializeOwned>(args: JsonObject) -> Result<A, ToolError> {
    check_id_lengths(&args)?;
    let value = Value::Object(args);
    serde_path_to_error::deserialize::<_, A>(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            ToolError::msg(format!("Invalid arguments: {inner}"))
        } else {
            ToolError::invalid(&path, inner)
        }
    })
}

static CATALOG: LazyLock<Vec<ToolDef>> = LazyLock::new(|| {
    let mut all: Vec<ToolDef> = [
        contact::tools(),
        messages::tools(),
        files::tools(),
        chats::tools(),
        toolsets::find::tools(),
        toolsets::events::tools(),
        meta::tools(),
    ]
    .into_iter()
    .flatten()
    .collect();
    all.sort_by_key(|t| t.meta.name);
    all
});

/// Every tool, sorted by name.
pub fn catalog() -> &'static [ToolDef] {
    &CATALOG
}

pub fn find(name: &str) -> Option<&'static ToolDef> {
    catalog().iter().find(|t| t.meta.name == name)
}

/// The reviewed contract of one tool (`tools/<name>.json`): what agents see plus the policy
/// facts behind it.
#[cfg(feature = "schema-gen")]
pub fn snapshot(def: &ToolDef) -> Value {
    let tool = serde_json::to_value(def.tool()).unwrap_or(Value::Null);
    let (input_schema, output_schema) = def.generated_schemas();
    serde_json::json!({
        "name": def.meta.name,
        "title": def.meta.title,
        "description": def.meta.description,
        "toolset": def.meta.toolset,
        "required_scopes_any_of": def.meta.scopes,
        "identity": def.meta.identity.as_str(),
        "user_scopes_any_of": def.meta.user_scopes(),
        "speaks_as_user": def.meta.identity.speaks(),
        "annotations": tool.get("annotations"),
        "inputSchema": &*input_schema,
        "outputSchema": &*output_schema,
        "context_bytes": def.context_bytes_with(&input_schema),
    })
}

/// The README's tool table, generated from the catalog.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| tool | toolset | access | acts as | scopes (any of) | what it is for |\n|---|---|---|---|---|---|\n",
    );
    let list = |scopes: &[&str]| {
        scopes
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for d in catalog() {
        let m = &d.meta;
        let access = m.access();
        let scopes = if m.scopes.is_empty() {
            "—".to_string()
        } else {
            list(m.scopes)
        };
        let acts_as = match m.identity {
            Identity::Bot => "bot".to_string(),
            Identity::User => "you".to_string(),
            Identity::Either {
                user_scopes,
                speaks,
            } => format!(
                "you{}, with {}; else bot",
                if speaks {
                    " (--allow-send-as-user)"
                } else {
                    ""
                },
                list(user_scopes)
            ),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            m.name,
            m.toolset.as_str(),
            access,
            acts_as,
            scopes,
            m.description.replace('|', "\\|")
        ));
    }
    out
}
