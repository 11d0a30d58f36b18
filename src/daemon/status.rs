//! What `status` prints and `/status` answers, per flow: the last run and its result, the next
//! run, files archived/failed/waiting, the oldest waiting, and the failed files with the first
//! line of their report. Read from the ledger only, so it works while the daemon runs.

use serde::Serialize;

use crate::config::{Config, Direction};
use crate::ledger::{Ledger, LedgerError};

/// Failed files listed per flow, newest first.
const FAILED_LISTED: usize = 20;

/// One flow's status.
#[derive(Debug, Clone, Serialize)]
pub struct FlowStatus {
    pub flow: String,
    pub partner: String,
    pub direction: &'static str,
    pub schedule: Option<String>,
    pub archived: u64,
    pub failed: u64,
    pub waiting: u64,
    pub in_progress: u64,
    pub oldest_waiting: Option<String>,
    pub last_archived: Option<String>,
    pub last_activity: Option<String>,
    pub waiting_because: Option<Waits>,
    /// The last run, `null` before the first.
    pub last_run: Option<LastRun>,
    pub last_success: Option<String>,
    pub next_run: Option<String>,
    /// The holder of the run going on now (`host:pid:start`).
    pub running: Option<String>,
    pub runs_skipped: u64,
    pub failed_files: Vec<FailedFile>,
    /// An export flow's records: published, waiting, refused (absent for import flows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportStatus>,
}

/// What an export flow published, what waits and what was refused.
#[derive(Debug, Clone, Serialize)]
pub struct ExportStatus {
    pub published: u64,
    pub waiting: u64,
    pub failed: u64,
    pub last_published: Option<String>,
    /// The latest refused record and why.
    pub failed_because: Option<RecordWhy>,
    /// The latest waiting record and why.
    pub waiting_because: Option<RecordWhy>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordWhy {
    pub record: String,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Waits {
    pub file: String,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    pub started: Option<String>,
    pub finished: Option<String>,
    /// `ok`, `failed` or `stopped`.
    pub result: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedFile {
    pub file: String,
    /// Where it is (in the error folder).
    pub path: Option<String>,
    /// The first line of its report.
    pub error: Option<String>,
}

fn when(ms: Option<i64>) -> Option<String> {
    ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_string())
}

/// The status of every flow of the config, in name order.
pub fn flows(
    config: &Config,
    ledger: &Ledger,
    now_ms: i64,
) -> Result<Vec<FlowStatus>, LedgerError> {
    let mut out = Vec::new();
    for flow in config.flows.values() {
        let c = ledger.counts(&flow.name)?;
        let run = ledger.flow_run(&flow.name, now_ms)?;
        let failed_files = ledger
            .failed_files(&flow.name, FAILED_LISTED)?
            .into_iter()
            .map(|(file, path, error)| FailedFile { file, path, error })
            .collect();
        let export = match flow.direction {
            Direction::Import(_) => None,
            Direction::Export(_) => {
                let e = ledger.export_counts(&flow.name)?;
                let why =
                    |b: Option<(String, String)>| b.map(|(record, why)| RecordWhy { record, why });
                Some(ExportStatus {
                    published: e.published,
                    waiting: e.waiting,
                    failed: e.failed,
                    last_published: when(e.last_published_ms),
                    failed_because: why(e.failed_because),
                    waiting_because: why(e.waiting_because),
                })
            }
        };
        let schedule = flow.schedule.as_ref().map(|s| match s {
            crate::config::Schedule::Every(d) => {
                format!("every {}", humantime::format_duration(*d))
            }
            crate::config::Schedule::Cron(c) => format!("cron {}", c.pattern),
        });
        out.push(FlowStatus {
            flow: flow.name.clone(),
            partner: flow.partner.clone(),
            direction: match flow.direction {
                Direction::Import(_) => "import",
                Direction::Export(_) => "export",
            },
            schedule,
            archived: c.archived,
            failed: c.failed,
            waiting: c.waiting,
            in_progress: c.in_progress,
            oldest_waiting: when(c.oldest_waiting_ms),
            last_archived: when(c.last_archived_ms),
            last_activity: when(c.last_activity_ms),
            waiting_because: c.waiting_because.map(|(file, why)| Waits { file, why }),
            last_run: run.started_at.map(|_| LastRun {
                started: when(run.started_at),
                finished: when(run.finished_at),
                result: run.result.clone(),
                detail: run.detail.clone(),
            }),
            last_success: when(run.last_success),
            next_run: when(run.next_run),
            running: run.running,
            runs_skipped: run.skipped,
            failed_files,
            export,
        });
    }
    Ok(out)
}

/// The human table of `status`.
pub fn render(rows: &[FlowStatus]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<24} {:>9} {:>7} {:>8} {:>12}  {:<27} {:<25} {:<25} oldest waiting since",
        "flow",
        "archived",
        "failed",
        "waiting",
        "in progress",
        "last run",
        "next run",
        "last activity"
    );
    for r in rows.iter().filter(|r| r.export.is_none()) {
        let last = last_run(r);
        let _ = writeln!(
            s,
            "{:<24} {:>9} {:>7} {:>8} {:>12}  {:<27} {:<25} {:<25} {}",
            r.flow,
            r.archived,
            r.failed,
            r.waiting,
            r.in_progress,
            last,
            r.next_run.as_deref().unwrap_or("-"),
            r.last_activity.as_deref().unwrap_or("never"),
            r.oldest_waiting.as_deref().unwrap_or("-")
        );
        if let Some(run) = &r.last_run
            && let Some(detail) = &run.detail
        {
            let _ = writeln!(s, "  last run: {detail}");
        }
        if let Some(w) = &r.waiting_because {
            let _ = writeln!(s, "  {} waits: {}", w.file, w.why);
        }
        for f in &r.failed_files {
            let _ = writeln!(
                s,
                "  failed {}: {}",
                f.file,
                f.error.as_deref().unwrap_or("(no report)")
            );
        }
    }
    let exports: Vec<(&FlowStatus, &ExportStatus)> = rows
        .iter()
        .filter_map(|r| r.export.as_ref().map(|e| (r, e)))
        .collect();
    if !exports.is_empty() {
        let _ = writeln!(
            s,
            "\n{:<24} {:>9} {:>7} {:>8}  {:<27} {:<25} last published",
            "export flow", "published", "waiting", "failed", "last run", "next run"
        );
    }
    for (r, e) in exports {
        let _ = writeln!(
            s,
            "{:<24} {:>9} {:>7} {:>8}  {:<27} {:<25} {}",
            r.flow,
            e.published,
            e.waiting,
            e.failed,
            last_run(r),
            r.next_run.as_deref().unwrap_or("-"),
            e.last_published.as_deref().unwrap_or("never")
        );
        if let Some(run) = &r.last_run
            && let Some(detail) = &run.detail
        {
            let _ = writeln!(s, "  last run: {detail}");
        }
        if let Some(w) = &e.failed_because {
            let _ = writeln!(s, "  {} refused: {}", w.record, w.why);
        }
        if let Some(w) = &e.waiting_because {
            let _ = writeln!(s, "  {} waits: {}", w.record, w.why);
        }
    }
    s
}

/// The last run in a word and a time: `running since …`, `ok …`, or `never`.
fn last_run(r: &FlowStatus) -> String {
    match &r.last_run {
        None => "never".to_string(),
        Some(run) if r.running.is_some() => {
            format!("running since {}", run.started.as_deref().unwrap_or("?"))
        }
        Some(run) => format!(
            "{} {}",
            run.result.as_deref().unwrap_or("-"),
            run.finished.as_deref().unwrap_or("-")
        ),
    }
}
