//! The ledger: the service's only durable state (SQLite). Every file seen, its fingerprint
//! (name, size, mtime, sha256), its state, every attempt and its outcome, and the lease that
//! says who holds it. Every state a file can be in is one [`State`]; every transition is one
//! function of `state`; nothing else writes the state.
//!
//! Crash safety rests on three things: the database runs in WAL mode, every transition is one
//! transaction (so a kill -9 leaves either the old or the new state, never a mix), and every
//! transition that reads before it writes starts with `BEGIN IMMEDIATE`, so two processes
//! sharing the file serialize instead of failing on a lock upgrade. The SQL stays plain (no
//! SQLite-only tricks in the transitions) so a PostgreSQL ledger can mirror it for several
//! instances; the claim is a single transaction there too.
//!
//! Tables: `sightings` (what the last listings showed, for completeness across polls), `files`
//! (one row per attempt at a file), `batches` (what each Odoo batch of an attempt did),
//! `stock_set` (per flow and stock key, the newest set_stock file that set it, for refusing
//! stale stock files), `force_stale` (stale stock files ops asked to apply anyway),
//! `publications` (every document an export flow published, or failed to, per record) and
//! `flow_runs` (which run holds a flow now, and how its last run went). The
//! schema version lives in `PRAGMA user_version`; [`MIGRATIONS`] brings older files up to date.
//!
//! The parts: `lease` the default lease, holder names and the liveness rule; `state` holds the state machine and the leases (every transition, the only
//! writer of a file's state); `queries` the read-only questions of `status`, `explain` and a
//! pass's repairs; `sightings` what the listings showed; `stock_set` which file last set each
//! stock key, and the stale files ops force; `runs` the daemon's flow runs (who runs a flow now, how
//! its last run went); `publications` the export flows' records, their files and marks; `schema`
//! the tables, their
//! migrations and how a row reads back. This module holds the [`Ledger`] handle itself:
//! opening, the connection, and the transactions every part runs in. `impl Ledger` is spread
//! over the parts; everything public is re-exported here.

mod lease;
mod publications;
mod queries;
mod runs;
mod schema;
mod sightings;
mod state;
mod stock_set;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::Consequence;
use schema::migrate;

pub use lease::{DEFAULT_LEASE, holder_is_dead, holder_name, host_name, is_live};
pub use publications::{ExportCounts, PubState, Publication, Publishing};
pub use queries::FlowCounts;
pub use runs::{FlowRun, RunTaken};
pub use schema::MIGRATIONS;
pub use sightings::Sighting;
pub use state::{State, allowed};
pub use stock_set::StockSetBy;

/// One attempt at one file, as the ledger knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRecord {
    pub id: i64,
    pub flow: String,
    pub name: String,
    pub size: u64,
    pub mtime: i64,
    pub sha256: Option<String>,
    /// 1 for the first attempt at this content in this flow, 2 for its first replay, …
    /// (0 until the file is fetched and its content known).
    pub attempt: u32,
    /// The latest earlier attempt at the same content in this flow that was archived or
    /// failed (a replay links to it).
    pub previous_id: Option<i64>,
    /// Passes that took this attempt (more than 1 after transient failures or a crash).
    pub tries: u32,
    pub state: State,
    /// Why it is in this state (error summary, or where it went).
    pub detail: Option<String>,
    /// Archive or error path, once chosen.
    pub destination: Option<String>,
    pub holder: Option<String>,
    /// Lease expiry, unix milliseconds.
    pub lease_until: Option<i64>,
    /// Records the file holds, once applying started.
    pub records_total: Option<u64>,
    /// Records Odoo accepted, once applied.
    pub records_applied: Option<u64>,
    /// Records Odoo refused, once applied.
    pub records_failed: Option<u64>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// Tries of this attempt that ended without a word: the process was killed, or its lease
    /// ran out and another run took the file over. A poison file is one whose tries keep dying.
    pub deaths: u32,
    /// Every record up to this one was applied, none refused: a resumed attempt at the same
    /// content skips them.
    pub applied_through: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("ledger: file {id} is held by {holder}, not by this run")]
    NotHolder { id: i64, holder: String },
    #[error(
        "ledger: the claim of this run on file {id} ran out; another run may take the file over"
    )]
    LeaseExpired { id: i64 },
    #[error("ledger: file {id} cannot go from {from:?} to {to:?}")]
    BadTransition { id: i64, from: State, to: State },
    #[error("ledger: there is no file {id}")]
    UnknownFile { id: i64 },
    #[error(
        "ledger: the database has schema version {found}, this edi-bridge knows up to {known}; \
         use a newer edi-bridge or another ledger file"
    )]
    TooNew { found: i64, known: i64 },
}

impl LedgerError {
    /// A busy or locked database is an outage (the file waits); a lost lease means another run
    /// has the file (it stays where it is); anything else — a bad transition, an unreadable or
    /// newer database, a full disk — needs a human.
    pub fn consequence(&self) -> Consequence {
        match self {
            LedgerError::Sqlite(e) => match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                    Consequence::Retry
                }
                _ => Consequence::Stop,
            },
            LedgerError::NotHolder { .. } | LedgerError::LeaseExpired { .. } => Consequence::Retry,
            LedgerError::BadTransition { .. }
            | LedgerError::UnknownFile { .. }
            | LedgerError::TooNew { .. } => Consequence::Stop,
        }
    }
}

/// The durable state of edi-bridge: one SQLite file, shared safely by every run on the machine.
pub struct Ledger {
    // One connection, used by one call at a time; the mutex makes the ledger shareable between
    // tasks and threads. Other processes are kept apart by SQLite's own locks.
    conn: Mutex<Connection>,
}

impl Ledger {
    /// Opens (creating if needed) the ledger file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        Ledger::prepare(Connection::open(path)?)
    }

    /// A ledger that lives and dies with this process (tests, `validate`).
    pub fn open_in_memory() -> Result<Ledger, LedgerError> {
        Ledger::prepare(Connection::open_in_memory()?)
    }

    fn prepare(mut conn: Connection) -> Result<Ledger, LedgerError> {
        // Another process may hold the write lock for a moment (its own transition): wait for
        // it rather than fail. Set by pragma: rusqlite's `busy_timeout()` needs
        // `sqlite3_set_clientdata` (SQLite 3.44), newer than the system library (3.40).
        conn.pragma_update(None, "busy_timeout", 10_000)?;
        // WAL: a kill -9 mid-transaction leaves the previous commit intact, readers never block
        // the writer. synchronous=NORMAL keeps every commit across a process crash; only a
        // power cut may lose the last commits, which rolls the ledger back to an earlier
        // consistent point that the idempotent pipeline redoes.
        // Switching a fresh file to WAL needs it to itself, and SQLite answers "busy" at once
        // rather than waiting when another process is opening it too: try again for a while.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
                Ok(_) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrate(&mut conn)?;
        Ok(Ledger {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done transaction behind (the
        // transaction rolls back on drop), so the connection is still good.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction: all of it is committed, or none.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Reads in one transaction, so a query sees one consistent moment.
    fn read<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}
