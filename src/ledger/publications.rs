//! Export flows: every publication of a record as a file in an outbox. One row per
//! publication; its state says how far it got, so that a crash between publishing a file and
//! marking the record in Odoo is finished on the next pass without publishing twice, and a
//! record whose document was refused says why.
//!
//! A publication goes `publishing` (the document is rendered, valid and on its way under
//! `file_name`) → `published` (the file is in the outbox under its final name) → `done` (the
//! record is marked in Odoo, or the flow marks nothing); or it ends `failed` (the document
//! could not be rendered or is invalid: nothing was published). A transient failure while
//! publishing leaves it `publishing`, with the reason in `detail`.
//!
//! Which run is exporting a flow now is the flow's run lock in `flow_runs` (see `runs`), as for
//! every flow.

use rusqlite::{OptionalExtension, Row, params};

use super::schema::int;
use super::{Ledger, LedgerError};

/// How far a publication got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubState {
    Publishing,
    Published,
    Done,
    Failed,
}

impl PubState {
    fn as_str(self) -> &'static str {
        match self {
            PubState::Publishing => "publishing",
            PubState::Published => "published",
            PubState::Done => "done",
            PubState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> PubState {
        match s {
            "publishing" => PubState::Publishing,
            "published" => PubState::Published,
            "done" => PubState::Done,
            _ => PubState::Failed,
        }
    }
}

/// One publication of one record, as the ledger knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub id: i64,
    pub flow: String,
    /// The Odoo record id.
    pub record_id: i64,
    /// Its name (`WH/OUT/00042`).
    pub record_name: String,
    /// The file's name in the outbox.
    pub file_name: String,
    /// Lowercase hex sha256 of the document (none when it could not be rendered).
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub state: PubState,
    /// Why it failed, or why it waits.
    pub detail: Option<String>,
    /// Passes that tried it.
    pub tries: u32,
    /// Published again on purpose (`replay --record`).
    pub replay: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// `status` of one export flow: records by where their latest publication stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportCounts {
    pub flow: String,
    /// Files published (marked in Odoo, or waiting for the mark).
    pub published: u64,
    /// Records whose file waits to be published (an outage) or to be marked.
    pub waiting: u64,
    /// Records whose latest document was refused.
    pub failed: u64,
    /// The latest publication, unix milliseconds.
    pub last_published_ms: Option<i64>,
    /// The latest refusal: record name and why.
    pub failed_because: Option<(String, String)>,
    /// The latest wait: record name and why.
    pub waiting_because: Option<(String, String)>,
}

const COLUMNS: &str = "id, flow, record_id, record_name, file_name, sha256, size, state, detail, \
                       tries, replay, created_at, updated_at";

fn read_publication(row: &Row<'_>) -> rusqlite::Result<Publication> {
    Ok(Publication {
        id: row.get(0)?,
        flow: row.get(1)?,
        record_id: row.get(2)?,
        record_name: row.get(3)?,
        file_name: row.get(4)?,
        sha256: row.get(5)?,
        size: row.get::<_, Option<i64>>(6)?.map(|n| n as u64),
        state: PubState::parse(&row.get::<_, String>(7)?),
        detail: row.get(8)?,
        tries: row.get(9)?,
        replay: row.get::<_, i64>(10)? != 0,
        created_at: row.get(11)?,
        updated_at: row.get(12)?,
    })
}

/// What a pass is about to publish for one record.
#[derive(Debug, Clone)]
pub struct Publishing<'a> {
    pub flow: &'a str,
    pub record_id: i64,
    pub record_name: &'a str,
    pub file_name: &'a str,
    pub sha256: &'a str,
    pub size: u64,
    pub replay: bool,
}

