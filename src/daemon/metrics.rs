//! `/metrics`: Prometheus text, through `prometheus-client`.
//!
//! Counted as things happen: files and records by flow and outcome, runs by flow and result,
//! runs skipped for overlap, SFTP session errors by partner, Odoo call latency by method.
//! Read from the ledger at each scrape: last success time per flow, age of the oldest waiting
//! file per flow, ledger size.

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::config::Config;
use crate::export::pass::{RecordOutcome, RecordResult};
use crate::import::pass::{Outcome, PassSummary};
use crate::ledger::Ledger;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlowOutcome {
    pub flow: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlowLabel {
    pub flow: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartnerLabel {
    pub partner: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    pub method: String,
}

type Latency = Family<MethodLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 5 ms … ~20 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

/// Odoo call latency, shared with the Odoo client (which knows nothing of the daemon).
static ODOO_LATENCY: OnceLock<Latency> = OnceLock::new();

/// Records one Odoo call of `method` that took `seconds` (a no-op outside the daemon).
pub fn odoo_call(method: &str, seconds: f64) {
    if let Some(family) = ODOO_LATENCY.get() {
        family
            .get_or_create(&MethodLabel {
                method: method.to_string(),
            })
            .observe(seconds);
    }
}

/// The daemon's metrics.
pub struct Metrics {
    registry: Registry,
    pub files: Family<FlowOutcome, Counter>,
    pub records: Family<FlowOutcome, Counter>,
    pub runs: Family<FlowOutcome, Counter>,
    pub skipped: Family<FlowLabel, Counter>,
    pub sftp_errors: Family<PartnerLabel, Counter>,
    last_success: Family<FlowLabel, Gauge>,
    oldest_waiting: Family<FlowLabel, Gauge<f64, AtomicU64>>,
    ledger_rows: Gauge,
    ledger_bytes: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("edi_bridge");
        let files = Family::<FlowOutcome, Counter>::default();
        registry.register(
            "files",
            "Files finished, by flow and outcome (archived, failed, waiting)",
            files.clone(),
        );
        let records = Family::<FlowOutcome, Counter>::default();
        registry.register(
            "records",
            "Records of finished files, by flow and outcome (applied, failed)",
            records.clone(),
        );
        let runs = Family::<FlowOutcome, Counter>::default();
        registry.register(
            "runs",
            "Flow runs, by flow and result (ok, failed, stopped)",
            runs.clone(),
        );
        let skipped = Family::<FlowLabel, Counter>::default();
        registry.register(
            "runs_skipped",
            "Scheduled runs skipped because the flow's previous run was still going",
            skipped.clone(),
        );
        let sftp_errors = Family::<PartnerLabel, Counter>::default();
        registry.register(
            "sftp_errors",
            "SFTP sessions that failed (connect refused or timed out, session lost), by partner",
            sftp_errors.clone(),
        );
        let latency: Latency = Family::new_with_constructor(latency_histogram);
        registry.register(
            "odoo_call_seconds",
            "Odoo call latency in seconds, by method",
            latency.clone(),
        );
        let _ = ODOO_LATENCY.set(latency);
        let last_success = Family::<FlowLabel, Gauge>::default();
        registry.register(
            "last_success_timestamp_seconds",
            "When a run of the flow last ended well (unix seconds)",
            last_success.clone(),
        );
        let oldest_waiting = Family::<FlowLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "oldest_waiting_seconds",
            "Age of the oldest file of the flow seen in its inbox and not finished (0: none)",
            oldest_waiting.clone(),
        );
        let ledger_rows = Gauge::default();
        registry.register(
            "ledger_rows",
            "Rows in the ledger (file attempts and sightings)",
            ledger_rows.clone(),
        );
        let ledger_bytes = Gauge::default();
        registry.register(
            "ledger_bytes",
            "Size of the ledger database",
            ledger_bytes.clone(),
        );
        Metrics {
            registry,
            files,
            records,
            runs,
            skipped,
            sftp_errors,
            last_success,
            oldest_waiting,
            ledger_rows,
            ledger_bytes,
        }
    }

    /// Counts what a pass of `flow` did: its files by outcome, the records of finished files.
    pub fn count_pass(&self, summary: &PassSummary, ledger: &Ledger) {
        for f in &summary.files {
            let outcome = match &f.outcome {
                Outcome::Archived(_) => "archived",
                Outcome::Failed(_) => "failed",
                Outcome::Waiting(_) => "waiting",
                Outcome::WouldArchive(_) => "would_archive",
                Outcome::WouldFail { .. } => "would_fail",
            };
            self.files
                .get_or_create(&FlowOutcome {
                    flow: f.flow.clone(),
                    outcome: outcome.into(),
                })
                .inc();
            if let Ok(Some(rec)) = ledger.latest(&f.flow, &f.name) {
                for (outcome, n) in [
                    ("applied", rec.records_applied),
                    ("failed", rec.records_failed),
                ] {
                    if let Some(n) = n.filter(|n| *n > 0) {
                        self.records
                            .get_or_create(&FlowOutcome {
                                flow: f.flow.clone(),
                                outcome: outcome.into(),
                            })
                            .inc_by(n);
                    }
                }
            }
        }
        self.count_exports(&summary.records);
    }

    /// An export flow's records by outcome: `published`, `refused`, `waiting`, `would_publish`.
    pub fn count_exports(&self, records: &[RecordResult]) {
        for r in records {
            let outcome = match &r.outcome {
                RecordOutcome::Published(_) => "published",
                RecordOutcome::Failed(_) => "refused",
                RecordOutcome::Waiting(_) => "waiting",
                RecordOutcome::WouldPublish { .. } => "would_publish",
            };
            self.records
                .get_or_create(&FlowOutcome {
                    flow: r.flow.clone(),
                    outcome: outcome.into(),
                })
                .inc();
        }
    }

    /// The metrics as Prometheus text, with the ledger-backed gauges read now.
    pub fn render(&self, config: &Config, ledger: &Ledger, now_ms: i64) -> String {
        for flow in config.flows.keys() {
            let label = FlowLabel { flow: flow.clone() };
            if let Ok(run) = ledger.flow_run(flow, now_ms)
                && let Some(at) = run.last_success
            {
                self.last_success.get_or_create(&label).set(at / 1000);
            }
            let oldest = ledger.oldest_sighting(flow).ok().flatten();
            let waiting = ledger.counts(flow).ok().and_then(|c| c.oldest_waiting_ms);
            let since = match (oldest, waiting) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let age = since.map_or(0.0, |t| ((now_ms - t).max(0) as f64) / 1000.0);
            self.oldest_waiting.get_or_create(&label).set(age);
        }
        if let Ok((rows, bytes)) = ledger.size() {
            self.ledger_rows.set(rows as i64);
            self.ledger_bytes.set(bytes as i64);
        }
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
