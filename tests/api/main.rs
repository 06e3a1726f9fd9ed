//! One integration test binary; modules by area.

mod access;
mod auth;
mod helpers;
mod inference;
mod inference_limits;
mod keys;
mod layering;
mod models;
mod modes;
mod network;
mod openai_client;
mod users;
