//! Run-time knobs of the sandbox: values Lark does not document precisely ([U] in the
//! reference) and behaviours tests want to dial. Changeable at start (`--options`) and live
//! (`PATCH /_sandbox/options`, [`super::Sandbox::set_options`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Lifetime of a newly issued tenant/app token (Lark: 7200 s).
    pub token_ttl_secs: u64,
    /// Below this remaining lifetime the token endpoint issues a new token (Lark: 30 min).
    pub token_renew_below_secs: u64,
    /// HTTP status of token errors (9999166x/71). [U] 400 or 401.
    pub auth_error_status: u16,
    /// HTTP status of 99991672. [U] 400 (seen) or 403.
    pub scope_error_status: u16,
    /// Business error codes answered with HTTP 200 instead of their 4xx. [U] which ones.
    pub http200_codes: Vec<i64>,
    /// Lark's per-receiver send limit (user or chat), answered with 230020. 0 disables.
    pub send_qps_per_receiver: u32,
    /// How long a message `uuid` dedupes (Lark: 1 h).
    pub uuid_ttl_secs: u64,
    /// Largest `im/v1/files` upload (234006 above it). [U] 30 MB.
    pub file_upload_max_bytes: u64,
    /// The tenant's recall window for the bot's own messages (Lark default: 24 h, 230009).
    pub recall_window_secs: u64,
    /// Seeded read receipts: the other chat members have read a bot message this long
    /// after it was sent (`read_users`). 0: at once.
    pub read_receipt_delay_secs: u64,
    /// Added before every `/open-apis` response.
    pub latency_ms: u64,
    /// Per-endpoint requests per second before 429/99991400 (Lark: 50/s on most APIs). 0 disables.
    pub qps_limit_per_endpoint: u32,
    /// Most recorded requests kept for inspection; counters are never trimmed.
    pub record_limit: usize,
    /// One-click registration (`oauth/v1/app/registration`): the poll on which the
    /// registration is decided without anyone visiting the page (counted after the
    /// slow_down polls), so tests and demos need no click. 0: only a click on the
    /// verification page decides.
    pub registration_approve_after_polls: u32,
    /// What that poll decides: `approve`, `deny` (`access_denied`) or `expire` (`expired_token`).
    pub registration_outcome: RegistrationOutcome,
    /// The first this many polls of a registration answer `slow_down`.
    pub registration_slow_down_polls: u32,
    /// The tenant brand of the user who approves: `feishu`, or `lark`, whose secret only the
    /// Lark accounts host (`/lark/oauth/v1/app/registration`) returns.
    pub registration_brand: RegistrationBrand,
    /// `interval` answered by `begin` (Lark's clients default to 5 s).
    pub registration_interval_secs: u64,
    /// `expires_in` answered by `begin`; polls after the deadline answer `expired_token`.
    pub registration_expires_in_secs: u64,
    /// Tenant scopes every newly registered app is granted besides those its `addons` request.
    pub registration_base_scopes: Vec<String>,
    /// Lifetime of a user_access_token (`u-`; Lark: about 7200 s, "not fixed").
    pub user_token_ttl_secs: u64,
    /// Lifetime of a refresh token (v2 docs example: 604800 s), capped at 365 days after
    /// the user authorised.
    pub user_refresh_ttl_secs: u64,
    /// Reusing a rotated refresh token within this many seconds is tolerated (a new pair is
    /// issued) instead of 20073. 0 (Lark's documented behaviour): never.
    pub user_refresh_reuse_grace_secs: u64,
    /// Lifetime of an authorization code (Lark: 5 min).
    pub user_code_ttl_secs: u64,
    /// Device flow: the token poll on which the flow is decided without a click (after the
    /// slow_down polls). 0: only the verification page decides.
    pub user_device_approve_after_polls: u32,
    /// What that poll decides: `approve`, `deny` (`access_denied`), `expire` (`expired_token`).
    pub user_device_outcome: RegistrationOutcome,
    /// The first this many device-code polls answer `slow_down`.
    pub user_device_slow_down_polls: u32,
    /// `interval` of a device authorization (real value [U]; clients default to 5).
    pub user_device_interval_secs: u64,
    /// `expires_in` of a device authorization (real value [U]; clients default to 240).
    pub user_device_expires_in_secs: u64,
    /// The authorize page: `approve` answers 302 with a code at once, `deny` 302 with
    /// `error=access_denied`, `page` shows the consent page with Approve / Deny.
    pub user_authorize_outcome: UserAuthorizeOutcome,
    /// The open_id of the user who approves (an unknown one: 20008 at the token endpoint);
    /// default: the first active tenant manager of the seed.
    pub user_open_id: Option<String>,
    /// Serve variant 2 of the device authorization (`/open-apis/authen/v2/oauth/
    /// device_authorization`, JSON, used only by the Python channel SDK; [U]).
    pub user_device_authorization_v2: bool,
    /// Whether the accounts host offers the device flow at all. [U] How a refusal reads:
    /// here 400 `unauthorized_client`, so clients fall back to the browser (PKCE) login.
    pub user_device_flow_enabled: bool,
    /// Long connection: `ClientConfig.PingInterval` (seconds) from the endpoint and in every
    /// pong. The real server's values are [U]; 120/-1/120/30 are the SDKs' own defaults.
    pub ws_ping_interval_secs: u64,
    /// `ClientConfig.ReconnectCount` (-1: forever).
    pub ws_reconnect_count: i64,
    /// `ClientConfig.ReconnectInterval` (seconds); small values let tests reconnect fast.
    pub ws_reconnect_interval_secs: u64,
    /// `ClientConfig.ReconnectNonce` (seconds of random jitter before the first reconnect).
    pub ws_reconnect_nonce_secs: u64,
    /// An event whose completing fragment is not acknowledged with code 200 within this
    /// time is pushed again (Lark: 3 s).
    pub ws_repush_after_ms: u64,
    /// How many times an unacknowledged event is pushed again. [U] Lark's schedule.
    pub ws_repush_count: u32,
    /// Largest event frame payload; longer events are split into `sum`/`seq` fragments.
    /// 0: never split.
    pub ws_fragment_bytes: usize,
    /// Live connections per app before the handshake answers 514/1000040350 (Lark: 50).
    pub ws_max_connections: usize,
}

