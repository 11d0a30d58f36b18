//! What `POST /hooks/<flow>` does once the request is accepted: for an import flow, a poll
//! now; for an export flow, that record exported now — [`export_now`], the one place the
//! webhook reaches the export pipeline.
//!
//! Odoo 17 and 18 post the webhook from inside the transaction that changed the record, before
//! it commits (19 after): the record may not be visible yet, or not match the flow's domain
//! yet. So an export that finds nothing to do is tried again a few times over a few seconds
//! ([`REREAD`]) before the record is left to the flow's schedule.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tracing::Instrument;

use super::Daemon;
use crate::export::pass::{IdOutcome, RecordOutcome, RecordResult};

/// Waits before each new read of a record the webhook announced: ~3.5 s in all.
pub const REREAD: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_millis(1750),
];

/// Hook work still going (a stop waits for it).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Waits until no hook work is going on.
pub async fn wait_idle() {
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct InFlight;

impl InFlight {
    fn new() -> InFlight {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An import flow's hook: a poll of the flow now (after its run going on, if any).
pub fn poll_now(daemon: &Daemon, flow: &str) -> bool {
    daemon.wake(flow)
}

/// What one try at exporting the announced record gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tried {
    /// Done with it: exported, or nothing more a try can do.
    Done,
    /// Not visible or not matching the flow's domain yet: read it again later.
    NotYet,
}

/// An export a webhook asked for.
#[derive(Debug, Clone)]
pub struct Export {
    pub flow: String,
    pub id: i64,
}

/// Runs the exports webhooks ask for, each in its own task beside the flows' runs.
pub async fn dispatch(daemon: Arc<Daemon>, mut rx: tokio::sync::mpsc::UnboundedReceiver<Export>) {
    while let Some(Export { flow, id }) = rx.recv().await {
        let guard = InFlight::new();
        let span = tracing::info_span!("hook", flow = %flow, id);
        let daemon = daemon.clone();
        tokio::task::spawn_local(
            async move {
                let _guard = guard;
                export_now(&daemon, &flow, id).await;
            }
            .instrument(span),
        );
    }
}

/// An export flow's hook: record `id` exported now, re-read per [`REREAD`] while Odoo has not
/// committed it yet, then left to the schedule.
pub async fn export_now(daemon: &Daemon, flow: &str, id: i64) {
    for (n, wait) in std::iter::once(Duration::ZERO).chain(REREAD).enumerate() {
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        if daemon.is_stopping() {
            return;
        }
        match export_once(daemon, flow, id).await {
            Tried::Done => return,
            Tried::NotYet => {
                tracing::debug!(flow, id, attempt = n + 1, "record not ready yet");
            }
        }
    }
    tracing::info!(
        flow,
        id,
        "the record announced by the webhook is not ready; left to the schedule"
    );
}

/// One try at exporting record `id` of `flow`: the one place a webhook reaches the export
/// pipeline. Waits for a run of the flow going on in this process (a scheduled run due
/// meanwhile is skipped and counted); a record that is not found, does not match the flow's
/// domain yet or is exported already is `NotYet` — read again, then left to the schedule.
async fn export_once(daemon: &Daemon, flow: &str, id: i64) -> Tried {
    let Some(slot) = daemon.flows.get(flow) else {
        return Tried::Done;
    };
    let _guard = slot.lock.lock().await;
    if daemon.is_stopping() {
        return Tried::Done;
    }
    let started = std::time::Instant::now();
    let outcome = daemon.runner.export_records(flow, &[id]).await;
    match outcome {
        Ok(results) => match results.into_iter().next().map(|(_, o)| o) {
            Some(IdOutcome::Published(path)) => {
                daemon.metrics.count_exports(&[RecordResult {
                    flow: flow.to_string(),
                    name: path.clone(),
                    id,
                    outcome: RecordOutcome::Published(path.clone()),
                }]);
                tracing::info!(
                    flow,
                    id,
                    file = %path,
                    ms = started.elapsed().as_millis() as u64,
                    "webhook: published"
                );
                Tried::Done
            }
            Some(IdOutcome::Failed(why)) => {
                tracing::warn!(flow, id, "webhook: not published: {why}");
                Tried::Done
            }
            Some(IdOutcome::NotMatching) | None => Tried::NotYet,
        },
        Err(why) => {
            tracing::error!(flow, id, "webhook: {why}");
            Tried::Done
        }
    }
}
