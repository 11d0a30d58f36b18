//! One pass over import flows: for each partner one session; per flow one listing, the
//! completeness rules, then each complete file is claimed, fetched, validated, mapped, applied
//! and finished. Operations of all files taken in the pass are applied together, so records of
//! several files share Odoo batches while outcomes, reports and the ledger stay per file.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::config::{Config, Direction, Flow, Format, ImportFlow, OnRecordError, Partner};
use crate::error::Consequence;
use crate::import::finish::{archive_target, free_name, move_file};
use crate::import::mapping::{self, MapProblem};
use crate::import::settle::{self, Readiness};
use crate::ledger::{FileRecord, Ledger, State};
use crate::odoo::actions::{Applier, BatchDone, RecordFailure};
use crate::odoo::client::OdooClient;
use crate::operation::Operation;
use crate::report::{EarlierAttempt, ErrorReport, Problem, RecordCounts, Stage};
use crate::schema::{self, XmlProblem};
use crate::transport::{self, AnyTransport, Entry, Transport, TransportError};

/// How long a claim holds a file before another run may take it over.
const LEASE: Duration = Duration::from_secs(30 * 60);
/// Largest processed file copied from the spool when its inbox file was replaced meanwhile.
const MAX_KEPT_COPY: u64 = 512 * 1024 * 1024;
/// Bytes read from the end of an XML file to see whether its root element is closed.
const TAIL_BYTES: u64 = 1024;

/// Where a file ended up after this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// In the archive, at this path.
    Archived(String),
    /// In `error/`, at this path, with its report beside it.
    Failed(String),
    /// Still in the inbox: a transient failure; retried on the next pass.
    Waiting(String),
}

/// One file's result in a pass.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    pub flow: String,
    pub name: String,
    pub outcome: Outcome,
}

/// What a pass did.
#[derive(Debug, Default)]
pub struct PassSummary {
    pub files: Vec<FileOutcome>,
    /// Flows (or partners) that could not run, with what to fix.
    pub stopped: Vec<(String, String)>,
    /// Files seen but not taken yet (still settling, waiting for a marker, looking truncated).
    pub not_ready: Vec<(String, String, String)>,
    /// Files that could not be looked at (a transient failure): they wait for the next pass.
    pub unread: Vec<(String, String, String)>,
}

impl PassSummary {
    /// The exit status of `run --once`: 0 when every taken file was archived; 1 when a file
    /// went to `error/` or work was left waiting by a failure.
    pub fn exit_code(&self) -> i32 {
        let bad = self
            .files
            .iter()
            .any(|f| !matches!(f.outcome, Outcome::Archived(_)));
        i32::from(bad || !self.stopped.is_empty() || !self.unread.is_empty())
    }
}

/// Runs passes: holds the configuration, the ledger and this process's lease holder name.
pub struct Runner {
    config: Arc<Config>,
    ledger: Arc<Ledger>,
    holder: String,
    /// Where dry-run operations are printed (JSON lines).
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    /// The Odoo connection, opened when the first file needs it.
    odoo: tokio::sync::OnceCell<OdooClient>,
}

/// How the completeness rule is applied in this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `run --once`: list, wait `settle` for the files that need it, list again.
    Twice,
    /// A daemon poll: one listing; the ledger remembers earlier ones.
    Once,
}

/// A file fetched, validated and mapped, waiting for its operations to be applied.
struct Prepared {
    rec: FileRecord,
    entry: Entry,
    spool: PathBuf,
    operations: Vec<Operation>,
    problems: Vec<Problem>,
    records: u64,
    /// Records applied in Odoo (or printed in a dry run).
    applied: Vec<u64>,
    /// Where the problems come from: the mapping, or Odoo refusing records.
    stage: Stage,
}

/// A file's fate decided before Odoo: waiting or rejected.
pub enum Early {
    Wait(String),
    Reject(Stage, Vec<Problem>),
}

