//! The Odoo side: the client (JSON-RPC and JSON-2) and the actions that apply operations.

pub mod actions;
pub mod client;
pub mod error;
