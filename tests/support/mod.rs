//! Real peers for the whole-flow tests: an OpenSSH `sshd` on loopback and the Odoo stand-in.
#![allow(dead_code)]

pub mod shared;
pub mod sshd;
pub mod stand;
pub mod standin;