/// Test hook for crash safety: when `EDI_BRIDGE_CRASH_AT` names this point, the process kills
/// itself with SIGKILL right here — no destructors, no flush, like `kill -9` from outside.
fn crash_point(point: &str) {
    if std::env::var("EDI_BRIDGE_CRASH_AT").is_ok_and(|p| p == point) {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// A lease holder is `host:pid:start-ms`, so a run can tell the leases of dead runs on its own
/// host (after `kill -9`) from those of runs still working.
fn holder_name() -> String {
    format!("{}:{}:{}", host_name(), std::process::id(), now_ms())
}

/// Whether `holder` names a process of this host that no longer runs.
fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, ':');
    let (Some(_start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if host != host_name() || pid.parse::<u32>().is_err() {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => !String::from_utf8_lossy(&cmdline).contains("edi-bridge"),
        Err(_) => true,
    }
}

impl Runner {
    pub fn new(config: Arc<Config>, ledger: Ledger, out: Box<dyn Write + Send>) -> Runner {
        Runner {
            config,
            ledger: Arc::new(ledger),
            holder: holder_name(),
            out: Arc::new(Mutex::new(out)),
            odoo: tokio::sync::OnceCell::new(),
        }
    }

    /// The ledger, for commands that read it.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// One pass over the named import flows (all when `names` is empty).
    pub async fn run_once(&self, names: &[String], listing: Listing) -> PassSummary {
        let mut summary = PassSummary::default();
        self.release_dead_leases();
        self.sweep_spool();
        let mut by_partner: BTreeMap<&str, Vec<(&Flow, &ImportFlow)>> = BTreeMap::new();
        for flow in self.config.flows.values() {
            if !names.is_empty() && !names.iter().any(|n| n == &flow.name) {
                continue;
            }
            if let Direction::Import(import) = &flow.direction {
                by_partner
                    .entry(&flow.partner)
                    .or_default()
                    .push((flow, import));
            }
        }
        // Partners are independent: their passes run side by side, one session each.
        let passes = by_partner
            .into_iter()
            .map(|(partner_name, flows)| async move {
                let partner = &self.config.partners[partner_name];
                let mut part = PassSummary::default();
                self.partner_pass(partner, &flows, listing, &mut part).await;
                part
            });
        for part in futures::future::join_all(passes).await {
            summary.files.extend(part.files);
            summary.stopped.extend(part.stopped);
            summary.not_ready.extend(part.not_ready);
            summary.unread.extend(part.unread);
        }
        summary
    }

    /// Removes downloads left in the spool by attempts that are over (after a crash).
    fn sweep_spool(&self) {
        for flow in self.config.flows.keys() {
            let Ok(entries) = std::fs::read_dir(self.config.spool.join(flow)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let id = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".data"))
                    .and_then(|n| n.parse::<i64>().ok());
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

    /// Frees the files claimed by runs of this host that were killed: their work resumes now
    /// instead of when their lease runs out.
    fn release_dead_leases(&self) {
        let Ok(leases) = self.ledger().live_leases(now_ms()) else {
            return;
        };
        for rec in leases {
            let Some(holder) = rec.holder.as_deref() else {
                continue;
            };
            if holder != self.holder && holder_is_dead(holder) {
                tracing::info!(flow = %rec.flow, "{}: resuming the work of a run that stopped ({holder})", rec.name);
                if let Err(e) = self.ledger().release(rec.id, holder) {
                    tracing::warn!("ledger: {e}");
                }
            }
        }
    }

    async fn partner_pass(
        &self,
        partner: &Partner,
        flows: &[(&Flow, &ImportFlow)],
        listing: Listing,
        summary: &mut PassSummary,
    ) {
        let mut t = match AnyTransport::connect(partner).await {
            Ok(t) => t,
            Err(e) => {
                let what = match e.consequence() {
                    Consequence::Retry => {
                        format!("partner {} is unreachable, files wait: {e}", partner.name)
                    }
                    _ => format!("partner {} stopped: {e}", partner.name),
                };
                tracing::error!("{what}");
                for (flow, _) in flows {
                    summary.stopped.push((flow.name.clone(), what.clone()));
                }
                return;
            }
        };
        let mut ready: Vec<(&Flow, &ImportFlow, Vec<Entry>)> = Vec::new();
        let mut wait_until: Option<i64> = None;
        for (flow, import) in flows {
            if let Err(e) = self.repair(&mut t, flow, import).await {
                summary
                    .stopped
                    .push((flow.name.clone(), format!("repairing earlier work: {e}")));
                continue;
            }
            match self
                .assess_inbox(&mut t, flow, import, summary, false)
                .await
            {
                Ok((files, until)) => {
                    wait_until = wait_until.max(until);
                    ready.push((flow, import, files));
                }
                Err(e) => summary.stopped.push((flow.name.clone(), e)),
            }
        }
        if listing == Listing::Twice
            && let Some(until) = wait_until
        {
            let wait = u64::try_from(until - now_ms()).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            summary.not_ready.clear();
            summary.unread.clear();
            for (flow, import, files) in ready.iter_mut() {
                match self.assess_inbox(&mut t, flow, import, summary, true).await {
                    Ok((again, _)) => *files = again,
                    Err(e) => summary.stopped.push((flow.name.clone(), e)),
                }
            }
        }
        for (flow, import, files) in ready {
            self.flow_files(&mut t, partner, flow, import, files, summary)
                .await;
        }
        if let Err(e) = t.close().await {
            tracing::debug!("closing the session to {}: {e}", partner.name);
        }
    }

    /// Lists the inbox once and returns the complete files (and when the next settles).
    async fn assess_inbox(
        &self,
        t: &mut AnyTransport,
        flow: &Flow,
        import: &ImportFlow,
        summary: &mut PassSummary,
        last: bool,
    ) -> Result<(Vec<Entry>, Option<i64>), String> {
        let entries = t.list(&import.inbox).await.map_err(|e| match e {
            TransportError::NotFound { .. } => format!(
                "the inbox {} does not exist on partner {}: create it or fix `flows.{}.inbox`",
                import.inbox, flow.partner, flow.name
            ),
            e => format!("listing the inbox {}: {e}", import.inbox),
        })?;
        let now = now_ms();
        let names: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let mut complete = Vec::new();
        let mut next: Option<i64> = None;
        let present: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
        for entry in &entries {
            if !entry.is_file || settle::is_temporary(&entry.name) {
                continue;
            }
            let since = {
                let ledger = self.ledger();
                ledger
                    .observe(&flow.name, &entry.name, entry.size, entry.mtime, now)
                    .map_err(|e| e.to_string())?
            };
            match settle::assess(import, entry, since, now, &names) {
                Readiness::Ready => {
                    match self.looks_truncated(t, import, entry, since, now).await {
                        Ok(None) => complete.push(entry.clone()),
                        Ok(Some(why)) => {
                            summary
                                .not_ready
                                .push((flow.name.clone(), entry.name.clone(), why))
                        }
                        Err(why) => {
                            summary
                                .unread
                                .push((flow.name.clone(), entry.name.clone(), why))
                        }
                    }
                }
                Readiness::Settling { until_ms } => {
                    next = next.max(Some(until_ms));
                    if last {
                        summary.not_ready.push((
                            flow.name.clone(),
                            entry.name.clone(),
                            "still changing (size or modification time moved during the settle time)".into(),
                        ));
                    }
                }
                // Not waited for within a pass: `min_age` may be hours.
                Readiness::TooYoung { .. } => summary.not_ready.push((
                    flow.name.clone(),
                    entry.name.clone(),
                    "younger than the flow's `min_age`".into(),
                )),
                Readiness::NoMarker { marker } => summary.not_ready.push((
                    flow.name.clone(),
                    entry.name.clone(),
                    format!("waiting for its done-marker {marker}"),
                )),
                Readiness::Refused(why) => {
                    tracing::warn!(flow = %flow.name, "left alone: {:?}: {why}", entry.name);
                    summary.not_ready.push((
                        flow.name.clone(),
                        entry.name.escape_debug().to_string(),
                        format!("refused: {why}"),
                    ));
                }
                Readiness::Ignored(_) => {}
            }
        }
        self.ledger()
            .forget_sightings_except(&flow.name, &present)
            .map_err(|e| e.to_string())?;
        // Oldest first: when files of a pass touch the same records, the newest wins.
        complete.sort_by(|a, b| (a.mtime, &a.name).cmp(&(b.mtime, &b.name)));
        Ok((complete, next))
    }

    /// For XML: a file whose root element is not closed may still be uploading. It waits until
    /// it has been unchanged for `settle_max`; then it is taken (and fails as truncated).
    async fn looks_truncated(
        &self,
        t: &mut AnyTransport,
        import: &ImportFlow,
        entry: &Entry,
        since: i64,
        now: i64,
    ) -> Result<Option<String>, String> {
        if !matches!(import.format, Format::Xml { .. }) || entry.size == 0 {
            return Ok(None);
        }
        let root = import
            .mapping
            .record
            .as_ref()
            .and_then(|r| r.steps.first())
            .map(|s| s.name.local.clone());
        let tail = match t
            .read_tail(&transport::join(&import.inbox, &entry.name), TAIL_BYTES)
            .await
        {
            Ok(tail) => tail,
            Err(e) => return Err(format!("its end could not be read ({e}); it waits")),
        };
        if settle::root_closed(&tail, root.as_deref()) {
            return Ok(None);
        }
        let waited = Duration::from_millis(u64::try_from(now - since).unwrap_or(0));
        Ok((waited < import.settle_max).then(|| {
            format!(
                "looks truncated (root element not closed); waits up to {} before going to error",
                humantime::format_duration(import.settle_max)
            )
        }))
    }

    /// Repairs what a crash left: a move announced in the ledger whose file already left the
    /// inbox is recorded as done; an attempt whose file vanished is abandoned.
    async fn repair(
        &self,
        t: &mut AnyTransport,
        flow: &Flow,
        import: &ImportFlow,
    ) -> Result<(), String> {
        let unfinished = self
            .ledger()
            .unfinished(&flow.name, now_ms())
            .map_err(|e| e.to_string())?;
        for rec in unfinished {
            let inbox_path = transport::join(&import.inbox, &rec.name);
            let err = |e: TransportError| e.to_string();
            let in_inbox = t.stat(&inbox_path).await.map_err(err)?;
            let at_destination = match (rec.state, &rec.destination) {
                (State::Archiving | State::Quarantining, Some(dest)) => {
                    t.stat(dest).await.map_err(err)?.is_some()
                }
                _ => false,
            };
            // A file still in the inbox is the listing's to take, unless its move had
            // already placed it at its destination: then the inbox holds either a leftover
            // name of the same file (removed here) or a new file (left for the listing).
            let leftover = match (&in_inbox, at_destination) {
                (Some(_), false) => continue,
                (Some(now), true) => {
                    // Another file may have taken the recorded destination before the move
                    // happened: then the move is still to do, at a new name.
                    let dest = rec.destination.clone().unwrap_or_default();
                    if !self.same_content(t, &dest, &rec, import).await? {
                        continue;
                    }
                    now.size == rec.size && self.same_content(t, &inbox_path, &rec, import).await?
                }
                (None, _) => false,
            };
            let ledger = self.ledger();
            let Some(rec) = ledger
                .claim(
                    &flow.name,
                    &rec.name,
                    rec.size,
                    rec.mtime,
                    &self.holder,
                    LEASE,
                    now_ms(),
                )
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            let (result, moved) = match (rec.state, at_destination) {
                (State::Archiving, true) => (ledger.archived(rec.id, &self.holder), true),
                (State::Quarantining, true) => (ledger.failed(rec.id, &self.holder), true),
                _ => (
                    ledger.abandon(
                        rec.id,
                        "the file left the inbox before this attempt finished",
                    ),
                    false,
                ),
            };
            result.map_err(|e| e.to_string())?;
            let _ = std::fs::remove_file(self.spool_path(&rec));
            if leftover {
                t.remove(&inbox_path).await.map_err(|e| e.to_string())?;
            }
            if moved && (in_inbox.is_none() || leftover) {
                let entry = Entry {
                    name: rec.name.clone(),
                    size: rec.size,
                    mtime: rec.mtime,
                    is_file: true,
                };
                self.remove_marker(t, import, &entry).await;
            }
        }
        Ok(())
    }

    /// Whether the inbox file at `path` has the content attempt `rec` processed (its sha256).
    async fn same_content(
        &self,
        t: &mut AnyTransport,
        path: &str,
        rec: &FileRecord,
        import: &ImportFlow,
    ) -> Result<bool, String> {
        let Some(expected) = &rec.sha256 else {
            return Ok(false);
        };
        let copy = self.spool_path(rec).with_extension("check");
        if let Some(dir) = copy.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let fetched = t.fetch(path, &copy, import.max_file_size).await;
        let _ = std::fs::remove_file(&copy);
        match fetched {
            Ok(f) => Ok(&f.sha256 == expected),
            Err(TransportError::TooLarge { .. }) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn flow_files(
        &self,
        t: &mut AnyTransport,
        partner: &Partner,
        flow: &Flow,
        import: &ImportFlow,
        files: Vec<Entry>,
        summary: &mut PassSummary,
    ) {
        let mut prepared = Vec::new();
        for entry in files {
            let claimed = self.ledger().claim(
                &flow.name,
                &entry.name,
                entry.size,
                entry.mtime,
                &self.holder,
                LEASE,
                now_ms(),
            );
            let rec = match claimed {
                Ok(Some(rec)) => rec,
                Ok(None) => {
                    summary.not_ready.push((
                        flow.name.clone(),
                        entry.name.clone(),
                        "held by another run".into(),
                    ));
                    continue;
                }
                Err(e) => {
                    summary.stopped.push((flow.name.clone(), e.to_string()));
                    return;
                }
            };
            crash_point("claimed");
            // A file whose Odoo writes completed before a crash is only archived.
            if matches!(rec.state, State::Applied | State::Archiving) {
                let outcome = self.archive(t, partner, import, &rec, &entry).await;
                summary
                    .files
                    .push(self.settle_outcome(flow, &rec, &entry, outcome));
                continue;
            }
            // A move to error/ was under way: its report is in the ledger.
            if let (State::Quarantining, Some(dest)) = (rec.state, rec.destination.clone()) {
                let outcome = self
                    .finish_quarantine(t, import, &rec, &entry, &dest, true)
                    .await;
                summary
                    .files
                    .push(self.settle_outcome(flow, &rec, &entry, outcome));
                continue;
            }
            // Another run may have finished it between our listing and our claim.
            if rec.tries == 1 && rec.state == State::Claimed {
                let path = transport::join(&import.inbox, &entry.name);
                if matches!(t.stat(&path).await, Ok(None)) {
                    let _ = self.ledger().abandon(
                        rec.id,
                        "gone from the inbox before it was fetched (taken by another run)",
                    );
                    continue;
                }
            }
            match self.prepare(t, flow, import, rec, entry).await {
                Ok(p) => prepared.push(p),
                Err((rec, entry, early)) => {
                    let outcome = match early {
                        Early::Wait(reason) => Ok(self.wait(&rec, reason)),
                        Early::Reject(stage, problems) => {
                            let failed = problems.len() as u64;
                            let counts = RecordCounts::nothing_applied(None, failed);
                            self.quarantine(
                                t, partner, flow, import, &rec, &entry, stage, problems, counts,
                            )
                            .await
                        }
                    };
                    let _ = std::fs::remove_file(self.spool_path(&rec));
                    summary
                        .files
                        .push(self.settle_outcome(flow, &rec, &entry, outcome));
                }
            }
        }
        if prepared.is_empty() {
            return;
        }
        // Files fetched early in a long pass keep their claims until they are finished.
        for p in &prepared {
            if let Err(e) = self.renew(&p.rec) {
                tracing::warn!(flow = %flow.name, "{}: {e}", p.entry.name);
            }
        }
        if let Err((why, stop)) = self.apply(flow, import, &mut prepared).await {
            if stop {
                summary.stopped.push((flow.name.clone(), why.clone()));
            }
            for p in prepared {
                let _ = std::fs::remove_file(&p.spool);
                let outcome = Ok(self.wait(&p.rec, why.clone()));
                summary
                    .files
                    .push(self.settle_outcome(flow, &p.rec, &p.entry, outcome));
            }
            return;
        }
        for p in prepared {
            let outcome = if p.problems.is_empty() {
                self.archive(t, partner, import, &p.rec, &p.entry).await
            } else {
                let failed: HashSet<u64> = p.problems.iter().filter_map(|x| x.record).collect();
                let counts = if p.applied.is_empty() {
                    RecordCounts::nothing_applied(Some(p.records), failed.len() as u64)
                } else {
                    RecordCounts::with_applied(
                        p.records,
                        p.applied.iter().copied(),
                        failed.len() as u64,
                    )
                };
                self.quarantine(
                    t,
                    partner,
                    flow,
                    import,
                    &p.rec,
                    &p.entry,
                    p.stage,
                    p.problems.clone(),
                    counts,
                )
                .await
            };
            let _ = std::fs::remove_file(&p.spool);
            summary
                .files
                .push(self.settle_outcome(flow, &p.rec, &p.entry, outcome));
        }
    }

    /// A transient failure while finishing (SFTP gone) leaves the file waiting.
    fn settle_outcome(
        &self,
        flow: &Flow,
        rec: &FileRecord,
        entry: &Entry,
        outcome: Result<Outcome, TransportError>,
    ) -> FileOutcome {
        let outcome = outcome.unwrap_or_else(|e| self.wait(rec, format!("finishing: {e}")));
        match &outcome {
            Outcome::Archived(to) => {
                tracing::info!(flow = %flow.name, "{} archived to {to}", entry.name)
            }
            Outcome::Failed(to) => {
                tracing::warn!(flow = %flow.name, "{} moved to {to} with its error report", entry.name)
            }
            Outcome::Waiting(why) => {
                tracing::warn!(flow = %flow.name, "{} waits in the inbox: {why}", entry.name)
            }
        }
        FileOutcome {
            flow: flow.name.clone(),
            name: entry.name.clone(),
            outcome,
        }
    }

    fn wait(&self, rec: &FileRecord, reason: String) -> Outcome {
        if let Err(e) = self.ledger().waiting(rec.id, &self.holder, &reason) {
            tracing::error!("ledger: {e}");
        }
        Outcome::Waiting(reason)
    }

    /// Fetch, validate and map one claimed file.
    async fn prepare(
        &self,
        t: &mut AnyTransport,
        flow: &Flow,
        import: &ImportFlow,
        rec: FileRecord,
        entry: Entry,
    ) -> Result<Prepared, (FileRecord, Entry, Early)> {
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
        let mapped = check_and_map(import, &spool).await;
        // A large file may take a while: keep the claim alive for the steps still ahead.
        if let Err(e) = self.renew(&rec) {
            return Err((rec, entry, Early::Wait(e)));
        }
        match mapped {
            Ok((operations, problems, records)) => {
                if !problems.is_empty() && import.on_record_error == OnRecordError::FailFile {
                    return Err((rec, entry, Early::Reject(Stage::Mapping, problems)));
                }
                Ok(Prepared {
                    rec,
                    entry,
                    spool,
                    operations,
                    problems,
                    records,
                    applied: Vec::new(),
                    stage: Stage::Mapping,
                })
            }
            Err(early) => Err((rec, entry, early)),
        }
    }

    /// Where an attempt's download is kept until the attempt is finished.
    fn spool_path(&self, rec: &FileRecord) -> PathBuf {
        self.config
            .spool
            .join(&rec.flow)
            .join(format!("{}.data", rec.id))
    }

    /// Applies the operations of every prepared file of a flow, sharing Odoo batches; in a
    /// dry run they are printed instead. `Err((why, stop))`: nothing could be applied — the
    /// files wait; `stop` when a human must fix something (credentials, permissions).
    async fn apply(
        &self,
        flow: &Flow,
        import: &ImportFlow,
        prepared: &mut [Prepared],
    ) -> Result<(), (String, bool)> {
        for p in prepared.iter() {
            if let Err(e) = self.ledger().applying(p.rec.id, &self.holder, p.records) {
                return Err((e.to_string(), false));
            }
        }
        if self.config.odoo.dry_run {
            let mut out = self.out.lock().expect("output lock");
            for p in prepared.iter_mut() {
                for op in &p.operations {
                    let _ = writeln!(out, "{}", dry_run_line(&flow.name, &p.entry.name, op));
                }
                p.applied = p.operations.iter().map(|op| op.record).collect();
            }
            let _ = out.flush();
        } else {
            let client = self.odoo().await?;
            let files: Vec<&[Operation]> =
                prepared.iter().map(|p| p.operations.as_slice()).collect();
            let ids: Vec<i64> = prepared.iter().map(|p| p.rec.id).collect();
            let mut applier = Applier::new(client, self.config.odoo.batch_size);
            let mut record_batch = |done: BatchDone| {
                if let Err(e) = self.ledger().batch_done(
                    ids[done.file],
                    &self.holder,
                    done.batch_no,
                    done.records,
                    &done.outcome,
                ) {
                    tracing::error!("ledger: {e}");
                }
                let _ = self
                    .ledger()
                    .renew(ids[done.file], &self.holder, LEASE, now_ms());
                crash_point("batch");
            };
            let results = applier
                .apply(
                    &import.mapping,
                    &files,
                    import.on_record_error,
                    &mut record_batch,
                )
                .await
                .map_err(|e| {
                    let stop = e.consequence() == Consequence::Stop;
                    (format!("Odoo: {e}"), stop)
                })?;
            for (p, result) in prepared.iter_mut().zip(results) {
                if !result.failed.is_empty() {
                    p.stage = Stage::Odoo;
                }
                p.applied = result.applied;
                p.problems
                    .extend(result.failed.into_iter().map(odoo_problem));
                p.problems.sort_by_key(|x| x.record);
            }
        }
        // A file with problems goes from here straight to error/ (its report is written into
        // the ledger first): were it marked applied, a crash now would let the next pass
        // archive it as a success. Left mid-way, it is redone — every action is idempotent.
        for p in prepared.iter().filter(|p| p.problems.is_empty()) {
            let failed = p.records.saturating_sub(p.applied.len() as u64);
            let detail = self
                .config
                .odoo
                .dry_run
                .then_some("dry run: printed, not sent");
            if let Err(e) = self.ledger().applied(
                p.rec.id,
                &self.holder,
                p.applied.len() as u64,
                failed,
                detail,
            ) {
                tracing::error!("ledger: {e}");
            }
        }
        crash_point("applied");
        Ok(())
    }

    /// Extends this run's lease on a file.
    fn renew(&self, rec: &FileRecord) -> Result<(), String> {
        self.ledger()
            .renew(rec.id, &self.holder, LEASE, now_ms())
            .map_err(|e| e.to_string())
    }

    /// The Odoo connection of this run, opened once.
    async fn odoo(&self) -> Result<&OdooClient, (String, bool)> {
        self.odoo
            .get_or_try_init(|| async {
                OdooClient::connect(&self.config.odoo).await.map_err(|e| {
                    let stop = e.consequence() == Consequence::Stop;
                    (format!("Odoo: {e}"), stop)
                })
            })
            .await
    }

    async fn archive(
        &self,
        t: &mut AnyTransport,
        partner: &Partner,
        import: &ImportFlow,
        rec: &FileRecord,
        entry: &Entry,
    ) -> Result<Outcome, TransportError> {
        let from = transport::join(&import.inbox, &entry.name);
        let dest = match (&rec.state, &rec.destination) {
            // A resumed move whose destination is still free; a taken one gets a new name.
            (State::Archiving, Some(dest)) if t.stat(dest).await?.is_none() => dest.clone(),
            _ => {
                let now = jiff::Timestamp::now().to_zoned_datetime(partner.timezone.clone());
                let (dir, name) = archive_target(&import.archive, &entry.name, &now);
                t.mkdir_all(&dir).await?;
                let name = free_name(t, &dir, &name, &[]).await?;
                let dest = transport::join(&dir, &name);
                if let Err(e) = self.ledger().archiving(rec.id, &self.holder, &dest) {
                    return Ok(Outcome::Waiting(e.to_string()));
                }
                crash_point("archiving");
                dest
            }
        };
        if replaced(t, &from, entry).await? {
            return self.keep_replaced(t, rec, &dest, true).await;
        }
        move_file(t, &from, &dest).await?;
        crash_point("moved");
        if let Err(e) = self.ledger().archived(rec.id, &self.holder) {
            tracing::error!("ledger: {e}");
        }
        self.remove_marker(t, import, entry).await;
        Ok(Outcome::Archived(dest))
    }

    /// The inbox file was replaced by a new one of the same name while this attempt ran: the
    /// new file stays for the next pass, and the content this attempt processed goes to its
    /// destination from the spool.
    async fn keep_replaced(
        &self,
        t: &mut AnyTransport,
        rec: &FileRecord,
        dest: &str,
        archive: bool,
    ) -> Result<Outcome, TransportError> {
        let spool = self.spool_path(rec);
        let kept = match std::fs::metadata(&spool) {
            Ok(meta) if meta.len() <= MAX_KEPT_COPY => std::fs::read(&spool).ok(),
            _ => None,
        };
        let Some(content) = kept else {
            let why = "the inbox file was replaced by a new one while this attempt ran; \
                       the new one waits for the next pass";
            let _ = self.ledger().abandon(rec.id, why);
            tracing::warn!(flow = %rec.flow, "{}: {why} (no copy of the processed content was kept)", rec.name);
            return Ok(Outcome::Waiting(why.into()));
        };
        t.put(dest, &content).await?;
        let done = if archive {
            self.ledger().archived(rec.id, &self.holder)
        } else {
            self.ledger().failed(rec.id, &self.holder)
        };
        if let Err(e) = done {
            tracing::error!("ledger: {e}");
        }
        tracing::warn!(
            flow = %rec.flow,
            "{} was replaced in the inbox while it was processed: the processed content is at {dest}, the new file waits for the next pass",
            rec.name
        );
        Ok(if archive {
            Outcome::Archived(dest.to_string())
        } else {
            Outcome::Failed(dest.to_string())
        })
    }

    async fn remove_marker(&self, t: &mut AnyTransport, import: &ImportFlow, entry: &Entry) {
        if let Some(marker) = &import.done_marker {
            let path = transport::join(&import.inbox, &settle::marker_name(marker, &entry.name));
            if let Err(e) = t.remove(&path).await {
                tracing::warn!("removing the done-marker {path}: {e}");
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn quarantine(
        &self,
        t: &mut AnyTransport,
        partner: &Partner,
        flow: &Flow,
        import: &ImportFlow,
        rec: &FileRecord,
        entry: &Entry,
        stage: Stage,
        problems: Vec<Problem>,
        counts: RecordCounts,
    ) -> Result<Outcome, TransportError> {
        t.mkdir_all(&import.error).await?;
        // A report left without its file (the file was moved back for a replay) is replaced.
        let name = free_name(t, &import.error, &entry.name, &[]).await?;
        let dest = transport::join(&import.error, &name);
        let when = jiff::Timestamp::now().to_zoned_datetime(partner.timezone.clone());
        let mut report = ErrorReport::new(
            &flow.name,
            &entry.name,
            &import.inbox,
            &import.error,
            when,
            stage,
        );
        report.attempt = rec.attempt.max(1);
        report.earlier = self
            .ledger()
            .earlier_attempts(rec.id)
            .unwrap_or_default()
            .into_iter()
            .map(|r| EarlierAttempt {
                when: jiff::Timestamp::from_millisecond(r.updated_at)
                    .unwrap_or_default()
                    .to_zoned_datetime(partner.timezone.clone()),
                outcome: r.state.as_str().to_string(),
            })
            .collect();
        report.size = entry.size;
        report.sha256 = rec.sha256.clone();
        report.counts = counts;
        report.problems = problems;
        // The whole report goes into the ledger first: a crash before the move is repaired by
        // writing it again from there.
        let text = report.render_text();
        if let Err(e) = self
            .ledger()
            .quarantining(rec.id, &self.holder, &dest, &text)
        {
            return Ok(Outcome::Waiting(e.to_string()));
        }
        t.put(&format!("{dest}.error.txt"), text.as_bytes()).await?;
        let json = serde_json::to_vec_pretty(&report.to_json()).unwrap_or_default();
        t.put(&format!("{dest}.error.json"), &json).await?;
        crash_point("reported");
        self.finish_quarantine(t, import, rec, entry, &dest, false)
            .await
    }

    /// Moves the file beside its report in `error/` and records it as failed.
    async fn finish_quarantine(
        &self,
        t: &mut AnyTransport,
        import: &ImportFlow,
        rec: &FileRecord,
        entry: &Entry,
        dest: &str,
        resumed: bool,
    ) -> Result<Outcome, TransportError> {
        // On a resumed move the report is written again from the ledger (whatever a crash
        // left at that name); a destination another file took meanwhile is given up for a
        // new name.
        let mut dest = dest.to_string();
        if resumed {
            if t.stat(&dest).await?.is_some() {
                let name = free_name(t, &import.error, &entry.name, &[]).await?;
                dest = transport::join(&import.error, &name);
                let text = rec.detail.clone().unwrap_or_default();
                if let Err(e) = self
                    .ledger()
                    .quarantining(rec.id, &self.holder, &dest, &text)
                {
                    return Ok(Outcome::Waiting(e.to_string()));
                }
            }
            let text = rec.detail.clone().unwrap_or_default();
            t.put(&format!("{dest}.error.txt"), text.as_bytes()).await?;
        }
        let dest = dest.as_str();
        let from = transport::join(&import.inbox, &entry.name);
        if replaced(t, &from, entry).await? {
            return self.keep_replaced(t, rec, dest, false).await;
        }
        move_file(t, &from, dest).await?;
        if let Err(e) = self.ledger().failed(rec.id, &self.holder) {
            tracing::error!("ledger: {e}");
        }
        self.remove_marker(t, import, entry).await;
        Ok(Outcome::Failed(dest.to_string()))
    }
}

/// Whether the inbox file is no longer the one listed (same name, other size or mtime). A file
/// already gone is not "replaced": the move that follows tells what happened.
async fn replaced(t: &mut AnyTransport, path: &str, entry: &Entry) -> Result<bool, TransportError> {
    Ok(match t.stat(path).await? {
        Some(now) => now.size != entry.size || now.mtime != entry.mtime,
        None => false,
    })
}

/// One dry-run line: the operation with the flow and file it came from.
fn dry_run_line(flow: &str, file: &str, op: &Operation) -> String {
    let mut value = serde_json::to_value(op).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("flow".into(), Value::String(flow.into()));
        map.insert("file".into(), Value::String(file.into()));
    }
    value.to_string()
}

/// Validates (XML: XSD) and maps a local file, off the async threads. Returns the operations,
/// the per-record problems and the number of records.
pub async fn check_and_map(
    import: &ImportFlow,
    file: &Path,
) -> Result<(Vec<Operation>, Vec<Problem>, u64), Early> {
    let import = import.clone();
    let file = file.to_path_buf();
    let joined = tokio::task::spawn_blocking(move || check_and_map_blocking(&import, &file)).await;
    match joined {
        Ok(result) => result,
        Err(e) => Err(Early::Wait(format!("validation worker failed: {e}"))),
    }
}

/// The blocking half of [`check_and_map`]: the operations are collected for the apply phase.
pub fn check_and_map_blocking(
    import: &ImportFlow,
    file: &Path,
) -> Result<(Vec<Operation>, Vec<Problem>, u64), Early> {
    let mut operations = Vec::new();
    let (problems, records) = check_and_stream(import, file, &mut |op| operations.push(op))?;
    Ok((operations, problems, records))
}

/// Validates and maps `file`, handing each operation to `sink` as it is made (memory does not
/// grow with the records: what `validate` uses). Returns the per-record problems and the number
/// of records.
pub fn check_and_stream(
    import: &ImportFlow,
    file: &Path,
    sink: &mut dyn FnMut(Operation),
) -> Result<(Vec<Problem>, u64), Early> {
    if let Format::Xml { schema: xsd } = &import.format {
        match schema::validate_file(xsd, file) {
            Ok(problems) if problems.is_empty() => {}
            Ok(problems) => {
                let problems = problems.into_iter().map(xml_problem).collect();
                return Err(Early::Reject(Stage::Validation, problems));
            }
            Err(e) => {
                return Err(match e.consequence() {
                    Consequence::Reject => {
                        Early::Reject(Stage::Validation, vec![Problem::new(e.to_string())])
                    }
                    Consequence::Stop => Early::Wait(format!("{e} (fix the flow's `schema`)")),
                    Consequence::Retry => Early::Wait(e.to_string()),
                });
            }
        }
    }
    match mapping::map_file(&import.format, &import.mapping, file, sink) {
        Ok(outcome) => {
            let listed = outcome.problems.len() as u64;
            let mut problems: Vec<Problem> = outcome.problems.into_iter().map(problem_of).collect();
            if outcome.problem_count > listed {
                let more = outcome.problem_count - listed;
                problems.push(Problem::new(format!(
                    "… and {more} more records with problems, not listed"
                )));
            }
            Ok((problems, outcome.records))
        }
        Err(e) => match e.consequence() {
            Consequence::Retry => Err(Early::Wait(e.to_string())),
            Consequence::Stop => Err(Early::Wait(format!("{e} (fix the flow's mapping)"))),
            Consequence::Reject => Err(Early::Reject(
                Stage::Mapping,
                vec![Problem::new(e.to_string())],
            )),
        },
    }
}

fn odoo_problem(f: RecordFailure) -> Problem {
    let mut problem = Problem::new(f.message).record(f.record).at(f.line, None);
    if let Some(field) = f.field {
        problem = problem.field(field);
    }
    if let Some(value) = f.value {
        problem = problem.value(value);
    }
    if let Some(exception) = f.exception {
        problem = problem.exception(exception);
    }
    problem
}

fn xml_problem(p: XmlProblem) -> Problem {
    let problem = Problem::new(p.message);
    match p.line {
        Some(line) => problem.at(line, p.column),
        None => problem,
    }
}

fn problem_of(p: MapProblem) -> Problem {
    let mut problem = Problem::new(p.message).record(p.record).at(p.line, None);
    if let Some(field) = p.field {
        problem = problem.field(field);
    }
    if let Some(value) = p.value {
        problem = problem.value(value);
    }
    problem
}
