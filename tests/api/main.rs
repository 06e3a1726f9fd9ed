//! One integration test binary; modules by area.

mod access;
mod auth;
mod cookie;
mod data_files;
mod fuzz;
mod helpers;
mod inference;
mod inference_limits;
mod invitations;
mod keys;
mod layering;
mod model_files;
mod models;
mod modes;
mod network;
mod openai_client;
mod openapi;
mod presets;
mod queue;
mod quota;
mod rag;
mod rag_access;
mod session_chat;
mod sessions;
mod ui;
mod users;
