//! `edi-bridge run`: the daemon. Every flow runs on its schedule (`every` or `cron` in the
//! partner's timezone), when a watched inbox shows a new file, or when Odoo's webhook calls;
//! runs of one flow never overlap (a scheduled run that comes due while the previous one is
//! still going is skipped and counted), and each run holds the flow's lock in the ledger.
//! Sessions to partners are kept open between polls (see [`crate::transport::pool`]). An HTTP
//! server answers `/healthz`, `/metrics`, `/status` and `/hooks/<flow>`. SIGTERM or SIGINT stop
//! it: no new file is taken, the files in hand are finished (up to `[server] stop_timeout`),
//! then it exits 0.
//!
//! The parts: `schedule` when a flow is due; `watch` the folder watcher and rescans; `http`
//! the endpoints; `hooks` what a webhook does; `metrics` the Prometheus metrics; `status` what
//! `status` and `/status` show.

pub mod hooks;
pub mod http;
pub mod metrics;
pub mod schedule;
pub mod status;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Notify, watch as tokio_watch};
use tracing::Instrument;

use crate::config::Config;
use crate::import::pass::{Listing, Outcome, PassSummary, Runner};
use crate::ledger::{Ledger, RunTaken, holder_name};
use crate::transport::pool::Sessions;
use metrics::Metrics;

/// The flow-run lock's lease in the ledger; renewed every third of it while the run goes on.
const RUN_LEASE: Duration = Duration::from_secs(120);
/// How often the scheduler's heartbeat beats; `/healthz` says 503 when it has not for
/// [`STUCK_HEARTBEAT`].
const HEARTBEAT: Duration = Duration::from_secs(1);
const STUCK_HEARTBEAT: Duration = Duration::from_secs(15);
/// A flow run going on longer than this makes `/healthz` answer 503.
const STUCK_RUN: Duration = Duration::from_secs(60 * 60);

pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Why a flow runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Schedule,
    /// A watched inbox showed a file, a rescan found one, or a webhook asked for a poll.
    Wake,
}

/// One flow's place in the daemon.
struct FlowSlot {
    /// Held by the run going on (in this process).
    lock: Mutex<()>,
    /// Asks the flow's loop for a run as soon as it can (several asks make one run).
    wake: Notify,
    /// When (unix ms) the run going on started; 0 when none.
    running_since: AtomicI64,
}

/// The running daemon, shared by its tasks.
pub struct Daemon {
    pub config: Arc<Config>,
    pub runner: Arc<Runner>,
    pub metrics: Metrics,
    flows: BTreeMap<String, FlowSlot>,
    holder: String,
    stopping: AtomicBool,
    stop: tokio_watch::Sender<bool>,
    heartbeat_ms: AtomicI64,
    /// Exports asked for by webhooks, to the task that runs them.
    hooks: tokio::sync::mpsc::UnboundedSender<hooks::Export>,
}

impl Daemon {
    /// A daemon over `config` and `ledger` (not started).
    pub fn new(
        config: Arc<Config>,
        ledger: Ledger,
        hooks: tokio::sync::mpsc::UnboundedSender<hooks::Export>,
    ) -> Arc<Daemon> {
        Arc::new({
            let metrics = Metrics::new();
            let errors = metrics.sftp_errors.clone();
            let sessions = Sessions::keep(Box::new(move |partner: &str| {
                errors
                    .get_or_create(&metrics::PartnerLabel {
                        partner: partner.to_string(),
                    })
                    .inc();
            }));
            // Every flow shows in the counters from the start (at 0), not only once it moved.
            for flow in config.flows.keys() {
                let label = metrics::FlowLabel { flow: flow.clone() };
                let _ = metrics.skipped.get_or_create(&label);
            }
            let runner = Runner::new(config.clone(), ledger, Box::new(std::io::stdout()))
                .with_sessions(sessions);
            let flows = config
                .flows
                .keys()
                .map(|name| {
                    (
                        name.clone(),
                        FlowSlot {
                            lock: Mutex::new(()),
                            wake: Notify::new(),
                            running_since: AtomicI64::new(0),
                        },
                    )
                })
                .collect();
            Daemon {
                config,
                runner: Arc::new(runner),
                metrics,
                flows,
                holder: holder_name(),
                stopping: AtomicBool::new(false),
                stop: tokio_watch::channel(false).0,
                heartbeat_ms: AtomicI64::new(now_ms()),
                hooks,
            }
        })
    }

