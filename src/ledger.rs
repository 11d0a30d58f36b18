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
const RECORD_COLUMNS: &str = "id, flow, name, size, mtime, sha256, attempt, previous_id, tries, \
     state, \
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
            &format!(
                "SELECT {RECORD_COLUMNS} FROM files WHERE flow = ?1 AND name = ?2 \
                 ORDER BY id DESC LIMIT 1"
            ),
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

/// A claim as asked: the file as listed now, and the lease wanted on it.
struct Wanted<'a> {
    flow: &'a str,
    name: &'a str,
    size: u64,
    mtime: i64,
    holder: &'a str,
    lease_until: i64,
    now_ms: i64,
}

fn insert_claimed(tx: &Transaction<'_>, w: &Wanted<'_>) -> Result<i64, LedgerError> {
    tx.execute(
        "INSERT INTO files (flow, name, size, mtime, attempt, tries, state, holder, lease_until, \
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, 1, ?5, ?6, ?7, ?8, ?8)",
        params![
            w.flow,
            w.name,
            int(w.size),
            w.mtime,
            State::Claimed,
            w.holder,
            w.lease_until,
            w.now_ms
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
        // it rather than fail. Set by pragma: rusqlite's `busy_timeout()` needs
        // `sqlite3_set_clientdata` (SQLite 3.44), newer than the system library (3.40).
        conn.pragma_update(None, "busy_timeout", 10_000)?;
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
                    "SELECT size, mtime, unchanged_since_ms FROM sightings \
                     WHERE flow = ?1 AND name = ?2",
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
                 ON CONFLICT (flow, name) DO UPDATE SET size = excluded.size, \
                 mtime = excluded.mtime, unchanged_since_ms = excluded.unchanged_since_ms, \
                 last_seen_ms = excluded.last_seen_ms",
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
        let wanted = Wanted {
            flow,
            name,
            size,
            mtime,
            holder,
            lease_until: until,
            now_ms,
        };
        self.write(|tx| {
            let id = match latest_in(tx, flow, name)? {
                Some(old) if !old.state.is_terminal() => {
                    let held_elsewhere = old.holder.as_deref() != Some(holder)
                        && old.lease_until.is_some_and(|t| t > now_ms);
                    if held_elsewhere {
                        return Ok(None);
                    }
                    if old.size == size && old.mtime == mtime {
                        tx.execute(
                            "UPDATE files SET holder = ?2, lease_until = ?3, tries = tries + 1, \
                             state = COALESCE(waiting_from, state), waiting_from = NULL, \
                             updated_at = ?4 WHERE id = ?1",
                            params![old.id, holder, until, now_ms],
                        )?;
                        old.id
                    } else {
                        let why = format!(
                            "the inbox file changed before this attempt finished (size {} -> {} \
                             bytes, mtime {} -> {}); a new attempt took it",
                            old.size, size, old.mtime, mtime
                        );
                        abandon_row(tx, old.id, &why, now_ms)?;
                        insert_claimed(tx, &wanted)?
                    }
                }
                // No attempt yet, or the latest one ended: a new attempt.
                _ => insert_claimed(tx, &wanted)?,
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
                    "UPDATE files SET holder = NULL, lease_until = NULL, updated_at = ?2 \
                     WHERE id = ?1",
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
                "UPDATE files SET state = ?2, sha256 = ?3, attempt = ?4, previous_id = ?5, \
                 updated_at = ?6 \
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
                let (from, to) = (record.state, State::Applying);
                return Err(LedgerError::BadTransition { id, from, to });
            }
            let now = clock_ms();
            tx.execute(
                "INSERT INTO batches (file_id, batch_no, records, outcome, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (file_id, batch_no) DO UPDATE SET records = excluded.records, \
                 outcome = excluded.outcome, at = excluded.at",
                params![id, batch_no, int(records), outcome, now],
            )?;
            tx.execute(
                "UPDATE files SET updated_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
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
                "UPDATE files SET state = ?2, records_applied = ?3, records_failed = ?4, \
                 detail = ?5, \
                 updated_at = ?6 WHERE id = ?1",
                params![
                    id,
                    State::Applied,
                    int(applied),
                    int(failed),
                    detail,
                    clock_ms()
                ],
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
                "UPDATE files SET state = ?2, destination = ?3, detail = ?4, updated_at = ?5 \
                 WHERE id = ?1",
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
            // A move to error/ keeps its report in `detail` for the resumed move to write.
            let detail = if record.state == State::Quarantining {
                record.detail.clone()
            } else {
                Some(reason.to_string())
            };
            tx.execute(
                "UPDATE files SET state = ?2, waiting_from = ?3, detail = ?4, holder = NULL, \
                 lease_until = NULL, updated_at = ?5 WHERE id = ?1",
                params![id, State::Waiting, record.state, detail, clock_ms()],
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

    /// Unfinished attempts whose lease still runs: the holder may be this host's dead process
    /// (after `kill -9`), which the caller can tell and then [`release`](Ledger::release).
    pub fn live_leases(&self, now_ms: i64) -> Result<Vec<FileRecord>, LedgerError> {
        self.query(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM files WHERE state NOT IN (?1, ?2, ?3) \
                 AND lease_until > ?4 ORDER BY id"
            ),
            params![State::Archived, State::Failed, State::Abandoned, now_ms],
        )
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
                .prepare(
                    "SELECT batch_no, records, outcome FROM batches WHERE file_id = ?1 \
                     ORDER BY batch_no",
                )?
                .query_map([id], |r| {
                    Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
                })?
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
        "UPDATE files SET state = ?2, detail = ?3, waiting_from = NULL, lease_until = NULL, \
         updated_at = ?4 \
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

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: &str = "acme-products";
    const MINUTE: Duration = Duration::from_secs(60);
    const T0: i64 = 1_800_000_000_000;

    fn ledger() -> Ledger {
        Ledger::open_in_memory().unwrap()
    }

    fn claim(l: &Ledger, name: &str, size: u64, holder: &str, now: i64) -> Option<FileRecord> {
        l.claim(FLOW, name, size, 1_700_000_000, holder, MINUTE, now)
            .unwrap()
    }

    /// Takes a claimed attempt all the way to `Failed` (content `sha`).
    fn fail(l: &Ledger, id: i64, holder: &str, sha: &str, now: i64) -> FileRecord {
        l.fetched(id, holder, sha, now).unwrap();
        l.quarantining(id, holder, "/out/products/error/p.xml", "invalid")
            .unwrap();
        l.failed(id, holder).unwrap()
    }

    fn archive(l: &Ledger, id: i64, holder: &str, sha: &str, now: i64) -> FileRecord {
        l.fetched(id, holder, sha, now).unwrap();
        l.applying(id, holder, 2).unwrap();
        l.batch_done(id, holder, 1, 2, "ok").unwrap();
        l.applied(id, holder, 2, 0, None).unwrap();
        l.archiving(id, holder, "/out/products/archive/p.xml")
            .unwrap();
        l.archived(id, holder).unwrap()
    }

    #[test]
    fn a_second_holder_cannot_claim_a_live_lease() {
        let l = ledger();
        let first = claim(&l, "p.xml", 10, "run-a", T0).unwrap();
        assert_eq!(
            (first.state, first.tries, first.attempt),
            (State::Claimed, 1, 0)
        );
        assert_eq!(first.lease_until, Some(T0 + 60_000));
        assert_eq!(claim(&l, "p.xml", 10, "run-b", T0 + 59_999), None);
        assert_eq!(l.history(FLOW, "p.xml").unwrap().len(), 1);
    }

    #[test]
    fn an_expired_lease_is_taken_over_with_one_more_try_and_the_state_kept() {
        let l = ledger();
        let id = claim(&l, "p.xml", 10, "run-a", T0).unwrap().id;
        l.fetched(id, "run-a", "aa", T0).unwrap();
        l.applying(id, "run-a", 2).unwrap();
        l.applied(id, "run-a", 2, 0, None).unwrap();
        // run-a dies; its lease runs out.
        let taken = claim(&l, "p.xml", 10, "run-b", T0 + 60_000).unwrap();
        assert_eq!(taken.id, id);
        assert_eq!(taken.tries, 2);
        assert_eq!(taken.state, State::Applied);
        assert_eq!(taken.holder.as_deref(), Some("run-b"));
        assert_eq!(taken.lease_until, Some(T0 + 120_000));
        // Applied is only archived: its Odoo writes are never started again.
        assert!(matches!(
            l.fetched(id, "run-b", "aa", T0),
            Err(LedgerError::BadTransition { .. })
        ));
        assert!(matches!(
            l.applying(id, "run-b", 2),
            Err(LedgerError::BadTransition { .. })
        ));
        l.archiving(id, "run-b", "/archive/p.xml").unwrap();
        assert_eq!(l.archived(id, "run-b").unwrap().state, State::Archived);
        // The dead run, back to life, no longer holds the file.
        assert!(matches!(
            l.renew(id, "run-a", MINUTE, T0),
            Err(LedgerError::NotHolder { .. })
        ));
    }

    #[test]
    fn a_replay_after_failure_is_a_new_attempt_linked_to_the_first() {
        let l = ledger();
        let first = claim(&l, "p.xml", 10, "run-a", T0).unwrap();
        let first = fail(&l, first.id, "run-a", "cafe", T0);
        assert_eq!((first.attempt, first.previous_id), (1, None));
        // Ops moved it back into the inbox unchanged (mv keeps size and mtime).
        let second = claim(&l, "p.xml", 10, "run-b", T0 + 1000).unwrap();
        assert_ne!(second.id, first.id);
        assert_eq!(
            (second.state, second.attempt, second.tries),
            (State::Claimed, 0, 1)
        );
        let second = l.fetched(second.id, "run-b", "cafe", T0 + 1000).unwrap();
        assert_eq!((second.attempt, second.previous_id), (2, Some(first.id)));
        // A resumed try of the same attempt keeps its number.
        l.waiting(second.id, "run-b", "Odoo unreachable").unwrap();
        let again = claim(&l, "p.xml", 10, "run-c", T0 + 2000).unwrap();
        assert_eq!((again.id, again.state), (second.id, State::Fetched));
        let again = l.fetched(again.id, "run-c", "cafe", T0 + 2000).unwrap();
        assert_eq!(
            (again.attempt, again.previous_id, again.tries),
            (2, Some(first.id), 2)
        );
        let second = archive(&l, again.id, "run-c", "cafe", T0 + 2000);
        // The same content under another name is its third attempt; other content starts at 1.
        let third = claim(&l, "p-fixed.xml", 10, "run-d", T0 + 3000).unwrap();
        let third = l.fetched(third.id, "run-d", "cafe", T0 + 3000).unwrap();
        assert_eq!((third.attempt, third.previous_id), (3, Some(second.id)));
        let other = claim(&l, "q.xml", 10, "run-d", T0 + 3000).unwrap();
        assert_eq!(
            l.fetched(other.id, "run-d", "beef", T0 + 3000)
                .unwrap()
                .attempt,
            1
        );
        let chain: Vec<i64> = l
            .earlier_attempts(third.id)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(chain, vec![first.id, second.id]);
        let names: Vec<State> = l
            .history(FLOW, "p.xml")
            .unwrap()
            .iter()
            .map(|r| r.state)
            .collect();
        assert_eq!(names, vec![State::Failed, State::Archived]);
    }

    #[test]
    fn a_changed_file_abandons_the_unfinished_attempt() {
        let l = ledger();
        let old = claim(&l, "p.xml", 10, "run-a", T0).unwrap();
        l.fetched(old.id, "run-a", "aa", T0).unwrap();
        // Still leased by run-a: nobody else touches it, even changed.
        assert_eq!(claim(&l, "p.xml", 12, "run-b", T0 + 1), None);
        let new = claim(&l, "p.xml", 12, "run-b", T0 + 60_000).unwrap();
        assert_ne!(new.id, old.id);
        assert_eq!((new.state, new.size, new.tries), (State::Claimed, 12, 1));
        let old = l.get(old.id).unwrap();
        assert_eq!(old.state, State::Abandoned);
        assert!(
            old.detail.unwrap().contains("size 10 -> 12"),
            "the detail says what changed"
        );
        assert_eq!(old.lease_until, None);
        assert!(matches!(
            l.fetched(old.id, "run-a", "aa", T0),
            Err(LedgerError::BadTransition { .. })
        ));
        // A vanished file is abandoned by whoever notices.
        assert_eq!(
            l.abandon(new.id, "gone from the inbox").unwrap().state,
            State::Abandoned
        );
        assert!(matches!(
            l.abandon(new.id, "again"),
            Err(LedgerError::BadTransition { .. })
        ));
    }

    #[test]
    fn bad_transitions_are_refused() {
        let l = ledger();
        let id = claim(&l, "p.xml", 10, "run-a", T0).unwrap().id;
        let refused = |r: Result<FileRecord, LedgerError>, from: State, to: State| match r {
            Err(LedgerError::BadTransition {
                id: i,
                from: f,
                to: t,
            }) => assert_eq!((i, f, t), (id, from, to)),
            other => panic!("expected {from:?} -> {to:?} refused, got {other:?}"),
        };
        refused(l.applying(id, "run-a", 1), State::Claimed, State::Applying);
        refused(
            l.applied(id, "run-a", 1, 0, None),
            State::Claimed,
            State::Applied,
        );
        refused(
            l.archiving(id, "run-a", "/a"),
            State::Claimed,
            State::Archiving,
        );
        refused(l.failed(id, "run-a"), State::Claimed, State::Failed);
        l.fetched(id, "run-a", "aa", T0).unwrap();
        refused(l.archived(id, "run-a"), State::Fetched, State::Archived);
        assert!(matches!(
            l.batch_done(id, "run-a", 1, 1, "ok"),
            Err(LedgerError::BadTransition { .. })
        ));
        l.applying(id, "run-a", 1).unwrap();
        l.applied(id, "run-a", 1, 0, None).unwrap();
        refused(
            l.fetched(id, "run-a", "aa", T0),
            State::Applied,
            State::Fetched,
        );
        l.archiving(id, "run-a", "/a").unwrap();
        l.archived(id, "run-a").unwrap();
        refused(
            l.quarantining(id, "run-a", "/e", "late"),
            State::Archived,
            State::Quarantining,
        );
        refused(
            l.waiting(id, "run-a", "late"),
            State::Archived,
            State::Waiting,
        );
        assert!(matches!(
            l.renew(id, "run-a", MINUTE, T0),
            Err(LedgerError::BadTransition { .. })
        ));
        // Nothing leaves a terminal state; nothing enters Claimed but a claim.
        for from in State::ALL {
            for to in State::ALL {
                if from.is_terminal() || to == State::Claimed {
                    assert!(!allowed(from, to), "{from} -> {to}");
                }
            }
        }
        assert!(matches!(
            l.get(9999),
            Err(LedgerError::UnknownFile { id: 9999 })
        ));
    }

    #[test]
    fn only_the_holder_moves_a_file() {
        let l = ledger();
        let id = claim(&l, "p.xml", 10, "run-a", T0).unwrap().id;
        match l.fetched(id, "run-b", "aa", T0) {
            Err(LedgerError::NotHolder { id: i, holder }) => {
                assert_eq!((i, holder.as_str()), (id, "run-a"))
            }
            other => panic!("expected NotHolder, got {other:?}"),
        }
        assert!(matches!(
            l.release(id, "run-b"),
            Err(LedgerError::NotHolder { .. })
        ));
        assert_eq!(l.get(id).unwrap().state, State::Claimed);
        l.renew(id, "run-a", Duration::from_secs(600), T0 + 10)
            .unwrap();
        assert_eq!(l.get(id).unwrap().lease_until, Some(T0 + 600_010));
        // Released: the state stays, nobody holds it, the next claim takes it at once.
        l.release(id, "run-a").unwrap();
        let released = l.get(id).unwrap();
        assert_eq!(
            (released.state, released.holder, released.lease_until),
            (State::Claimed, None, None)
        );
        assert!(matches!(
            l.fetched(id, "run-a", "aa", T0),
            Err(LedgerError::NotHolder { .. })
        ));
        let taken = claim(&l, "p.xml", 10, "run-b", T0 + 20).unwrap();
        assert_eq!((taken.id, taken.tries), (id, 2));
        assert_eq!(
            LedgerError::NotHolder {
                id,
                holder: "x".into()
            }
            .consequence(),
            Consequence::Retry
        );
        let bad = LedgerError::BadTransition {
            id,
            from: State::Archived,
            to: State::Fetched,
        };
        assert_eq!(bad.consequence(), Consequence::Stop);
    }

    #[test]
    fn waiting_gives_up_the_lease_and_the_next_claim_resumes_where_it_stood() {
        let l = ledger();
        let id = claim(&l, "p.xml", 10, "run-a", T0).unwrap().id;
        l.fetched(id, "run-a", "aa", T0).unwrap();
        l.applying(id, "run-a", 4).unwrap();
        l.applied(id, "run-a", 4, 0, None).unwrap();
        let waiting = l.waiting(id, "run-a", "SFTP server unreachable").unwrap();
        assert_eq!(
            (waiting.state, waiting.holder, waiting.lease_until),
            (State::Waiting, None, None)
        );
        assert_eq!(waiting.detail.as_deref(), Some("SFTP server unreachable"));
        let counts = l.counts(FLOW).unwrap();
        assert_eq!(
            (counts.waiting, counts.in_progress, counts.oldest_waiting_ms),
            (1, 0, Some(T0))
        );
        // The same run may claim it again at once: no lease is held.
        let resumed = claim(&l, "p.xml", 10, "run-a", T0 + 5).unwrap();
        assert_eq!(
            (resumed.id, resumed.state, resumed.tries),
            (id, State::Applied, 2)
        );
        assert_eq!(resumed.records_applied, Some(4));
    }

    #[test]
    fn unfinished_lists_expired_and_waiting_attempts_only() {
        let l = ledger();
        let crashed = claim(&l, "a.xml", 1, "run-a", T0).unwrap().id;
        l.fetched(crashed, "run-a", "aa", T0).unwrap();
        l.applying(crashed, "run-a", 1).unwrap();
        l.applied(crashed, "run-a", 1, 0, None).unwrap();
        l.archiving(crashed, "run-a", "/archive/a.xml").unwrap();
        let waits = claim(&l, "b.xml", 1, "run-a", T0).unwrap().id;
        l.waiting(waits, "run-a", "Odoo 503").unwrap();
        let busy = claim(&l, "c.xml", 1, "run-b", T0 + 30_000).unwrap().id;
        let done = claim(&l, "d.xml", 1, "run-a", T0).unwrap().id;
        archive(&l, done, "run-a", "dd", T0);
        let ids = |now| {
            l.unfinished(FLOW, now)
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(T0 + 1), vec![waits]);
        assert_eq!(ids(T0 + 60_000), vec![crashed, waits]);
        assert_eq!(ids(T0 + 90_000), vec![crashed, waits, busy]);
        let repair = l.unfinished(FLOW, T0 + 60_000).unwrap().remove(0);
        assert_eq!(
            (repair.state, repair.destination.as_deref()),
            (State::Archiving, Some("/archive/a.xml"))
        );
        assert!(l.unfinished("other-flow", T0 + 90_000).unwrap().is_empty());
    }

    #[test]
    fn batches_record_what_each_odoo_batch_did_in_the_current_try() {
        let l = ledger();
        let id = claim(&l, "p.xml", 10, "run-a", T0).unwrap().id;
        l.fetched(id, "run-a", "aa", T0).unwrap();
        l.applying(id, "run-a", 450).unwrap();
        l.batch_done(id, "run-a", 1, 200, "ok").unwrap();
        l.batch_done(id, "run-a", 2, 200, "timeout, halved")
            .unwrap();
        l.batch_done(id, "run-a", 2, 100, "ok").unwrap();
        assert_eq!(
            l.batches(id).unwrap(),
            vec![(1, 200, "ok".to_string()), (2, 100, "ok".to_string())]
        );
        // A redo after a crash starts the batch record afresh.
        let id2 = claim(&l, "p.xml", 10, "run-b", T0 + 60_000).unwrap().id;
        assert_eq!(id2, id);
        l.applying(id, "run-b", 450).unwrap();
        assert!(l.batches(id).unwrap().is_empty());
        l.batch_done(id, "run-b", 1, 450, "ok").unwrap();
        let applied = l
            .applied(id, "run-b", 447, 3, Some("3 records refused"))
            .unwrap();
        assert_eq!(
            (
                applied.records_total,
                applied.records_applied,
                applied.records_failed
            ),
            (Some(450), Some(447), Some(3))
        );
        assert_eq!(applied.detail.as_deref(), Some("3 records refused"));
        l.quarantining(id, "run-b", "/error/p.xml", "3 records refused by Odoo")
            .unwrap();
        assert_eq!(l.failed(id, "run-b").unwrap().lease_until, None);
    }

    #[test]
    fn counts_per_flow_for_status() {
        let l = ledger();
        let a = claim(&l, "a.xml", 1, "run", T0).unwrap().id;
        archive(&l, a, "run", "aa", T0);
        let b = claim(&l, "b.xml", 1, "run", T0).unwrap().id;
        fail(&l, b, "run", "bb", T0);
        let c = claim(&l, "c.xml", 1, "run", T0 + 5).unwrap().id;
        l.waiting(c, "run", "Odoo 503").unwrap();
        claim(&l, "d.xml", 1, "run", T0).unwrap();
        l.claim("acme-stock", "s.xml", 1, 1, "run", MINUTE, T0)
            .unwrap()
            .unwrap();
        let products = l.counts(FLOW).unwrap();
        assert_eq!(
            (
                products.archived,
                products.failed,
                products.waiting,
                products.in_progress
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(products.oldest_waiting_ms, Some(T0 + 5));
        assert!(products.last_archived_ms.is_some() && products.last_activity_ms.is_some());
        let all = l.all_counts().unwrap();
        let flows: Vec<&str> = all.iter().map(|c| c.flow.as_str()).collect();
        assert_eq!(flows, vec!["acme-products", "acme-stock"]);
        assert_eq!(all[1].in_progress, 1);
        assert_eq!(
            l.counts("never-ran").unwrap(),
            FlowCounts {
                flow: "never-ran".into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_file_is_unchanged_since_its_size_and_mtime_last_changed() {
        let l = ledger();
        assert_eq!(l.observe(FLOW, "p.xml", 10, 100, T0).unwrap(), T0);
        assert_eq!(l.observe(FLOW, "p.xml", 10, 100, T0 + 5000).unwrap(), T0);
        assert_eq!(
            l.observe(FLOW, "p.xml", 20, 100, T0 + 6000).unwrap(),
            T0 + 6000
        );
        assert_eq!(
            l.observe(FLOW, "p.xml", 20, 101, T0 + 7000).unwrap(),
            T0 + 7000
        );
        assert_eq!(
            l.observe(FLOW, "p.xml", 20, 101, T0 + 9000).unwrap(),
            T0 + 7000
        );
        assert_eq!(
            l.observe(FLOW, "q.xml", 5, 100, T0 + 9000).unwrap(),
            T0 + 9000
        );
        assert_eq!(
            l.observe("other", "p.xml", 5, 100, T0 + 9000).unwrap(),
            T0 + 9000
        );
        let seen = l.sighting(FLOW, "p.xml").unwrap().unwrap();
        assert_eq!(
            seen,
            Sighting {
                size: 20,
                mtime: 101,
                unchanged_since_ms: T0 + 7000,
                last_seen_ms: T0 + 9000
            }
        );
        // p.xml left the inbox; when it comes back it settles afresh.
        l.forget_sightings_except(FLOW, &["q.xml".to_string()])
            .unwrap();
        assert_eq!(l.sighting(FLOW, "p.xml").unwrap(), None);
        assert!(l.sighting(FLOW, "q.xml").unwrap().is_some());
        assert!(
            l.sighting("other", "p.xml").unwrap().is_some(),
            "other flows are left alone"
        );
        assert_eq!(
            l.observe(FLOW, "p.xml", 20, 101, T0 + 10_000).unwrap(),
            T0 + 10_000
        );
    }

    #[test]
    fn the_state_is_there_after_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edi-bridge.db");
        let id = {
            let l = Ledger::open(&path).unwrap();
            let id = claim(&l, "p.xml", 10, "run-a", T0).unwrap().id;
            l.fetched(id, "run-a", "aa", T0).unwrap();
            l.applying(id, "run-a", 3).unwrap();
            l.batch_done(id, "run-a", 1, 3, "ok").unwrap();
            l.applied(id, "run-a", 3, 0, None).unwrap();
            l.observe(FLOW, "p.xml", 10, 1, T0).unwrap();
            id
        };
        let l = Ledger::open(&path).unwrap();
        let record = l.latest(FLOW, "p.xml").unwrap().unwrap();
        assert_eq!(
            (record.id, record.state, record.sha256.as_deref()),
            (id, State::Applied, Some("aa"))
        );
        assert_eq!(l.batches(id).unwrap().len(), 1);
        assert_eq!(l.observe(FLOW, "p.xml", 10, 1, T0 + 10_000).unwrap(), T0);
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!((mode.as_str(), version), ("wal", MIGRATIONS.len() as i64));
    }

    #[test]
    fn a_ledger_newer_than_this_program_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edi-bridge.db");
        drop(Ledger::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        match Ledger::open(&path) {
            Err(e @ LedgerError::TooNew { found: 99, .. }) => {
                assert_eq!(e.consequence(), Consequence::Stop)
            }
            Err(e) => panic!("expected TooNew, got {e}"),
            Ok(_) => panic!("expected TooNew, the ledger opened"),
        }
    }

    #[test]
    fn two_processes_racing_for_a_file_never_both_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edi-bridge.db");
        drop(Ledger::open(&path).unwrap());
        let names: Vec<String> = (0..40).map(|i| format!("f{i}.xml")).collect();
        let race = |holder: &'static str| {
            let (path, names) = (path.clone(), names.clone());
            std::thread::spawn(move || {
                // Its own connection, as a second instance on the machine would have.
                let l = Ledger::open(&path).unwrap();
                names
                    .iter()
                    .filter(|n| claim(&l, n, 1, holder, T0).is_some())
                    .count()
            })
        };
        let (a, b) = (race("run-a"), race("run-b"));
        let won = a.join().unwrap() + b.join().unwrap();
        assert_eq!(won, names.len());
        let l = Ledger::open(&path).unwrap();
        for name in &names {
            assert_eq!(
                l.history(FLOW, name).unwrap().len(),
                1,
                "{name} claimed once"
            );
        }
    }

    // ---- kill -9 -----------------------------------------------------------------------

    /// Set in the child process the kill test spawns: the path of the ledger to churn on.
    const CHURN_ENV: &str = "EDI_BRIDGE_TEST_CHURN_LEDGER";
    const CHURN_FLOW: &str = "churn";

    /// Takes files through the ledger as passes would — resuming whatever state it finds,
    /// sometimes failing, waiting, or seeing a file change — for `rounds` claims (or forever).
    fn churn(l: &Ledger, holder: &str, start: u64, rounds: Option<u64>) {
        let mut i = start;
        while rounds.is_none_or(|r| i < start + r) {
            i += 1;
            let name = format!("f{}.xml", i % 5);
            let size = if i.is_multiple_of(13) { 200 } else { 100 };
            // A lease this short lets the next process take over what this one leaves.
            let lease = Duration::from_millis(1);
            let Some(mut record) = l
                .claim(CHURN_FLOW, &name, size, 1, holder, lease, clock_ms())
                .unwrap()
            else {
                continue;
            };
            let id = record.id;
            let sha = format!("{name}:{size}");
            while !record.state.is_terminal() && record.state != State::Waiting {
                record = match record.state {
                    State::Claimed => l.fetched(id, holder, &sha, clock_ms()),
                    State::Fetched if i.is_multiple_of(11) => {
                        l.waiting(id, holder, "Odoo unreachable")
                    }
                    State::Fetched => l.applying(id, holder, 3),
                    State::Applying => {
                        for batch in 1..=3 {
                            l.batch_done(id, holder, batch, 1, "ok").unwrap();
                        }
                        if i.is_multiple_of(4) {
                            l.applied(id, holder, 2, 1, Some("1 refused"))
                        } else {
                            l.applied(id, holder, 3, 0, None)
                        }
                    }
                    State::Applied if record.records_failed == Some(1) => {
                        l.quarantining(id, holder, "/error/f.xml", "1 record refused")
                    }
                    State::Applied => l.archiving(id, holder, "/archive/f.xml"),
                    State::Archiving => l.archived(id, holder),
                    State::Quarantining => l.failed(id, holder),
                    other => unreachable!("{other} is not resumed"),
                }
                .unwrap();
            }
        }
    }

    /// The invariants every ledger file must keep, whatever moment a process died at.
    fn assert_consistent(path: &Path) {
        let conn = Connection::open(path).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let l = Ledger::open(path).unwrap();
        let rows = l
            .query(
                &format!("SELECT {RECORD_COLUMNS} FROM files ORDER BY id"),
                params![],
            )
            .expect("every row reads back with a known state");
        assert!(!rows.is_empty());
        for r in &rows {
            let later = rows.iter().filter(|o| o.name == r.name && o.id > r.id);
            if !r.state.is_terminal() {
                assert_eq!(
                    later.count(),
                    0,
                    "only the latest attempt at {} is unfinished: {r:?}",
                    r.name
                );
            } else {
                assert_eq!(r.lease_until, None, "{r:?}");
            }
            if !matches!(r.state, State::Claimed | State::Abandoned | State::Waiting) {
                assert!(r.sha256.is_some() && r.attempt >= 1, "{r:?}");
            }
            if matches!(r.state, State::Applied | State::Archiving | State::Archived) {
                assert!(r.records_applied.is_some(), "{r:?}");
            }
            if matches!(
                r.state,
                State::Archiving | State::Archived | State::Quarantining | State::Failed
            ) {
                assert!(r.destination.is_some(), "{r:?}");
            }
            if let Some(previous) = r.previous_id {
                let p = rows.iter().find(|o| o.id == previous).unwrap();
                assert!(p.id < r.id && p.sha256 == r.sha256, "{r:?} links to {p:?}");
                assert!(matches!(p.state, State::Archived | State::Failed), "{p:?}");
            }
            assert!(l.batches(r.id).unwrap().len() <= 3);
        }
        let stray: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM files WHERE waiting_from IS NOT NULL AND state <> 'waiting'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stray, 0);
    }

    /// Also the body of the child process the kill test spawns (then it never ends by itself).
    #[test]
    fn churn_keeps_the_ledger_consistent() {
        if let Ok(path) = std::env::var(CHURN_ENV) {
            let l = Ledger::open(Path::new(&path)).unwrap();
            let pid = std::process::id();
            churn(&l, &format!("pid-{pid}"), u64::from(pid % 1000), None);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edi-bridge.db");
        let l = Ledger::open(&path).unwrap();
        churn(&l, "run", 0, Some(300));
        assert_consistent(&path);
        let counts = l.counts(CHURN_FLOW).unwrap();
        assert!(counts.archived > 0 && counts.failed > 0 && counts.waiting + counts.archived > 0);
        let replays: i64 = l
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM files WHERE attempt > 1 AND previous_id IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            replays > 0,
            "the same content came back and was numbered as a new attempt"
        );
    }

    /// The churning child; killed when dropped, so a failing test leaves no process behind.
    struct Victim(std::process::Child);

    impl Drop for Victim {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn kill_9_at_any_moment_leaves_the_ledger_consistent() {
        use std::os::unix::process::ExitStatusExt;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edi-bridge.db");
        drop(Ledger::open(&path).unwrap());
        let rows = || -> i64 {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "busy_timeout", 5000).unwrap();
            conn.query_row(
                "SELECT COUNT(*) + COALESCE(SUM(tries), 0) FROM files",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        for round in 0..4u64 {
            let before = rows();
            let mut child = Victim(
                std::process::Command::new(std::env::current_exe().unwrap())
                    .args([
                        "--exact",
                        "ledger::tests::churn_keeps_the_ledger_consistent",
                        "--nocapture",
                    ])
                    .env(CHURN_ENV, &path)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
            // Let it get well into its work, then kill it at a different moment each round.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while rows() < before + 40 {
                if let Some(status) = child.0.try_wait().unwrap() {
                    let mut err = String::new();
                    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err)
                        .unwrap();
                    panic!("the churning child ended by itself ({status}): {err}");
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the churning child made no progress"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(3 * round));
            child.0.kill().unwrap(); // SIGKILL
            let status = child.0.wait().unwrap();
            assert_eq!(
                status.signal(),
                Some(9),
                "the child was killed, not finished"
            );
            assert_consistent(&path);
        }
        // The next run takes over what the dead ones left and finishes every file.
        let l = Ledger::open(&path).unwrap();
        std::thread::sleep(Duration::from_millis(2)); // every lease the children took has run out
        churn(&l, "after", 0, Some(25));
        assert_consistent(&path);
        for r in l.unfinished(CHURN_FLOW, clock_ms()).unwrap() {
            assert_eq!(
                r.state,
                State::Waiting,
                "left unfinished only on purpose: {r:?}"
            );
        }
    }
}
