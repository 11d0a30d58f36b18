//! The state machine of an attempt and the leases on it. [`State`] names where an attempt
//! stands, [`allowed`] says which moves exist, and every move is one function here: claim,
//! renew and release a lease, then each step of an attempt (fetched, applying, applied,
//! archiving, …). Nothing else writes a file's state. Each function is one `BEGIN IMMEDIATE`
//! transaction that reads the attempt and checks the move — and who holds the file, but for
//! `abandon` — before it writes.

use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Transaction, params};

use super::schema::{int, latest_in, load};
use super::{FileRecord, Ledger, LedgerError};

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

impl Ledger {
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
                        // Another run held it and its lease ran out: that try died (killed
                        // elsewhere, or out of time). A try that ended in `waiting` or was
                        // released holds nothing.
                        let died = old.holder.as_deref().is_some_and(|h| h != holder);
                        tx.execute(
                            "UPDATE files SET holder = ?2, lease_until = ?3, tries = tries + 1, \
                             state = COALESCE(waiting_from, state), waiting_from = NULL, \
                             deaths = deaths + ?5, updated_at = ?4 WHERE id = ?1",
                            params![old.id, holder, until, now_ms, i64::from(died)],
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

    /// Extends `holder`'s lease on attempt `id` to `now_ms + lease`, in the transaction that
    /// checks the claim still holds: `NotHolder` when another run took the file, `LeaseExpired`
    /// when the lease ran out (another run may take it at any moment). Either way the caller
    /// must leave the file alone — nothing more of it may be written to Odoo.
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
            if !super::is_live(record.lease_until, now_ms) {
                return Err(LedgerError::LeaseExpired { id });
            }
            tx.execute(
                "UPDATE files SET lease_until = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, lease_end(now_ms, lease), now_ms],
            )?;
            Ok(())
        })
    }

    /// Frees attempt `id` held by `holder`, a run found dead (killed on this host): the next
    /// claim takes it at once, and the try counts as one that died.
    pub fn release_dead(&self, id: i64, holder: &str) -> Result<(), LedgerError> {
        self.write(|tx| {
            let record = load(tx, id)?;
            check_holder(&record, holder)?;
            if !record.state.is_terminal() {
                tx.execute(
                    "UPDATE files SET holder = NULL, lease_until = NULL, deaths = deaths + 1, \
                     updated_at = ?2 WHERE id = ?1",
                    params![id, clock_ms()],
                )?;
            }
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
                 updated_at = ?6, applied_through = NULL \
                 WHERE id = ?1",
                params![id, State::Fetched, sha256, earlier + 1, previous, now_ms],
            )?;
            Ok(())
        })
    }

    /// Every record of attempt `id` up to `record` is applied and none was refused: a resumed
    /// attempt at the same content starts after it. Only the holder records progress.
    pub fn applied_through(&self, id: i64, holder: &str, record: u64) -> Result<(), LedgerError> {
        self.write(|tx| {
            let current = load(tx, id)?;
            check_holder(&current, holder)?;
            tx.execute(
                "UPDATE files SET applied_through = ?2 WHERE id = ?1",
                params![id, int(record)],
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

fn lease_end(now_ms: i64, lease: Duration) -> i64 {
    now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

/// Transitions that are not told the time take it from the clock: it only stamps `updated_at`.
pub(super) fn clock_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::Consequence;
    use crate::ledger::tests::{FLOW, MINUTE, T0, archive, claim, fail, ledger};

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
}