/// What the browser authorize page does (`user_authorize_outcome`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserAuthorizeOutcome {
    #[default]
    Approve,
    Deny,
    Page,
}

/// How an undecided registration ends on its `registration_approve_after_polls`th poll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationOutcome {
    #[default]
    Approve,
    Deny,
    Expire,
}

/// The approving user's tenant brand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationBrand {
    #[default]
    Feishu,
    Lark,
}

impl RegistrationBrand {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationBrand::Feishu => "feishu",
            RegistrationBrand::Lark => "lark",
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token_ttl_secs: 7200,
            token_renew_below_secs: 1800,
            auth_error_status: 400,
            scope_error_status: 400,
            http200_codes: vec![super::envelope::codes::USER_OUT_OF_RANGE],
            send_qps_per_receiver: 5,
            uuid_ttl_secs: 3600,
            file_upload_max_bytes: 30 * 1024 * 1024,
            recall_window_secs: 24 * 3600,
            read_receipt_delay_secs: 60,
            latency_ms: 0,
            qps_limit_per_endpoint: 0,
            record_limit: 20_000,
            registration_approve_after_polls: 2,
            registration_outcome: RegistrationOutcome::Approve,
            registration_slow_down_polls: 0,
            registration_brand: RegistrationBrand::Feishu,
            registration_interval_secs: 1,
            registration_expires_in_secs: 600,
            registration_base_scopes: Vec::new(),
            user_token_ttl_secs: 7200,
            user_refresh_ttl_secs: 604_800,
            user_refresh_reuse_grace_secs: 0,
            user_code_ttl_secs: 300,
            user_device_approve_after_polls: 2,
            user_device_outcome: RegistrationOutcome::Approve,
            user_device_slow_down_polls: 0,
            user_device_interval_secs: 1,
            user_device_expires_in_secs: 240,
            user_authorize_outcome: UserAuthorizeOutcome::Approve,
            user_open_id: None,
            user_device_authorization_v2: true,
            user_device_flow_enabled: true,
            ws_ping_interval_secs: 120,
            ws_reconnect_count: -1,
            ws_reconnect_interval_secs: 120,
            ws_reconnect_nonce_secs: 30,
            ws_repush_after_ms: 3000,
            ws_repush_count: 1,
            ws_fragment_bytes: 0,
            ws_max_connections: 50,
        }
    }
}
