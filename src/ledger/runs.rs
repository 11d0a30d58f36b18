//! The daemon's flow runs: one row per flow in `flow_runs`. A run of a flow holds the row's
//! lease (holder `host:pid:start`, as for files) so that no two runs of one flow overlap — in
//! one process, between processes sharing the ledger file, and later between instances sharing
//! a ledger. The row also keeps how the last run went and when the next is due, for `status`
//! and `/status`, which read it while the daemon runs.

use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use super::{Ledger, LedgerError, holder_is_dead, is_live};

/// What `status` shows of a flow's runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowRun {
    pub flow: String,
    /// The run going on now, if any (its holder).
    pub running: Option<String>,
    /// When (unix ms) the last run started and finished.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// `ok`, `failed` (a file went to error/ or work was left waiting) or `stopped` (a flow
    /// or partner could not run).
    pub result: Option<String>,
    /// The first problem of the last run, when it did not go well.
    pub detail: Option<String>,
    /// When (unix ms) a run last ended `ok`.
    pub last_success: Option<i64>,
    /// When (unix ms) the next scheduled run is due.
    pub next_run: Option<i64>,
    /// Scheduled runs skipped because the previous run was still going.
    pub skipped: u64,
}

/// A failed file still in error/: (name, where it went, first line of its report).
pub type FailedFile = (String, Option<String>, Option<String>);

/// Whether a flow run may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunTaken {
    /// This holder runs the flow now.
    Taken,
    /// This holder already ran the flow (the daemon's run, inside which a pass of an export
    /// flow asks again): the lease is extended; whoever took it gives it back.
    Mine,
    /// Another run holds the flow (this holder name).
    Held(String),
}

