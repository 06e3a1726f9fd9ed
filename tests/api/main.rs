//! One integration test binary; modules by area.

mod access;
mod auth;
mod fuzz;
mod helpers;
mod inference;
mod keys;
mod layering;
mod models;
mod modes;
mod network;
mod openai_client;
mod users;
