//! edi-bridge moves business documents between Odoo and the SFTP servers of the partners a
//! company trades with.
//!
//! How an incoming file travels, and which module owns each step:
//!
//! 1. [`config`] turns the TOML file into checked, typed partners, flows and mappings, once.
//! 2. [`transport`] lists a partner's inbox (SFTP or a local folder) — one listing per poll.
//! 3. [`import::settle`] decides whether a file is complete (unchanged size and mtime across
//!    `settle`, optional done-marker, closed root element).
//! 4. [`ledger`] claims it with a lease, so no second run takes it too; the ledger alone writes
//!    durable state.
//! 5. [`transport`] downloads it to the local spool, computing its sha256.
//! 6. [`schema`] validates XML against the flow's XSD (libxml2, hardened); CSV rows are checked
//!    against the configured columns while they are read.
//! 7. [`import::records`] streams the records and [`import::mapping`] turns each into an
//!    [`operation::Operation`] — the contract between a mapping and Odoo.
//! 8. [`odoo`] applies the operations in batches, idempotently.
//! 9. [`import::finish`] archives the file, or moves it to `error/` with a [`report`] a person
//!    can read.
//!
//! [`import::pass`] runs a pass over these steps for every partner (one session each, side by
//! side); the records of all files a pass takes share Odoo batches, while outcomes, reports and
//! the ledger stay per file. [`check`], [`import::explain`] and [`import::replay`] serve the
//! commands of the same names.
//!
//! [`error::Consequence`] is the one question every failure answers: wait and retry, send the
//! file to `error/`, or stop the flow and tell a human.

pub mod check;
pub mod config;
pub mod error;
pub mod import;
pub mod ledger;
pub mod odoo;
pub mod operation;
pub mod report;
pub mod schema;
pub mod transport;
