//! The ledger: the service's only durable state (SQLite). Every file seen, its fingerprint
//! (name, size, mtime, sha256), its state, every attempt and its outcome, and the lease that
//! says who holds it. Every state a file can be in is one [`State`]; every transition is one
//! function here; nothing else writes the state.

use std::path::Path;
use std::time::Duration;

/// Where one attempt at one file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Taken by a holder (lease), not yet downloaded.
    Claimed,
    /// Downloaded to the spool; sha256 known.
    Fetched,
    /// Operations being sent to Odoo (batches recorded as they complete).
    Applying,
    /// Every Odoo write of the file completed: after a crash it is only archived.
    Applied,
    /// Being moved to the archive (destination recorded).
    Archiving,
    /// Being moved to `error/` (destination recorded).
    Quarantining,
    /// Transient failure: the file waits in the inbox for the next pass.
    Waiting,
    /// Terminal: in the archive.
    Archived,
    /// Terminal: in `error/` with its report.
    Failed,
    /// Terminal: the inbox file changed or vanished before this attempt finished.
    Abandoned,
}

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
    pub attempt: u32,
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
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("ledger: file {id} is held by {holder}, not by this run")]
    NotHolder { id: i64, holder: String },
    #[error("ledger: file {id} cannot go from {from:?} to {to:?}")]
    BadTransition { id: i64, from: State, to: State },
}

pub struct Ledger {}

impl Ledger {
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let _ = path;
        todo!()
    }
    pub fn open_in_memory() -> Result<Ledger, LedgerError> {
        todo!()
    }
    /// Records a listing of (flow, name) with this size and mtime; returns since when (unix ms)
    /// it has been seen unchanged.
    pub fn observe(&self, flow: &str, name: &str, size: u64, mtime: i64, now_ms: i64) -> Result<i64, LedgerError> {
        let _ = (flow, name, size, mtime, now_ms);
        todo!()
    }
    pub fn claim(
        &self,
        flow: &str,
        name: &str,
        size: u64,
        mtime: i64,
        holder: &str,
        lease: Duration,
        now_ms: i64,
    ) -> Result<Option<FileRecord>, LedgerError> {
        let _ = (flow, name, size, mtime, holder, lease, now_ms);
        todo!()
    }
}
