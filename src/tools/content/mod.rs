//! Message content: what the agent writes ([`compose`], [`markdown`]) and what it reads
//! ([`render`]). Mention syntax shared with the sandbox is in [`crate::mentions`].

pub mod compose;
pub mod markdown;
pub mod render;