fn lease_end(now_ms: i64, lease: Duration) -> i64 {
    now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

impl Ledger {
    /// Takes the run lock of `flow` for `holder` until `now_ms + lease`: refused while another
    /// holder's lease is live, unless that holder is a dead process of this host.
    pub fn take_flow_run(
        &self,
        flow: &str,
        holder: &str,
        lease: Duration,
        now_ms: i64,
    ) -> Result<RunTaken, LedgerError> {
        self.write(|tx| {
            let current: Option<(Option<String>, Option<i64>)> = tx
                .query_row(
                    "SELECT holder, lease_until FROM flow_runs WHERE flow = ?1",
                    [flow],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let mine = match &current {
                Some((Some(other), until)) if is_live(*until, now_ms) => {
                    if other != holder && !holder_is_dead(other) {
                        return Ok(RunTaken::Held(other.clone()));
                    }
                    other == holder
                }
                _ => false,
            };
            if mine {
                tx.execute(
                    "UPDATE flow_runs SET lease_until = ?3 WHERE flow = ?1 AND holder = ?2",
                    params![flow, holder, lease_end(now_ms, lease)],
                )?;
                return Ok(RunTaken::Mine);
            }
            tx.execute(
                "INSERT INTO flow_runs (flow, holder, lease_until, started_at) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (flow) DO UPDATE SET holder = ?2, lease_until = ?3, started_at = ?4",
                params![flow, holder, lease_end(now_ms, lease), now_ms],
            )?;
            Ok(RunTaken::Taken)
        })
    }

    /// Extends `holder`'s run lock of `flow`; false when it no longer holds it.
    pub fn renew_flow_run(
        &self,
        flow: &str,
        holder: &str,
        lease: Duration,
        now_ms: i64,
    ) -> Result<bool, LedgerError> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE flow_runs SET lease_until = ?3 WHERE flow = ?1 AND holder = ?2",
                params![flow, holder, lease_end(now_ms, lease)],
            )?;
            Ok(n == 1)
        })
    }

    /// Ends `holder`'s run of `flow` with its result (`ok`, `failed`, `stopped`) and the first
    /// problem; frees the lock.
    pub fn finish_flow_run(
        &self,
        flow: &str,
        holder: &str,
        result: &str,
        detail: Option<&str>,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE flow_runs SET holder = NULL, lease_until = NULL, finished_at = ?3, \
                 result = ?4, detail = ?5, \
                 last_success = CASE WHEN ?4 = 'ok' THEN ?3 ELSE last_success END \
                 WHERE flow = ?1 AND holder = ?2",
                params![flow, holder, now_ms, result, detail],
            )?;
            Ok(())
        })
    }

    /// Gives back `holder`'s run lock of `flow` without recording a result (a pass outside the
    /// daemon: `run --once`, or an export a webhook asked for).
    pub fn release_flow_run(&self, flow: &str, holder: &str) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE flow_runs SET holder = NULL, lease_until = NULL \
                 WHERE flow = ?1 AND holder = ?2",
                params![flow, holder],
            )?;
            Ok(())
        })
    }

    /// Records when the next scheduled run of `flow` is due (`None`: none scheduled).
    pub fn set_next_run(&self, flow: &str, next_ms: Option<i64>) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO flow_runs (flow, next_run) VALUES (?1, ?2) \
                 ON CONFLICT (flow) DO UPDATE SET next_run = ?2",
                params![flow, next_ms],
            )?;
            Ok(())
        })
    }

    /// Counts `n` scheduled runs of `flow` skipped because a run was still going.
    pub fn count_skipped(&self, flow: &str, n: u64) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO flow_runs (flow, skipped) VALUES (?1, ?2) \
                 ON CONFLICT (flow) DO UPDATE SET skipped = skipped + ?2",
                params![flow, i64::try_from(n).unwrap_or(i64::MAX)],
            )?;
            Ok(())
        })
    }

    /// The runs of `flow` as `status` shows them (all empty for a flow never run).
    pub fn flow_run(&self, flow: &str, now_ms: i64) -> Result<FlowRun, LedgerError> {
        self.read(|tx| {
            let row = tx
                .query_row(
                    "SELECT holder, lease_until, started_at, finished_at, result, detail, \
                     last_success, next_run, skipped FROM flow_runs WHERE flow = ?1",
                    [flow],
                    |r| {
                        let holder: Option<String> = r.get(0)?;
                        let until: Option<i64> = r.get(1)?;
                        Ok(FlowRun {
                            flow: flow.to_string(),
                            running: holder.filter(|_| is_live(until, now_ms)),
                            started_at: r.get(2)?,
                            finished_at: r.get(3)?,
                            result: r.get(4)?,
                            detail: r.get(5)?,
                            last_success: r.get(6)?,
                            next_run: r.get(7)?,
                            skipped: r.get::<_, i64>(8)? as u64,
                        })
                    },
                )
                .optional()?;
            Ok(row.unwrap_or_else(|| FlowRun {
                flow: flow.to_string(),
                ..FlowRun::default()
            }))
        })
    }

    /// Failed files of `flow` still in error/ (latest attempt failed), newest first, at most
    /// `limit`: (name, where it went, first line of its report).
    pub fn failed_files(&self, flow: &str, limit: usize) -> Result<Vec<FailedFile>, LedgerError> {
        self.read(|tx| {
            let rows = tx
                .prepare(
                    "SELECT f.name, f.destination, f.detail FROM files f \
                     WHERE f.flow = ?1 AND f.state = 'failed' AND f.id = \
                     (SELECT MAX(id) FROM files g WHERE g.flow = f.flow AND g.name = f.name) \
                     ORDER BY f.updated_at DESC LIMIT ?2",
                )?
                .query_map(params![flow, limit as i64], |r| {
                    let detail: Option<String> = r.get(2)?;
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        detail.and_then(|d| {
                            d.lines().find(|l| !l.trim().is_empty()).map(str::to_string)
                        }),
                    ))
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// Rows in the ledger's tables, and the database file's size in bytes (pages × page size).
    pub fn size(&self) -> Result<(u64, u64), LedgerError> {
        self.read(|tx| {
            let rows: i64 = tx.query_row(
                "SELECT (SELECT COUNT(*) FROM files) + (SELECT COUNT(*) FROM sightings)",
                [],
                |r| r.get(0),
            )?;
            let pages: i64 = tx.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let page: i64 = tx.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            Ok((rows as u64, (pages * page) as u64))
        })
    }

    /// The oldest first sighting (unix ms) among files of `flow` seen in its inbox and not
    /// finished: what waits longest to be taken.
    pub fn oldest_sighting(&self, flow: &str) -> Result<Option<i64>, LedgerError> {
        self.read(|tx| {
            Ok(tx.query_row(
                "SELECT MIN(s.unchanged_since_ms) FROM sightings s WHERE s.flow = ?1 AND NOT EXISTS \
                 (SELECT 1 FROM files f WHERE f.flow = s.flow AND f.name = s.name \
                  AND f.size = s.size AND f.mtime = s.mtime \
                  AND f.state IN ('archived', 'failed'))",
                [flow],
                |r| r.get(0),
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::RunTaken;
    use crate::ledger::Ledger;

    #[test]
    fn one_run_of_a_flow_at_a_time_and_its_result_kept() {
        let ledger = Ledger::open_in_memory().unwrap();
        let lease = Duration::from_secs(60);
        let me = crate::ledger::holder_name();
        let other = "elsewhere:1:1";
        assert_eq!(
            ledger.take_flow_run("f", other, lease, 1_000).unwrap(),
            RunTaken::Taken
        );
        assert_eq!(
            ledger.take_flow_run("f", &me, lease, 2_000).unwrap(),
            RunTaken::Held(other.into())
        );
        // Its lease ran out: taken over.
        assert_eq!(
            ledger.take_flow_run("f", &me, lease, 62_000).unwrap(),
            RunTaken::Taken
        );
        assert!(!ledger.renew_flow_run("f", other, lease, 63_000).unwrap());
        assert!(ledger.renew_flow_run("f", &me, lease, 63_000).unwrap());
        ledger.count_skipped("f", 2).unwrap();
        ledger.set_next_run("f", Some(99_000)).unwrap();
        let run = ledger.flow_run("f", 64_000).unwrap();
        assert_eq!(run.running.as_deref(), Some(me.as_str()));
        assert_eq!(run.skipped, 2);
        ledger
            .finish_flow_run("f", &me, "ok", None, 65_000)
            .unwrap();
        let run = ledger.flow_run("f", 66_000).unwrap();
        assert_eq!(run.running, None);
        assert_eq!(run.result.as_deref(), Some("ok"));
        assert_eq!(run.last_success, Some(65_000));
        assert_eq!(run.next_run, Some(99_000));
        ledger
            .finish_flow_run("f", &me, "failed", Some("x"), 70_000)
            .unwrap();
        let run = ledger.flow_run("f", 71_000).unwrap();
        assert_eq!(run.finished_at, Some(65_000), "not the holder any more");
        assert_eq!(ledger.flow_run("never", 0).unwrap().result, None);
    }

    #[test]
    fn a_holder_asking_again_keeps_the_run_and_a_release_records_no_result() {
        let ledger = Ledger::open_in_memory().unwrap();
        let lease = Duration::from_secs(60);
        // Holders of another host: never judged dead from here.
        let me = "warehouse-1:10:1".to_string();
        // The daemon's run of an export flow, then the export pass inside it asking again.
        assert_eq!(
            ledger.take_flow_run("orders", &me, lease, 1_000).unwrap(),
            RunTaken::Taken
        );
        ledger
            .finish_flow_run("orders", &me, "ok", None, 2_000)
            .unwrap();
        assert_eq!(
            ledger.take_flow_run("orders", &me, lease, 3_000).unwrap(),
            RunTaken::Taken
        );
        assert_eq!(
            ledger.take_flow_run("orders", &me, lease, 4_000).unwrap(),
            RunTaken::Mine
        );
        assert_eq!(
            ledger
                .take_flow_run("orders", "elsewhere:1:1", lease, 5_000)
                .unwrap(),
            RunTaken::Held(me.clone()),
            "asking again extended the lease: 4 s + 60 s"
        );
        // A pass outside the daemon gives the lock back: the last run's result stays.
        ledger.release_flow_run("orders", &me).unwrap();
        let run = ledger.flow_run("orders", 6_000).unwrap();
        assert_eq!(run.running, None);
        assert_eq!(run.result.as_deref(), Some("ok"));
        assert_eq!(run.finished_at, Some(2_000));
        assert_eq!(
            ledger
                .take_flow_run("orders", "elsewhere:1:1", lease, 7_000)
                .unwrap(),
            RunTaken::Taken
        );
    }
}
