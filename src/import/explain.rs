//! `explain FLOW FILE`: why a file was or was not taken — the completeness rules applied to
//! the inbox as it is now, and the file's attempts in the ledger. Reads only; moves nothing.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::config::{Config, Direction};
use crate::import::settle::{self, Readiness};
use crate::ledger::{Ledger, State};
use crate::mapping::config::Format;
use crate::transport::{AnyTransport, Transport};

/// The explanation, as text for a person.
pub async fn explain(
    config: &Config,
    ledger: &Ledger,
    flow: &str,
    file: &str,
) -> Result<String, String> {
    let flow_cfg = config
        .flow(flow)
        .ok_or_else(|| format!("no flow named `{flow}`"))?;
    let Direction::Import(import) = &flow_cfg.direction else {
        return Err(format!("flow `{flow}` is an export flow"));
    };
    let partner = &config.partners[&flow_cfg.partner];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Flow {flow}: inbox {} on partner {}",
        import.inbox, partner.name
    );
    let now = jiff::Timestamp::now();
    let now_ms = now.as_millisecond();

    let mut t = AnyTransport::connect(partner)
        .await
        .map_err(|e| format!("cannot reach partner {}: {e}", partner.name))?;
    let entries = t
        .list(&import.inbox)
        .await
        .map_err(|e| format!("cannot list {}: {e}", import.inbox))?;
    let _ = t.close().await;

    let names: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    match entries.iter().find(|e| e.name == file) {
        None => {
            let _ = writeln!(out, "{file}: not in the inbox now.");
        }
        Some(entry) => {
            let mtime = jiff::Timestamp::from_second(entry.mtime)
                .map(|t| t.to_zoned_datetime(partner.timezone.clone()).to_string())
                .unwrap_or_else(|_| entry.mtime.to_string());
            let _ = writeln!(
                out,
                "{file}: in the inbox, {} bytes, modified {mtime}.",
                entry.size
            );
            let sighting = ledger.sighting(flow, file).map_err(|e| e.to_string())?;
            let since = match &sighting {
                Some(s) if s.size == entry.size && s.mtime == entry.mtime => {
                    let _ = writeln!(
                        out,
                        "Listings have shown this size and time unchanged for {}.",
                        human_ms(now_ms - s.unchanged_since_ms)
                    );
                    s.unchanged_since_ms
                }
                Some(_) => {
                    let _ = writeln!(out, "It changed since the last listing.");
                    now_ms
                }
                None => {
                    let _ = writeln!(out, "No listing has recorded it yet.");
                    now_ms
                }
            };
            let verdict = match settle::assess(import, entry, since, now_ms, &names) {
                Readiness::Ready => {
                    let xml = matches!(import.format, Format::Xml { .. });
                    format!(
                        "Complete: it is taken on the next pass{}.",
                        if xml {
                            " (if its root element is closed)"
                        } else {
                            ""
                        }
                    )
                }
                Readiness::Ignored(why) => format!("Not taken: {why}."),
                Readiness::Refused(why) => format!("Refused and left alone: {why}."),
                Readiness::Settling { until_ms } => format!(
                    "Waiting: it must stay unchanged for {} (`settle`); complete at the earliest in {}.",
                    humantime::format_duration(import.settle),
                    human_ms(until_ms - now_ms)
                ),
                Readiness::NoMarker { marker } => format!("Waiting for its done-marker {marker}."),
                Readiness::TooYoung { until_ms } => {
                    format!(
                        "Waiting: younger than `min_age`; old enough in {}.",
                        human_ms(until_ms - now_ms)
                    )
                }
            };
            let _ = writeln!(out, "{verdict}");
        }
    }

    let history = ledger.history(flow, file).map_err(|e| e.to_string())?;
    if history.is_empty() {
        let _ = writeln!(out, "The ledger has no attempt at {file} in this flow.");
    } else {
        let _ = writeln!(out, "Attempts in the ledger:");
        for rec in history {
            let when = jiff::Timestamp::from_millisecond(rec.updated_at)
                .map(|t| {
                    t.to_zoned_datetime(partner.timezone.clone())
                        .strftime("%Y-%m-%d %H:%M:%S %Z")
                        .to_string()
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  attempt {} ({} tries), {}, {}{}{}",
                rec.attempt.max(1),
                rec.tries,
                rec.state.as_str(),
                when,
                rec.destination
                    .map(|d| format!(" → {d}"))
                    .unwrap_or_default(),
                match rec.state {
                    State::Failed | State::Quarantining => " (report beside it)".to_string(),
                    _ => rec.detail.map(|d| format!(": {d}")).unwrap_or_default(),
                },
            );
        }
    }
    Ok(out)
}

fn human_ms(ms: i64) -> String {
    let secs = u64::try_from(ms.max(0) / 1000).unwrap_or(0);
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}
