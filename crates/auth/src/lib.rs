#![doc = include_str!("../README.md")]

pub mod api_key;
pub mod device;
pub mod error;
pub mod in_flight;
pub mod invite_code;
pub mod limiter;
pub mod password;
pub mod requests;
pub mod secret;
pub mod service;
pub mod setup_code;
pub mod throttle;
pub mod token;

pub use error::AuthError;
pub use requests::{
    DEFAULT_INVITATION_HOURS, INVITATION_EXPIRY_HOURS, KEY_EXPIRY_DAYS, key_expiry_in_days,
};
pub use secret::ServerSecret;
pub use service::{
    AcceptInvitation, AccountInput, Actor, AuthConfig, AuthService, Authenticated,
    InvitationRequest, IssuedInvitation, IssuedKey, KeyIssuer, KeyRequest, LoginOutcome,
    LoginRequest, SetupProof,
};
pub use setup_code::SetupCode;
pub use throttle::ThrottlePolicy;
