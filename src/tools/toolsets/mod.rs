//! The toolsets: each module defines its tools and returns them for the [`catalog`](super::catalog).

pub mod chats;
pub mod contact;
pub mod events;
pub mod find;
pub mod messages;
pub mod meta;