impl Ledger {
    /// The latest publication of record `record_id` in `flow`.
    pub fn latest_publication(
        &self,
        flow: &str,
        record_id: i64,
    ) -> Result<Option<Publication>, LedgerError> {
        self.read(|tx| {
            Ok(tx
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM publications WHERE flow = ?1 AND record_id = ?2 \
                         ORDER BY id DESC LIMIT 1"
                    ),
                    params![flow, record_id],
                    read_publication,
                )
                .optional()?)
        })
    }

    /// Every publication of the record named `record_name` in `flow`, oldest first.
    pub fn publications_named(
        &self,
        flow: &str,
        record_name: &str,
    ) -> Result<Vec<Publication>, LedgerError> {
        self.publications_where(
            "WHERE flow = ?1 AND record_name = ?2 ORDER BY id",
            params![flow, record_name],
        )
    }

    /// Publications whose file is in the outbox but whose record is not marked yet (a crash
    /// or an Odoo outage between the two).
    pub fn unmarked_publications(&self, flow: &str) -> Result<Vec<Publication>, LedgerError> {
        self.publications_where(
            "WHERE flow = ?1 AND state = 'published' ORDER BY id",
            params![flow],
        )
    }

    fn publications_where(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Publication>, LedgerError> {
        self.read(|tx| {
            let rows = tx
                .prepare(&format!("SELECT {COLUMNS} FROM publications {filter}"))?
                .query_map(args, read_publication)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// The record of `flow` another publication already gave `file_name`, other than
    /// `record_id` (two records whose names become the same file name).
    pub fn file_name_taken(
        &self,
        flow: &str,
        file_name: &str,
        record_id: i64,
    ) -> Result<Option<String>, LedgerError> {
        self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT record_name FROM publications WHERE flow = ?1 AND file_name = ?2 \
                     AND record_id <> ?3 AND state <> 'failed' LIMIT 1",
                    params![flow, file_name, record_id],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    /// A document is about to be written under its final name. An unfinished publication of
    /// the same record (a crash or an outage while writing) is taken up again (its file name
    /// kept, so the retry overwrites its own file); otherwise a new one starts.
    pub fn publishing(&self, p: &Publishing<'_>, now_ms: i64) -> Result<i64, LedgerError> {
        self.write(|tx| {
            let open: Option<i64> = tx
                .query_row(
                    "SELECT id FROM publications WHERE flow = ?1 AND record_id = ?2 \
                     AND state = 'publishing' ORDER BY id DESC LIMIT 1",
                    params![p.flow, p.record_id],
                    |r| r.get(0),
                )
                .optional()?;
            match open {
                Some(id) => {
                    tx.execute(
                        "UPDATE publications SET record_name = ?2, file_name = ?3, sha256 = ?4, \
                         size = ?5, tries = tries + 1, replay = ?6, detail = NULL, \
                         updated_at = ?7 WHERE id = ?1",
                        params![
                            id,
                            p.record_name,
                            p.file_name,
                            p.sha256,
                            int(p.size),
                            i64::from(p.replay),
                            now_ms
                        ],
                    )?;
                    Ok(id)
                }
                None => {
                    tx.execute(
                        "INSERT INTO publications (flow, record_id, record_name, file_name, \
                         sha256, size, state, replay, created_at, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'publishing', ?7, ?8, ?8)",
                        params![
                            p.flow,
                            p.record_id,
                            p.record_name,
                            p.file_name,
                            p.sha256,
                            int(p.size),
                            i64::from(p.replay),
                            now_ms
                        ],
                    )?;
                    Ok(tx.last_insert_rowid())
                }
            }
        })
    }

    /// The file of publication `id` is in the outbox under its final name.
    pub fn published(&self, id: i64, now_ms: i64) -> Result<(), LedgerError> {
        self.set_publication(id, PubState::Published, None, now_ms)
    }

    /// The record of publication `id` is marked in Odoo (or the flow marks nothing).
    pub fn publication_done(&self, id: i64, now_ms: i64) -> Result<(), LedgerError> {
        self.set_publication(id, PubState::Done, None, now_ms)
    }

    /// Publication `id` could not finish now (an outage): it stays where it was, with why.
    pub fn publication_waits(&self, id: i64, why: &str, now_ms: i64) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE publications SET detail = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, why, now_ms],
            )?;
            Ok(())
        })
    }

    fn set_publication(
        &self,
        id: i64,
        state: PubState,
        detail: Option<&str>,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE publications SET state = ?2, detail = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, state.as_str(), detail, now_ms],
            )?;
            Ok(())
        })
    }

    /// The document of a record was refused (it could not be rendered, or is invalid): nothing
    /// was published. An unfinished publication of the record ends failed. Answers whether
    /// the record's latest publication had already failed for the same reason (so a note in
    /// Odoo is not posted again every pass).
    pub fn publication_failed(
        &self,
        flow: &str,
        record_id: i64,
        record_name: &str,
        file_name: &str,
        why: &str,
        now_ms: i64,
    ) -> Result<bool, LedgerError> {
        self.write(|tx| {
            let latest: Option<(i64, String, Option<String>)> = tx
                .query_row(
                    "SELECT id, state, detail FROM publications WHERE flow = ?1 \
                     AND record_id = ?2 ORDER BY id DESC LIMIT 1",
                    params![flow, record_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            match latest {
                Some((id, state, detail)) if state == "failed" => {
                    tx.execute(
                        "UPDATE publications SET detail = ?2, tries = tries + 1, \
                         updated_at = ?3 WHERE id = ?1",
                        params![id, why, now_ms],
                    )?;
                    Ok(detail.as_deref() == Some(why))
                }
                Some((id, state, _)) if state == "publishing" => {
                    tx.execute(
                        "UPDATE publications SET state = 'failed', detail = ?2, \
                         tries = tries + 1, updated_at = ?3 WHERE id = ?1",
                        params![id, why, now_ms],
                    )?;
                    Ok(false)
                }
                _ => {
                    tx.execute(
                        "INSERT INTO publications (flow, record_id, record_name, file_name, \
                         state, detail, created_at, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, 'failed', ?5, ?6, ?6)",
                        params![flow, record_id, record_name, file_name, why, now_ms],
                    )?;
                    Ok(false)
                }
            }
        })
    }

    /// `status` of an export flow (all zero for a flow that has published nothing).
    pub fn export_counts(&self, flow: &str) -> Result<ExportCounts, LedgerError> {
        self.read(|tx| {
            let latest = "FROM publications WHERE id IN (SELECT MAX(id) FROM publications \
                          WHERE flow = ?1 GROUP BY record_id)";
            let (waiting, failed): (i64, i64) = tx.query_row(
                &format!(
                    "SELECT COALESCE(SUM(CASE WHEN state IN ('publishing', 'published') \
                     THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) {latest}"
                ),
                params![flow],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let (published, last): (i64, Option<i64>) = tx.query_row(
                "SELECT COUNT(*), MAX(updated_at) FROM publications WHERE flow = ?1 \
                 AND state IN ('published', 'done')",
                params![flow],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let because = |state: &str| {
                tx.query_row(
                    &format!(
                        "SELECT record_name, COALESCE(detail, '') {latest} AND state {state} \
                         ORDER BY updated_at DESC LIMIT 1"
                    ),
                    params![flow],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            };
            Ok(ExportCounts {
                flow: flow.to_string(),
                published: published as u64,
                waiting: waiting as u64,
                failed: failed as u64,
                last_published_ms: last,
                failed_because: because("= 'failed'")?,
                waiting_because: because("IN ('publishing', 'published')")?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publishing<'a>(record_id: i64, name: &'a str, file: &'a str) -> Publishing<'a> {
        Publishing {
            flow: "orders",
            record_id,
            record_name: name,
            file_name: file,
            sha256: "ab",
            size: 10,
            replay: false,
        }
    }

    #[test]
    fn a_publication_goes_publishing_published_done() {
        let ledger = Ledger::open_in_memory().unwrap();
        let id = ledger
            .publishing(&publishing(42, "WH/OUT/00042", "WH_OUT_00042.xml"), 1)
            .unwrap();
        // A retry after an outage takes the same publication up again.
        ledger.publication_waits(id, "SFTP down", 2).unwrap();
        let again = ledger
            .publishing(&publishing(42, "WH/OUT/00042", "WH_OUT_00042.xml"), 3)
            .unwrap();
        assert_eq!(again, id);
        ledger.published(id, 4).unwrap();
        assert_eq!(ledger.unmarked_publications("orders").unwrap().len(), 1);
        let counts = ledger.export_counts("orders").unwrap();
        assert_eq!((counts.published, counts.waiting, counts.failed), (1, 1, 0));
        ledger.publication_done(id, 5).unwrap();
        let p = ledger.latest_publication("orders", 42).unwrap().unwrap();
        assert_eq!((p.state, p.tries), (PubState::Done, 2));
        assert!(ledger.unmarked_publications("orders").unwrap().is_empty());
        // Another record whose name gives the same file name.
        assert_eq!(
            ledger
                .file_name_taken("orders", "WH_OUT_00042.xml", 43)
                .unwrap()
                .as_deref(),
            Some("WH/OUT/00042")
        );
        assert_eq!(
            ledger
                .file_name_taken("orders", "WH_OUT_00042.xml", 42)
                .unwrap(),
            None
        );
        // Published again later: a new publication.
        let second = ledger
            .publishing(&publishing(42, "WH/OUT/00042", "WH_OUT_00042.xml"), 6)
            .unwrap();
        assert_ne!(second, id);
        assert_eq!(
            ledger
                .publications_named("orders", "WH/OUT/00042")
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn a_refused_document_says_why_once() {
        let ledger = Ledger::open_in_memory().unwrap();
        assert!(
            !ledger
                .publication_failed("orders", 7, "WH/OUT/00007", "WH_OUT_00007.xml", "bad", 1)
                .unwrap()
        );
        assert!(
            ledger
                .publication_failed("orders", 7, "WH/OUT/00007", "WH_OUT_00007.xml", "bad", 2)
                .unwrap()
        );
        assert!(
            !ledger
                .publication_failed("orders", 7, "WH/OUT/00007", "WH_OUT_00007.xml", "worse", 3)
                .unwrap()
        );
        let counts = ledger.export_counts("orders").unwrap();
        assert_eq!((counts.published, counts.waiting, counts.failed), (0, 0, 1));
        assert_eq!(
            counts.failed_because,
            Some(("WH/OUT/00007".to_string(), "worse".to_string()))
        );
    }
}