    pub fn ledger(&self) -> &Ledger {
        self.runner.ledger()
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Asks `flow` for a run as soon as it can; false for an unknown flow.
    pub fn wake(&self, flow: &str) -> bool {
        match self.flows.get(flow) {
            Some(slot) => {
                slot.wake.notify_one();
                true
            }
            None => false,
        }
    }

    /// Asks for record `id` of export flow `flow` to be exported now (see [`hooks`]).
    pub fn request_export(&self, flow: &str, id: i64) {
        let _ = self.hooks.send(hooks::Export {
            flow: flow.to_string(),
            id,
        });
    }

    /// Why the daemon is not healthy, if it is not.
    pub fn unhealthy(&self) -> Option<String> {
        if self.is_stopping() {
            return Some("stopping".into());
        }
        let now = now_ms();
        let beat = now - self.heartbeat_ms.load(Ordering::SeqCst);
        if beat > STUCK_HEARTBEAT.as_millis() as i64 {
            return Some(format!("the scheduler has not run for {} s", beat / 1000));
        }
        for (name, slot) in &self.flows {
            let since = slot.running_since.load(Ordering::SeqCst);
            if since > 0 && now - since > STUCK_RUN.as_millis() as i64 {
                return Some(format!(
                    "flow {name} has been running for {} min",
                    (now - since) / 60_000
                ));
            }
        }
        None
    }

    /// Runs `flow` now, after the run going on in this process if any (waits for it). Returns
    /// `None` when another instance holds the flow or the daemon is stopping.
    pub async fn run_flow(&self, flow: &str, cause: Cause) -> Option<PassSummary> {
        let slot = self.flows.get(flow)?;
        let guard = slot.lock.lock().await;
        let out = self.run_locked(flow, slot, cause).await;
        drop(guard);
        out
    }

    async fn run_locked(&self, flow: &str, slot: &FlowSlot, cause: Cause) -> Option<PassSummary> {
        if self.is_stopping() {
            return None;
        }
        let ledger = self.ledger();
        match ledger.take_flow_run(flow, &self.holder, RUN_LEASE, now_ms()) {
            Ok(RunTaken::Taken | RunTaken::Mine) => {}
            Ok(RunTaken::Held(other)) => {
                tracing::info!(flow, holder = %other, "not run: another instance is running it");
                return None;
            }
            Err(e) => {
                tracing::error!(flow, "not run: {e}");
                return None;
            }
        }
        let started = now_ms();
        slot.running_since.store(started, Ordering::SeqCst);
        tracing::debug!(flow, cause = ?cause, "run starts");
        let span = tracing::info_span!("run", flow, cause = ?cause);
        let names = [flow.to_string()];
        let pass = self.runner.run_once(&names, Listing::Twice);
        // The lock's lease is renewed while the pass goes on.
        let renew = async {
            loop {
                tokio::time::sleep(RUN_LEASE / 3).await;
                match ledger.renew_flow_run(flow, &self.holder, RUN_LEASE, now_ms()) {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(flow, "the run lock was taken over"),
                    Err(e) => tracing::warn!(flow, "renewing the run lock: {e}"),
                }
            }
        };
        let summary = tokio::select! {
            s = pass.instrument(span.clone()) => s,
            _ = renew => unreachable!("the renewal never ends"),
        };
        slot.running_since.store(0, Ordering::SeqCst);
        let _enter = span.enter();
        let (result, detail) = result_of(&summary);
        log_run(flow, &summary, result, detail.as_deref());
        self.metrics.count_pass(&summary, ledger);
        self.metrics
            .runs
            .get_or_create(&metrics::FlowOutcome {
                flow: flow.to_string(),
                outcome: result.into(),
            })
            .inc();
        // Said before the lock is given back, so the logs of instances sharing the ledger
        // show each run between its start and its end.
        tracing::debug!(flow, ms = now_ms() - started, result, "run done");
        if let Err(e) =
            ledger.finish_flow_run(flow, &self.holder, result, detail.as_deref(), now_ms())
        {
            tracing::error!(flow, "recording the run: {e}");
        }
        Some(summary)
    }

    /// A flow's loop: waits for its next due time or a wake-up, runs, counts what it skipped.
    async fn flow_loop(self: Arc<Daemon>, name: String) {
        let flow = &self.config.flows[&name];
        let zone = self.config.partners[&flow.partner].timezone.clone();
        let slot = &self.flows[&name];
        let mut stop = self.stop.subscribe();
        // `every` flows poll once at start, then every interval; cron flows wait for their
        // time.
        let mut due = flow.schedule.as_ref().and_then(|s| match s {
            crate::config::Schedule::Every(_) => Some(now_ms()),
            crate::config::Schedule::Cron(_) => schedule::next_after(s, &zone, now_ms()),
        });
        loop {
            if let Err(e) = self.ledger().set_next_run(&name, due) {
                tracing::warn!(flow = %name, "recording the next run: {e}");
            }
            let sleep = due.map(|d| schedule::until(d, now_ms()));
            let cause = tokio::select! {
                _ = async { tokio::time::sleep(sleep.unwrap_or_default()).await }, if sleep.is_some() => Cause::Schedule,
                _ = slot.wake.notified() => Cause::Wake,
                _ = stop.changed() => break,
            };
            if self.is_stopping() {
                break;
            }
            let ran_from = due;
            let run_started = now_ms();
            match cause {
                Cause::Schedule => match slot.lock.try_lock() {
                    Ok(guard) => {
                        self.run_locked(&name, slot, cause).await;
                        drop(guard);
                    }
                    // A hook's export holds the flow: this due time is skipped.
                    Err(_) => self.skipped(&name, 1),
                },
                Cause::Wake => {
                    self.run_flow(&name, cause).await;
                }
            }
            // Due times that passed while the run went on were skipped; the next one counts
            // from the schedule, not from the end of the run.
            if let (Some(schedule), Some(d)) = (&flow.schedule, ran_from) {
                let end = now_ms();
                if cause == Cause::Schedule {
                    let (n, next) = schedule::due_between(schedule, &zone, d, end);
                    self.skipped(&name, n);
                    due = next;
                } else if d <= end {
                    // A due time already past when this run started is served by it; one
                    // that came while it went on was skipped.
                    let (n, next) = schedule::due_between(schedule, &zone, d, end);
                    self.skipped(&name, n + u64::from(d > run_started));
                    due = next;
                }
            }
        }
        tracing::debug!(flow = %name, "flow loop ended");
    }

    fn skipped(&self, flow: &str, n: u64) {
        if n == 0 {
            return;
        }
        tracing::warn!(
            flow,
            skipped = n,
            "a run was still going when the next was due: skipped"
        );
        self.metrics
            .skipped
            .get_or_create(&metrics::FlowLabel {
                flow: flow.to_string(),
            })
            .inc_by(n);
        if let Err(e) = self.ledger().count_skipped(flow, n) {
            tracing::warn!(flow, "counting a skipped run: {e}");
        }
    }

    /// Starts stopping: no new file is taken; loops end after their run.
    pub fn begin_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.runner.stop_taking();
        let _ = self.stop.send(true);
    }

