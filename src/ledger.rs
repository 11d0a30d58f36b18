//! The ledger: the service's only durable state (SQLite). Every file seen, its fingerprint
//! (name, size, mtime, sha256), its state, every attempt and its outcome, and the lease that
//! says who holds it. Every state a file can be in is one [`State`]; every transition is one
//! function here; nothing else writes the state.
//!
//! Crash safety rests on three things: the database runs in WAL mode, every transition is one
//! transaction (so a kill -9 leaves either the old or the new state, never a mix), and every
//! transition that reads before it writes starts with `BEGIN IMMEDIATE`, so two processes
//! sharing the file serialize instead of failing on a lock upgrade. The SQL stays plain (no
//! SQLite-only tricks in the transitions) so a PostgreSQL ledger can mirror it for several
//! instances; the claim is a single transaction there too.
//!
//! Tables: `sightings` (what the last listings showed, for completeness across polls), `files`
//! (one row per attempt at a file), `batches` (what each Odoo batch of an attempt did). The
//! schema version lives in `PRAGMA user_version`; [`MIGRATIONS`] brings older files up to date.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use crate::error::Consequence;

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

impl State {
    /// Every state, in the order a successful file goes through them (then the others).
    pub const ALL: [State; 10] = [
        State::Claimed,
        State::Fetched,
        State::Applying,
        State::Applied,
        State::Archiving,
        State::Quarantining,
        State::Waiting,
        State::Archived,
        State::Failed,
        State::Abandoned,
    ];

    /// The word stored in the ledger and shown by `status` and `explain`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Claimed => "claimed",
            State::Fetched => "fetched",
            State::Applying => "applying",
            State::Applied => "applied",
            State::Archiving => "archiving",
            State::Quarantining => "quarantining",
            State::Waiting => "waiting",
            State::Archived => "archived",
            State::Failed => "failed",
            State::Abandoned => "abandoned",
        }
    }

    /// The state stored as `word`, if it is one.
    pub fn parse(word: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// Archived, Failed and Abandoned end an attempt: nothing moves them any more, and a file
    /// of the same name seen again in the inbox is a new attempt.
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Archived | State::Failed | State::Abandoned)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for State {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for State {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let word = value.as_str()?;
        State::parse(word)
            .ok_or_else(|| FromSqlError::Other(format!("unknown file state {word:?}").into()))
    }
}

/// Whether an attempt may go from `from` to `to`. The one place that says which transitions
/// exist; every transition function asks it.
///
/// Re-entering a state is allowed where a resumed try redoes a step: a file taken over in
/// `Fetched` or `Applying` is downloaded and applied again (every Odoo action is idempotent),
/// and a move to the archive or `error/` may pick a new destination. `Applied` never goes back:
/// a file whose Odoo writes completed is only archived (or quarantined for its failed records).
/// `Waiting` is left only by a claim, which puts the attempt back where it stood.
pub fn allowed(from: State, to: State) -> bool {
    use State::*;
    if from.is_terminal() {
        return false;
    }
    match to {
        // Any unfinished attempt can be overtaken by a change of the inbox file.
        Abandoned => true,
        // A transient failure can strike at any step that holds the file.
        Waiting => from != Waiting,
        Fetched => matches!(from, Claimed | Fetched | Applying),
        Applying => matches!(from, Fetched | Applying),
        Applied => from == Applying,
        Archiving => matches!(from, Applied | Archiving),
        Archived => from == Archiving,
        // Too large or truncated (found while downloading), invalid, unmappable, refused by
        // Odoo (before or after the good records were applied).
        Quarantining => matches!(from, Claimed | Fetched | Applying | Applied | Quarantining),
        Failed => from == Quarantining,
        Claimed => false,
    }
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
}

/// What the last listings showed of one inbox file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub size: u64,
    pub mtime: i64,
    /// Since when (unix ms) size and mtime have stayed as they are.
    pub unchanged_since_ms: i64,
    /// When (unix ms) a listing last showed the file.
    pub last_seen_ms: i64,
}

