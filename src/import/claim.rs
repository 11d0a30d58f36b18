//! Claiming a complete file and fetching it: a lease in the ledger (so no second run takes the
//! file too), the download to the local spool with its sha256, then validation and mapping.
//! Runs of this host that were killed have their leases released at the start of a pass, and
//! downloads of finished attempts are swept from the spool.

use std::path::PathBuf;

use tokio::task::JoinHandle;

use super::pass::{Runner, crash_point, now_ms};
use super::spool::{RecordRanges, attempt_of, ops_path};
use super::validate::{Spooled, check_and_spool};
use crate::config::{Flow, ImportFlow, OnRecordError};
use crate::error::Consequence;
use crate::ledger::{FileRecord, holder_is_dead};
use crate::report::{Problem, Stage};
use crate::transport::{self, AnyTransport, Entry, Transport};

/// A file fetched, validated and mapped, waiting for its operations to be applied.
pub(super) struct Prepared {
    pub(super) rec: FileRecord,
    pub(super) entry: Entry,
    pub(super) spool: PathBuf,
    /// Its operations, spooled one JSON line each in file order (see [`super::spool`]).
    pub(super) ops: PathBuf,
    pub(super) problems: Vec<Problem>,
    pub(super) records: u64,
    /// Records applied in Odoo (or that a run without dry_run would send).
    pub(super) applied: RecordRanges,
    /// Where the problems come from: the mapping, or Odoo refusing records.
    pub(super) stage: Stage,
    /// Set when the file left the pass before it was finished: its claim was lost (another
    /// run has it) or the ledger could not record a step. Nothing more is done with it here.
    pub(super) left: Option<String>,
}

/// A file downloaded to the spool whose validation and mapping run on a blocking thread.
pub(super) struct Mapping {
    pub(super) rec: FileRecord,
    pub(super) entry: Entry,
    spool: PathBuf,
    ops: PathBuf,
    pub(super) task: JoinHandle<Spooled>,
}

/// A file's fate decided before Odoo: waiting or rejected.
pub enum Early {
    Wait(String),
    Reject(Stage, Vec<Problem>),
}

impl Runner {
    /// Frees the files claimed by runs of this host that were killed: their work resumes now
    /// instead of when their lease runs out.
    pub(super) fn release_dead_leases(&self) {
        let Ok(leases) = self.ledger().live_leases(now_ms()) else {
            return;
        };
        for rec in leases {
            let Some(holder) = rec.holder.as_deref() else {
                continue;
            };
            if holder != self.holder && holder_is_dead(holder) {
                tracing::info!(flow = %rec.flow, "{}: resuming the work of a run that stopped ({holder})", rec.name);
                if let Err(e) = self.ledger().release_dead(rec.id, holder) {
                    tracing::warn!("ledger: {e}");
                }
            }
        }
    }

    /// Removes downloads left in the spool by attempts that are over (after a crash).
    pub(super) fn sweep_spool(&self) {
        for flow in self.config.flows.keys() {
            let Ok(entries) = std::fs::read_dir(self.config.spool.join(flow)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let id = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(attempt_of);
                let over = match id.map(|id| self.ledger().get(id)) {
                    Some(Ok(rec)) => rec.state.is_terminal(),
                    Some(Err(_)) | None => false,
                };
                if over {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }

    /// Fetches one claimed file to the spool and starts validating and mapping it on a
    /// blocking thread; [`Runner::mapped`] collects the result.
    pub(super) async fn fetch_and_map(
        &self,
        t: &mut AnyTransport,
        flow: &Flow,
        import: &ImportFlow,
        rec: FileRecord,
        entry: Entry,
    ) -> Result<Mapping, (FileRecord, Entry, Early)> {
        let spool_dir = self.config.spool.join(&flow.name);
        if let Err(e) = std::fs::create_dir_all(&spool_dir) {
            return Err((
                rec,
                entry,
                Early::Wait(format!("spool folder {}: {e}", spool_dir.display())),
            ));
        }
        let spool = self.spool_path(&rec);
        let remote = transport::join(&import.inbox, &entry.name);
        let fetched = match t.fetch(&remote, &spool, import.max_file_size).await {
            Ok(f) => f,
            Err(e) => {
                let early = match e.consequence() {
                    Consequence::Reject => {
                        Early::Reject(Stage::TooLarge, vec![Problem::new(e.to_string())])
                    }
                    _ => Early::Wait(format!("download failed: {e}")),
                };
                return Err((rec, entry, early));
            }
        };
        if fetched.size != entry.size {
            let _ = std::fs::remove_file(&spool);
            return Err((
                rec,
                entry,
                Early::Wait("the file changed while it was downloaded".into()),
            ));
        }
        let rec = match self
            .ledger()
            .fetched(rec.id, &self.holder, &fetched.sha256, now_ms())
        {
            Ok(rec) => rec,
            Err(e) => return Err((rec, entry, Early::Wait(e.to_string()))),
        };
        crash_point("fetched");
        let ops = ops_path(&self.config.spool, &flow.name, rec.id);
        let task = check_and_spool(import, &spool, &ops);
        Ok(Mapping {
            rec,
            entry,
            spool,
            ops,
            task,
        })
    }

    /// Waits for a file's validation and mapping: the file ready for Odoo, or what became
    /// of it early.
    pub(super) async fn mapped(
        &self,
        import: &ImportFlow,
        m: Mapping,
    ) -> Result<Prepared, (FileRecord, Entry, Early)> {
        let Mapping {
            rec,
            entry,
            spool,
            ops,
            task,
        } = m;
        let mapped = match task.await {
            Ok(mapped) => mapped,
            Err(e) => Err(Early::Wait(format!("validation worker failed: {e}"))),
        };
        // A large file may take a while: keep the claim alive for the steps still ahead.
        if let Err(e) = self.renew(&rec) {
            let _ = std::fs::remove_file(&ops);
            return Err((rec, entry, Early::Wait(e)));
        }
        match mapped {
            Ok((problems, records, _operations)) => {
                if !problems.is_empty() && import.on_record_error == OnRecordError::FailFile {
                    let _ = std::fs::remove_file(&ops);
                    return Err((rec, entry, Early::Reject(Stage::Mapping, problems)));
                }
                Ok(Prepared {
                    rec,
                    entry,
                    spool,
                    ops,
                    problems,
                    records,
                    applied: RecordRanges::default(),
                    stage: Stage::Mapping,
                    left: None,
                })
            }
            Err(early) => {
                let _ = std::fs::remove_file(&ops);
                Err((rec, entry, early))
            }
        }
    }

    /// Where an attempt's download is kept until the attempt is finished.
    pub(super) fn spool_path(&self, rec: &FileRecord) -> PathBuf {
        self.config
            .spool
            .join(&rec.flow)
            .join(format!("{}.data", rec.id))
    }

    /// Extends this run's lease on a file; fails when the claim was lost (another run holds
    /// the file, or the lease ran out) or the ledger could not record it.
    pub(super) fn renew(&self, rec: &FileRecord) -> Result<(), String> {
        self.ledger()
            .renew(rec.id, &self.holder, self.config.ledger.lease, now_ms())
            .map_err(|e| e.to_string())
    }
}

impl Prepared {
    /// The attempt is over: its download and its operations leave the spool.
    pub(super) fn discard(&self) {
        let _ = std::fs::remove_file(&self.spool);
        let _ = std::fs::remove_file(&self.ops);
    }
}
