//! Listing an inbox and picking the complete files: one listing per poll, every file's size and
//! mtime recorded in the ledger, the completeness rules of [`super::settle`] applied, and for XML
//! a look at the file's tail to see whether its root element is closed.

use std::collections::HashSet;
use std::time::Duration;

use super::pass::{PassSummary, Runner, now_ms};
use super::settle::{self, Readiness};
use crate::config::{Flow, ImportFlow};
use crate::mapping::config::Format;
use crate::transport::{self, AnyTransport, Entry, Transport, TransportError};

/// Bytes read from the end of an XML file to see whether its root element is closed.
pub(super) const TAIL_BYTES: u64 = 1024;

impl Runner {
    /// Lists the inbox once and returns the complete files (and when the next settles).
    pub(super) async fn assess_inbox(
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
        // The oldest file that must wait (mtime, name): it holds back newer files of the flow.
        let mut oldest_waiting: Option<(i64, String)> = None;
        let mut must_wait = |entry: &Entry| {
            let key = (entry.mtime, entry.name.clone());
            if oldest_waiting.as_ref().is_none_or(|o| key < *o) {
                oldest_waiting = Some(key);
            }
        };
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
            // Closed after writing, as a watcher saw it, and unchanged since: a strong sign
            // the writer is done, so `settle` is not waited for.
            let since = if self.was_closed(&flow.name, entry) {
                since.min(now - millis(import.settle))
            } else {
                since
            };
            match settle::assess(import, entry, since, now, &names) {
                Readiness::Ready => {
                    match self.looks_truncated(t, import, entry, since, now).await {
                        Ok(None) => complete.push(entry.clone()),
                        Ok(Some(why)) => {
                            must_wait(entry);
                            // Taken at its first listing only with its root closed: one that
                            // looks cut off is listed again after `settle`, as any other.
                            let second_listing = since + millis(import.settle);
                            if now < second_listing {
                                next = next.max(Some(second_listing));
                            }
                            if last || now >= second_listing {
                                summary
                                    .not_ready
                                    .push((flow.name.clone(), entry.name.clone(), why))
                            }
                        }
                        // Gone since the listing: another run took it. Nothing to wait for.
                        Err(None) => {}
                        Err(Some(why)) => {
                            must_wait(entry);
                            summary
                                .unread
                                .push((flow.name.clone(), entry.name.clone(), why))
                        }
                    }
                }
                Readiness::Settling { until_ms } => {
                    must_wait(entry);
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
                Readiness::TooYoung { .. } => {
                    must_wait(entry);
                    summary.not_ready.push((
                        flow.name.clone(),
                        entry.name.clone(),
                        "younger than the flow's `min_age`".into(),
                    ))
                }
                Readiness::NoMarker { marker } => {
                    must_wait(entry);
                    summary.not_ready.push((
                        flow.name.clone(),
                        entry.name.clone(),
                        format!("waiting for its done-marker {marker}"),
                    ))
                }
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
        // Oldest first: files of a flow apply in the order the partner wrote them (mtime, then
        // name), so when they touch the same records the newest wins. A file that must wait
        // holds back the newer ones, in this pass and the next (it is still in the inbox).
        complete.sort_by(|a, b| (a.mtime, &a.name).cmp(&(b.mtime, &b.name)));
        if let Some((mtime, older)) = oldest_waiting {
            complete.retain(|e| {
                let newer = (e.mtime, &e.name) > (mtime, &older);
                if newer {
                    summary.not_ready.push((
                        flow.name.clone(),
                        e.name.clone(),
                        format!("waits for {older}, written before it, to be taken first"),
                    ));
                }
                !newer
            });
        }
        Ok((complete, next))
    }

    /// For XML: a file whose root element is not closed may still be uploading. It waits until
    /// it has been unchanged for `settle_max`; then it is taken (and fails as truncated).
    /// `Err(None)`: the file left the inbox since it was listed; `Err(Some(why))`: its end
    /// could not be read.
    pub(super) async fn looks_truncated(
        &self,
        t: &mut AnyTransport,
        import: &ImportFlow,
        entry: &Entry,
        since: i64,
        now: i64,
    ) -> Result<Option<String>, Option<String>> {
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
            Err(TransportError::NotFound { .. }) => return Err(None),
            Err(e) => return Err(Some(format!("its end could not be read ({e}); it waits"))),
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
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