/// What `status` shows for one flow. Attempts are counted, so a file that failed and was
/// archived after a replay counts once in each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowCounts {
    pub flow: String,
    pub archived: u64,
    pub failed: u64,
    /// Files in the inbox waiting after a transient failure.
    pub waiting: u64,
    /// Attempts under way (claimed, fetched, applying, applied, archiving, quarantining).
    pub in_progress: u64,
    /// When (unix ms) the oldest waiting file was first claimed.
    pub oldest_waiting_ms: Option<i64>,
    /// When (unix ms) a file of this flow was last archived.
    pub last_archived_ms: Option<i64>,
    /// When (unix ms) any attempt of this flow last changed.
    pub last_activity_ms: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("ledger: file {id} is held by {holder}, not by this run")]
    NotHolder { id: i64, holder: String },
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
            LedgerError::NotHolder { .. } => Consequence::Retry,
            LedgerError::BadTransition { .. }
            | LedgerError::UnknownFile { .. }
            | LedgerError::TooNew { .. } => Consequence::Stop,
        }
    }
}

/// Schema migrations: entry `i` brings a database from `user_version` i to i + 1.
pub const MIGRATIONS: &[&str] = &[
    // 1: sightings, attempts, batches.
    "CREATE TABLE sightings (
        flow TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime INTEGER NOT NULL,
        unchanged_since_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        PRIMARY KEY (flow, name)
    );
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        flow TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime INTEGER NOT NULL,
        sha256 TEXT,
        attempt INTEGER NOT NULL DEFAULT 0,
        previous_id INTEGER REFERENCES files (id),
        tries INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('claimed', 'fetched', 'applying', 'applied',
            'archiving', 'quarantining', 'waiting', 'archived', 'failed', 'abandoned')),
        waiting_from TEXT,
        detail TEXT,
        destination TEXT,
        holder TEXT,
        lease_until INTEGER,
        records_total INTEGER,
        records_applied INTEGER,
        records_failed INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX files_by_name ON files (flow, name, id);
    CREATE INDEX files_by_content ON files (flow, sha256);
    CREATE INDEX files_by_state ON files (flow, state);
    CREATE TABLE batches (
        file_id INTEGER NOT NULL REFERENCES files (id),
        batch_no INTEGER NOT NULL,
        records INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (file_id, batch_no)
    );",
];

/// The columns of `files` that make a [`FileRecord`], in [`read_record`]'s order.
const RECORD_COLUMNS: &str = "id, flow, name, size, mtime, sha256, attempt, previous_id, tries, state, \
     detail, destination, holder, lease_until, records_total, records_applied, records_failed, \
     created_at, updated_at";

fn read_record(row: &Row<'_>) -> rusqlite::Result<FileRecord> {
    Ok(FileRecord {
        id: row.get(0)?,
        flow: row.get(1)?,
        name: row.get(2)?,
        size: row.get::<_, i64>(3)? as u64,
        mtime: row.get(4)?,
        sha256: row.get(5)?,
        attempt: row.get(6)?,
        previous_id: row.get(7)?,
        tries: row.get(8)?,
        state: row.get(9)?,
        detail: row.get(10)?,
        destination: row.get(11)?,
        holder: row.get(12)?,
        lease_until: row.get(13)?,
        records_total: row.get::<_, Option<i64>>(14)?.map(|n| n as u64),
        records_applied: row.get::<_, Option<i64>>(15)?.map(|n| n as u64),
        records_failed: row.get::<_, Option<i64>>(16)?.map(|n| n as u64),
        created_at: row.get(17)?,
        updated_at: row.get(18)?,
    })
}

/// Sizes and counts are stored as SQL integers (signed 64-bit); no file or record count comes
/// near 2^63.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn lease_end(now_ms: i64, lease: Duration) -> i64 {
    now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

/// Transitions that are not told the time take it from the clock: it only stamps `updated_at`.
fn clock_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn load(tx: &Transaction<'_>, id: i64) -> Result<FileRecord, LedgerError> {
    tx.query_row(
        &format!("SELECT {RECORD_COLUMNS} FROM files WHERE id = ?1"),
        [id],
        read_record,
    )
    .optional()?
    .ok_or(LedgerError::UnknownFile { id })
}

