//! What the ledger answers without changing anything: one attempt or a file's history for
//! `explain` and the error report, the unfinished attempts and live leases a pass repairs or
//! releases, each attempt's Odoo batches, and the per-flow counts `status` shows. Every query
//! reads in one transaction, so it sees one consistent moment.

use rusqlite::types::ToSql;
use rusqlite::{OptionalExtension, params};

use super::schema::{RECORD_COLUMNS, latest_in, load, read_record};
use super::{FileRecord, Ledger, LedgerError, State};

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
    /// The file that waited last and why (what to fix when the flow is stopped).
    pub waiting_because: Option<(String, String)>,
}

impl Ledger {
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
                        waiting_because: None,
                    })
                })?
                .collect::<Result<Vec<FlowCounts>, _>>()?;
            let mut rows = rows;
            for row in rows.iter_mut().filter(|r| r.waiting > 0) {
                row.waiting_because = tx
                    .query_row(
                        "SELECT name, COALESCE(detail, '') FROM files \
                         WHERE flow = ?1 AND state = 'waiting' ORDER BY updated_at DESC LIMIT 1",
                        params![row.flow],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
            }
            Ok(rows)
        })
    }

    /// Every attempt that `sql` selects (its columns: [`RECORD_COLUMNS`]), in its order.
    pub(super) fn query(
        &self,
        sql: &str,
        args: &[&dyn ToSql],
    ) -> Result<Vec<FileRecord>, LedgerError> {
        self.read(|tx| {
            let rows = tx
                .prepare(sql)?
                .query_map(args, read_record)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::tests::{FLOW, MINUTE, T0, archive, claim, fail, ledger};
    use crate::ledger::{FlowCounts, State};

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
}
