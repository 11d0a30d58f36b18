//! One pass over import flows: for each partner one session; per flow one listing, the
//! completeness rules, then each complete file is claimed, fetched, validated, mapped, applied
//! and finished. Operations of all files taken in the pass are applied together, so records of
//! several files share Odoo batches while outcomes, reports and the ledger stay per file.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::Instrument;

use super::claim::{Early, Mapping, Prepared};
use crate::config::{Config, Direction, Flow, ImportFlow, Partner};
use crate::error::Consequence;
use crate::ledger::{FileRecord, Ledger, State, holder_name};
use crate::odoo::client::OdooClient;
use crate::report::{Problem, RecordCounts, Stage};
use crate::transport::pool::Sessions;
use crate::transport::{self, AnyTransport, Entry, Transport, TransportError};

/// Files validated and mapped at once beside the download of the next (the machine's cores
/// are few: more would only queue).
const MAPPED_AHEAD: usize = 2;

/// Where a file ended up after this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// In the archive, at this path.
    Archived(String),
    /// In `error/`, at this path, with its report beside it.
    Failed(String),
    /// Still in the inbox: a transient failure; retried on the next pass.
    Waiting(String),
    /// Dry run: still in the inbox; a run without dry_run would archive it at this path.
    WouldArchive(String),
    /// Dry run: still in the inbox; a run without dry_run would move it to this path in
    /// `error/` with this report beside it.
    WouldFail { to: String, report: String },
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
    /// What export flows did with each record they took.
    pub records: Vec<crate::export::pass::RecordResult>,
}

impl PassSummary {
    /// The exit status of `run --once`: 0 when every taken file was archived and every
    /// record published (in a dry run: would be); 1 when a file went (would go) to `error/`,
    /// a record's document was refused, or work was left waiting by a failure.
    pub fn exit_code(&self) -> i32 {
        use crate::export::pass::RecordOutcome;
        let bad = self
            .files
            .iter()
            .any(|f| !matches!(f.outcome, Outcome::Archived(_) | Outcome::WouldArchive(_)));
        let bad_record = self.records.iter().any(|r| {
            !matches!(
                r.outcome,
                RecordOutcome::Published(_) | RecordOutcome::WouldPublish { .. }
            )
        });
        i32::from(bad || bad_record || !self.stopped.is_empty() || !self.unread.is_empty())
    }
}

/// Runs passes: holds the configuration, the ledger and this process's lease holder name.
pub struct Runner {
    pub(crate) config: Arc<Config>,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) holder: String,
    /// Where dry-run operations are printed (JSON lines).
    pub(crate) out: Arc<Mutex<Box<dyn Write + Send>>>,
    /// The Odoo connection, opened when the first file needs it.
    pub(crate) odoo: tokio::sync::OnceCell<OdooClient>,
    /// Sessions to partners: one per pass (`run --once`) or kept between polls (the daemon).
    pub(super) sessions: Sessions,
    /// Set when the process is stopping: passes take no new file, finish those in hand.
    pub(super) stopping: AtomicBool,
    /// Files a folder watcher saw closed after writing, by (flow, name): (size, mtime). A
    /// listing that finds the file unchanged counts it as settled.
    pub(super) closed: Mutex<HashMap<(String, String), (u64, i64)>>,
    /// One lock per export flow: a webhook's export and a scheduled pass of the same flow
    /// never run at once.
    pub(crate) export_runs: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// How the completeness rule is applied in this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `run --once`: list, wait `settle` for the files that need it, list again.
    Twice,
    /// A daemon poll: one listing; the ledger remembers earlier ones.
    Once,
}