    /// A receiver that changes when the daemon starts stopping.
    pub fn stopped(&self) -> tokio_watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

/// `ok` when every taken file was archived; `stopped` when a flow or partner could not run;
/// `failed` when a file went to error/ or work was left waiting. With the first problem.
fn result_of(summary: &PassSummary) -> (&'static str, Option<String>) {
    if let Some((_, why)) = summary.stopped.first() {
        return ("stopped", Some(why.clone()));
    }
    if summary.exit_code() == 0 {
        return ("ok", None);
    }
    let detail = summary
        .files
        .iter()
        .find_map(|f| match &f.outcome {
            Outcome::Failed(to) => Some(format!("{} went to {to}", f.name)),
            Outcome::Waiting(why) => Some(format!("{} waits: {why}", f.name)),
            _ => None,
        })
        .or_else(|| {
            summary
                .unread
                .first()
                .map(|(_, file, why)| format!("{file} waits: {why}"))
        });
    ("failed", detail)
}

/// One line for a run that took files or did not go well (the pass logs each file).
fn log_run(flow: &str, summary: &PassSummary, result: &str, detail: Option<&str>) {
    let count = |f: fn(&Outcome) -> bool| summary.files.iter().filter(|x| f(&x.outcome)).count();
    let archived = count(|o| matches!(o, Outcome::Archived(_) | Outcome::WouldArchive(_)));
    let failed = count(|o| matches!(o, Outcome::Failed(_) | Outcome::WouldFail { .. }));
    let waiting = count(|o| matches!(o, Outcome::Waiting(_))) + summary.unread.len();
    match (result, detail) {
        ("ok", _) if summary.files.is_empty() => {}
        ("ok", _) => tracing::info!(flow, archived, "run ended"),
        (_, Some(detail)) => {
            tracing::warn!(
                flow,
                archived,
                failed,
                waiting,
                result,
                "run ended: {detail}"
            )
        }
        (_, None) => tracing::warn!(flow, archived, failed, waiting, result, "run ended"),
    }
}

/// Runs the daemon until SIGTERM or SIGINT; the exit status (0 after a clean stop, 2 when it
/// cannot start).
pub async fn run(config: Arc<Config>, ledger: Ledger) -> u8 {
    // A pass holds non-`Send` state across its awaits (its Odoo batches share caches), so the
    // runs live on one thread of the runtime; their heavy work (validation, mapping) runs on
    // blocking threads, the HTTP server on the others.
    tokio::task::LocalSet::new()
        .run_until(run_local(config, ledger))
        .await
}

async fn run_local(config: Arc<Config>, ledger: Ledger) -> u8 {
    let (hook_tx, hook_rx) = tokio::sync::mpsc::unbounded_channel();
    let daemon = Daemon::new(config.clone(), ledger, hook_tx);
    let listener = match tokio::net::TcpListener::bind(config.server.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "error: server.listen: cannot listen on {}: {e}",
                config.server.listen
            );
            return 2;
        }
    };
    let addr = listener.local_addr().ok();
    let mut tasks = tokio::task::JoinSet::new();
    for name in config.flows.keys() {
        tasks.spawn_local(daemon.clone().flow_loop(name.clone()));
    }
    let hooks = tokio::task::spawn_local(hooks::dispatch(daemon.clone(), hook_rx));
    let watcher = watch::start(daemon.clone());
    let http = tokio::spawn(http::serve(daemon.clone(), listener));
    // The heartbeat beats on the runs' thread, so it stops when they are stuck; idle sessions
    // are closed in time.
    let beat = {
        let daemon = daemon.clone();
        tokio::task::spawn_local(async move {
            let mut n = 0u64;
            loop {
                daemon.heartbeat_ms.store(now_ms(), Ordering::SeqCst);
                tokio::time::sleep(HEARTBEAT).await;
                n += 1;
                if n.is_multiple_of(30) {
                    daemon.runner.sessions().close_idle(false).await;
                }
            }
        })
    };
    tracing::info!(
        flows = config.flows.len(),
        listen = %addr.map(|a| a.to_string()).unwrap_or_default(),
        "edi-bridge is running"
    );
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);

    let signal = wait_for_signal().await;
    tracing::info!("{signal}: stopping — no new file is taken, the files in hand are finished");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    daemon.begin_stop();
    drop(watcher);
    let wait = config.server.stop_timeout;
    let finished = tokio::time::timeout(wait, async {
        while tasks.join_next().await.is_some() {}
        hooks::wait_idle().await;
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            "stop: runs still going after {} s; leaving them (their files stay claimed in the ledger and are resumed by the next start)",
            wait.as_secs()
        );
    }
    daemon.runner.sessions().close_idle(true).await;
    http.abort();
    beat.abort();
    hooks.abort();
    tracing::info!("edi-bridge stopped");
    0
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
