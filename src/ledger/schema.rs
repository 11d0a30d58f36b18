//! The ledger's tables and how they change: [`MIGRATIONS`] (the schema version lives in
//! `PRAGMA user_version`), the migration run when a ledger is opened, and the one way a row of
//! `files` reads back as a [`FileRecord`] — kept beside the `CREATE TABLE` it must match.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use super::{FileRecord, LedgerError};

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
    // 2: tries that died (killed or out of time), the stock each set_stock file set, and the
    // stale stock files ops asked to apply anyway.
    "ALTER TABLE files ADD COLUMN deaths INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE stock_set (
        flow TEXT NOT NULL,
        stock_key TEXT NOT NULL,
        file_id INTEGER NOT NULL REFERENCES files (id),
        name TEXT NOT NULL,
        mtime INTEGER NOT NULL,
        PRIMARY KEY (flow, stock_key)
    );
    CREATE TABLE force_stale (
        flow TEXT NOT NULL,
        name TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (flow, name)
    );",
    // 3: how far a file's records were applied without a refusal, so that a resumed attempt
    // skips them.
    "ALTER TABLE files ADD COLUMN applied_through INTEGER;",
    // 4: one row per flow for the daemon: who runs it now (a lease, so a shared ledger can hand
    // a flow between instances), how its last run went, when the next is due, runs skipped.
    "CREATE TABLE flow_runs (
        flow TEXT PRIMARY KEY,
        holder TEXT,
        lease_until INTEGER,
        started_at INTEGER,
        finished_at INTEGER,
        result TEXT,
        detail TEXT,
        last_success INTEGER,
        next_run INTEGER,
        skipped INTEGER NOT NULL DEFAULT 0
    );",
    // 5: export flows: every publication of a record as a file in an outbox, and its state.
    "CREATE TABLE publications (
        id INTEGER PRIMARY KEY,
        flow TEXT NOT NULL,
        record_id INTEGER NOT NULL,
        record_name TEXT NOT NULL,
        file_name TEXT NOT NULL,
        sha256 TEXT,
        size INTEGER,
        state TEXT NOT NULL CHECK (state IN ('publishing', 'published', 'done', 'failed')),
        detail TEXT,
        tries INTEGER NOT NULL DEFAULT 1,
        replay INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX publications_by_record ON publications (flow, record_id, id);
    CREATE INDEX publications_by_name ON publications (flow, record_name, id);
    CREATE INDEX publications_by_file ON publications (flow, file_name);
    CREATE INDEX publications_by_state ON publications (flow, state);",
];

/// Brings the schema to the latest version, one migration per transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), LedgerError> {
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

/// The columns of `files` that make a [`FileRecord`], in [`read_record`]'s order.
pub(super) const RECORD_COLUMNS: &str = "id, flow, name, size, mtime, sha256, attempt, previous_id, tries, \
     state, \
     detail, destination, holder, lease_until, records_total, records_applied, records_failed, \
     created_at, updated_at, deaths, applied_through";

pub(super) fn read_record(row: &Row<'_>) -> rusqlite::Result<FileRecord> {
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
        deaths: row.get(19)?,
        applied_through: row.get::<_, Option<i64>>(20)?.map(|n| n as u64),
    })
}

/// Sizes and counts are stored as SQL integers (signed 64-bit); no file or record count comes
/// near 2^63.
pub(super) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Attempt `id`, read inside the caller's transaction.
pub(super) fn load(tx: &Transaction<'_>, id: i64) -> Result<FileRecord, LedgerError> {
    tx.query_row(
        &format!("SELECT {RECORD_COLUMNS} FROM files WHERE id = ?1"),
        [id],
        read_record,
    )
    .optional()?
    .ok_or(LedgerError::UnknownFile { id })
}

/// The latest attempt at (flow, name), read inside the caller's transaction.
pub(super) fn latest_in(
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

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use crate::error::Consequence;
    use crate::ledger::{Ledger, LedgerError};

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
}
