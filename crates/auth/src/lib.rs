#![doc = include_str!("../README.md")]

pub mod api_key;
pub mod error;
pub mod limiter;
pub mod password;
pub mod secret;
pub mod service;
pub mod throttle;
pub mod token;

pub use error::AuthError;
pub use secret::ServerSecret;
pub use service::{
    AccountInput, Actor, AuthConfig, AuthService, Authenticated, IssuedKey, LoginOutcome,
    LoginRequest,
};
pub use throttle::ThrottlePolicy;
