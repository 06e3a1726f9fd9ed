//! Implementations of the domain's repository traits on [`Database`].
//!
//! [`Database`]: crate::Database

mod api_keys;
mod audit;
mod benchmarks;
mod chats;
mod collections;
mod grants;
mod invitations;
mod presets;
mod quotas;
mod sessions;
mod throttle;
mod usage;
mod users;

pub(crate) use users::{UserRow, insert_user};