fn latest_in(
    tx: &Transaction<'_>,
    flow: &str,
    name: &str,
) -> Result<Option<FileRecord>, LedgerError> {
    Ok(tx
        .query_row(
            &format!("SELECT {RECORD_COLUMNS} FROM files WHERE flow = ?1 AND name = ?2 ORDER BY id DESC LIMIT 1"),
            params![flow, name],
            read_record,
        )
        .optional()?)
}

fn check_holder(record: &FileRecord, holder: &str) -> Result<(), LedgerError> {
    if record.holder.as_deref() == Some(holder) {
        Ok(())
    } else {
        Err(LedgerError::NotHolder {
            id: record.id,
            holder: record.holder.clone().unwrap_or_else(|| "nobody".into()),
        })
    }
}

fn check_allowed(record: &FileRecord, to: State) -> Result<(), LedgerError> {
    if allowed(record.state, to) {
        Ok(())
    } else {
        Err(LedgerError::BadTransition {
            id: record.id,
            from: record.state,
            to,
        })
    }
}

fn insert_claimed(
    tx: &Transaction<'_>,
    flow: &str,
    name: &str,
    size: u64,
    mtime: i64,
    holder: &str,
    lease_until: i64,
    now_ms: i64,
) -> Result<i64, LedgerError> {
    tx.execute(
        "INSERT INTO files (flow, name, size, mtime, attempt, tries, state, holder, lease_until, \
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, 1, ?5, ?6, ?7, ?8, ?8)",
        params![
            flow,
            name,
            int(size),
            mtime,
            State::Claimed,
            holder,
            lease_until,
            now_ms
        ],
    )?;
    Ok(tx.last_insert_rowid())
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
        // it rather than fail.
        conn.busy_timeout(Duration::from_secs(10))?;
        // WAL: a kill -9 mid-transaction leaves the previous commit intact, readers never block
        // the writer. synchronous=NORMAL keeps every commit across a process crash; only a
        // power cut may lose the last commits, which rolls the ledger back to an earlier
        // consistent point that the idempotent pipeline redoes.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
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

    /// The common shape of a transition: load the attempt, check that `holder` holds it and
    /// that it may go to `to`, apply `update` (which must set the state), return the result.
    fn transition(
        &self,
        id: i64,
        holder: &str,
        to: State,
        update: impl FnOnce(&Transaction<'_>, &FileRecord) -> Result<(), LedgerError>,
    ) -> Result<FileRecord, LedgerError> {
        self.write(|tx| {
            let record = load(tx, id)?;
            check_holder(&record, holder)?;
            check_allowed(&record, to)?;
            update(tx, &record)?;
            load(tx, id)
        })
    }

    // ---- completeness -------------------------------------------------------------------

    /// Records a listing of (flow, name) with this size and mtime; returns since when (unix ms)
    /// it has been seen unchanged.
    pub fn observe(
        &self,
        flow: &str,
        name: &str,
        size: u64,
        mtime: i64,
        now_ms: i64,
    ) -> Result<i64, LedgerError> {
        self.write(|tx| {
            let seen: Option<(i64, i64, i64)> = tx
                .query_row(
                    "SELECT size, mtime, unchanged_since_ms FROM sightings WHERE flow = ?1 AND name = ?2",
                    params![flow, name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let since = match seen {
                Some((s, m, since)) if s == int(size) && m == mtime => since,
                _ => now_ms,
            };
            tx.execute(
                "INSERT INTO sightings (flow, name, size, mtime, unchanged_since_ms, last_seen_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (flow, name) DO UPDATE SET size = excluded.size, mtime = excluded.mtime, \
                 unchanged_since_ms = excluded.unchanged_since_ms, last_seen_ms = excluded.last_seen_ms",
                params![flow, name, int(size), mtime, since, now_ms],
            )?;
            Ok(since)
        })
    }

    /// Drops the sightings of `flow`'s files that the latest listing no longer shows, so a file
    /// that comes back later settles afresh.
    pub fn forget_sightings_except(
        &self,
        flow: &str,
        present: &[String],
    ) -> Result<(), LedgerError> {
        let present: HashSet<&str> = present.iter().map(String::as_str).collect();
        self.write(|tx| {
            let known: Vec<String> = tx
                .prepare("SELECT name FROM sightings WHERE flow = ?1")?
                .query_map([flow], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut delete = tx.prepare("DELETE FROM sightings WHERE flow = ?1 AND name = ?2")?;
            for name in known.iter().filter(|n| !present.contains(n.as_str())) {
                delete.execute(params![flow, name])?;
            }
            Ok(())
        })
    }

    /// What the listings have shown of (flow, name), if it is in the inbox.
    pub fn sighting(&self, flow: &str, name: &str) -> Result<Option<Sighting>, LedgerError> {
        self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT size, mtime, unchanged_since_ms, last_seen_ms FROM sightings \
                     WHERE flow = ?1 AND name = ?2",
                    params![flow, name],
                    |r| {
                        Ok(Sighting {
                            size: r.get::<_, i64>(0)? as u64,
                            mtime: r.get(1)?,
                            unchanged_since_ms: r.get(2)?,
                            last_seen_ms: r.get(3)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    // ---- leases -------------------------------------------------------------------------

    /// Takes (flow, name) as it is now in the inbox (size, mtime) for `holder` until
    /// `now_ms + lease`. Returns `None` when another holder's lease is still running.
    ///
    /// - No attempt yet, or the latest one ended (archived, failed, abandoned): a new attempt
    ///   starts. This is how a replayed file — moved back into the inbox — is taken again.
    /// - The latest attempt is unfinished and the file is the same (size and mtime): it is
    ///   taken over with `tries` + 1 and its state kept, so the caller resumes where it stood
    ///   (an `Applied` file is only archived). A `Waiting` attempt returns to the state it was
    ///   waiting in.
    /// - The latest attempt is unfinished but the file changed: that attempt is abandoned and a
    ///   new one starts.
    #[allow(clippy::too_many_arguments)]
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
        let until = lease_end(now_ms, lease);
        self.write(|tx| {
            let id = match latest_in(tx, flow, name)? {
                None => insert_claimed(tx, flow, name, size, mtime, holder, until, now_ms)?,
                Some(old) if old.state.is_terminal() => {
                    insert_claimed(tx, flow, name, size, mtime, holder, until, now_ms)?
                }
                Some(old)
                    if old.holder.as_deref() != Some(holder) && old.lease_until.is_some_and(|t| t > now_ms) =>
                {
                    return Ok(None);
                }
                Some(old) if old.size == size && old.mtime == mtime => {
                    tx.execute(
                        "UPDATE files SET holder = ?2, lease_until = ?3, tries = tries + 1, \
                         state = COALESCE(waiting_from, state), waiting_from = NULL, updated_at = ?4 \
                         WHERE id = ?1",
                        params![old.id, holder, until, now_ms],
                    )?;
                    old.id
                }
                Some(old) => {
                    check_allowed(&old, State::Abandoned)?;
                    let why = format!(
                        "the inbox file changed before this attempt finished (size {} -> {} bytes, \
                         mtime {} -> {}); a new attempt took it",
                        old.size, size, old.mtime, mtime
                    );
                    abandon_row(tx, old.id, &why, now_ms)?;
                    insert_claimed(tx, flow, name, size, mtime, holder, until, now_ms)?
                }
            };
            load(tx, id).map(Some)
        })
    }

    /// Extends `holder`'s lease on attempt `id` to `now_ms + lease` (long downloads, big files).
    pub fn renew(
        &self,
        id: i64,
        holder: &str,
        lease: Duration,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        self.write(|tx| {
            let record = load(tx, id)?;
            check_holder(&record, holder)?;
            if record.state.is_terminal() {
                return Err(LedgerError::BadTransition {
                    id,
                    from: record.state,
                    to: record.state,
                });
            }
            tx.execute(
                "UPDATE files SET lease_until = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, lease_end(now_ms, lease), now_ms],
            )?;
            Ok(())
        })
    }

    /// Gives attempt `id` up without changing its state (shutdown mid-file): the next pass
    /// takes it over at once. Releasing a finished attempt does nothing.
    pub fn release(&self, id: i64, holder: &str) -> Result<(), LedgerError> {
        self.write(|tx| {
            let record = load(tx, id)?;
            check_holder(&record, holder)?;
            if !record.state.is_terminal() {
                tx.execute(
                    "UPDATE files SET holder = NULL, lease_until = NULL, updated_at = ?2 WHERE id = ?1",
                    params![id, clock_ms()],
                )?;
            }
            Ok(())
        })
    }

    // ---- the steps of an attempt --------------------------------------------------------

    /// The file is in the spool with this sha256. Numbers the attempt: 1 + the earlier attempts
    /// at the same content in this flow that were archived or failed, linked to the latest of
    /// them. A resumed try of the same content keeps its number.
    pub fn fetched(
        &self,
        id: i64,
        holder: &str,
        sha256: &str,
        now_ms: i64,
    ) -> Result<FileRecord, LedgerError> {
        self.transition(id, holder, State::Fetched, |tx, record| {
            let resumed = record.attempt > 0 && record.sha256.as_deref() == Some(sha256);
            if resumed {
                tx.execute(
                    "UPDATE files SET state = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, State::Fetched, now_ms],
                )?;
                return Ok(());
            }
            let (earlier, previous): (i64, Option<i64>) = tx.query_row(
                "SELECT COUNT(*), MAX(id) FROM files WHERE flow = ?1 AND sha256 = ?2 AND id < ?3 \
                 AND state IN (?4, ?5)",
                params![record.flow, sha256, id, State::Archived, State::Failed],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            tx.execute(
                "UPDATE files SET state = ?2, sha256 = ?3, attempt = ?4, previous_id = ?5, updated_at = ?6 \
                 WHERE id = ?1",
                params![id, State::Fetched, sha256, earlier + 1, previous, now_ms],
            )?;
            Ok(())
        })
    }

    /// Operations of the file are about to be sent to Odoo. A redo starts the batch record
    /// afresh: `batches` tells what the current try did.
    pub fn applying(
        &self,
        id: i64,
        holder: &str,
        total_records: u64,
    ) -> Result<FileRecord, LedgerError> {
        self.transition(id, holder, State::Applying, |tx, _| {
            tx.execute("DELETE FROM batches WHERE file_id = ?1", [id])?;
            tx.execute(
                "UPDATE files SET state = ?2, records_total = ?3, records_applied = NULL, \
                 records_failed = NULL, updated_at = ?4 WHERE id = ?1",
                params![id, State::Applying, int(total_records), clock_ms()],
            )?;
            Ok(())
        })
    }

    /// One Odoo batch of the file completed with `outcome` (e.g. `ok`, `3 refused`).
    pub fn batch_done(
        &self,
        id: i64,
        holder: &str,
        batch_no: u32,
        records: u64,
        outcome: &str,
    ) -> Result<(), LedgerError> {
        self.write(|tx| {
            let record = load(tx, id)?;
            check_holder(&record, holder)?;
            if record.state != State::Applying {
                return Err(LedgerError::BadTransition { id, from: record.state, to: State::Applying });
            }
            let now = clock_ms();
            tx.execute(
                "INSERT INTO batches (file_id, batch_no, records, outcome, at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (file_id, batch_no) DO UPDATE SET records = excluded.records, \
                 outcome = excluded.outcome, at = excluded.at",
                params![id, batch_no, int(records), outcome, now],
            )?;
            tx.execute("UPDATE files SET updated_at = ?2 WHERE id = ?1", params![id, now])?;
            Ok(())
        })
    }

    /// Every Odoo write of the file is done: `applied` records accepted, `failed` refused.
    /// From here a crash only leads to archiving (or quarantining), never to a second apply.
    pub fn applied(
        &self,
        id: i64,
        holder: &str,
        applied: u64,
        failed: u64,
        detail: Option<&str>,
    ) -> Result<FileRecord, LedgerError> {
        self.transition(id, holder, State::Applied, |tx, _| {
            tx.execute(
                "UPDATE files SET state = ?2, records_applied = ?3, records_failed = ?4, detail = ?5, \
                 updated_at = ?6 WHERE id = ?1",
                params![id, State::Applied, int(applied), int(failed), detail, clock_ms()],
            )?;
            Ok(())
        })
    }

    /// The file is about to be moved to `destination` in the archive.
    pub fn archiving(
        &self,
        id: i64,
        holder: &str,
        destination: &str,
    ) -> Result<FileRecord, LedgerError> {
        self.transition(id, holder, State::Archiving, |tx, _| {
            tx.execute(
                "UPDATE files SET state = ?2, destination = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, State::Archiving, destination, clock_ms()],
            )?;
            Ok(())
        })
    }

    /// The file is in the archive: the attempt is over.
    pub fn archived(&self, id: i64, holder: &str) -> Result<FileRecord, LedgerError> {
        self.finish(id, holder, State::Archived)
    }

    /// The file is about to be moved to `destination` in `error/`, because of `reason`.
    pub fn quarantining(
        &self,
        id: i64,
        holder: &str,
        destination: &str,
        reason: &str,
    ) -> Result<FileRecord, LedgerError> {
        self.transition(id, holder, State::Quarantining, |tx, _| {
            tx.execute(
                "UPDATE files SET state = ?2, destination = ?3, detail = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, State::Quarantining, destination, reason, clock_ms()],
            )?;
            Ok(())
        })
    }

    /// The file and its report are in `error/`: the attempt is over.
    pub fn failed(&self, id: i64, holder: &str) -> Result<FileRecord, LedgerError> {
        self.finish(id, holder, State::Failed)
    }

    fn finish(&self, id: i64, holder: &str, to: State) -> Result<FileRecord, LedgerError> {
        // The holder stays on the row: it tells which run finished the attempt.
        self.transition(id, holder, to, |tx, _| {
            tx.execute(
                "UPDATE files SET state = ?2, lease_until = NULL, updated_at = ?3 WHERE id = ?1",
                params![id, to, clock_ms()],
            )?;
            Ok(())
        })
    }

    /// A transient failure (`reason`): the file stays in the inbox, the lease is given up, and
    /// the next pass claims it again, back in the state it was in.
    pub fn waiting(&self, id: i64, holder: &str, reason: &str) -> Result<FileRecord, LedgerError> {
        self.transition(id, holder, State::Waiting, |tx, record| {
            tx.execute(
                "UPDATE files SET state = ?2, waiting_from = ?3, detail = ?4, holder = NULL, \
                 lease_until = NULL, updated_at = ?5 WHERE id = ?1",
                params![id, State::Waiting, record.state, reason, clock_ms()],
            )?;
            Ok(())
        })
    }

    /// Ends attempt `id` because its file changed or vanished (`reason`), whoever holds it.
    pub fn abandon(&self, id: i64, reason: &str) -> Result<FileRecord, LedgerError> {
        self.write(|tx| {
            let record = load(tx, id)?;
            check_allowed(&record, State::Abandoned)?;
            abandon_row(tx, id, reason, clock_ms())?;
            load(tx, id)
        })
    }

    // ---- queries ------------------------------------------------------------------------

    /// The latest attempt at (flow, name).
    pub fn latest(&self, flow: &str, name: &str) -> Result<Option<FileRecord>, LedgerError> {
        self.read(|tx| latest_in(tx, flow, name))
    }

    /// Attempt `id`.
    pub fn get(&self, id: i64) -> Result<FileRecord, LedgerError> {
        self.read(|tx| load(tx, id))
    }

    /// Every attempt at (flow, name), oldest first.
    pub fn history(&self, flow: &str, name: &str) -> Result<Vec<FileRecord>, LedgerError> {
        self.query(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM files WHERE flow = ?1 AND name = ?2 ORDER BY id"
            ),
            params![flow, name],
        )
    }

    /// The earlier attempts at the content of attempt `id` (through `previous_id`, whatever
    /// their file names were), oldest first — for the error report.
    pub fn earlier_attempts(&self, id: i64) -> Result<Vec<FileRecord>, LedgerError> {
        self.read(|tx| {
            let mut chain = Vec::new();
            let mut next = load(tx, id)?.previous_id;
            while let Some(previous) = next {
                let record = load(tx, previous)?;
                next = record.previous_id;
                chain.push(record);
            }
            chain.reverse();
            Ok(chain)
        })
    }

    /// Unfinished attempts of `flow` that nobody holds: their lease expired (a crash) or they
    /// wait after a transient failure. Oldest first. The pass repairs them — e.g. an attempt
    /// left `Archiving` whose file already is at its destination is only marked archived.
    pub fn unfinished(&self, flow: &str, now_ms: i64) -> Result<Vec<FileRecord>, LedgerError> {
        self.query(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM files WHERE flow = ?1 AND state NOT IN (?2, ?3, ?4) \
                 AND (lease_until IS NULL OR lease_until <= ?5) ORDER BY id"
            ),
            params![
                flow,
                State::Archived,
                State::Failed,
                State::Abandoned,
                now_ms
            ],
        )
    }

    /// What each Odoo batch of attempt `id` did: (batch number, records, outcome).
    pub fn batches(&self, id: i64) -> Result<Vec<(u32, u64, String)>, LedgerError> {
        self.read(|tx| {
            let rows = tx
                .prepare("SELECT batch_no, records, outcome FROM batches WHERE file_id = ?1 ORDER BY batch_no")?
                .query_map([id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// `status` for one flow (all zero for a flow the ledger has not seen).
    pub fn counts(&self, flow: &str) -> Result<FlowCounts, LedgerError> {
        let mut all = self.counts_where("WHERE flow = ?1", params![flow])?;
        Ok(all.pop().unwrap_or_else(|| FlowCounts {
            flow: flow.to_string(),
            ..FlowCounts::default()
        }))
    }

    /// `status` for every flow the ledger has seen, by flow name.
    pub fn all_counts(&self) -> Result<Vec<FlowCounts>, LedgerError> {
        self.counts_where("", params![])
    }

    fn counts_where(
        &self,
        filter: &str,
        args: &[&dyn ToSql],
    ) -> Result<Vec<FlowCounts>, LedgerError> {
        let sql = format!(
            "SELECT flow, \
             SUM(CASE WHEN state = 'archived' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN state = 'waiting' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN state IN ('claimed', 'fetched', 'applying', 'applied', 'archiving', \
                 'quarantining') THEN 1 ELSE 0 END), \
             MIN(CASE WHEN state = 'waiting' THEN created_at END), \
             MAX(CASE WHEN state = 'archived' THEN updated_at END), \
             MAX(updated_at) \
             FROM files {filter} GROUP BY flow ORDER BY flow"
        );
        self.read(|tx| {
            let rows = tx
                .prepare(&sql)?
                .query_map(args, |r| {
                    Ok(FlowCounts {
                        flow: r.get(0)?,
                        archived: r.get::<_, i64>(1)? as u64,
                        failed: r.get::<_, i64>(2)? as u64,
                        waiting: r.get::<_, i64>(3)? as u64,
                        in_progress: r.get::<_, i64>(4)? as u64,
                        oldest_waiting_ms: r.get(5)?,
                        last_archived_ms: r.get(6)?,
                        last_activity_ms: r.get(7)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn query(&self, sql: &str, args: &[&dyn ToSql]) -> Result<Vec<FileRecord>, LedgerError> {
        self.read(|tx| {
            let rows = tx
                .prepare(sql)?
                .query_map(args, read_record)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }
}

fn abandon_row(
    tx: &Transaction<'_>,
    id: i64,
    reason: &str,
    now_ms: i64,
) -> Result<(), LedgerError> {
    tx.execute(
        "UPDATE files SET state = ?2, detail = ?3, waiting_from = NULL, lease_until = NULL, updated_at = ?4 \
         WHERE id = ?1",
        params![id, State::Abandoned, reason, now_ms],
    )?;
    Ok(())
}

/// Brings the schema to the latest version, one migration per transaction.
fn migrate(conn: &mut Connection) -> Result<(), LedgerError> {
    let known = MIGRATIONS.len() as i64;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read inside the write lock: two processes opening a fresh file at once must not both
        // run the same migration.
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > known {
            return Err(LedgerError::TooNew {
                found: version,
                known,
            });
        }
        if version == known {
            tx.commit()?;
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[version as usize])?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}
