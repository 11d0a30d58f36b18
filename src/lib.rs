//! edi-bridge moves business documents between Odoo and the SFTP servers of the partners a
//! company trades with.
//!
//! How an incoming file travels, and which module owns each step:
//!
//! 1. [`config`] turns the TOML file into checked, typed partners, flows and mappings, once (one
//!    module per section; the mapping's own types live in [`mapping::config`]).
//! 2. [`transport`] lists a partner's inbox (SFTP or a local folder) — one listing per poll;
//!    [`import::list`] records what it saw.
//! 3. [`import::settle`] decides whether a file is complete (unchanged size and mtime across
//!    `settle`, optional done-marker, closed root element).
//! 4. [`import::claim`] claims it in the [`ledger`] with a lease, so no second run takes it too
//!    (the ledger alone writes durable state), and fetches it to the local spool through
//!    [`transport`], computing its sha256.
//! 5. [`import::validate`] checks XML against the flow's XSD with [`schema`] (libxml2,
//!    hardened); CSV rows are checked against the configured columns while they are read.
//! 6. [`mapping::records`] streams the records and [`mapping::map`] turns each into an
//!    [`operation::Operation`] — the contract between a mapping and Odoo — which
//!    [`import::spool`] writes to disk, so memory does not grow with the file (a file is
//!    validated and mapped while the next one downloads).
//! 7. [`import::apply`] reads the operations back a window at a time and hands them to
//!    [`odoo`], which applies them in batches, idempotently; the claim of every file a batch
//!    carries is renewed first, and stock older than what a newer file set is refused.
//! 8. [`import::finish`] archives the file, or moves it to `error/` with a [`report`] a person
//!    can read.
//!
//! An outgoing record travels the other way, through [`export`]: [`export::select`] selects
//! the ready delivery orders with the flow's domain and reads them in a fixed number of
//! batched calls, [`export::render`] renders each document (the canonical `builtin:picking` or
//! the flow's own template) and validates it with [`schema`], [`export::publish`] writes it in
//! the outbox atomically through [`transport`], [`export::mark`] marks the records in Odoo,
//! and the [`ledger`] keeps every publication, so a crash between publishing and marking
//! publishes nothing twice. [`export::pass`] runs these steps; `run --once` runs import and
//! export flows side by side.
//!
//! [`import::pass`] runs a pass over these steps for every partner (one session each, side by
//! side), after [`import::repair`] has finished what a crash left; the records of all files a
//! pass takes share Odoo batches, while outcomes, reports and the ledger stay per file.
//! [`check`], [`import::explain`] and [`import::replay`] serve the commands of the same names;
//! [`scaffold`] writes a starting mapping from a partner's XSD (offline, beside the data path).
//! [`check`], [`import::explain`] and [`import::replay`] serve the commands of the same names.
//! [`daemon`] is `edi-bridge run`: flows on their schedules, watched inboxes, Odoo's webhook,
//! the HTTP endpoints, sessions kept open between polls ([`transport::pool`]).
//!
//! Every arrow points down (but one: the `Runner` of `import::pass` runs export flows too, and
//! `export::pass` extends it): `check` → `import`, `export` → `odoo`, `transport` → `config` → `mapping` →
//! `ledger`, `schema`, `report`, `operation`, `error`.
//!
//! [`error::Consequence`] is the one question every failure answers: wait and retry, send the
//! file to `error/`, or stop the flow and tell a human.

pub mod check;
pub mod config;
pub mod daemon;
pub mod error;
pub mod export;
pub mod import;
pub mod ledger;
pub mod mapping;
pub mod odoo;
pub mod operation;
pub mod report;
pub mod scaffold;
pub mod schema;
pub mod transport;