/// Test hook for crash safety: when `EDI_BRIDGE_CRASH_AT` names this point, the process kills
/// itself with SIGKILL right here — no destructors, no flush, like `kill -9` from outside.
pub(crate) fn crash_point(point: &str) {
    if std::env::var("EDI_BRIDGE_CRASH_AT").is_ok_and(|p| p == point) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// The span of one file's work: its flow, partner and name on every line logged inside.
pub(super) fn file_span(flow: &Flow, name: &str) -> tracing::Span {
    tracing::info_span!("file", flow = %flow.name, partner = %flow.partner, file = %name)
}

pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Runner {
    pub fn new(config: Arc<Config>, ledger: Ledger, out: Box<dyn Write + Send>) -> Runner {
        Runner {
            config,
            ledger: Arc::new(ledger),
            holder: holder_name(),
            out: Arc::new(Mutex::new(out)),
            odoo: tokio::sync::OnceCell::new(),
            sessions: Sessions::per_pass(),
            stopping: AtomicBool::new(false),
            closed: Mutex::default(),
            export_runs: Mutex::new(BTreeMap::new()),
        }
    }

    /// The same runner with these sessions (the daemon keeps them open between polls).
    pub fn with_sessions(mut self, sessions: Sessions) -> Runner {
        self.sessions = sessions;
        self
    }

    /// The sessions to partners.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Stops taking new files: passes under way finish the files they hold and end.
    pub fn stop_taking(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    pub(super) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// A folder watcher saw `name` in `flow`'s inbox closed after writing, at this size and
    /// mtime: the next listing that finds it unchanged takes it without waiting `settle`
    /// (the other completeness rules still apply).
    pub fn closed_after_write(&self, flow: &str, name: &str, size: u64, mtime: i64) {
        let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a signal that no listing consumed is only a hint.
        if closed.len() > 10_000 {
            closed.clear();
        }
        closed.insert((flow.to_string(), name.to_string()), (size, mtime));
    }

    /// Whether `entry` of `flow` was seen closed after writing as it is now. A signal about
    /// an earlier state of the file is dropped.
    pub(super) fn was_closed(&self, flow: &str, entry: &Entry) -> bool {
        let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        let key = (flow.to_string(), entry.name.clone());
        match closed.get(&key) {
            Some(&(size, mtime)) if size == entry.size && mtime == entry.mtime => true,
            Some(_) => {
                closed.remove(&key);
                false
            }
            None => false,
        }
    }

    /// The ledger, for commands that read it.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// One pass over the named flows (all when `names` is empty): import flows and export
    /// flows side by side.
    pub async fn run_once(&self, names: &[String], listing: Listing) -> PassSummary {
        let mut summary = PassSummary::default();
        self.release_dead_leases();
        self.sweep_spool();
        let mut by_partner: BTreeMap<&str, Vec<(&Flow, &ImportFlow)>> = BTreeMap::new();
        let mut exports: Vec<&Flow> = Vec::new();
        for flow in self.config.flows.values() {
            if !names.is_empty() && !names.iter().any(|n| n == &flow.name) {
                continue;
            }
            match &flow.direction {
                Direction::Import(import) => by_partner
                    .entry(&flow.partner)
                    .or_default()
                    .push((flow, import)),
                Direction::Export(_) => exports.push(flow),
            }
        }
        let mut exported = PassSummary::default();
        let export_pass = self.export_pass(&exports, &mut exported);
        // Partners are independent: their passes run side by side, one session each.
        let passes = by_partner
            .into_iter()
            .map(|(partner_name, flows)| async move {
                let partner = &self.config.partners[partner_name];
                let mut part = PassSummary::default();
                self.partner_pass(partner, &flows, listing, &mut part).await;
                part
            });
        let (parts, ()) =
            futures::future::join(futures::future::join_all(passes), export_pass).await;
        for part in parts {
            summary.files.extend(part.files);
            summary.stopped.extend(part.stopped);
            summary.not_ready.extend(part.not_ready);
            summary.unread.extend(part.unread);
        }
        summary.records.extend(exported.records);
        summary.stopped.extend(exported.stopped);
        summary.not_ready.extend(exported.not_ready);
        summary
    }

    pub(super) async fn partner_pass(
        &self,
        partner: &Partner,
        flows: &[(&Flow, &ImportFlow)],
        listing: Listing,
        summary: &mut PassSummary,
    ) {
        let mut session = match self.sessions.checkout(partner).await {
            Ok(s) => s,
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
        let t = &mut session.transport;
        let mut ready: Vec<(&Flow, &ImportFlow, Vec<Entry>)> = Vec::new();
        let mut wait_until: Option<i64> = None;
        for (flow, import) in flows {
            // A dry run moves and removes nothing, so it leaves repairs to a real run.
            let repaired = if self.config.odoo.dry_run {
                Ok(())
            } else {
                self.repair(t, flow, import).await
            };
            if let Err(e) = repaired {
                summary
                    .stopped
                    .push((flow.name.clone(), format!("repairing earlier work: {e}")));
                continue;
            }
            match self.assess_inbox(t, flow, import, summary, false).await {
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
                match self.assess_inbox(t, flow, import, summary, true).await {
                    Ok((again, _)) => *files = again,
                    Err(e) => summary.stopped.push((flow.name.clone(), e)),
                }
            }
        }
        for (flow, import, files) in ready {
            self.flow_files(t, partner, flow, import, files, summary)
                .await;
        }
        self.sessions.checkin(partner, session).await;
    }

    pub(super) async fn flow_files(
        &self,
        t: &mut AnyTransport,
        partner: &Partner,
        flow: &Flow,
        import: &ImportFlow,
        files: Vec<Entry>,
        summary: &mut PassSummary,
    ) {
        let dry_run = self.config.odoo.dry_run;
        let mut prepared = Vec::new();
        // Files apply in the order the partner wrote them: once one must wait (held by another
        // run, a download that failed), the newer files of the flow wait behind it.
        let mut held_back: Option<String> = None;
        let mut mapping: VecDeque<Mapping> = VecDeque::new();
        for entry in files {
            if let Some(older) = &held_back {
                summary.not_ready.push((
                    flow.name.clone(),
                    entry.name.clone(),
                    format!("waits for {older}, written before it, to be taken first"),
                ));
                continue;
            }
            if self.is_stopping() {
                summary.not_ready.push((
                    flow.name.clone(),
                    entry.name.clone(),
                    "edi-bridge is stopping; taken by the next run".into(),
                ));
                continue;
            }
            let claimed = self.ledger().claim(
                &flow.name,
                &entry.name,
                entry.size,
                entry.mtime,
                &self.holder,
                self.config.ledger.lease,
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
                    held_back = Some(entry.name.clone());
                    continue;
                }
                Err(e) => {
                    summary.stopped.push((flow.name.clone(), e.to_string()));
                    // The files already taken are left to their leases: no work runs on.
                    for m in mapping.drain(..) {
                        let _ = m.task.await;
                    }
                    return;
                }
            };
            crash_point("claimed");
            // A poison file: its tries keep dying before they finish. Set aside in error/ so
            // the rest of the flow goes on (a dry run leaves it to a real run).
            if !dry_run
                && rec.deaths >= import.max_attempts
                && matches!(rec.state, State::Claimed | State::Fetched | State::Applying)
            {
                let outcome = self
                    .set_aside(t, partner, flow, import, &rec, &entry)
                    .instrument(file_span(flow, &entry.name))
                    .await;
                summary
                    .files
                    .push(self.settle_outcome(flow, &rec, &entry, outcome));
                continue;
            }
            // An attempt an earlier run left unfinished: a dry run gives it back as it was.
            let resumed = rec.tries > 1;
            // A file whose Odoo writes completed before a crash is only archived.
            if matches!(rec.state, State::Applied | State::Archiving) {
                let outcome = self
                    .to_archive(t, partner, import, &rec, &entry)
                    .instrument(file_span(flow, &entry.name))
                    .await;
                summary
                    .files
                    .push(self.settle_outcome(flow, &rec, &entry, outcome));
                continue;
            }
            // A move to error/ was under way: its report is in the ledger.
            if let (State::Quarantining, Some(dest)) = (rec.state, rec.destination.clone()) {
                let outcome = if dry_run {
                    self.dry_run_done(&rec, resumed, "dry run: would go to error/");
                    Ok(Outcome::WouldFail {
                        to: dest,
                        report: rec.detail.clone().unwrap_or_default(),
                    })
                } else {
                    self.finish_quarantine(t, import, &rec, &entry, &dest, true)
                        .instrument(file_span(flow, &entry.name))
                        .await
                };
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
            let span = file_span(flow, &entry.name);
            match self
                .fetch_and_map(t, flow, import, rec, entry)
                .instrument(span.clone())
                .await
            {
                Ok(m) => {
                    mapping.push_back(m);
                    // Files are validated and mapped on blocking threads while the next one
                    // downloads; at most this many at once, so memory and CPU stay bounded.
                    let ahead = MAPPED_AHEAD - 1;
                    let ctx = (partner, flow, import);
                    self.take_mapped(
                        t,
                        ctx,
                        &mut mapping,
                        ahead,
                        &mut held_back,
                        &mut prepared,
                        summary,
                    )
                    .await;
                }
                Err((rec, entry, early)) => {
                    self.early(
                        t,
                        partner,
                        flow,
                        import,
                        rec,
                        entry,
                        early,
                        &mut held_back,
                        summary,
                    )
                    .instrument(span)
                    .await;
                }
            }
        }
        let ctx = (partner, flow, import);
        self.take_mapped(
            t,
            ctx,
            &mut mapping,
            0,
            &mut held_back,
            &mut prepared,
            summary,
        )
        .await;
        if prepared.is_empty() {
            return;
        }
        // Files fetched early in a long pass keep their claims until they are finished; one
        // whose claim was lost meanwhile leaves the pass (another run may have it now).
        for p in &mut prepared {
            if let Err(e) = self.renew(&p.rec) {
                p.left = Some(e);
            }
        }
        if let Err((why, stop)) = self.apply(flow, import, &mut prepared).await {
            if stop {
                summary.stopped.push((flow.name.clone(), why.clone()));
            }
            for p in prepared {
                p.discard();
                if let Some(left) = p.left.clone() {
                    self.left_pass(flow, &p, left, summary);
                    continue;
                }
                let outcome = Ok(self.wait(&p.rec, why.clone()));
                summary
                    .files
                    .push(self.settle_outcome(flow, &p.rec, &p.entry, outcome));
            }
            return;
        }
        for p in prepared {
            if let Some(left) = p.left.clone() {
                p.discard();
                self.left_pass(flow, &p, left, summary);
                continue;
            }
            let outcome = if p.problems.is_empty() {
                self.to_archive(t, partner, import, &p.rec, &p.entry)
                    .instrument(file_span(flow, &p.entry.name))
                    .await
            } else {
                let failed: HashSet<u64> = p.problems.iter().filter_map(|x| x.record).collect();
                let failed = failed.len() as u64
                    + p.problems.iter().filter_map(|x| x.not_listed).sum::<u64>();
                let counts = if p.applied.is_empty() {
                    RecordCounts::nothing_applied(Some(p.records), failed)
                } else {
                    RecordCounts::with_applied_ranges(p.records, p.applied.ranges(), failed)
                };
                self.to_error(
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
                .instrument(file_span(flow, &p.entry.name))
                .await
            };
            p.discard();
            summary
                .files
                .push(self.settle_outcome(flow, &p.rec, &p.entry, outcome));
        }
    }

    /// Moves a poison file to `error/` with a report that says how many tries died.
    async fn set_aside(
        &self,
        t: &mut AnyTransport,
        partner: &Partner,
        flow: &Flow,
        import: &ImportFlow,
        rec: &FileRecord,
        entry: &Entry,
    ) -> Result<Outcome, TransportError> {
        let mut why = format!(
            "processing this file stopped {} times without finishing (edi-bridge was killed, or \
             ran out of time and lost its claim), and the flow allows {} (`max_attempts`)",
            rec.deaths, import.max_attempts
        );
        if rec.state == State::Applying {
            why.push_str(
                "; some of its records may have been applied in Odoo before it stopped, and a \
                 replay applies them again, safely",
            );
        }
        let problems = vec![Problem::new(why)];
        let counts = RecordCounts::nothing_applied(None, 0);
        tracing::warn!(flow = %flow.name, "{}: set aside after {} tries died", entry.name, rec.deaths);
        self.quarantine(
            t,
            partner,
            flow,
            import,
            rec,
            entry,
            Stage::Poison,
            problems,
            counts,
        )
        .await
    }

    /// A file that left the pass unfinished (its claim lost, or a ledger write failed): it
    /// stays in the inbox untouched, for the run that holds it now or for the next pass.
    fn left_pass(&self, flow: &Flow, p: &Prepared, why: String, summary: &mut PassSummary) {
        tracing::warn!(flow = %flow.name, "{} left this pass unfinished: {why}", p.entry.name);
        summary
            .unread
            .push((flow.name.clone(), p.entry.name.clone(), why));
    }

    /// Collects the files whose validation and mapping are done, oldest first, until at most
    /// `ahead` are still under way: each is ready for Odoo, or what became of it early. A file
    /// an older one of the flow waits behind is not applied in this pass.
    #[allow(clippy::too_many_arguments)]
    async fn take_mapped(
        &self,
        t: &mut AnyTransport,
        (partner, flow, import): (&Partner, &Flow, &ImportFlow),
        mapping: &mut VecDeque<Mapping>,
        ahead: usize,
        held_back: &mut Option<String>,
        prepared: &mut Vec<Prepared>,
        summary: &mut PassSummary,
    ) {
        while mapping.len() > ahead {
            let Some(m) = mapping.pop_front() else {
                return;
            };
            match self.mapped(import, m).await {
                Ok(p) => match held_back.as_ref() {
                    None => prepared.push(p),
                    Some(older) => {
                        let why =
                            format!("waits for {older}, written before it, to be taken first");
                        p.discard();
                        let outcome = Ok(self.wait(&p.rec, why));
                        summary
                            .files
                            .push(self.settle_outcome(flow, &p.rec, &p.entry, outcome));
                    }
                },
                Err((rec, entry, early)) => {
                    self.early(
                        t, partner, flow, import, rec, entry, early, held_back, summary,
                    )
                    .await;
                }
            }
        }
    }

    /// A file whose fate was decided before Odoo: it waits (and holds back the newer files of
    /// its flow), or goes to `error/`.
    #[allow(clippy::too_many_arguments)]
    async fn early(
        &self,
        t: &mut AnyTransport,
        partner: &Partner,
        flow: &Flow,
        import: &ImportFlow,
        rec: FileRecord,
        entry: Entry,
        early: Early,
        held_back: &mut Option<String>,
        summary: &mut PassSummary,
    ) {
        let outcome = match early {
            Early::Wait(reason) => {
                held_back.get_or_insert_with(|| entry.name.clone());
                Ok(self.wait(&rec, reason))
            }
            Early::Reject(stage, problems) => {
                let failed = problems.len() as u64;
                let counts = RecordCounts::nothing_applied(None, failed);
                self.to_error(
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

    /// A transient failure while finishing (SFTP gone) leaves the file waiting.
    pub(super) fn settle_outcome(
        &self,
        flow: &Flow,
        rec: &FileRecord,
        entry: &Entry,
        outcome: Result<Outcome, TransportError>,
    ) -> FileOutcome {
        let _span = file_span(flow, &entry.name).entered();
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
            Outcome::WouldArchive(to) => {
                tracing::info!(flow = %flow.name, "dry run: {} stays in the inbox; it would be archived to {to}", entry.name)
            }
            Outcome::WouldFail { to, .. } => {
                tracing::info!(flow = %flow.name, "dry run: {} stays in the inbox; it would go to {to} with an error report", entry.name)
            }
        }
        FileOutcome {
            flow: flow.name.clone(),
            name: entry.name.clone(),
            outcome,
        }
    }

    pub(super) fn wait(&self, rec: &FileRecord, reason: String) -> Outcome {
        if let Err(e) = self.ledger().waiting(rec.id, &self.holder, &reason) {
            tracing::error!("ledger: {e}");
        }
        Outcome::Waiting(reason)
    }
}
