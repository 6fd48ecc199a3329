//! Endpoint groups. Adding a group: a module with `pub fn endpoints() -> Vec<Endpoint>`,
//! listed once in [`all_endpoints`].

mod application;
mod auth;
mod chats;
mod contact;
pub(crate) mod messages;
pub(crate) mod resources;

use std::sync::LazyLock;

use super::endpoint::Endpoint;

/// Public so the reaction tools can map `thumbsup` to Lark's case-sensitive `THUMBSUP`.
pub use messages::EMOJI_TYPES;
/// Public for `benches/mentions.rs`, which times it on inputs no request can carry.
pub use messages::read_content;

static ALL: LazyLock<Vec<Endpoint>> = LazyLock::new(|| {
    [
        auth::endpoints(),
        application::endpoints(),
        contact::endpoints(),
        messages::endpoints(),
        resources::endpoints(),
        chats::endpoints(),
        super::user_auth::endpoints(),
    ]
    .into_iter()
    .flatten()
    .collect()
});

pub fn all_endpoints() -> impl Iterator<Item = &'static Endpoint> {
    ALL.iter()
}
