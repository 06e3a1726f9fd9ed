#![doc = include_str!("../README.md")]

mod duration;
mod keys;
mod load;
mod mode;
mod quota;

pub use duration::KeepAlive;
pub use keys::KEYS;
pub use load::{
    ConfigError, Loaded, Overrides, Secret, Settings, Source, load, load_from_process,
    validate_file,
};
pub use mode::multi_user_disabled;
pub use quota::RoleQuota;
